"""Who may talk to the UI: the holder of the token printed at start, from a page of this origin.

- The token comes once in the URL (``/s/<base>/?token=...``, as Jupyter does), is swapped for an
  HttpOnly, SameSite=Strict cookie, and the page is reloaded without it; scripts may send it as a
  bearer token.
- Everything lives under a random base path, and the cookie is scoped to it. Browsers keep cookies
  per host, not per port: a cookie for ``/`` would go to every other server on 127.0.0.1 the
  browser visits, and any of them could replay it. Those servers never see a request under the
  base path, so they never see the cookie.
- Requests that change something must carry ``X-Daytonaflow-UI: 1``: a cross-site form or image
  cannot set a header, and a cross-site script that could is stopped by CORS (no CORS headers here).
  An ``Origin`` other than the UI's own is refused as well.
- The ``Host`` header must name this server: a page on another name that resolves to loopback
  (DNS rebinding) is refused before anything else.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Collection
from urllib.parse import parse_qs, urlsplit

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

#: The header every state-changing request must carry.
CSRF_HEADER = "x-daytonaflow-ui"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_base_path() -> str:
    return f"/s/{secrets.token_urlsafe(12)}"


def cookie_name(port: int) -> str:
    # Two UIs on one machine must not overwrite each other's cookie.
    return f"daytonaflow_ui_{port}"


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The ``Host`` values this server answers to, or None (any) when it listens on every address."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = {host if ":" not in host or host.startswith("[") else f"[{host}]", *_LOOPBACK_NAMES}
    return frozenset({*names, *(f"{name}:{port}" for name in names)})


class TokenGuard:
    """ASGI middleware: the rules above for every route except the static assets.

    The app behind it sees paths without the base path (``/api/...``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        port: int,
        hosts: Collection[str] | None,
        base_path: str,
        public_prefixes: tuple[str, ...] = ("/assets/",),
    ) -> None:
        self._app = app
        self._token = token
        self._cookie = cookie_name(port)
        self._hosts = hosts
        self._base = base_path.rstrip("/")
        self._public = public_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._app(scope, receive, send)
            return
        if scope["type"] != "http":
            # No WebSocket route exists; refuse the upgrade rather than let one pass unchecked.
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        host = headers.get("host", "")
        if self._hosts is not None and host not in self._hosts:
            await _plain(send, 403, f"this UI does not answer to host {host!r}")
            return
        full_path: str = scope["path"]
        if full_path == self._base:
            await _redirect(send, f"{self._base}/")
            return
        if not full_path.startswith(f"{self._base}/"):
            await _plain(send, 401, "Open the URL that `daytonaflow ui` printed (it carries the token).")
            return
        path = full_path[len(self._base) :]
        scope = {**scope, "path": path, "raw_path": path.encode()}
        if path.startswith(self._public):
            await self._app(scope, receive, send)
            return
        offered = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if path == "/" and offered:
            await self._exchange(offered, send)
            return
        if not self._holds_token(headers):
            if path.startswith("/api/"):
                await _json_error(send, 401, "a valid token is needed: open the URL `daytonaflow ui` printed")
            else:
                await _plain(send, 401, "Open the URL that `daytonaflow ui` printed (it carries the token).")
            return
        if scope["method"] not in _SAFE_METHODS:
            problem = _csrf_problem(headers)
            if problem:
                await _json_error(send, 403, problem)
                return
        await self._app(scope, receive, send)

    def _holds_token(self, headers: dict[str, str]) -> bool:
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            return self._matches(authorization[7:].strip())
        # Pair by pair: one odd cookie of another app on this host must not hide ours.
        offered = cookie_parser(headers.get("cookie", "")).get(self._cookie)
        return offered is not None and self._matches(offered)

    def _matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self._token.encode())

    async def _exchange(self, offered: str, send: Send) -> None:
        if not self._matches(offered):
            await _plain(send, 401, "This token is not the one `daytonaflow ui` printed.")
            return
        cookie = f"{self._cookie}={self._token}; HttpOnly; SameSite=Strict; Path={self._base}/"
        await _redirect(send, f"{self._base}/", cookie)


async def _redirect(send: Send, location: str, cookie: str | None = None) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0")]
    if cookie is not None:
        headers.append((b"set-cookie", cookie.encode()))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _csrf_problem(headers: dict[str, str]) -> str | None:
    if headers.get(CSRF_HEADER) != "1":
        return f"requests that change something need the header {CSRF_HEADER}: 1"
    origin = headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        if parts.netloc != headers.get("host", ""):
            return f"requests from {origin} are not accepted"
    return None


async def _plain(send: Send, status: int, text: str) -> None:
    await _respond(send, status, b"text/plain; charset=utf-8", text.encode())


async def _json_error(send: Send, status: int, message: str) -> None:
    import json

    await _respond(send, status, b"application/json", json.dumps({"error": message}).encode())


async def _respond(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
