"""Answers that are lost, malformed, trickled or reset: every call ends within its deadline with a named
error, and a create that may have happened leaves no sandbox behind."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from comp_support import API_KEY, SANDBOX_ID, NoSleep

from daytonaflow.components import (
    LOST_CREATION_RESOURCE,
    SANDBOX_RESOURCE,
    CreateSandbox,
    DaytonaClient,
    DaytonaProtocolError,
    DaytonaTimeoutError,
    RetryPolicy,
)
from daytonaflow.runner import Engine, RunStore, parse_canvas

#: However a test goes wrong, it must not hang the suite.
GUARD_SECONDS = 30.0
MALFORMED = b'{"id": "sandbox-abc123def456", "state": "star'


def malformed_answers(route, count: int = 1):
    """The route still does its work, but its first ``count`` answers arrive cut off."""
    original = route.side_effect
    answered = []

    def cut(request, *args, **kwargs):
        original(request, *args, **kwargs)
        answered.append(request)
        if len(answered) <= count:
            return httpx.Response(200, content=MALFORMED, headers={"content-type": "application/json"})
        return original(request, *args, **kwargs)

    route.side_effect = cut


@pytest.fixture
def client(integration):
    return integration.client


# --- malformed answers -----------------------------------------------------------------------


async def test_a_2xx_answer_that_is_not_json_is_a_named_protocol_error(daytona, client):
    daytona.router.routes["get"].mock(return_value=httpx.Response(200, content=b"<html>proxy</html>"))
    with pytest.raises(DaytonaProtocolError, match="not JSON"):
        await client.get_sandbox(SANDBOX_ID)


async def test_a_json_answer_of_the_wrong_shape_is_a_named_protocol_error(daytona, client):
    daytona.router.routes["get"].mock(return_value=httpx.Response(200, json=["not", "a", "sandbox"]))
    with pytest.raises(DaytonaProtocolError, match="SandboxInfo"):
        await client.get_sandbox(SANDBOX_ID)


async def test_a_create_whose_answer_is_malformed_is_found_by_its_label_instead_of_made_twice(
    daytona, client
):
    malformed_answers(daytona.router.routes["create"])
    sandbox = await client.create_sandbox({}, idempotency_key="run-1/exec-1")
    assert sandbox.id == SANDBOX_ID
    assert daytona.router.routes["create"].call_count == 1
    assert list(daytona.sandboxes) == [SANDBOX_ID]


@pytest.fixture
def single_attempt() -> RetryPolicy:
    return RetryPolicy(attempts=1, sleep=NoSleep())


async def test_a_create_that_gave_up_after_its_answer_was_lost_deletes_the_sandbox_it_made(
    daytona, make_ctx, clock, single_attempt
):
    ctx = make_ctx({})
    ctx.integration._retry = single_attempt
    malformed_answers(daytona.router.routes["create"])
    with pytest.raises(DaytonaProtocolError):
        await CreateSandbox().execute(ctx)
    assert daytona.deleted == [SANDBOX_ID]
    assert ctx.resources.log == [
        ("acquire", LOST_CREATION_RESOURCE, "run-1/exec-1"),
        ("acquire", SANDBOX_RESOURCE, SANDBOX_ID),
        ("release", SANDBOX_RESOURCE, SANDBOX_ID),
        ("release", LOST_CREATION_RESOURCE, "run-1/exec-1"),
    ]


async def test_a_create_cut_short_by_the_process_dying_is_reclaimed_by_its_label(daytona, make_ctx, clock):
    """The key is recorded before the request: a process killed while the sandbox is being made
    (and a run then given up on, never rerunning the node) still has it deleted at the run's end."""
    ctx = make_ctx({})
    route = daytona.router.routes["create"]
    original = route.side_effect

    def made_then_died(request, *args, **kwargs):
        original(request, *args, **kwargs)
        raise SystemExit("the runner process died here")

    route.side_effect = made_then_died
    with pytest.raises(SystemExit):
        await CreateSandbox().execute(ctx)
    assert ctx.resources.held == {(LOST_CREATION_RESOURCE, "run-1/exec-1")}
    await CreateSandbox.reclaim(LOST_CREATION_RESOURCE, "run-1/exec-1", ctx.integration)
    assert daytona.deleted == [SANDBOX_ID]


async def test_a_lost_create_whose_lookup_fails_too_is_reclaimed_by_its_label_at_run_end(
    daytona, make_ctx, clock, single_attempt
):
    ctx = make_ctx({})
    ctx.integration._retry = single_attempt
    malformed_answers(daytona.router.routes["create"])
    lookup = daytona.router.routes["list"]
    listing = lookup.side_effect
    lookups = []

    def unavailable_after_the_create(request):
        lookups.append(request)
        if len(lookups) == 1:
            return listing(request)  # the lookup before the create: nothing yet
        return httpx.Response(503, json={"statusCode": 503, "message": "busy", "error": "Unavailable"})

    lookup.side_effect = unavailable_after_the_create
    with pytest.raises(DaytonaProtocolError):
        await CreateSandbox().execute(ctx)
    assert ctx.resources.held == {(LOST_CREATION_RESOURCE, "run-1/exec-1")}
    assert daytona.deleted == []
    lookup.side_effect = listing  # Daytona is back by the time the run ends
    await CreateSandbox.reclaim(LOST_CREATION_RESOURCE, "run-1/exec-1", ctx.integration)
    assert daytona.deleted == [SANDBOX_ID]


