"""Triggers kept armed across restarts (runner.triggers), driven by a FAKE clock: a schedule's due
tick becomes one queued event, a tick missed while down fires once, a restart never fires a tick
twice, and a queued event starts exactly one run from its own trigger node."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daytonaflow.builtins import Schedule
from daytonaflow.runner import Engine, RunStore, RunStoreError, parse_canvas, triggers
from daytonaflow.runner.triggers import Duplicate, FiredTrigger, ScheduleBook, TriggerQueue

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


async def test_the_pump_reads_only_the_head_of_the_queue(real_engine: Engine, store: RunStore) -> None:
    queue = TriggerQueue(real_engine, {"nightly": CANVAS}, max_concurrent=1)
    for hour in range(5):
        queue.record("nightly", "tick", tick(ARMED_AT + timedelta(hours=hour)))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    try:
        (run_id,) = await queue.pump()
    finally:
        store._db.set_trace_callback(None)
    reads = [sql for sql in statements if sql.startswith("SELECT") and "FROM trigger_events" in sql]
    assert reads, statements
    # A queue of many large events is read one row per run started, never whole.
    assert all(sql.rstrip().endswith("LIMIT 1") for sql in reads), reads
    await real_engine.wait(run_id)
    await queue.aclose()


async def test_old_events_done_with_are_pruned_and_queued_ones_kept(
    real_engine: Engine, store: RunStore
) -> None:
    queue = TriggerQueue(real_engine, {"nightly": CANVAS}, max_concurrent=1)
    gone = queue.record("nightly", "gone", tick(ARMED_AT))
    done = queue.record("nightly", "tick", tick(ARMED_AT), delivery_id="d-1")
    waiting = queue.record("nightly", "tick", tick(ARMED_AT))
    (run_id,) = await queue.pump()
    await queue.aclose()  # the third stays queued
    await real_engine.wait(run_id)
    assert {r.id: r.status for r in store.trigger_events("nightly")} == {
        done: "started",
        gone: "dropped",
        waiting: "queued",
    }
    assert queue.prune(datetime.now(UTC)) == 0  # all younger than the retention
    assert queue.prune(datetime.now(UTC) + timedelta(days=8)) == 2
    assert [r.id for r in store.trigger_events("nightly")] == [waiting]
    # The delivery id went with its retention: the same delivery is new again.
    assert queue.record("nightly", "tick", tick(ARMED_AT), delivery_id="d-1") != done


async def test_a_replayed_delivery_queues_nothing_and_names_the_first_event(
    real_engine: Engine, store: RunStore
) -> None:
    queue = TriggerQueue(real_engine, {"nightly": CANVAS}, max_concurrent=1)
    first = queue.record("nightly", "tick", tick(ARMED_AT), delivery_id="delivery-1")
    with pytest.raises(Duplicate) as caught:
        queue.record("nightly", "tick", tick(ARMED_AT), delivery_id="delivery-1")
    assert caught.value.event_id == first
    # The same id for another node, or no id at all, is no replay.
    queue.record("nightly", "start", tick(ARMED_AT), delivery_id="delivery-1")
    queue.record("nightly", "tick", tick(ARMED_AT))
    assert len(store.trigger_events("nightly")) == 3


def test_two_processes_on_one_database_never_take_the_same_tick(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with RunStore(path) as mine, RunStore(path) as theirs:
        ScheduleBook(mine).arm("nightly", "tick", HOURLY, next_fire(HOURLY), ARMED_AT)
        theirs._db.execute("PRAGMA busy_timeout = 50")
        due = datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC)
        outcomes: list[object] = []

        def racing_next_fire(after: datetime, reference: datetime) -> datetime | None:
            # The other process fires the same schedule while this one is between its read
            # of the due tick and its write.
            if not outcomes:
                try:
                    outcomes.append(fire(ScheduleBook(theirs), due))
                except Exception as error:
                    outcomes.append(error)
            return Schedule.next_fire(HOURLY, after, reference)

        ScheduleBook(mine).fire_due("nightly", "tick", racing_next_fire, tick, due)
        assert queued_ticks(mine) == ["2026-03-01T10:00:00+00:00"]


def test_ticks_beyond_the_queue_cap_are_skipped_and_the_fire_time_moves_on(store: RunStore) -> None:
    book = ScheduleBook(store)
    book.arm("nightly", "tick", HOURLY, next_fire(HOURLY), ARMED_AT)
    ten = datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC)
    assert book.fire_due("nightly", "tick", next_fire(HOURLY), tick, ten, max_queued=1) is not None
    eleven = ten + timedelta(hours=1)
    assert book.fire_due("nightly", "tick", next_fire(HOURLY), tick, eleven, max_queued=1) is None
    assert queued_ticks(store) == ["2026-03-01T10:00:00+00:00"]
    assert book.next_fire_at("nightly", "tick") == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_events_that_cannot_start_are_marked_failed_and_do_not_block_the_queue(
    real_engine: Engine, store: RunStore
) -> None:
    document = CANVAS.to_document()
    document["spec"]["nodes"][2]["component"] = "no-such-component"
    broken = parse_canvas(document)
    queue = TriggerQueue(real_engine, {"nightly": broken}, max_concurrent=1)
    queue.record("nightly", "tick", tick(ARMED_AT))
    queue.record("nightly", "tick", tick(ARMED_AT + timedelta(hours=1)))
    assert await queue.pump() == []
    records = store.trigger_events("nightly")
    assert [r.status for r in records] == ["failed", "failed"]
    assert all(r.error is not None and "no-such-component" in r.error for r in records)
    await queue.aclose()


@pytest.mark.parametrize(
    "busy", [RunStoreError("database is locked"), sqlite3.OperationalError("database is locked")]
)
async def test_a_start_that_keeps_failing_on_the_database_is_retried_then_marked_failed(
    real_engine: Engine, store: RunStore, monkeypatch: pytest.MonkeyPatch, busy: Exception
) -> None:
    attempts = []

    async def busy_start(canvas: Any, **_: Any) -> str:
        attempts.append(canvas.name)
        raise busy

    monkeypatch.setattr(triggers, "_RETRY_DELAY", 0.01)
    monkeypatch.setattr(real_engine, "start", busy_start)
    queue = TriggerQueue(real_engine, {"nightly": CANVAS}, max_concurrent=1)
    queue.record("nightly", "tick", tick(ARMED_AT))
    assert await queue.pump() == []
    assert store.trigger_events("nightly")[0].status == "queued"
    for _ in range(200):
        if store.trigger_events("nightly")[0].status != "queued":
            break
        await asyncio.sleep(0.01)
    (record,) = store.trigger_events("nightly")
    assert (record.status, record.error) == ("failed", "database is locked")
    assert len(attempts) == triggers.MAX_START_ATTEMPTS
    await queue.aclose()


def test_a_database_from_before_replay_dedupe_gains_its_tables_on_open(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with RunStore(path) as store:
        store._db.execute("ALTER TABLE trigger_events DROP COLUMN error")
        store._db.execute("DROP TABLE trigger_deliveries")
    with RunStore(path) as store:
        store.insert_trigger_event("e1", "nightly", "tick", tick(ARMED_AT), delivery_id="d-1")
        store.fail_trigger_event("e1", "no such node")
        assert store.insert_trigger_event("e2", "nightly", "tick", tick(ARMED_AT), delivery_id="d-1") == "e1"
        (record,) = store.trigger_events("nightly")
        assert (record.status, record.error) == ("failed", "no such node")
