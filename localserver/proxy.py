"""The preview proxy: a sandbox port at ``http://127.0.0.1:{proxyPort}/preview/{port}-{sandboxId|token}/``
(the path form, which every client on the host opens) or ``http://{port}-{sandboxId|token}.localhost:
{proxyPort}`` (Daytona's host form, where *.localhost resolves: browsers, systemd-resolved).

The path form moves the app under a prefix: its relative links keep it, its absolute ones
(``/static/app.js``) would leave it. Such a request carries the page it came from in its
``Referer``, so one without the prefix whose referrer has it is redirected under that prefix
(307: method and body kept). A navigation to the bare prefix is redirected to it with a slash, so
that the page's relative links resolve under it; other clients get the page there directly.

Every path-form preview shares one browser origin (``http://127.0.0.1:{proxyPort}``), so there the
proxy keeps an app from reaching past its prefix through the browser: no service worker (its
script requests are refused, ``Service-Worker-Allowed`` and ``Clear-Site-Data`` are dropped) and
every cookie scoped under the prefix, its ``Domain`` dropped. The host form is an origin of its
own and passes those through.

The server's API key, sent as ``Authorization: Bearer``, never reaches a sandbox, whatever opened
the preview; any other ``Authorization`` (the app's own) does.

Sandboxes have their own network namespace, so the proxy cannot dial their ports: every request
asks the sandbox's agent to connect to ``127.0.0.1:port`` inside and splice the bytes. HTTP goes
through h11 on that spliced stream; WebSockets through a ``websockets`` client on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import h11
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.frames import CloseCode

from daytonaflow.localserver.agent_client import AgentClient, AgentStream
from daytonaflow.localserver.api import PREVIEW_PATH_PREFIX, ServerState
from daytonaflow.localserver.errors import ApiError
from daytonaflow.localserver.http_common import error_response
from daytonaflow.localserver.sandboxes import SandboxRecord
from daytonaflow.localserver.tokens import PreviewTokenError

_HOST = re.compile(r"^(\d{1,5})-([a-z0-9-]+)\.localhost(?::\d+)?$", re.IGNORECASE)
_PATH = re.compile(rf"^{PREVIEW_PATH_PREFIX}(\d{{1,5}})-([A-Za-z0-9-]+)(/.*)?$", re.DOTALL)
_REFERRER = re.compile(
    rf"^[a-z][a-z0-9+.-]*://[^/]*({PREVIEW_PATH_PREFIX}\d{{1,5}}-[A-Za-z0-9-]+)(?:[/?#]|$)"
)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"host",
    b"x-daytona-preview-token",
}

#: Headers the serving HTTP server (uvicorn) adds to every response itself: the upstream's copies
#: are dropped, or the client would receive each twice.
_SET_BY_SERVER = {b"date", b"server"}
#: Response headers through which an app could act on the whole origin that path-form previews share.
_ORIGIN_WIDE = {b"service-worker-allowed", b"clear-site-data"}


@dataclass(frozen=True)
class _Located:
    """Where a request points: the port, the label (sandbox id or signed token), the path to ask
    the sandbox for, and the path form's prefix as the client sent it (``None``: the host form)."""

    port: int
    label: str
    path: bytes
    prefix: bytes | None


@dataclass(frozen=True)
class _Target:
    """What a preview request opens: the sandbox, its port, the path to ask it for, and the path
    form's prefix (``None`` for the host form) that the answer's cookies are scoped under."""

    record: SandboxRecord
    port: int
    path: bytes
    prefix: bytes | None


class _Redirect(Exception):
    """A request to answer with a redirect to ``location`` (the path form's fix-ups)."""

    def __init__(self, location: bytes, status: int) -> None:
        super().__init__(location.decode("latin-1"))
        self.location = location
        self.status = status


@dataclass(frozen=True)
class ProxyTimeouts:
    """How long the proxy waits on a sandbox's server before answering 504 and letting go.

    ``connect``: to reach the port inside the sandbox. ``read``: for each read of the answer,
    its head included, like nginx's ``proxy_read_timeout``: a stream that keeps sending (server-
    sent events, a slow download) lives on, a server that goes silent does not.
    """

    connect: float = 10.0
    read: float = 60.0


