"""Cancelling a run: running executions are told to stop, resources reclaimed, the run marked cancelled."""

from __future__ import annotations

import asyncio

from run_fakes import FakeBackend, make_canvas

from daytonaflow.runner import Engine, RunStore, RunUpdate, parse_canvas

SLEEP_WITH_RESOURCE = make_canvas(
    [
        {"id": "make", "component": "test.acquire"},
        {"id": "sleep", "component": "test.sleep", "configuration": {"seconds": 3600}},
        {"id": "after", "component": "test.echo", "configuration": {"value": 1}},
    ],
    [("start", "make"), ("make", "sleep"), ("sleep", "after")],
)


async def started(updates: list[RunUpdate], node_id: str) -> None:
    while not any(u.kind == "node.started" and u.node_id == node_id for u in updates):
        await asyncio.sleep(0.001)


async def test_cancel_mid_execution_stops_the_command_and_reclaims(
    engine: Engine, store: RunStore, backend: FakeBackend, updates: list[RunUpdate]
) -> None:
    run_id = await engine.start(parse_canvas(SLEEP_WITH_RESOURCE))
    await asyncio.wait_for(started(updates, "sleep"), 5)
    record = await engine.cancel(run_id)
    assert record.status == "cancelled"
    assert backend.cancelled == ["sleep"]
    assert backend.live() == []
    statuses = {e.node_id: e.status for e in store.executions(run_id)}
    assert statuses == {"start": "emitted", "make": "emitted", "sleep": "cancelled"}
    assert [u.node_id for u in updates if u.kind == "node.cancelled"] == ["sleep"]


async def test_the_cancel_hook_runs_once_the_running_hook_has_stopped(
    engine: Engine, backend: FakeBackend, updates: list[RunUpdate]
) -> None:
    # So the cancel hook sees everything the hook persisted, and nothing it started lands afterwards.
    run_id = await engine.start(parse_canvas(SLEEP_WITH_RESOURCE))
    await asyncio.wait_for(started(updates, "sleep"), 5)
    await engine.cancel(run_id)
    assert backend.sleeping_at_cancel == [set()]


async def test_cancel_while_waiting_on_a_check_disarms_it(engine: Engine, store: RunStore) -> None:
    canvas = parse_canvas(
        make_canvas(
            [{"id": "poll", "component": "test.poll", "configuration": {"every": 3600}}], [("start", "poll")]
        )
    )
    run_id = await engine.start(canvas)
    while store.executions(run_id)[-1].status != "waiting":
        await asyncio.sleep(0.001)
    record = await engine.cancel(run_id)
    assert record.status == "cancelled"
    assert store.checks(run_id) == []
    assert engine.active_runs == []


async def test_a_failure_stops_the_other_branches(
    engine: Engine, store: RunStore, backend: FakeBackend
) -> None:
    canvas = parse_canvas(
        make_canvas(
            [
                {"id": "sleep", "component": "test.sleep"},
                {"id": "fail", "component": "test.fail", "configuration": {"message": "bad"}},
            ],
            [("start", "sleep"), ("start", "fail")],
        )
    )
    record = await asyncio.wait_for(engine.run(canvas), 10)
    assert record.status == "failed"
    assert backend.cancelled == ["sleep"]
    assert {e.node_id: e.status for e in store.executions(record.id)}["sleep"] == "cancelled"
