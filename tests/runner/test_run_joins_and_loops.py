"""Loops, joining nodes (SuperPlane's merge), bare expressions, node inputs and the run's outcome."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from run_fakes import FAKE_COMPONENTS, FakeBackend, make_canvas

from daytonaflow.runner import Engine, RunStore, parse_canvas
from daytonaflow.runner.canvas import Canvas

DEAD_OWNER = f"{socket.gethostname()}:999999999:0"


def canvas_of(nodes: list[dict[str, Any]], edges: list[Any]) -> Canvas:
    return parse_canvas(make_canvas(nodes, edges))


def emitted(store: RunStore, run_id: str, node_id: str) -> list[Any]:
    """The ``value`` of each event ``node_id`` emitted in the run, in order."""
    return [e.event["data"].get("value") for e in store.events(run_id) if e.node_id == node_id]


def diamond(join: dict[str, Any] | None = None) -> Canvas:
    """start -> a, b -> join -> after."""
    return canvas_of(
        [
            {"id": "a", "component": "test.echo", "configuration": {"value": "A"}},
            {"id": "b", "component": "test.echo", "configuration": {"value": "B"}},
            {"id": "join", "component": "test.gather", **(join or {})},
            {"id": "after", "component": "test.inputs"},
        ],
        [("start", "a"), ("start", "b"), ("a", "join"), ("b", "join"), ("join", "after")],
    )


# --- loops ---------------------------------------------------------------------------------------


async def test_a_loop_runs_its_body_until_the_exit_channel(engine: Engine, store: RunStore) -> None:
    canvas = canvas_of(
        [
            {
                "id": "count",
                "component": "test.countdown",
                "configuration": {"value": "<< previous().data.value >>"},
            },
            {"id": "done", "component": "test.echo", "configuration": {"value": "out"}},
        ],
        [("start", "count"), ("count", "count", "again"), ("count", "done", "done")],
    )
    record = await engine.run(canvas, {"value": 3})
    assert record.status == "succeeded", record.error
    assert emitted(store, record.id, "count") == [2, 1, 0, 0]
    assert emitted(store, record.id, "done") == ["out"]


async def test_a_loop_that_never_exits_fails_the_run_at_the_node_execution_limit(
    store: RunStore, backend: FakeBackend
) -> None:
    canvas = canvas_of(
        [{"id": "spin", "component": "test.echo", "configuration": {"value": 1}}],
        [("start", "spin"), ("spin", "spin")],
    )
    engine = Engine(store, registry=FAKE_COMPONENTS, integration=backend, max_node_executions=25)
    record = await asyncio.wait_for(engine.run(canvas), 60)
    assert record.status == "failed"
    assert record.error == (
        'node "spin": reached its limit of 25 executions in this run (a loop that never ends?)'
    )
    assert len(emitted(store, record.id, "spin")) == 25


async def test_the_execution_limit_counts_each_node_so_a_wide_fan_out_is_no_loop(
    store: RunStore, backend: FakeBackend
) -> None:
    nodes = [{"id": f"n{i}", "component": "test.echo", "configuration": {"value": i}} for i in range(30)]
    canvas = canvas_of(nodes, [("start", f"n{i}") for i in range(30)])
    engine = Engine(store, registry=FAKE_COMPONENTS, integration=backend, max_node_executions=2)
    assert (await engine.run(canvas)).status == "succeeded"


# --- joining nodes -------------------------------------------------------------------------------


async def test_a_joining_node_runs_once_with_an_input_from_each_source(
    engine: Engine, store: RunStore
) -> None:
    record = await engine.run(diamond())
    assert record.status == "succeeded", record.error
    (join,) = [e for e in store.executions(record.id) if e.node_id == "join"]
    assert join.metadata["calls"] == 2
    assert sorted(emitted(store, record.id, "join")[0]) == ["a", "b"]
    (after,) = emitted(store, record.id, "after")
    assert after["sources"] == ["join"]
    assert after["inputs"] == [["join", "default", "test.value"]]


async def test_a_node_hears_each_input_with_its_source_and_channel(engine: Engine, store: RunStore) -> None:
    canvas = canvas_of(
        [
            {"id": "branch", "component": "test.branch", "configuration": {"ok": False}},
            {"id": "seen", "component": "test.inputs"},
        ],
        [("start", "branch"), ("branch", "seen", "failed")],
    )
    record = await engine.run(canvas)
    assert emitted(store, record.id, "seen") == [
        {"inputs": [["branch", "failed", "test.value"]], "sources": ["branch"]}
    ]


async def test_a_joining_node_whose_input_never_comes_fails_the_run_naming_the_missing_source(
    engine: Engine, store: RunStore
) -> None:
    canvas = canvas_of(
        [
            {"id": "a", "component": "test.echo", "configuration": {"value": "A"}},
            {"id": "gate", "name": "Gate", "component": "test.branch", "configuration": {"ok": False}},
            {"id": "elsewhere", "component": "test.echo", "configuration": {"value": "E"}},
            {"id": "join", "component": "test.gather"},
        ],
        [
            ("start", "a"),
            ("start", "gate"),
            ("gate", "join", "success"),
            ("gate", "elsewhere", "failed"),
            ("a", "join"),
        ],
    )
    record = await asyncio.wait_for(engine.run(canvas), 60)
    assert record.status == "failed"
    assert record.error == (
        'node "join": still waiting for input from "Gate" when the run had nothing left to run'
    )


async def test_a_joining_node_with_a_timeout_emits_on_timeout_when_an_input_is_missing(
    engine: Engine, store: RunStore
) -> None:
    canvas = canvas_of(
        [
            {"id": "a", "component": "test.echo", "configuration": {"value": "A"}},
            {"id": "gate", "component": "test.branch", "configuration": {"ok": False}},
            {"id": "elsewhere", "component": "test.echo", "configuration": {"value": "E"}},
            {"id": "join", "component": "test.gather", "configuration": {"timeout": 0.05}},
        ],
        [
            ("start", "a"),
            ("start", "gate"),
            ("gate", "join", "success"),
            ("gate", "elsewhere", "failed"),
            ("a", "join"),
        ],
    )
    record = await asyncio.wait_for(engine.run(canvas), 60)
    assert record.status == "succeeded", record.error
    (join,) = [e for e in store.executions(record.id) if e.node_id == "join"]
    assert join.channel == "timeout"
    assert emitted(store, record.id, "join") == [["a"]]


async def test_a_joining_node_in_a_loop_joins_once_per_iteration(engine: Engine, store: RunStore) -> None:
    # first -> left, right -> join -> step -> left, right ...: step reads the countdown before the join.
    canvas = canvas_of(
        [
            {"id": "first", "component": "test.countdown", "configuration": {"value": "<< root().data.n >>"}},
            {"id": "left", "component": "test.echo", "configuration": {"value": "L"}},
            {"id": "right", "component": "test.echo", "configuration": {"value": "R"}},
            {"id": "join", "component": "test.gather"},
            {
                "id": "step",
                "component": "test.countdown",
                "configuration": {"value": "<< previous(3).data.value >>"},
            },
        ],
        [
            ("start", "first"),
            ("first", "left", "again"),
            ("first", "right", "again"),
            ("left", "join"),
            ("right", "join"),
            ("join", "step"),
            ("step", "left", "again"),
            ("step", "right", "again"),
        ],
    )
    record = await asyncio.wait_for(engine.run(canvas, {"n": 2}), 60)
    assert record.status == "succeeded", record.error
    assert [sorted(value) for value in emitted(store, record.id, "join")] == [["left", "right"]] * 2
    assert emitted(store, record.id, "step") == [0, 0]


async def test_a_joining_node_resumed_after_a_crash_keeps_the_inputs_it_had(
    store: RunStore, backend: FakeBackend
) -> None:
    canvas = canvas_of(
        [
            {"id": "a", "component": "test.echo", "configuration": {"value": "A"}},
            {"id": "gate", "component": "test.rendezvous"},
            {"id": "join", "component": "test.gather"},
        ],
        [("start", "a"), ("start", "gate"), ("a", "join"), ("gate", "join")],
    )
    backend.barrier = asyncio.Barrier(2)  # nobody else comes: the gate holds the first engine
    first = Engine(store, registry=FAKE_COMPONENTS, integration=backend)
    run_id = await first.start(canvas)
    for _ in range(1000):
        if any(e.node_id == "join" and e.status == "gathering" for e in store.executions(run_id)):
            break
        await asyncio.sleep(0.01)
    await first.aclose()
    store.claim_run(run_id, store.get_run(run_id).owner, DEAD_OWNER)  # as if its process died

    backend.barrier = asyncio.Barrier(1)
    second = Engine(store, registry=FAKE_COMPONENTS, integration=backend)
    try:
        assert await second.resume() == [run_id]
        record = await asyncio.wait_for(second.wait(run_id), 60)
    finally:
        await second.aclose()
    assert record.status == "succeeded", record.error
    (join,) = [e for e in store.executions(run_id) if e.node_id == "join"]
    assert join.metadata["seen"] == ["a", "gate"]
    assert emitted(store, run_id, "join") == [["a", "gate"]]


async def test_after_a_join_templates_see_every_branch_that_led_to_it(
    engine: Engine, store: RunStore
) -> None:
    canvas = canvas_of(
        [
            {"id": "a", "component": "test.echo", "configuration": {"value": "A"}},
            {"id": "b", "component": "test.echo", "configuration": {"value": "B"}},
            {"id": "join", "component": "test.gather"},
            {
                "id": "after",
                "component": "test.echo",
                "configuration": {"value": '<< [$["a"].data.value, $["b"].data.value] >>'},
            },
        ],
        [("start", "a"), ("start", "b"), ("a", "join"), ("b", "join"), ("join", "after")],
    )
    record = await engine.run(canvas)
    assert record.status == "succeeded", record.error
    assert emitted(store, record.id, "after") == [["A", "B"]]


async def test_a_template_reads_an_earlier_nodes_resolved_configuration(
    engine: Engine, store: RunStore
) -> None:
    canvas = canvas_of(
        [
            {"id": "a", "component": "test.echo", "configuration": {"value": "<< root().data.word >>"}},
            {
                "id": "b",
                "component": "test.echo",
                "configuration": {"value": '<< $["a"].config.value + "!" >>'},
            },
        ],
        [("start", "a"), ("a", "b")],
    )
    record = await engine.run(canvas, {"word": "hi"})
    assert emitted(store, record.id, "b") == ["hi!"]
    (event,) = [e for e in store.events(record.id) if e.node_id == "a"]
    assert event.config == {"value": "hi"}


# --- bare expressions ------------------------------------------------------------------------------


async def test_a_bare_expression_field_is_evaluated_in_the_nodes_context(
    engine: Engine, store: RunStore
) -> None:
    canvas = canvas_of(
        [
            {"id": "a", "component": "test.echo", "configuration": {"value": 20}},
            {
                "id": "check",
                "component": "test.evaluate",
                "configuration": {"expression": '$["a"].data.value > 10'},
            },
        ],
        [("start", "a"), ("a", "check")],
    )
    record = await engine.run(canvas)
    assert emitted(store, record.id, "check") == [True]


async def test_a_broken_bare_expression_fails_naming_the_node_and_field(engine: Engine) -> None:
    canvas = canvas_of(
        [{"id": "check", "component": "test.evaluate", "configuration": {"expression": "1 +"}}],
        [("start", "check")],
    )
    record = await engine.run(canvas)
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.startswith('node "check" field "expression": ')


# --- the run's outcome -----------------------------------------------------------------------------


@pytest.mark.parametrize(("handled", "status"), [(False, "failed"), (True, "succeeded")])
async def test_a_failure_channel_fails_the_run_only_when_no_edge_handles_it(
    engine: Engine, handled: bool, status: str
) -> None:
    edges: list[Any] = [("start", "branch")]
    nodes: list[dict[str, Any]] = [
        {"id": "branch", "component": "test.branch", "configuration": {"ok": False}}
    ]
    if handled:
        nodes.append({"id": "recover", "component": "test.echo", "configuration": {"value": "ok"}})
        edges.append(("branch", "recover", "failed"))
    record = await engine.run(canvas_of(nodes, edges))
    assert record.status == status
    if not handled:
        assert record.error == 'node "branch" emitted on "failed" and no edge handles it'


async def test_an_unhandled_failure_stops_the_other_branches(engine: Engine, store: RunStore) -> None:
    canvas = canvas_of(
        [
            {"id": "branch", "component": "test.branch", "configuration": {"ok": False}},
            {"id": "slow", "component": "test.sleep", "configuration": {"seconds": 3600}},
        ],
        [("start", "branch"), ("start", "slow")],
    )
    record = await asyncio.wait_for(engine.run(canvas), 60)
    assert record.status == "failed"
    (slow,) = [e for e in store.executions(record.id) if e.node_id == "slow"]
    assert slow.status == "cancelled"