@dataclass(frozen=True)
class ProxyLimits:
    """How much of a sandbox's answer the proxy holds at once.

    ``websocket_message_bytes``: a WebSocket message is relayed only once whole, so the proxy
    buffers it; a larger one closes the connection with 1009 (message too big) instead of
    letting the sandbox make the host buffer a message of any size.
    """

    websocket_message_bytes: int = 16 << 20


# Close codes a close frame may not carry (RFC 6455 7.4.1): the proxy sends 1011 in their place.
_UNSENDABLE_CLOSE_CODES = {CloseCode.NO_STATUS_RCVD, CloseCode.ABNORMAL_CLOSURE, CloseCode.TLS_HANDSHAKE}
_T = TypeVar("_T")


class PreviewProxy:
    """ASGI app of the proxy port; every refusal is a JSON body, never an HTML page."""

    def __init__(
        self, state: ServerState, timeouts: ProxyTimeouts | None = None, limits: ProxyLimits | None = None
    ) -> None:
        self.state = state
        self.timeouts = timeouts or ProxyTimeouts()
        self.limits = limits or ProxyLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        try:
            target = self._authorize(scope)
        except _Redirect as redirect:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "use the /preview/ path"})
                return
            headers = {"location": redirect.location.decode("latin-1"), "content-length": "0"}
            await Response(status_code=redirect.status, headers=headers)(scope, receive, send)
            return
        except ApiError as error:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": error.message[:120]})
                return
            response = error_response(error.status, error.message, error.code)
            await response(scope, receive, send)
            return
        if scope["type"] == "http":
            await self._http(scope, receive, send, target)
        else:
            await self._websocket(scope, receive, send, target)

    def _locate(self, scope: Scope, headers: dict[bytes, bytes]) -> _Located:
        """Where a request in either form points (or a redirect)."""
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string") or b""
        host = headers.get(b"host", b"").decode("latin-1")
        by_host = _HOST.match(host)
        if by_host is not None:
            return _Located(int(by_host.group(1)), by_host.group(2).lower(), raw_path, None)
        if headers.get(b"service-worker", b"").strip().lower() == b"script":
            raise ApiError(
                403,
                "a service worker cannot be registered through a /preview/ URL: every path-form preview "
                "shares the origin of the proxy port, so it could take over other sandboxes' previews; "
                "open the app in the host form http://{port}-{sandboxId or signed token}.localhost:"
                "<proxy port>/ (an origin of its own) instead",
                code="SERVICE_WORKER_REFUSED",
            )
        by_path = _PATH.match(raw_path.decode("latin-1"))
        if by_path is not None:
            rest = by_path.group(3)
            if rest is None and headers.get(b"sec-fetch-mode") == b"navigate":
                # A browser's page at ".../3000-id" would resolve "app.js" outside the prefix.
                raise _Redirect(raw_path + b"/" + (b"?" + query if query else b""), 308)
            prefix = raw_path[: by_path.end(2)]
            return _Located(
                int(by_path.group(1)), by_path.group(2).lower(), (rest or "/").encode("latin-1"), prefix
            )
        referrer = _REFERRER.match(headers.get(b"referer", b"").decode("latin-1"))
        if referrer is not None:
            # An absolute link of an app under the path form: back under the prefix it came from.
            location = referrer.group(1).encode("latin-1") + raw_path + (b"?" + query if query else b"")
            raise _Redirect(location, 307)
        raise ApiError(
            400,
            f"a preview is http://127.0.0.1:<proxy port>{PREVIEW_PATH_PREFIX}{{port}}-{{sandboxId or signed "
            "token}}/… or http://{port}-{sandboxId or signed token}.localhost:<proxy port>/…",
            code="INVALID_PREVIEW_HOST",
        )

    def _authorize(self, scope: Scope) -> _Target:
        headers = dict(scope.get("headers", []))
        located = self._locate(scope, headers)
        port, label = located.port, located.label
        if not 1 <= port <= 65535:
            raise ApiError(400, f"port {port} is out of range", code="INVALID_PREVIEW_HOST")
        manager = self.state.manager
        if _UUID.match(label):
            record = manager.records.get(label)
            if record is None:
                raise ApiError(404, f"sandbox {label} not found", code="SANDBOX_NOT_FOUND")
            if not record.public:
                self._check_private_credential(record, headers)
        else:
            claims = self.state.signer.verify(label, port)
            found = manager.records.get(claims.sandbox_id)
            if found is None:
                raise ApiError(404, "the token's sandbox no longer exists", code="SANDBOX_NOT_FOUND")
            record = found
        if record.state != "started":
            raise ApiError(
                502, f"sandbox {record.id} is not started (state: {record.state})", code="SANDBOX_NOT_STARTED"
            )
        return _Target(record=record, port=port, path=located.path, prefix=located.prefix)

    def _check_private_credential(self, record: SandboxRecord, headers: dict[bytes, bytes]) -> None:
        """The sandbox's preview token, or the server's API key as a Bearer credential (as the SDK
        documents)."""
        if self._is_api_key(headers.get(b"authorization", b"")):
            return
        given = headers.get(b"x-daytona-preview-token", b"").decode("latin-1")
        if not given:
            raise PreviewTokenError(
                "a private sandbox's preview needs the x-daytona-preview-token header (or the API key "
                "as Authorization: Bearer)",
                "TOKEN_MISSING",
            )
        if not hmac.compare_digest(given.encode(), record.preview_token.encode()):
            raise PreviewTokenError("preview token is not valid for this sandbox", "TOKEN_INVALID")

    def _is_api_key(self, authorization: bytes) -> bool:
        """Whether an ``Authorization`` value is the server's API key as a Bearer credential."""
        api_key = self.state.api_key.encode()
        scheme, value = authorization[:7], authorization[7:].strip()
        return bool(api_key) and scheme.lower() == b"bearer " and hmac.compare_digest(value, api_key)

    async def _http(self, scope: Scope, receive: Receive, send: Send, target: _Target) -> None:
        record, port = target.record, target.port
        started = [False]

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            async with self.state.manager.activity(record) as agent:
                stream = await self._connect(agent, port)
                try:
                    await self._relay_http(scope, receive, tracked_send, stream.reader, stream.writer, target)
                except h11.ProtocolError as error:
                    raise ApiError(
                        502, f"the sandbox's server broke HTTP: {error}", code="BAD_UPSTREAM"
                    ) from None
                finally:
                    await stream.close()
        except ApiError as error:
            if started[0]:
                # Too late for an error page: end the body the client is reading.
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            code = error.code or ("PORT_NOT_LISTENING" if error.status == 502 else None)
            await error_response(error.status, error.message, code)(scope, receive, send)

    async def _connect(self, agent: AgentClient, port: int) -> AgentStream:
        return await _within(
            agent.stream("connect", port=port),
            self.timeouts.connect,
            f"the sandbox's server on port {port} did not accept within {self.timeouts.connect:g}s",
        )

    async def _read(self, reader: asyncio.StreamReader, port: int) -> bytes:
        return await _within(
            reader.read(65536),
            self.timeouts.read,
            f"the sandbox's server on port {port} sent nothing for {self.timeouts.read:g}s",
        )

    async def _drain(self, writer: asyncio.StreamWriter, port: int) -> None:
        """Wait for the request body to go out; a server that never reads it times out too."""
        await _within(
            writer.drain(),
            self.timeouts.read,
            f"the sandbox's server on port {port} read nothing for {self.timeouts.read:g}s",
        )

    async def _relay_http(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        preview: _Target,
    ) -> None:
        """Forward the request (its body streamed, framed as the client framed it), then the answer."""
        conn = h11.Connection(h11.CLIENT)
        port = preview.port
        target = preview.path
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        incoming = {k.lower(): v for k, v in scope["headers"]}
        headers = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in _HOP_BY_HOP
            and k.lower() != b"content-length"
            # The API key never reaches sandbox code, whatever opened the preview (a public
            # sandbox, a signed token): the app's own credentials do.
            and not (k.lower() == b"authorization" and self._is_api_key(v))
        ]
        headers += [(b"host", f"localhost:{port}".encode()), (b"connection", b"close")]
        if b"content-length" in incoming:
            headers.append((b"content-length", incoming[b"content-length"]))
        elif b"chunked" in incoming.get(b"transfer-encoding", b"").lower():
            headers.append((b"transfer-encoding", b"chunked"))
        writer.write(conn.send(h11.Request(method=scope["method"], target=target, headers=headers)) or b"")
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            if chunk:
                writer.write(conn.send(h11.Data(data=chunk)) or b"")
                await self._drain(writer, port)
            if not message.get("more_body"):
                break
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await self._drain(writer, port)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await self._read(reader, port)
                if not data and conn.their_state is h11.SEND_RESPONSE:
                    raise ApiError(502, "the sandbox's server closed the connection without answering")
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                response_headers = _response_headers(event.headers, preview.prefix)
                await send(
                    {"type": "http.response.start", "status": event.status_code, "headers": response_headers}
                )
            elif isinstance(event, h11.Data):
                await send({"type": "http.response.body", "body": bytes(event.data), "more_body": True})
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, target: _Target) -> None:
        record, port = target.record, target.port
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        loop = asyncio.get_running_loop()
        try:
            async with self.state.manager.activity(record) as agent:
                sock = await loop.run_in_executor(None, agent.connect_blocking, port)
                path = target.path
                if scope.get("query_string"):
                    path += b"?" + scope["query_string"]
                uri = f"ws://localhost:{port}{path.decode('latin-1')}"
                async with connect(
                    uri,
                    sock=sock,
                    subprotocols=scope.get("subprotocols") or None,
                    proxy=None,
                    max_size=self.limits.websocket_message_bytes,
                    ping_interval=None,
                    compression=None,
                ) as upstream:
                    await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
                    await self._relay_websocket(receive, send, upstream)
        except (ApiError, InvalidHandshake, OSError, TimeoutError) as error:
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": 1011, "reason": str(error)[:120]})

    async def _relay_websocket(self, receive: Receive, send: Send, upstream: ClientConnection) -> None:
        async def client_to_upstream() -> None:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    await upstream.close()
                    return
                if message.get("text") is not None:
                    await upstream.send(message["text"])
                elif message.get("bytes") is not None:
                    await upstream.send(message["bytes"])

        async def upstream_to_client() -> None:
            code: int = CloseCode.NORMAL_CLOSURE
            try:
                async for data in upstream:
                    key = "text" if isinstance(data, str) else "bytes"
                    event: dict[str, Any] = {"type": "websocket.send", key: data}
                    await send(event)
                code = upstream.close_code or CloseCode.NORMAL_CLOSURE
            except ConnectionClosed as closed:
                code = _close_code_to_relay(closed)
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": code})

        tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _response_headers(
    headers: Iterable[tuple[bytes, bytes]], prefix: bytes | None
) -> list[tuple[bytes, bytes]]:
    """The sandbox's answer headers as the client gets them; under the path form's shared origin
    (``prefix`` set), none that acts on the whole origin and every cookie kept under the prefix."""
    kept = []
    for name, value in headers:
        lower = name.lower()
        if lower in _HOP_BY_HOP or lower in _SET_BY_SERVER:
            continue
        if prefix is not None:
            if lower in _ORIGIN_WIDE:
                continue
            if lower == b"set-cookie":
                value = _cookie_under(value, prefix)
        kept.append((name, value))
    return kept


