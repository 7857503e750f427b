"""Triggers kept armed across restarts (runner.triggers), driven by a FAKE clock: a schedule's due
tick becomes one queued event, a tick missed while down fires once, a restart never fires a tick
twice, and a queued event starts exactly one run from its own trigger node."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daytonaflow.builtins import Schedule
from daytonaflow.runner import Engine, RunStore, RunStoreError, parse_canvas
from daytonaflow.runner.triggers import FiredTrigger, ScheduleBook, TriggerQueue

HOURLY = {"type": "hours", "hoursInterval": 1, "minute": 0}
ARMED_AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def next_fire(config: dict[str, Any]) -> Any:
    return lambda after, reference: Schedule.next_fire(config, after, reference)


def tick(at: datetime) -> dict[str, Any]:
    return {"type": "scheduler.tick", "data": {"at": at.isoformat()}, "timestamp": at.isoformat()}


def fire(book: ScheduleBook, now: datetime, config: dict[str, Any] = HOURLY) -> str | None:
    return book.fire_due("nightly", "tick", next_fire(config), tick, now)


def queued_ticks(store: RunStore) -> list[str]:
    return [record.event["data"]["at"] for record in store.trigger_events("nightly")]


def test_arming_sets_the_first_fire_time_and_nothing_fires_before_it(store: RunStore) -> None:
    book = ScheduleBook(store)
    assert book.arm("nightly", "tick", HOURLY, next_fire(HOURLY), ARMED_AT) == ARMED_AT.replace(
        hour=10, minute=0
    )
    assert fire(book, ARMED_AT + timedelta(minutes=29)) is None
    assert queued_ticks(store) == []


def test_a_due_tick_queues_one_event_and_moves_the_fire_time_on(store: RunStore) -> None:
    book = ScheduleBook(store)
    book.arm("nightly", "tick", HOURLY, next_fire(HOURLY), ARMED_AT)
    assert fire(book, datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC)) is not None
    assert fire(book, datetime(2026, 3, 1, 10, 0, 2, tzinfo=UTC)) is None
    assert queued_ticks(store) == ["2026-03-01T10:00:00+00:00"]
    assert book.next_fire_at("nightly", "tick") == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


def test_ticks_missed_while_down_fire_once_on_start(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with RunStore(path) as store:
        ScheduleBook(store).arm("nightly", "tick", HOURLY, next_fire(HOURLY), ARMED_AT)
    # Down from 09:30 to 15:20: five hourly ticks (10:00 ... 14:00) were missed.
    restart = datetime(2026, 3, 1, 15, 20, tzinfo=UTC)
    with RunStore(path) as store:
        book = ScheduleBook(store)
        assert book.arm("nightly", "tick", HOURLY, next_fire(HOURLY), restart) == ARMED_AT.replace(
            hour=10, minute=0
        )
        assert fire(book, restart) is not None
        assert fire(book, restart + timedelta(seconds=1)) is None
        assert queued_ticks(store) == ["2026-03-01T10:00:00+00:00"]
        # It goes on from the current time, not from the missed ticks.
        assert book.next_fire_at("nightly", "tick") == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def test_a_restart_after_a_fire_does_not_fire_the_same_tick_again(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    due = datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)
    with RunStore(path) as store:
        book = ScheduleBook(store)
        book.arm("nightly", "tick", HOURLY, next_fire(HOURLY), ARMED_AT)
        assert fire(book, due) is not None
    with RunStore(path) as store:
        book = ScheduleBook(store)
        book.arm("nightly", "tick", HOURLY, next_fire(HOURLY), due + timedelta(seconds=10))
        assert fire(book, due + timedelta(seconds=10)) is None
        assert queued_ticks(store) == ["2026-03-01T10:00:00+00:00"]


def test_a_changed_schedule_counts_from_now(store: RunStore) -> None:
    book = ScheduleBook(store)
    book.arm("nightly", "tick", HOURLY, next_fire(HOURLY), ARMED_AT)
    every_day = {"type": "days", "daysInterval": 1, "hour": 6, "minute": 0, "timezone": "0"}
    later = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    assert book.arm("nightly", "tick", every_day, next_fire(every_day), later) == datetime(
        2026, 3, 4, 6, tzinfo=UTC
    )
    assert fire(book, later, every_day) is None


def test_a_fake_clock_walks_a_zoned_schedule_across_the_dst_change(store: RunStore) -> None:
    daily = {"type": "days", "daysInterval": 1, "hour": 9, "minute": 0, "timezone": "Europe/Berlin"}
    book = ScheduleBook(store)
    now = datetime(2026, 3, 27, 12, tzinfo=UTC)
    book.arm("nightly", "tick", daily, next_fire(daily), now)
    for _ in range(4):
        now += timedelta(days=1)
        assert fire(book, now, daily) is not None
    # Berlin moves to summer time on 2026-03-29: 09:00 local is 08:00 UTC before, 07:00 after.
    assert queued_ticks(store) == [
        "2026-03-28T08:00:00+00:00",
        "2026-03-29T07:00:00+00:00",
        "2026-03-30T07:00:00+00:00",
        "2026-03-31T07:00:00+00:00",
    ]


# --- one run per event -----------------------------------------------------------------------------

CANVAS = parse_canvas(
    {
        "metadata": {"name": "nightly"},
        "spec": {
            "nodes": [
                {"id": "start", "type": "TYPE_TRIGGER", "component": "start"},
                {"id": "tick", "type": "TYPE_TRIGGER", "component": "schedule", "configuration": HOURLY},
                {"id": "from-start", "component": "noop"},
                {"id": "from-tick", "component": "noop"},
            ],
            "edges": [
                {"sourceId": "start", "targetId": "from-start"},
                {"sourceId": "tick", "targetId": "from-tick"},
            ],
        },
    }
)


@pytest.fixture
async def real_engine(store: RunStore) -> AsyncIterator[Engine]:
    engine = Engine(store)
    yield engine
    await engine.aclose()


async def test_a_fired_trigger_starts_the_run_from_its_own_node_only(
    real_engine: Engine, store: RunStore
) -> None:
    event = tick(ARMED_AT)
    record = await real_engine.wait(await real_engine.start(CANVAS, fired=FiredTrigger("tick", event)))
    assert record.status == "succeeded"
    assert record.input == event["data"]
    assert sorted(execution.node_id for execution in store.executions(record.id)) == ["from-tick", "tick"]


async def test_a_manual_run_fires_only_the_start_trigger(real_engine: Engine, store: RunStore) -> None:
    record = await real_engine.run(CANVAS, {"x": 1})
    assert sorted(execution.node_id for execution in store.executions(record.id)) == ["from-start", "start"]


async def test_a_manual_run_of_a_canvas_without_start_fires_its_triggers_with_the_input(
    real_engine: Engine, store: RunStore
) -> None:
    document = CANVAS.to_document()
    document["spec"]["nodes"] = [node for node in document["spec"]["nodes"] if node["id"] != "start"]
    document["spec"]["edges"] = [edge for edge in document["spec"]["edges"] if edge["sourceId"] != "start"]
    document["spec"]["nodes"] = [node for node in document["spec"]["nodes"] if node["id"] != "from-start"]
    record = await real_engine.run(parse_canvas(document), {"calendar": {}})
    (trigger,) = [event for event in store.events(record.id) if event.node_id == "tick"]
    assert trigger.event["type"] == "manual.run"
    assert trigger.event["data"] == {"calendar": {}}


async def test_a_queued_event_starts_exactly_one_run(real_engine: Engine, store: RunStore) -> None:
    queue = TriggerQueue(real_engine, {"nightly": CANVAS}, max_concurrent=4)
    event_id = queue.record("nightly", "tick", tick(ARMED_AT))
    (run_id,) = await queue.pump()
    await real_engine.wait(run_id)
    assert await queue.pump() == []
    (record,) = store.trigger_events("nightly")
    assert (record.id, record.status, record.run_id) == (event_id, "started", run_id)
    # Starting it again (a second process racing this one) is refused and inserts no run.
    runs_before = len(store.list_runs())
    with pytest.raises(RunStoreError, match="not queued"):
        await real_engine.start(CANVAS, fired=FiredTrigger("tick", record.event, event_id))
    assert len(store.list_runs()) == runs_before
    await queue.aclose()


async def test_events_beyond_the_limit_wait_in_order(store: RunStore) -> None:
    slow = parse_canvas(
        {
            "metadata": {"name": "nightly"},
            "spec": {
                "nodes": [
                    {"id": "tick", "type": "TYPE_TRIGGER", "component": "schedule", "configuration": HOURLY},
                    {"id": "pause", "component": "wait", "configuration": {"waitFor": 1, "unit": "seconds"}},
                ],
                "edges": [{"sourceId": "tick", "targetId": "pause"}],
            },
        }
    )
    engine = Engine(store)
    queue = TriggerQueue(engine, {"nightly": slow}, max_concurrent=2)
    ids = [queue.record("nightly", "tick", tick(ARMED_AT + timedelta(hours=hour))) for hour in range(3)]
    first = await queue.pump()
    assert len(first) == 2
    assert [r.status for r in store.trigger_events("nightly")] == ["started", "started", "queued"]
    for run_id in first:
        await engine.wait(run_id)
    # The third starts as soon as a slot frees, without another pump.
    for _ in range(100):
        if store.trigger_events("nightly")[2].status == "started":
            break
        await asyncio.sleep(0.05)
    third = store.trigger_events("nightly")[2]
    assert (third.id, third.status) == (ids[2], "started")
    assert third.run_id is not None
    assert (await engine.wait(third.run_id)).status == "succeeded"
    await queue.aclose()
    await engine.aclose()


async def test_an_event_of_a_node_that_is_no_trigger_any_more_is_dropped_not_blocking(
    real_engine: Engine, store: RunStore
) -> None:
    queue = TriggerQueue(real_engine, {"nightly": CANVAS}, max_concurrent=4)
    queue.record("nightly", "gone", tick(ARMED_AT))
    queue.record("nightly", "tick", tick(ARMED_AT))
    (run_id,) = await queue.pump()
    assert (await real_engine.wait(run_id)).status == "succeeded"
    assert [(r.node_id, r.status) for r in store.trigger_events("nightly")] == [
        ("gone", "dropped"),
        ("tick", "started"),
    ]
    await queue.aclose()
