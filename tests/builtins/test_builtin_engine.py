"""The core components through the real Engine and RunStore: registration, durable waits and retries."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builtin_support import LoopbackServer, Reply, loopback_server, make_canvas

from daytonaflow.builtins import BUILTIN_COMPONENTS
from daytonaflow.runner import ComponentRegistry, Engine, RunStore, parse_canvas

#: An owner whose process is gone: a run claimed for it resumes in the next engine.
DEAD_OWNER = f"{socket.gethostname()}:999999999:0"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore(tmp_path / "runs.db") as run_store:
        yield run_store


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as running:
        yield running


def test_the_core_components_register_through_the_entry_points() -> None:
    registry = ComponentRegistry.discover()
    for name in ("http", "if", "filter", "merge", "wait", "noop"):
        assert registry[name] is BUILTIN_COMPONENTS[name]


def test_importing_the_builtins_imports_no_daytona_component(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\nfrom daytonaflow.builtins import BUILTIN_COMPONENTS\n"
        "sys.stdout.write(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    modules = set(json.loads(result.stdout))
    daytona = {name for name in modules if name.startswith("daytonaflow.components.")}
    assert daytona == {"daytonaflow.components._fields"}, daytona


async def wait_for_status(
    store: RunStore, run_id: str, node_id: str, status: str, timeout: float = 30
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(e.node_id == node_id and e.status == status for e in store.executions(run_id)):
        assert loop.time() < deadline, f"{node_id} never reached {status}"
        await asyncio.sleep(0.02)


async def restart(store: RunStore, first: Engine, run_id: str) -> Engine:
    """Stop driving the run as a dying process would, and let a new engine resume it."""
    await first.aclose()
    store.claim_run(run_id, store.get_run(run_id).owner, DEAD_OWNER)
    second = Engine(store)
    assert await second.resume() == [run_id]
    return second


def emitted(store: RunStore, run_id: str, node_id: str) -> list[dict[str, Any]]:
    return [event.event for event in store.events(run_id) if event.node_id == node_id]


WAIT_CANVAS = make_canvas(
    [
        {"id": "pause", "component": "wait", "configuration": {"waitFor": 2, "unit": "seconds"}},
        {"id": "after", "component": "noop"},
    ],
    [("start", "pause"), ("pause", "after")],
)


async def test_a_wait_is_a_persisted_check_not_a_running_hook(store: RunStore) -> None:
    engine = Engine(store)
    run_id = await engine.start(parse_canvas(WAIT_CANVAS))
    await wait_for_status(store, run_id, "pause", "waiting")
    [check] = store.checks(run_id)
    pause = next(e for e in store.executions(run_id) if e.node_id == "pause")
    assert check.execution_id == pause.id
    assert check.due_at == pytest.approx(pause.metadata["due_at"])
    record = await asyncio.wait_for(engine.wait(run_id), 60)
    assert record.status == "succeeded"
    [finished] = emitted(store, run_id, "pause")
    assert finished["type"] == "wait.finished"
    assert emitted(store, run_id, "after")[0]["type"] == "noop.finished"


async def test_a_wait_resumes_where_it_was_after_an_engine_restart(store: RunStore) -> None:
    first = Engine(store)
    run_id = await first.start(parse_canvas(WAIT_CANVAS))
    await wait_for_status(store, run_id, "pause", "waiting")
    before = next(e for e in store.executions(run_id) if e.node_id == "pause").metadata
    second = await restart(store, first, run_id)
    try:
        record = await asyncio.wait_for(second.wait(run_id), 60)
    finally:
        await second.aclose()
    assert record.status == "succeeded"
    [finished] = emitted(store, run_id, "pause")
    # The resumed wait kept its start and its moment: it did not wait the whole delay again.
    assert finished["data"]["started_at"] == before["start_time"]
    assert [check.due_at for check in store.checks(run_id)] in ([], [before["due_at"]])
    [pause] = [e for e in store.executions(run_id) if e.node_id == "pause"]
    assert pause.metadata["due_at"] == before["due_at"]


async def test_an_http_node_routes_on_success_through_the_engine(
    store: RunStore, server: LoopbackServer
) -> None:
    server.replies = [Reply(200, b'{"ok": true}', (("Content-Type", "application/json"),))]
    canvas = make_canvas(
        [
            {
                "id": "fetch",
                "component": "http",
                "configuration": {"url": server.url + "/{{ root().data.path }}"},
            },
            {"id": "ok", "component": "noop"},
            {"id": "down", "component": "noop"},
        ],
        [("start", "fetch"), ("fetch", "ok", "success"), ("fetch", "down", "failure")],
    )
    engine = Engine(store)
    record = await asyncio.wait_for(engine.run(parse_canvas(canvas), {"path": "health"}), 60)
    assert record.status == "succeeded"
    [response] = emitted(store, record.id, "fetch")
    assert (response["type"], response["data"]["status"], response["data"]["body"]) == (
        "http.request.finished",
        200,
        {"ok": True},
    )
    assert server.seen[0].path == "/health"
    assert emitted(store, record.id, "down") == []


async def test_http_retries_resume_after_an_engine_restart(store: RunStore, server: LoopbackServer) -> None:
    server.replies = [Reply(503), Reply(200, b"up")]
    canvas = make_canvas(
        [
            {
                "id": "fetch",
                "component": "http",
                # The older style waits 1 s between attempts (retry.intervalSeconds is 5 s at least).
                "configuration": {
                    "url": server.url,
                    "timeoutStrategy": "fixed",
                    "retries": 2,
                    "timeoutSeconds": 10,
                },
            },
            {"id": "ok", "component": "noop"},
        ],
        [("start", "fetch"), ("fetch", "ok", "success")],
    )
    first = Engine(store)
    run_id = await first.start(parse_canvas(canvas))
    await wait_for_status(store, run_id, "fetch", "waiting")
    second = await restart(store, first, run_id)
    try:
        record = await asyncio.wait_for(second.wait(run_id), 60)
    finally:
        await second.aclose()
    assert record.status == "succeeded"
    [response] = emitted(store, run_id, "fetch")
    assert (response["data"]["status"], response["data"]["attempts"]) == (200, 2)
    assert len(server.seen) == 2