CREATE_ONLY = {
    "apiVersion": "v1",
    "kind": "Canvas",
    "metadata": {"name": "create-only"},
    "spec": {
        "nodes": [
            {"id": "start", "name": "start", "type": "TYPE_TRIGGER", "component": "start"},
            {"id": "create", "name": "create", "type": "TYPE_ACTION", "component": CreateSandbox.name},
        ],
        "edges": [{"sourceId": "start", "targetId": "create", "channel": "default"}],
    },
}


async def test_a_run_whose_create_answer_was_malformed_deletes_the_one_sandbox_at_its_end(
    daytona, integration, tmp_path
):
    malformed_answers(daytona.router.routes["create"])
    with RunStore(tmp_path / "runs.db") as store:
        engine = Engine(store, registry={CreateSandbox.name: CreateSandbox}, integration=integration)
        record = await asyncio.wait_for(engine.run(parse_canvas(CREATE_ONLY)), GUARD_SECONDS)
        resources = {(r.kind, r.resource_id): r.state for r in store.resources(record.id)}
        (create,) = [e for e in store.executions(record.id) if e.node_id == "create"]
    assert record.status == "succeeded", record.error
    assert resources == {
        (SANDBOX_RESOURCE, SANDBOX_ID): "reclaimed",
        (LOST_CREATION_RESOURCE, f"{record.id}/{create.id}"): "released",
    }
    assert daytona.router.routes["create"].call_count == 1
    assert daytona.deleted == [SANDBOX_ID]
    assert daytona.sandboxes == {}


# --- real loopback servers: trickled and reset answers -----------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@contextlib.asynccontextmanager
async def loopback_server(handler: Handler) -> AsyncIterator[str]:
    """A raw HTTP server on 127.0.0.1; ``handler`` gets each connection and its ordinal (from 0)."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        ordinal, connections = connections, connections + 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await handler(reader, writer, ordinal)
        with contextlib.suppress(ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2)


async def read_request(reader: asyncio.StreamReader) -> str:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = next(
        (
            int(line.split(":", 1)[1])
            for line in head.split("\r\n")
            if line.lower().startswith("content-length")
        ),
        0,
    )
    if length:
        await reader.readexactly(length)
    return head.split(" ", 2)[1]


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ordinal: int) -> None:
    """Answer every request 200 with a body sent one byte at a time, never finishing in time."""
    while True:
        path = await read_request(reader)
        if path.startswith("/api/sandbox?"):  # the idempotency lookup answers at once: nothing yet
            body = b'{"items": [], "nextCursor": null}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            continue
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.3)  # well inside the per-read timeout: only a whole-call bound ends it


def trickle_client(url: str, *, attempts: int, deadline: float) -> DaytonaClient:
    retry = RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.05)
    return DaytonaClient(url, API_KEY, retry=retry, timeout=1.0, deadline=deadline)


async def timed(call: Awaitable[object]) -> float:
    started = time.monotonic()
    with pytest.raises(DaytonaTimeoutError):
        await asyncio.wait_for(call, GUARD_SECONDS)
    return time.monotonic() - started


async def test_each_attempt_is_bounded_as_a_whole_however_steadily_the_answer_trickles():
    async with loopback_server(trickle) as url:
        client = trickle_client(url, attempts=2, deadline=600)
        try:
            elapsed = await timed(client.get_sandbox(SANDBOX_ID))
        finally:
            await client.aclose()
    assert elapsed < GUARD_SECONDS / 2


async def test_retries_stop_at_the_calls_deadline():
    async with loopback_server(trickle) as url:
        client = trickle_client(url, attempts=10_000, deadline=3.0)
        try:
            elapsed = await timed(client.get_sandbox(SANDBOX_ID))
        finally:
            await client.aclose()
    assert elapsed < GUARD_SECONDS / 2


async def test_a_trickled_create_answer_ends_within_the_deadline():
    async with loopback_server(trickle) as url:
        client = trickle_client(url, attempts=10_000, deadline=3.0)
        try:
            elapsed = await timed(client.create_sandbox({}, idempotency_key="run-1/exec-1"))
        finally:
            await client.aclose()
    assert elapsed < GUARD_SECONDS / 2


def reset_first_connection(answer: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ordinal: int) -> None:
        await read_request(reader)
        if ordinal == 0:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # with a zero linger: a reset, as a server dropping the connection
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))
        await writer.drain()

    return handler


async def test_a_read_on_a_reset_connection_is_retried():
    answer = b'{"id": "sandbox-abc123def456", "state": "started"}'
    async with loopback_server(reset_first_connection(answer)) as url:
        client = DaytonaClient(url, API_KEY, retry=RetryPolicy(attempts=2, base_delay=0.01))
        try:
            sandbox = await asyncio.wait_for(client.get_sandbox(SANDBOX_ID), GUARD_SECONDS)
        finally:
            await client.aclose()
    assert sandbox.state == "started"


async def test_a_delete_on_a_reset_connection_is_retried():
    answer = b'{"id": "sandbox-abc123def456", "state": "destroyed"}'
    async with loopback_server(reset_first_connection(answer)) as url:
        client = DaytonaClient(url, API_KEY, retry=RetryPolicy(attempts=2, base_delay=0.01))
        try:
            deleted = await asyncio.wait_for(client.delete_sandbox(SANDBOX_ID), GUARD_SECONDS)
        finally:
            await client.aclose()
    assert deleted is not None and deleted.state == "destroyed"
