"""A followed output stream that misbehaves (ends with an error, drops, never closes) never fails a
command that is doing fine: the node falls back to asking the command's status.

The toolbox here is a small loopback server (Starlette over uvicorn, 127.0.0.1 only) that speaks
Daytona's wire format, so each misbehaviour can be staged exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from comp_support import FakeContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from daytonaflow.components import DaytonaConnectionError, DaytonaIntegration, ExecuteCommand
from daytonaflow.components import _step as step_module

OUTPUT = "partial\nrest\n"


@dataclass
class Toolbox:
    """How the stream behaves: its ``close`` code (0: it stays open forever)."""

    close: int = 1011
    exited: bool = True
    followed: list[str] = field(default_factory=list)
    deleted_sessions: list[str] = field(default_factory=list)


def _app(toolbox: Toolbox, url: list[str]) -> Starlette:
    async def config(request: Request) -> Response:
        return JSONResponse({"proxyToolboxUrl": f"{url[0]}/toolbox"})

    async def sandbox(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["sid"], "state": "started", "labels": {}})

    async def create_session(request: Request) -> Response:
        return Response(status_code=201)

    async def delete_session(request: Request) -> Response:
        toolbox.deleted_sessions.append(request.path_params["session"])
        return Response(status_code=204)

    async def execute(request: Request) -> Response:
        return JSONResponse({"cmdId": "cmd-1"})

    async def command(request: Request) -> Response:
        return JSONResponse({"id": "cmd-1", "exitCode": 0 if toolbox.exited else None})

    async def logs(request: Request) -> Response:
        return JSONResponse({"output": OUTPUT, "stdout": OUTPUT, "stderr": ""})

    async def follow(websocket: WebSocket) -> None:
        toolbox.followed.append(websocket.url.path)
        await websocket.accept()
        await websocket.send_bytes(b"\x01\x01\x01partial\n")
        if toolbox.close == 0:
            await asyncio.sleep(3600)
        await websocket.close(toolbox.close, "sandbox gone")

    box = "/toolbox/{sid}/process/session"
    return Starlette(
        routes=[
            Route("/api/config", config),
            Route("/api/sandbox/{sid}", sandbox),
            Route(box, create_session, methods=["POST"]),
            Route(box + "/{session}", delete_session, methods=["DELETE"]),
            Route(box + "/{session}/exec", execute, methods=["POST"]),
            Route(box + "/{session}/command/{cmd}", command),
            Route(box + "/{session}/command/{cmd}/logs", logs),
            WebSocketRoute(box + "/{session}/command/{cmd}/logs", follow),
        ]
    )


@contextlib.contextmanager
def serve(toolbox: Toolbox) -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    url = [f"http://127.0.0.1:{listener.getsockname()[1]}"]
    server = uvicorn.Server(uvicorn.Config(_app(toolbox, url), log_level="error", ws="websockets-sansio"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.01)
        yield url[0]
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
async def connect() -> AsyncIterator[list[DaytonaIntegration]]:
    made: list[DaytonaIntegration] = []
    yield made
    for integration in made:
        await integration.aclose()


async def _run(url: str, made: list[DaytonaIntegration]) -> FakeContext:
    integration = DaytonaIntegration(f"{url}/api", "key")
    made.append(integration)
    ctx = FakeContext(config={"sandbox": "sandbox-1", "command": "make build"}, integration=integration)
    await asyncio.wait_for(ExecuteCommand().execute(ctx), 30)
    return ctx


async def test_a_stream_that_ends_with_an_error_is_a_named_error_not_an_exception_group(connect):
    with serve(Toolbox(close=1011)) as url:
        integration = DaytonaIntegration(f"{url}/api", "key")
        connect.append(integration)
        with pytest.raises(DaytonaConnectionError, match="1011: sandbox gone"):
            await integration.client.follow_session_command("sandbox-1", "s", "cmd-1", lambda data: None)


@pytest.mark.parametrize("close", [1011, 1001])
async def test_a_command_whose_stream_breaks_is_finished_by_asking_its_status(connect, close):
    toolbox = Toolbox(close=close)
    with serve(toolbox) as url:
        ctx = await _run(url, connect)
    assert toolbox.followed
    assert ctx.channel == "success"
    assert ctx.data["result"] == OUTPUT
    # The piece that came before the break was shown once, and not again from the logs.
    assert ctx.reported == ["partial\n"]


async def test_a_stream_left_open_after_the_exit_does_not_hold_the_node(connect, monkeypatch):
    monkeypatch.setattr(step_module, "_WATCH_SECONDS", 0.2)
    monkeypatch.setattr(step_module, "_STREAM_CLOSE_GRACE_SECONDS", 0.2)
    with serve(Toolbox(close=0)) as url:
        ctx = await _run(url, connect)
    assert ctx.channel == "success"
    assert ctx.data["result"] == OUTPUT


async def test_a_client_with_every_stream_in_use_polls_the_next_command(connect, monkeypatch):
    toolbox = Toolbox(close=1000)
    with serve(toolbox) as url:
        integration = DaytonaIntegration(f"{url}/api", "key")
        connect.append(integration)
        client = integration.client
        while not client._followers.locked():
            await client._followers.acquire()
        assert not await client.follow_session_command("sandbox-1", "s", "cmd-1", lambda data: None)
    assert toolbox.followed == []
