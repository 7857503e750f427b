"""The Daytona API client (the hook): the only module of daytonaflow that speaks HTTP to Daytona.

Sandboxes live on the REST API (``{api_url}/sandbox``); commands, files and git run on the
toolbox, whose base URL comes from ``GET {api_url}/config`` (``proxyToolboxUrl``), resolved once
and cached: ``{proxyToolboxUrl}/{sandboxId}/process/execute``. Every request carries
``Authorization: Bearer <api key>``.

Failures raise the named errors of :mod:`daytonaflow.components` with Daytona's own message.
429, 5xx and connection failures are repeated with capped, jittered backoff, but only
where repeating cannot do the work twice: reads, deletes, overwrites, and sandbox creation,
which first looks its idempotency label up so a lost answer never yields a second sandbox.

Every call has an overall deadline: each attempt is bounded as a whole (a server trickling its
answer byte by byte cannot hold it, however short the gaps between bytes), and the attempts and
the waits between them together stay within the call's deadline.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import urllib.parse
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import httpx_ws
from pydantic import BaseModel

from daytonaflow.components._errors import (
    DaytonaApiError,
    DaytonaConflictError,
    DaytonaConnectionError,
    DaytonaError,
    DaytonaProtocolError,
    DaytonaTimeoutError,
    api_error_class,
)
from daytonaflow.components._retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from daytonaflow.components._wire import (
    CommandLogs,
    ExecuteResult,
    FileInfo,
    GitBranches,
    GitCommitInfo,
    GitCommitResult,
    GitStatus,
    PreviewLink,
    SandboxInfo,
    SandboxPage,
    Session,
    SessionCommand,
    SessionExecuteResult,
    SnapshotInfo,
    SnapshotPage,
    VolumeInfo,
)

DEFAULT_API_URL = "https://app.daytona.io/api"
IDEMPOTENCY_LABEL = "daytonaflow.io/idempotency-key"
DEFAULT_TIMEOUT_SECONDS = 30.0
#: Longest one call may take, all its attempts and the waits between them included (a call whose
#: single attempt may take longer, a long command, gets that attempt's time instead).
DEFAULT_DEADLINE_SECONDS = 120.0
#: A retry that would have less than this left before the deadline is not worth starting.
_MIN_ATTEMPT_SECONDS = 0.5
_USER_AGENT = "daytonaflow/0.1"
_NORMAL_CLOSURE = 1000
_MAX_FRAME_BYTES = 16 * 1024 * 1024
_FOLLOW_PING_SECONDS = 20.0
#: Output streams one client holds open at once (a command beyond them is polled instead).
_MAX_FOLLOWERS = 64
#: The largest page Daytona's ``GET /sandbox`` serves.
_MAX_LIST_PAGE = 200
#: How much of an error answer to a download is read (its message is at the start).
_MAX_ERROR_BODY_BYTES = 64 * 1024
#: A directory listing is read no further than this; one entry (a FileInfo) is at most this long.
_MAX_LISTING_BYTES = 64 * 1024 * 1024
_MAX_FILE_INFO_BYTES = 64 * 1024
#: Toolbox output-stream markers: the bytes after one belong to stdout (or stderr) until the next.
_STREAM_MARKERS = (b"\x01\x01\x01", b"\x02\x02\x02")
#: Daytona's largest page of ``GET /snapshots``.
_SNAPSHOT_PAGE_LIMIT = 200
_WireT = TypeVar("_WireT", bound=BaseModel)
_T = TypeVar("_T")


@dataclass
class _Retryable(Exception):
    """Internal: a failure that may be repeated; ``error`` is what to raise when attempts run out."""

    error: DaytonaError
    retry_after: float | None = None


class DaytonaClient:
    """Async client for Daytona's REST API and toolbox API."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.deadline = deadline
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": _USER_AGENT},
            timeout=timeout,
            transport=transport,
        )
        # Output streams are held for a command's life: on a pool of their own, so they never
        # starve the short requests, and bounded, so a wide fan-out polls beyond the bound.
        self._stream_http = httpx.AsyncClient(
            headers=self._http.headers,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=_MAX_FOLLOWERS, max_keepalive_connections=0),
        )
        self._followers = asyncio.Semaphore(_MAX_FOLLOWERS)
        self._toolbox_base: str | None = None
        self._toolbox_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._stream_http.aclose()

    # --- transport ------------------------------------------------------------------------

    def _attempt_seconds(self, kwargs: Mapping[str, Any]) -> float:
        """How long one attempt may take as a whole: its own ``timeout``, else the client's."""
        given = kwargs.get("timeout", httpx.USE_CLIENT_DEFAULT)
        return float(given) if isinstance(given, int | float) else self.timeout

    async def _send_once(
        self, method: str, url: str, *, idempotent: bool, seconds: float, **kwargs: Any
    ) -> httpx.Response:
        path = url.removeprefix(self.api_url)
        try:
            # Around the whole exchange, body included: httpx's own timeouts bound each read only.
            async with asyncio.timeout(seconds):
                response = await self._http.request(method, url, **kwargs)
        except TimeoutError:
            timed_out = DaytonaTimeoutError(f"Daytona did not answer {method} {path} within {seconds:g} s")
            if idempotent:
                raise _Retryable(timed_out) from None
            raise timed_out from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            # The request never reached Daytona: repeating it is always safe.
            raise _Retryable(
                DaytonaConnectionError(
                    f"cannot reach Daytona at {_shown_url(self.api_url)} for {method} {path}: {error}"
                )
            ) from None
        except httpx.TransportError as error:
            # Also a kept-alive connection the server closed under the request (a reset, an
            # empty answer): repeated where that cannot do the work twice.
            failure = DaytonaConnectionError(f"Daytona connection failed during {method} {path}: {error!r}")
            if idempotent:
                raise _Retryable(failure) from None
            raise failure from None
        if response.is_success:
            return response
        api_failure = _api_error(response, method, path)
        # A 429 is refused before any work is done; a 5xx may have done part of it.
        if response.status_code == 429 or (idempotent and response.status_code in RETRYABLE_STATUSES):
            raise _Retryable(api_failure, parse_retry_after(response.headers.get("Retry-After")))
        raise api_failure

    async def _send(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        seconds = self._attempt_seconds(kwargs)

        async def attempt(remaining: float) -> httpx.Response:
            return await self._send_once(
                method, url, idempotent=idempotent, seconds=min(seconds, remaining), **kwargs
            )

        return await self._attempts(
            f"{method} {url.removeprefix(self.api_url)}", attempt, max(self.deadline, seconds)
        )

    async def _attempts(
        self, what: str, attempt: Callable[[float], Awaitable[_T]], budget: float | None = None
    ) -> _T:
        """``attempt(seconds left)`` until it succeeds, repeating on :class:`_Retryable` under the one
        retry policy, all within ``budget`` (the client's deadline): the only retry loop there is."""
        budget = self.deadline if budget is None else budget
        async with _within(budget, what):
            ends_at = _clock() + budget
            number = 0
            while True:
                number += 1
                try:
                    return await attempt(ends_at - _clock())
                except _Retryable as retryable:
                    await self._wait_to_retry(number, retryable, ends_at)

    async def _wait_to_retry(self, attempt: int, retryable: _Retryable, ends_at: float) -> None:
        """Sleep before the next attempt, or raise the failure when none is left in count or time."""
        delay = self.retry.delay(attempt, retryable.retry_after)
        if attempt >= self.retry.attempts or ends_at - _clock() - delay < _MIN_ATTEMPT_SECONDS:
            raise retryable.error from None
        await self.retry.sleep(delay)

    async def _json(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> Any:
        response = await self._send(method, url, idempotent=idempotent, **kwargs)
        if not response.content:
            return None
        return _document(response, method, url.removeprefix(self.api_url))

    # --- configuration and toolbox base -----------------------------------------------------

    async def get_config(self) -> dict[str, Any]:
        document = await self._json("GET", f"{self.api_url}/config", idempotent=True)
        if not isinstance(document, dict):
            raise DaytonaError("Daytona's /config answer is not a JSON object")
        return document

    async def toolbox_base(self) -> str:
        """``proxyToolboxUrl`` from ``/config``, fetched on first use and then cached."""
        if self._toolbox_base is None:
            async with self._toolbox_lock:
                if self._toolbox_base is None:
                    url = (await self.get_config()).get("proxyToolboxUrl")
                    if not isinstance(url, str) or not url:
                        raise DaytonaError("Daytona's /config answer has no proxyToolboxUrl")
                    self._toolbox_base = url.rstrip("/")
        return self._toolbox_base

    async def _toolbox(self, sandbox_id: str, path: str) -> str:
        return f"{await self.toolbox_base()}/{sandbox_id}{path}"

    # --- sandboxes ---------------------------------------------------------------------------

    async def create_sandbox(
        self, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> SandboxInfo:
        """Create a sandbox; with ``idempotency_key``, never a second one for the same key.

        The key is stored as the ``daytonaflow.io/idempotency-key`` label and looked up before
        every attempt, so repeating after a lost answer (or after an engine restart) returns the
        sandbox the first attempt made.
        """
        request = dict(body)
        if idempotency_key is None:
            document = await self._json("POST", f"{self.api_url}/sandbox", idempotent=False, json=request)
            return _parsed(SandboxInfo, document)
        request["labels"] = {**dict(request.get("labels") or {}), IDEMPOTENCY_LABEL: idempotency_key}
        url = f"{self.api_url}/sandbox"

        async def attempt(remaining: float) -> SandboxInfo:
            # The lookup is part of the attempt, never retried on its own: attempts do not multiply.
            mine = await self._created_with_once(idempotency_key, remaining)
            if mine:
                return mine[0]
            response = await self._send_once(
                "POST", url, idempotent=True, seconds=min(self.timeout, remaining), json=request
            )
            try:
                return _parsed(SandboxInfo, _document(response, "POST", "/sandbox"))
            except DaytonaProtocolError as error:
                # The answer is lost, not the sandbox: the next attempt finds it by its label.
                raise _Retryable(error) from None

        return await self._attempts("POST /sandbox (with its idempotency lookups)", attempt)

    async def sandboxes_created_with(self, idempotency_key: str) -> list[SandboxInfo]:
        """The sandboxes :meth:`create_sandbox` made for ``idempotency_key`` (at most one, normally)."""
        return await self._attempts(
            "GET /sandbox (by idempotency label)",
            lambda remaining: self._created_with_once(idempotency_key, remaining),
        )

    async def _created_with_once(self, idempotency_key: str, remaining: float) -> list[SandboxInfo]:
        existing = await self._list_once({IDEMPOTENCY_LABEL: idempotency_key}, remaining)
        # Checked here too: a server that ignored the filter must not hand back a stranger.
        return [sandbox for sandbox in existing if sandbox.labels.get(IDEMPOTENCY_LABEL) == idempotency_key]

    async def get_sandbox(self, sandbox_id: str) -> SandboxInfo:
        return _parsed(
            SandboxInfo, await self._json("GET", f"{self.api_url}/sandbox/{sandbox_id}", idempotent=True)
        )

    async def list_sandboxes(
        self,
        *,
        labels: Mapping[str, str] | None = None,
        states: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[SandboxInfo]:
        """Every sandbox matching ``labels`` (and one of ``states``, when given), all pages; with
        ``limit``, no page is asked for once that many are found (and no more are returned)."""
        return await self._attempts(
            "GET /sandbox", lambda remaining: self._list_once(labels, remaining, states=states, limit=limit)
        )

    async def _list_once(
        self,
        labels: Mapping[str, str] | None,
        remaining: float,
        *,
        states: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[SandboxInfo]:
        """One attempt at every page (a failed page fails the attempt, the caller repeats it whole)."""
        params: dict[str, Any] = {}
        if labels:
            params["labels"] = json.dumps(dict(labels), separators=(",", ":"), sort_keys=True)
        if states:
            params["states"] = list(states)
        if limit is not None:
            params["limit"] = str(min(limit, _MAX_LIST_PAGE))
        url = f"{self.api_url}/sandbox"
        ends_at = _clock() + remaining
        found: list[SandboxInfo] = []

        def kept(items: list[SandboxInfo]) -> list[SandboxInfo]:
            # A server that ignores the states filter must not hand back the others.
            return [sandbox for sandbox in items if not states or sandbox.state in states]

        while True:
            seconds = min(self.timeout, ends_at - _clock())
            response = await self._send_once("GET", url, idempotent=True, seconds=seconds, params=params)
            document = _document(response, "GET", "/sandbox")
            # Older Daytona servers answer a bare list; current ones a page with a cursor.
            if isinstance(document, list):
                return (found + kept([_parsed(SandboxInfo, item) for item in document]))[:limit]
            page = _parsed(SandboxPage, document)
            found.extend(kept(page.items))
            if not page.next_cursor or (limit is not None and len(found) >= limit):
                return found[:limit]
            params["cursor"] = page.next_cursor

    async def delete_sandbox(self, sandbox_id: str, *, force: bool = False) -> SandboxInfo | None:
        """Delete a sandbox; returns it as Daytona last saw it (None when the answer has no body)."""
        params = {"force": "true"} if force else None
        url = f"{self.api_url}/sandbox/{sandbox_id}"
        response = await self._send("DELETE", url, idempotent=True, params=params)
        try:
            document = response.json()
        except ValueError:
            return None
        if isinstance(document, dict) and "id" in document:
            return _parsed(SandboxInfo, document)
        return None

    async def start_sandbox(self, sandbox_id: str) -> SandboxInfo:
        """Start a stopped sandbox (its files are kept); starting a started one changes nothing."""
        url = f"{self.api_url}/sandbox/{sandbox_id}/start"
        return _parsed(SandboxInfo, await self._json("POST", url, idempotent=True))

    async def get_preview_url(self, sandbox_id: str, port: int) -> PreviewLink:
        url = f"{self.api_url}/sandbox/{sandbox_id}/ports/{port}/preview-url"
        return _parsed(PreviewLink, await self._json("GET", url, idempotent=True))

    async def get_signed_preview_url(
        self, sandbox_id: str, port: int, expires_in_seconds: int
    ) -> PreviewLink:
        url = f"{self.api_url}/sandbox/{sandbox_id}/ports/{port}/signed-preview-url"
        return _parsed(
            PreviewLink,
            await self._json("GET", url, idempotent=True, params={"expiresInSeconds": expires_in_seconds}),
        )

    # --- toolbox: processes ------------------------------------------------------------------

    async def execute(
        self,
        sandbox_id: str,
        command: str,
        *,
        cwd: str | None = None,
        timeout_seconds: int | None = None,
        idempotent: bool = False,
    ) -> ExecuteResult:
        """Run a short command synchronously (``/process/execute``)."""
        body: dict[str, Any] = {"command": command}
        if cwd is not None:
            body["cwd"] = cwd
        if timeout_seconds is not None:
            body["timeout"] = timeout_seconds
        url = await self._toolbox(sandbox_id, "/process/execute")
        # The answer comes when the command ends: wait for its own timeout plus the usual margin.
        http_timeout = _http_timeout(
            None if timeout_seconds is None else timeout_seconds + DEFAULT_TIMEOUT_SECONDS
        )
        return _parsed(
            ExecuteResult,
            await self._json("POST", url, idempotent=idempotent, json=body, timeout=http_timeout),
        )

    async def code_run(
        self, sandbox_id: str, code: str, language: str, *, timeout_seconds: int | None = None
    ) -> ExecuteResult:
        """Run code synchronously (``/process/code-run``)."""
        body: dict[str, Any] = {"code": code, "language": language}
        if timeout_seconds is not None:
            body["timeout"] = timeout_seconds
        url = await self._toolbox(sandbox_id, "/process/code-run")
        return _parsed(ExecuteResult, await self._json("POST", url, idempotent=False, json=body))

    async def create_session(self, sandbox_id: str, session_id: str) -> bool:
        """Create a shell session; False when it already existed (a repeated attempt, a restart)."""
        url = await self._toolbox(sandbox_id, "/process/session")
        try:
            await self._send("POST", url, idempotent=True, json={"sessionId": session_id})
        except DaytonaConflictError:
            return False
        return True

    async def get_session(self, sandbox_id: str, session_id: str) -> Session:
        url = await self._toolbox(sandbox_id, f"/process/session/{session_id}")
        return _parsed(Session, await self._json("GET", url, idempotent=True))

    async def delete_session(self, sandbox_id: str, session_id: str) -> None:
        """Delete a session, which ends every process still running in it."""
        url = await self._toolbox(sandbox_id, f"/process/session/{session_id}")
        await self._send("DELETE", url, idempotent=True)

    async def start_session_command(
        self, sandbox_id: str, session_id: str, command: str, *, index: int
    ) -> str:
        """Start ``command`` in the session without waiting for it, exactly once; its command ID.

        ``index`` is how many commands the session ran before this one. A start whose answer was
        lost (a 5xx, a dropped connection) may or may not have happened: the session is the
        caller's alone, so before repeating, its command list says which, and a command that did
        start is adopted instead of started twice.
        """
        url = await self._toolbox(sandbox_id, f"/process/session/{session_id}/exec")
        body = {"command": command, "runAsync": True, "async": True}
        tried = False

        async def attempt(remaining: float) -> str:
            nonlocal tried
            if tried:
                adopted = await self._session_command_at(sandbox_id, session_id, index, remaining)
                if adopted is not None:
                    return adopted
            tried = True
            seconds = min(self.timeout, remaining)
            response = await self._send_once("POST", url, idempotent=True, seconds=seconds, json=body)
            answer = _parsed(SessionExecuteResult, _document(response, "POST", "/process/session/exec"))
            return str(answer.cmd_id)

        return await self._attempts(f"POST /process/session/{session_id}/exec", attempt)

    async def session_command_at(self, sandbox_id: str, session_id: str, index: int) -> str | None:
        """The ID of the session's command number ``index`` (from 0), None when it has fewer."""
        return await self._attempts(
            f"GET /process/session/{session_id}",
            lambda remaining: self._session_command_at(sandbox_id, session_id, index, remaining),
        )

    async def _session_command_at(
        self, sandbox_id: str, session_id: str, index: int, remaining: float
    ) -> str | None:
        url = await self._toolbox(sandbox_id, f"/process/session/{session_id}")
        response = await self._send_once("GET", url, idempotent=True, seconds=min(self.timeout, remaining))
        commands = _parsed(Session, _document(response, "GET", f"/process/session/{session_id}")).commands
        return commands[index].id if commands is not None and len(commands) > index else None

    async def follow_session_command(
        self,
        sandbox_id: str,
        session_id: str,
        command_id: str,
        on_output: Callable[[bytes], None],
    ) -> bool:
        """Stream the command's output to ``on_output`` until the command exits.

        Daytona's toolbox serves ``.../logs?follow=true`` as a WebSocket whose frames carry the
        output (stdout and stderr chunks after their markers) and which closes normally once the
        command has exited: one request for the command's life, no polling. Returns False when
        the server does not offer following (the caller then polls); a stream that breaks or
        ends with an error raises :class:`DaytonaConnectionError`.
        """
        if self._followers.locked():
            return False  # as many streams as this client holds open: the rest poll
        async with self._followers:
            failure = await self._follow(sandbox_id, session_id, command_id, on_output)
        if isinstance(failure, DaytonaConnectionError):
            raise failure
        return failure

    async def _follow(
        self, sandbox_id: str, session_id: str, command_id: str, on_output: Callable[[bytes], None]
    ) -> bool | DaytonaConnectionError:
        """The stream itself; a failure is returned, not raised: raised inside the socket's task
        group it would come out wrapped in an exception group."""
        path = f"/process/session/{session_id}/command/{command_id}/logs"
        url = await self._toolbox(sandbox_id, path)
        demux = _Demux()
        failure: DaytonaConnectionError | None = None
        try:
            connection: contextlib.AbstractAsyncContextManager[httpx_ws.AsyncWebSocketSession]
            connection = httpx_ws.aconnect_ws(
                url,
                self._stream_http,
                params={"follow": "true"},
                max_message_size_bytes=_MAX_FRAME_BYTES,
                keepalive_ping_interval_seconds=_FOLLOW_PING_SECONDS,
                keepalive_ping_timeout_seconds=_FOLLOW_PING_SECONDS,
            )
            async with connection as socket:
                while failure is None:
                    try:
                        event = await socket.receive()
                    except httpx_ws.WebSocketDisconnect as closed:
                        if closed.code == _NORMAL_CLOSURE:
                            break
                        failure = DaytonaConnectionError(
                            f"Daytona ended the output stream of command {command_id} with"
                            f" {closed.code}: {closed.reason or 'no reason given'}"
                        )
                    except httpx_ws.WebSocketNetworkError as error:
                        failure = DaytonaConnectionError(
                            f"the output stream of command {command_id} broke: {error}"
                        )
                    else:
                        data = getattr(event, "data", None)
                        if isinstance(data, str):
                            data = data.encode()
                        if isinstance(data, bytes | bytearray):
                            on_output(demux.feed(bytes(data)))
        except httpx_ws.WebSocketUpgradeError:
            return False
        except (httpx.TransportError, OSError, httpx_ws.HTTPXWSException) as error:
            failure = DaytonaConnectionError(f"cannot follow the output of command {command_id}: {error!r}")
        except ExceptionGroup as group:
            # A failure of the socket's own tasks (a keepalive ping that timed out, a reset).
            failure = DaytonaConnectionError(
                f"the output stream of command {command_id} broke: {group.exceptions[0]!r}"
            )
        if failure is not None:
            return failure
        on_output(demux.flush())
        return True

    async def get_session_command(self, sandbox_id: str, session_id: str, command_id: str) -> SessionCommand:
        url = await self._toolbox(sandbox_id, f"/process/session/{session_id}/command/{command_id}")
        return _parsed(SessionCommand, await self._json("GET", url, idempotent=True))

    async def get_session_command_logs(
        self, sandbox_id: str, session_id: str, command_id: str
    ) -> CommandLogs:
        """The command's output so far; JSON (stdout/stderr split) or plain text, as the server prefers."""
        url = await self._toolbox(sandbox_id, f"/process/session/{session_id}/command/{command_id}/logs")
        response = await self._send("GET", url, idempotent=True, headers={"Accept": "application/json"})
        if "json" in response.headers.get("content-type", ""):
            try:
                return CommandLogs.model_validate(response.json())
            except ValueError:
                pass
        return CommandLogs(output=response.text, stdout=response.text)

    # --- toolbox: files and git ----------------------------------------------------------------

    async def create_folder(self, sandbox_id: str, path: str, mode: str = "0755") -> None:
        url = await self._toolbox(sandbox_id, "/files/folder")
        await self._send("POST", url, idempotent=True, params={"path": path, "mode": mode})

    async def upload_file(self, sandbox_id: str, path: str, content: bytes) -> None:
        """Write ``content`` to ``path`` (an overwrite, so repeating it is safe)."""
        url = await self._toolbox(sandbox_id, "/files/upload")
        await self._send(
            "POST",
            url,
            idempotent=True,
            params={"path": path},
            files={"file": (path.rsplit("/", 1)[-1], content, "application/octet-stream")},
        )

    async def set_permissions(self, sandbox_id: str, path: str, mode: str) -> None:
        url = await self._toolbox(sandbox_id, "/files/permissions")
        await self._send("POST", url, idempotent=True, params={"path": path, "mode": mode})

    async def delete_file(self, sandbox_id: str, path: str, *, recursive: bool = False) -> None:
        url = await self._toolbox(sandbox_id, "/files")
        params = {"path": path, "recursive": "true" if recursive else "false"}
        await self._send("DELETE", url, idempotent=True, params=params)

    async def git_clone(
        self,
        sandbox_id: str,
        url: str,
        path: str,
        *,
        branch: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_seconds: float | None = None,
        commit: str | None = None,
    ) -> None:
        body: dict[str, Any] = {"url": url, "path": path}
        if branch:
            body["branch"] = branch
        if commit:
            body["commit_id"] = commit
        endpoint = await self._toolbox(sandbox_id, "/git/clone")
        body = _with_credentials(body, username, password)
        await self._send(
            "POST", endpoint, idempotent=False, json=body, timeout=_http_timeout(timeout_seconds)
        )

    # ---- git (gitClone, gitStatus, gitCommit, gitPush, gitPull, gitCheckout) ----

    async def git_status(self, sandbox_id: str, path: str) -> GitStatus:
        url = await self._toolbox(sandbox_id, "/git/status")
        return _parsed(GitStatus, await self._json("GET", url, idempotent=True, params={"path": path}))

    async def git_add(self, sandbox_id: str, path: str, files: Sequence[str]) -> None:
        """Stage ``files`` (``.`` for everything); staging again is harmless, so it is repeated."""
        url = await self._toolbox(sandbox_id, "/git/add")
        await self._send("POST", url, idempotent=True, json={"path": path, "files": list(files)})

    async def git_commit(
        self, sandbox_id: str, path: str, message: str, *, author: str, email: str, allow_empty: bool = False
    ) -> str:
        """Commit what is staged; the new commit's SHA. Never repeated: a lost answer may hide a commit."""
        url = await self._toolbox(sandbox_id, "/git/commit")
        body: dict[str, Any] = {"path": path, "message": message, "author": author, "email": email}
        body["allow_empty"] = allow_empty
        return _parsed(GitCommitResult, await self._json("POST", url, idempotent=False, json=body)).hash

    async def git_history(self, sandbox_id: str, path: str) -> list[GitCommitInfo]:
        """The commits reachable from HEAD, newest first."""
        url = await self._toolbox(sandbox_id, "/git/history")
        document = await self._json("GET", url, idempotent=True, params={"path": path})
        if not isinstance(document, list):
            raise DaytonaProtocolError("Daytona's answer to GET /git/history is not a list of commits")
        return [_parsed(GitCommitInfo, item) for item in document]

    async def git_push(
        self,
        sandbox_id: str,
        path: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        """Push the current branch to its remote; pushing the same commits again changes nothing."""
        await self._git_remote("/git/push", sandbox_id, path, username, password, timeout_seconds)

    async def git_pull(
        self,
        sandbox_id: str,
        path: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        """Pull the current branch; a repeated pull finds it up to date."""
        await self._git_remote("/git/pull", sandbox_id, path, username, password, timeout_seconds)

    async def _git_remote(
        self,
        endpoint: str,
        sandbox_id: str,
        path: str,
        username: str | None,
        password: str | None,
        timeout_seconds: float | None,
    ) -> None:
        """A push or a pull (``endpoint``) of the current branch; repeating either is harmless."""
        url = await self._toolbox(sandbox_id, endpoint)
        body = _with_credentials({"path": path}, username, password)
        await self._send("POST", url, idempotent=True, json=body, timeout=_http_timeout(timeout_seconds))

    async def git_branches(self, sandbox_id: str, path: str) -> list[str]:
        url = await self._toolbox(sandbox_id, "/git/branches")
        document = await self._json("GET", url, idempotent=True, params={"path": path})
        return _parsed(GitBranches, document).branches

    async def git_create_branch(self, sandbox_id: str, path: str, name: str) -> None:
        """Create branch ``name`` (Daytona's toolbox also checks it out); a second create fails."""
        url = await self._toolbox(sandbox_id, "/git/branches")
        await self._send("POST", url, idempotent=False, json={"path": path, "name": name})

    async def git_checkout(self, sandbox_id: str, path: str, branch: str) -> None:
        url = await self._toolbox(sandbox_id, "/git/checkout")
        await self._send("POST", url, idempotent=True, json={"path": path, "branch": branch})

    # ---- files and lifecycle (uploadFile, downloadFile, listFiles, getSandbox, listSandboxes,
    # startSandbox, stopSandbox, archiveSandbox) ----

    async def file_info(self, sandbox_id: str, path: str) -> FileInfo:
        url = await self._toolbox(sandbox_id, "/files/info")
        return _parsed(FileInfo, await self._json("GET", url, idempotent=True, params={"path": path}))

    async def list_files(self, sandbox_id: str, path: str, *, most: int | None = None) -> list[FileInfo]:
        """The entries of the directory ``path`` (one level): at most ``most`` of them, read as a
        stream, the rest of the answer never read; an answer over 64 MiB fails (a sandbox can make
        a directory of millions of files)."""
        url = await self._toolbox(sandbox_id, "/files")
        return await self._streamed_get(url, "/files", {"path": path}, lambda answer: _listing(answer, most))

    async def download_file(self, sandbox_id: str, path: str, *, max_bytes: int) -> bytes:
        """The file's bytes, read as a stream and never more than ``max_bytes + 1`` of them: an answer
        longer than ``max_bytes`` says the file is larger, and the rest of it is never read."""
        url = await self._toolbox(sandbox_id, "/files/download")
        params = {"path": path}
        return await self._streamed_get(
            url, "/files/download", params, lambda answer: _head(answer, max_bytes + 1)
        )

    async def _streamed_get(
        self,
        url: str,
        path: str,
        params: dict[str, str],
        read: Callable[[httpx.Response], Awaitable[_T]],
    ) -> _T:
        """GET ``url`` and ``read`` its streamed answer (bounded by ``read``), repeated as any idempotent
        call; ``path`` names it in errors."""
        what = f"GET {path}"

        async def attempt(remaining: float) -> _T:
            seconds = min(self.timeout, remaining)
            try:
                async with asyncio.timeout(seconds):
                    return await self._read_streamed(url, path, params, read)
            except TimeoutError:
                raise _Retryable(
                    DaytonaTimeoutError(f"Daytona did not answer {what} within {seconds:g} s")
                ) from None
            except httpx.TransportError as error:
                raise _Retryable(
                    DaytonaConnectionError(f"Daytona connection failed during {what}: {error!r}")
                ) from None

        return await self._attempts(what, attempt)

    async def _read_streamed(
        self, url: str, path: str, params: dict[str, str], read: Callable[[httpx.Response], Awaitable[_T]]
    ) -> _T:
        # Uncompressed, so that the bound holds on what is held: httpx inflates a whole chunk at once.
        headers = {"Accept-Encoding": "identity"}
        async with self._http.stream("GET", url, params=params, headers=headers) as response:
            if not response.is_success:
                # An error's body says why; only its head is read.
                head = await _head(response, _MAX_ERROR_BODY_BYTES)
                # ``head`` is decoded already: the rebuilt answer must not say it is compressed.
                kept = [(k, v) for k, v in response.headers.items() if k.lower() != "content-encoding"]
                answered = httpx.Response(response.status_code, headers=kept, content=head)
                failure = _api_error(answered, "GET", path)
                if response.status_code in RETRYABLE_STATUSES:
                    raise _Retryable(failure, parse_retry_after(response.headers.get("Retry-After")))
                raise failure
            return await read(response)

    async def stop_sandbox(self, sandbox_id: str, *, force: bool = False) -> SandboxInfo:
        """Stop a started sandbox (its files are kept); ``force`` kills its processes (SIGKILL)."""
        url = f"{self.api_url}/sandbox/{sandbox_id}/stop"
        params = {"force": "true"} if force else None
        return _parsed(SandboxInfo, await self._json("POST", url, idempotent=True, params=params))

    async def archive_sandbox(self, sandbox_id: str) -> SandboxInfo:
        """Archive a stopped sandbox (its filesystem moves to object storage)."""
        url = f"{self.api_url}/sandbox/{sandbox_id}/archive"
        return _parsed(SandboxInfo, await self._json("POST", url, idempotent=True))

    # ---- snapshots and volumes (listSnapshots, createVolume, deleteVolume, the create's volumes) ----

    async def list_snapshots(self, *, name: str | None = None, limit: int = 100) -> list[SnapshotInfo]:
        """At most ``limit`` snapshots in Daytona's order (last used first); ``name`` filters by a
        part of the name."""
        return await self._attempts(
            "GET /snapshots", lambda remaining: self._snapshots_once(name, limit, remaining)
        )

    async def _snapshots_once(self, name: str | None, limit: int, remaining: float) -> list[SnapshotInfo]:
        """One attempt at the pages ``limit`` needs (a failed page fails the attempt, repeated whole)."""
        url = f"{self.api_url}/snapshots"
        params = {"limit": str(min(limit, _SNAPSHOT_PAGE_LIMIT))}
        if name:
            params["name"] = name
        ends_at = _clock() + remaining
        found: list[SnapshotInfo] = []
        page = 1
        while True:
            seconds = min(self.timeout, ends_at - _clock())
            response = await self._send_once(
                "GET", url, idempotent=True, seconds=seconds, params={**params, "page": str(page)}
            )
            answer = _parsed(SnapshotPage, _document(response, "GET", "/snapshots"))
            found.extend(answer.items)
            if len(found) >= limit or not answer.items or page >= answer.total_pages:
                return found[:limit]
            page += 1

    async def list_volumes(self) -> list[VolumeInfo]:
        """Every volume of the organization (deleted ones left out)."""
        return _volumes(await self._json("GET", f"{self.api_url}/volumes", idempotent=True))

    async def find_volume(self, volume: str) -> VolumeInfo | None:
        """The volume whose ID, else whose name, is ``volume``; None when there is none."""
        return _volume_named(await self.list_volumes(), volume)

    async def get_volume(self, volume_id: str) -> VolumeInfo:
        url = f"{self.api_url}/volumes/{urllib.parse.quote(volume_id, safe='')}"
        return _parsed(VolumeInfo, await self._json("GET", url, idempotent=True))

    async def create_volume(self, name: str) -> tuple[VolumeInfo, bool]:
        """Create the volume ``name``, never a second one: every attempt first looks the name up, so a
        repeat after a lost answer (or a volume someone made meanwhile) returns the one that exists.

        Also says whether a create was sent (False: the volume existed before this call).
        """
        url = f"{self.api_url}/volumes"
        sent = False

        async def attempt(remaining: float) -> VolumeInfo:
            nonlocal sent
            # The lookup is part of the attempt, never retried on its own: attempts do not multiply.
            seconds = min(self.timeout, remaining)
            listed = await self._send_once("GET", url, idempotent=True, seconds=seconds)
            volumes = _volumes(_document(listed, "GET", "/volumes"))
            existing = next((item for item in volumes if item.name == name and item.state != "deleted"), None)
            if existing is not None:
                return existing
            sent_before, sent = sent, True
            try:
                response = await self._send_once(
                    "POST", url, idempotent=True, seconds=min(self.timeout, remaining), json={"name": name}
                )
            except DaytonaConflictError as conflict:
                # Someone made it between the lookup and this create, which made nothing: the next
                # attempt's lookup finds theirs.
                sent = sent_before
                raise _Retryable(conflict) from None
            try:
                return _parsed(VolumeInfo, _document(response, "POST", "/volumes"))
            except DaytonaProtocolError as error:
                raise _Retryable(error) from None

        volume = await self._attempts("POST /volumes (with its lookups by name)", attempt)
        return volume, sent

    async def delete_volume(self, volume_id: str) -> None:
        """Delete a volume (Daytona marks it for deletion); 409 while a sandbox mounts it."""
        url = f"{self.api_url}/volumes/{urllib.parse.quote(volume_id, safe='')}"
        await self._send("DELETE", url, idempotent=True)


class _Demux:
    """Output bytes without the stream markers (stdout and stderr are reported as one text).

    A marker may be split across frames: up to two trailing bytes that could start one are held
    back until the next frame says.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        data = self._pending + data
        for marker in _STREAM_MARKERS:
            data = data.replace(marker, b"")
        keep = next(
            (
                size
                for size in (2, 1)
                if len(data) >= size and any(marker.startswith(data[-size:]) for marker in _STREAM_MARKERS)
            ),
            0,
        )
        self._pending = data[len(data) - keep :]
        return data[: len(data) - keep]

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest


#: The content encodings a server may still answer with, and the zlib window bits that inflate them.
_INFLATABLE = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 32 + zlib.MAX_WBITS}


async def _decoded(response: httpx.Response, most: int) -> AsyncIterator[bytes]:
    """The pieces of a streamed body, decoded, up to ``most`` bytes in all. The body is read raw: a
    compressed one (a server that ignored ``Accept-Encoding: identity``) is inflated here, never to
    more than ``most`` bytes (a few KiB of gzip can stand for gigabytes)."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    inflater = None
    if encoding not in ("", "identity"):
        if encoding not in _INFLATABLE:
            raise DaytonaProtocolError(f"Daytona answered in an unsupported content encoding {encoding!r}")
        inflater = zlib.decompressobj(_INFLATABLE[encoding])
    received = 0
    async for raw in response.aiter_raw():
        try:
            chunk = raw if inflater is None else inflater.decompress(raw, most - received)
        except zlib.error as error:
            raise DaytonaProtocolError(f"Daytona's {encoding} answer cannot be decoded: {error}") from None
        chunk = chunk[: most - received]
        received += len(chunk)
        yield chunk
        if received >= most:
            return


async def _head(response: httpx.Response, most: int) -> bytes:
    """At most ``most`` bytes of a streamed body, decoded; closing the stream then drops the rest unread."""
    return b"".join([chunk async for chunk in _decoded(response, most)])


async def _listing(response: httpx.Response, most: int | None) -> list[FileInfo]:
    """The first ``most`` (all when None) FileInfo of a streamed JSON array, each parsed once whole:
    what is held is those entries and at most one entry's worth of text."""
    bad = DaytonaProtocolError("Daytona's answer to GET /files is not a list of FileInfo")
    decoder = json.JSONDecoder()
    text_of = codecs.getincrementaldecoder("utf-8")()
    found: list[FileInfo] = []
    text, at, state, received = "", 0, "open", 0
    async for chunk in _decoded(response, _MAX_LISTING_BYTES + 1):
        received += len(chunk)
        try:
            text = text[at:] + text_of.decode(chunk)
        except UnicodeDecodeError:
            raise bad from None
        at = 0
        while (at := _skip_space(text, at)) < len(text):
            if state == "open":
                if text[at] != "[":
                    raise bad
                at, state = at + 1, "first"
            elif state == "next":
                if text[at] not in ",]":
                    raise bad
                if text[at] == "]":
                    return found
                at, state = at + 1, "entry"
            elif state == "first" and text[at] == "]":
                return found
            else:
                try:
                    item, at = decoder.raw_decode(text, at)
                except json.JSONDecodeError:
                    if len(text) - at > _MAX_FILE_INFO_BYTES:
                        raise bad from None
                    break  # The entry goes on in the next piece.
                if not isinstance(item, dict):
                    raise bad
                found.append(_parsed(FileInfo, item))
                state = "next"
                if most is not None and len(found) >= most:
                    return found
    if received <= _MAX_LISTING_BYTES:
        raise bad  # It ended before its list did.
    raise DaytonaProtocolError(
        f"Daytona's listing is over {_MAX_LISTING_BYTES} bytes ({len(found)} entries read before that): "
        "list a smaller directory or ask for fewer entries"
    )


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _volumes(document: Any) -> list[VolumeInfo]:
    if not isinstance(document, list):
        raise DaytonaProtocolError("Daytona's answer to GET /volumes is not a list")
    return [_parsed(VolumeInfo, item) for item in document]


def _volume_named(volumes: list[VolumeInfo], volume: str) -> VolumeInfo | None:
    """The volume with ID ``volume``, else the one with that name (a deleted one is gone)."""
    present = [item for item in volumes if item.state != "deleted"]
    by_id = next((item for item in present if item.id == volume), None)
    return by_id or next((item for item in present if item.name == volume), None)


def _clock() -> float:
    return asyncio.get_running_loop().time()


@contextlib.asynccontextmanager
async def _within(seconds: float, what: str) -> AsyncIterator[None]:
    """Bound a whole call (attempts and waits); its expiry is a named error, not a bare TimeoutError."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise DaytonaTimeoutError(f"Daytona did not complete {what} within {seconds:g} s") from None


def _document(response: httpx.Response, method: str, path: str) -> Any:
    """The answer's JSON; a 2xx answer that is not JSON is a named error (the work may be done)."""
    try:
        return response.json()
    except ValueError:
        raise DaytonaProtocolError(
            f"Daytona answered {method} {path} with {response.status_code} and a body that is not JSON"
        ) from None


def _parsed(model: type[_WireT], document: Any) -> _WireT:
    """``document`` as ``model``; an answer of another shape is a named error, not a ValidationError."""
    try:
        return model.model_validate(document)
    except ValueError as error:
        raise DaytonaProtocolError(f"Daytona's answer is not a valid {model.__name__}: {error}") from None


def _with_credentials(body: dict[str, Any], username: str | None, password: str | None) -> dict[str, Any]:
    """``body`` with git credentials, when there are both (half a credential is none)."""
    if username is not None and password is not None:
        return {**body, "username": username, "password": password}
    return body


def _http_timeout(seconds: float | None) -> Any:
    """A per-request timeout; None keeps the client's default (httpx reads None as "no timeout")."""
    return httpx.USE_CLIENT_DEFAULT if seconds is None else seconds


def _api_error(response: httpx.Response, method: str, path: str) -> DaytonaApiError:
    """The named error for a non-2xx answer, carrying Daytona's ``message`` (and ``error``)."""
    message = ""
    error = ""
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict):
        raw = document.get("message")
        # NestJS validation errors carry a list of messages.
        message = "; ".join(str(item) for item in raw) if isinstance(raw, list) else str(raw or "")
        error = str(document.get("error") or "")
        if not message:
            message, error = error, ""
        elif error and message.startswith(f"{error}: "):
            # Daytona (and the embedded server) may already lead the message with the status text.
            error = ""
    if not message:
        message = response.text.strip()[:500] or response.reason_phrase or "no message"
    return api_error_class(response.status_code)(
        response.status_code, message, method=method, path=path, error=error
    )


def _shown_url(url: str) -> str:
    """``url`` as an error may show it: credentials in it (``https://user:secret@host``) are left out."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
