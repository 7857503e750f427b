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


async def test_an_older_exports_edge_on_http_default_takes_its_success(
    store: RunStore, server: LoopbackServer
) -> None:
    # SuperPlane's http had one `default` channel before success/failure; such canvases still run.
    server.replies = [Reply(200, b"fine", (("Content-Type", "text/plain"),))]
    canvas = make_canvas(
        [
            {"id": "fetch", "component": "http", "configuration": {"url": server.url + "/"}},
            {"id": "next", "component": "noop"},
        ],
        [("start", "fetch"), ("fetch", "next", "default")],
    )
    record = await asyncio.wait_for(Engine(store).run(parse_canvas(canvas)), 60)
    assert record.status == "succeeded", record.error
    assert [event["type"] for event in emitted(store, record.id, "next")] == ["noop.finished"]


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


# --- if, filter and merge through the engine (its joins and bare expressions) -----------------------


async def test_if_routes_on_its_expression_through_the_engine(store: RunStore) -> None:
    canvas = make_canvas(
        [
            {"id": "check", "component": "if", "configuration": {"expression": "root().data.go == true"}},
            {"id": "yes", "component": "noop"},
            {"id": "no", "component": "noop"},
        ],
        [("start", "check"), ("check", "yes", "true"), ("check", "no", "false")],
    )
    engine = Engine(store)
    went = await asyncio.wait_for(engine.run(parse_canvas(canvas), {"go": True}), 60)
    stayed = await asyncio.wait_for(engine.run(parse_canvas(canvas), {"go": False}), 60)
    assert (went.status, stayed.status) == ("succeeded", "succeeded")
    assert [len(emitted(store, went.id, node)) for node in ("yes", "no")] == [1, 0]
    assert [len(emitted(store, stayed.id, node)) for node in ("yes", "no")] == [0, 1]


async def test_an_if_expression_of_another_type_fails_the_run_naming_node_and_field(store: RunStore) -> None:
    canvas = make_canvas(
        [{"id": "check", "component": "if", "configuration": {"expression": "root().data.go"}}],
        [("start", "check")],
    )
    record = await asyncio.wait_for(Engine(store).run(parse_canvas(canvas), {"go": "yes"}), 60)
    assert record.status == "failed"
    assert (
        record.error == 'node "check": field "expression" must evaluate to true or false, got a string "yes"'
    )


async def test_a_false_filter_ends_its_branch_and_the_run_succeeds(store: RunStore) -> None:
    canvas = make_canvas(
        [
            {
                "id": "only-main",
                "component": "filter",
                "configuration": {"expression": 'root().data.b == "main"'},
            },
            {"id": "deploy", "component": "noop"},
        ],
        [("start", "only-main"), ("only-main", "deploy")],
    )
    engine = Engine(store)
    skipped = await asyncio.wait_for(engine.run(parse_canvas(canvas), {"b": "dev"}), 60)
    passed = await asyncio.wait_for(engine.run(parse_canvas(canvas), {"b": "main"}), 60)
    assert (skipped.status, passed.status) == ("succeeded", "succeeded")
    assert emitted(store, skipped.id, "deploy") == []
    assert [event["type"] for event in emitted(store, passed.id, "only-main")] == ["filter.executed"]
    assert len(emitted(store, passed.id, "deploy")) == 1


def join_canvas(merge_config: dict[str, Any], slow_seconds: int = 1) -> dict[str, Any]:
    """start → a (at once) and b (a wait) → join (merge) → after."""
    return make_canvas(
        [
            {"id": "a", "component": "noop"},
            {"id": "b", "component": "wait", "configuration": {"waitFor": slow_seconds}},
            {"id": "join", "component": "merge", "configuration": merge_config},
            {"id": "after", "component": "noop"},
        ],
        [("start", "a"), ("start", "b"), ("a", "join"), ("b", "join"), ("join", "after", "success")],
    )