def _cookie_under(set_cookie: bytes, prefix: bytes) -> bytes:
    """A ``Set-Cookie`` value whose ``Path`` is under ``prefix`` (the app's own path appended, the
    prefix alone when it set none), without ``Domain``, the other attributes as the app sent them."""
    pair, *attributes = set_cookie.split(b";")
    app_path = b""
    kept = [pair.strip()]
    for attribute in attributes:
        name, _, value = attribute.strip().partition(b"=")
        name = name.strip().lower()
        if name == b"path":
            # The last Path counts; one not starting with "/" counts as none (RFC 6265 5.2.4).
            value = value.strip()
            app_path = value if value.startswith(b"/") and value != b"/" else b""
        elif name and name != b"domain":
            kept.append(attribute.strip())
    return b"; ".join([*kept, b"Path=" + prefix + app_path])


async def _within(step: Awaitable[_T], seconds: float, silence: str) -> _T:
    """``step``, or a 504 saying what the sandbox's server left undone in ``seconds``."""
    try:
        return await asyncio.wait_for(step, seconds)
    except TimeoutError:
        raise ApiError(504, silence, code="UPSTREAM_TIMEOUT") from None


def _close_code_to_relay(closed: ConnectionClosed) -> int:
    """The code of whoever closed first: the sandbox's server, or the proxy (1009 for a message
    too big)."""
    frames = (closed.sent, closed.rcvd) if closed.rcvd_then_sent is False else (closed.rcvd, closed.sent)
    for frame in frames:
        if frame is not None and frame.code not in _UNSENDABLE_CLOSE_CODES:
            return frame.code
    return CloseCode.INTERNAL_ERROR