async def test_merge_continues_once_after_an_input_from_every_branch(store: RunStore) -> None:
    record = await asyncio.wait_for(Engine(store).run(parse_canvas(join_canvas({}))), 60)
    assert record.status == "succeeded", record.error
    [merged] = emitted(store, record.id, "join")
    assert merged["type"] == "merge.finished"
    assert [source["nodeId"] for source in merged["data"]["sourceNodes"]] == ["a", "b"]
    assert len(merged["data"]["eventIDs"]) == 2
    assert len(emitted(store, record.id, "after")) == 1
    assert [e.node_id for e in store.executions(record.id)].count("join") == 1


async def test_merge_gathering_resumes_after_an_engine_restart(store: RunStore) -> None:
    first = Engine(store)
    run_id = await first.start(parse_canvas(join_canvas({}, slow_seconds=2)))
    await wait_for_status(store, run_id, "join", "gathering")
    second = await restart(store, first, run_id)
    try:
        record = await asyncio.wait_for(second.wait(run_id), 60)
    finally:
        await second.aclose()
    assert record.status == "succeeded", record.error
    [merged] = emitted(store, run_id, "join")
    assert [source["nodeId"] for source in merged["data"]["sourceNodes"]] == ["a", "b"]
    assert len(merged["data"]["eventIDs"]) == 2
    assert len(emitted(store, run_id, "after")) == 1


async def test_a_merge_timeout_no_edge_handles_fails_the_run_naming_the_missing_branch(
    store: RunStore,
) -> None:
    config = {"enableTimeout": True, "executionTimeout": {"value": 1, "unit": "seconds"}}
    record = await asyncio.wait_for(Engine(store).run(parse_canvas(join_canvas(config, slow_seconds=30))), 60)
    assert record.status == "failed"
    assert record.error == (
        'node "join" emitted on "timeout" and no edge handles it:'
        ' timed out after 1 s waiting for input from "b"'
    )
    assert emitted(store, record.id, "after") == []


async def test_a_true_stop_condition_emits_on_fail_through_the_engine(store: RunStore) -> None:
    config = {"enableStopIf": True, "stopIfExpression": "root().data.abort"}
    document = join_canvas(config, slow_seconds=30)
    document["spec"]["nodes"].append(
        {"id": "cleanup", "type": "TYPE_ACTION", "name": "cleanup", "component": "noop"}
    )
    document["spec"]["edges"].append({"sourceId": "join", "targetId": "cleanup", "channel": "fail"})
    engine = Engine(store)
    run_id = await engine.start(parse_canvas(document), {"abort": True})
    await wait_for_status(store, run_id, "cleanup", "emitted")
    await engine.cancel(run_id)  # b still waits its 30 s; what matters is that the merge stopped early
    [stopped] = emitted(store, run_id, "join")
    assert (stopped["type"], stopped["data"]["stopEarly"]) == ("merge.stopped", True)


async def test_an_http_failure_no_edge_handles_fails_the_run_with_its_summary(
    store: RunStore, server: LoopbackServer
) -> None:
    server.replies = [Reply(502, b"bad gateway")]
    canvas = make_canvas(
        [{"id": "fetch", "component": "http", "configuration": {"url": server.url + "/x"}}],
        [("start", "fetch")],
    )
    record = await asyncio.wait_for(Engine(store).run(parse_canvas(canvas)), 60)
    assert record.status == "failed"
    assert record.error == (
        f'node "fetch" emitted on "failure" and no edge handles it: HTTP 502 from {server.url}/x'
    )


async def test_after_a_merge_expressions_reach_the_nodes_of_every_branch(store: RunStore) -> None:
    document = join_canvas({})
    document["spec"]["nodes"].append(
        {
            "id": "both",
            "name": "both",
            "type": "TYPE_ACTION",
            "component": "if",
            "configuration": {"expression": '$["a"].data == {} && $["b"].data.result == "completed"'},
        }
    )
    document["spec"]["edges"].append({"sourceId": "join", "targetId": "both", "channel": "success"})
    record = await asyncio.wait_for(Engine(store).run(parse_canvas(document)), 60)
    assert record.status == "succeeded", record.error
    assert [e.channel for e in store.executions(record.id) if e.node_id == "both"] == ["true"]
