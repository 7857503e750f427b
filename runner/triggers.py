"""Triggers kept armed by a long-lived process: durable schedule state and the queue of trigger events.

Nothing here reads a clock or speaks HTTP: the caller says what time it is and hands in what a
trigger received, so a test drives a schedule across days with a fake clock. Every step is one
transaction of the run database:

* a schedule's due tick becomes a queued trigger event in the same transaction that moves its
  next fire time on, so a restart never fires the same tick twice, and a tick missed while no
  process ran fires once, not once per missed tick;
* a queued event is marked started in the transaction that inserts its run (see
  ``Engine.start(fired=...)``), so it starts exactly one run;
* at most ``max_concurrent`` runs of a canvas run at once; the events beyond wait in the queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from daytonaflow.runner.canvas import NodeType
from daytonaflow.runner.errors import RunStoreError
from daytonaflow.runner.ownership import owner_alive
from daytonaflow.runner.store import RunStore

if TYPE_CHECKING:
    from daytonaflow.runner.canvas import Canvas
    from daytonaflow.runner.engine import Engine

_log = logging.getLogger("daytonaflow.triggers")

#: When a schedule's next fire time comes after ``after``, given when it was first armed.
NextFire = Callable[[datetime, datetime], "datetime | None"]
#: How long the events done with, and the delivery ids seen (the replay window), are kept.
RETENTION = timedelta(days=7)
#: A queued event whose start fails this often (the database busy each time) is marked failed.
MAX_START_ATTEMPTS = 5
#: The wait before the first retry of a failed start; it doubles with each attempt.
_RETRY_DELAY = 1.0


class Duplicate(Exception):
    """A delivery id seen before: ``event_id`` is the event the first delivery queued."""

    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id


@dataclass(frozen=True)
class FiredTrigger:
    """A run's start from one trigger node's event ``{type, data, timestamp}``; ``record_id`` is
    the queued trigger event it consumes (None: not recorded, e.g. a direct call)."""

    node_id: str
    event: dict[str, Any]
    record_id: str | None = None


class ScheduleBook:
    """The durable next fire time of each schedule trigger of each canvas."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def arm(
        self, canvas_name: str, node_id: str, config: Mapping[str, Any], next_fire: NextFire, now: datetime
    ) -> datetime | None:
        """Arm a schedule at process start; returns its next fire time (in the past: missed while down).

        A schedule seen before with the same configuration keeps its stored fire time; a new or
        changed one starts counting from ``now``.
        """
        fingerprint = json.dumps(config, sort_keys=True, separators=(",", ":"))
        with self.store.transaction():
            state = self.store.schedule_state(canvas_name, node_id)
            if state is not None and state.config == fingerprint:
                return _datetime(state.next_fire_at)
            following = next_fire(now, now)
            self.store.set_schedule_state(
                canvas_name, node_id, fingerprint, now.timestamp(), _epoch(following)
            )
        return following

    def fire_due(
        self,
        canvas_name: str,
        node_id: str,
        next_fire: NextFire,
        event_of: Callable[[datetime], dict[str, Any]],
        now: datetime,
        *,
        max_queued: int | None = None,
    ) -> str | None:
        """If the schedule is due at ``now``, queue ONE event for its due tick and move its next fire
        time past ``now`` (skipping every other missed tick); returns the queued event's id.

        With ``max_queued`` events of the canvas waiting already, the tick is skipped (logged, its
        fire time moved on all the same): a fast schedule of slow runs must not grow the queue
        without bound. The state is read inside the write transaction, so two processes on one
        database never both take the same tick.
        """
        with self.store.transaction():
            state = self.store.schedule_state(canvas_name, node_id)
            if state is None or state.next_fire_at is None or state.next_fire_at > now.timestamp():
                return None
            due = datetime.fromtimestamp(state.next_fire_at, UTC)
            following = next_fire(max(now, due), datetime.fromtimestamp(state.reference_at, UTC))
            self.store.set_schedule_state(
                canvas_name, node_id, state.config, state.reference_at, _epoch(following)
            )
            if max_queued is not None and self.store.count_queued_trigger_events(canvas_name) >= max_queued:
                _log.warning(
                    "canvas %s: schedule %s skipped its tick of %s: %d events are waiting already",
                    canvas_name,
                    node_id,
                    due.isoformat(),
                    max_queued,
                )
                return None
            event_id = uuid.uuid4().hex
            self.store.insert_trigger_event(event_id, canvas_name, node_id, event_of(due))
        return event_id

    def next_fire_at(self, canvas_name: str, node_id: str) -> datetime | None:
        state = self.store.schedule_state(canvas_name, node_id)
        return None if state is None else _datetime(state.next_fire_at)


class TriggerQueue:
    """Starts the queued trigger events of each canvas on ``engine``, at most ``max_concurrent`` at once."""

    def __init__(self, engine: Engine, canvases: Mapping[str, Canvas], *, max_concurrent: int) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.engine = engine
        self.store = engine.store
        self.canvases = dict(canvases)
        self.max_concurrent = max_concurrent
        self._running: dict[str, set[str]] = {name: set() for name in self.canvases}
        self._watchers: set[asyncio.Task[None]] = set()
        self._retries: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, int] = {}
        self._closed = False

    def record(
        self, canvas_name: str, node_id: str, event: dict[str, Any], *, delivery_id: str | None = None
    ) -> str:
        """Queue an event durably (committed when this returns); returns its id.

        Raises ``Duplicate`` (holding the first event's id) for a ``delivery_id`` the node has
        queued before: a replayed request starts nothing.
        """
        return record_event(self.store, canvas_name, node_id, event, delivery_id=delivery_id)

    def prune(self, now: datetime) -> int:
        """Forget the events done with (and the delivery ids seen) more than ``RETENTION`` ago."""
        return self.store.prune_trigger_events((now - RETENTION).timestamp())

    def queued(self, canvas_name: str) -> int:
        return self.store.count_queued_trigger_events(canvas_name)

    def running(self, canvas_name: str) -> set[str]:
        return set(self._running[canvas_name])

    def adopt(self, run_ids: list[str]) -> None:
        """Count runs this engine resumed against their canvas's limit, and watch them finish."""
        for name in self.canvases:
            for run_id in self.store.active_trigger_runs(name):
                if run_id in run_ids:
                    self._watch(name, run_id)

    async def pump(self, canvas_name: str | None = None) -> list[str]:
        """Start queued events while their canvas is under its limit; returns the runs started."""
        started = []
        # No await between reading the queue and inserting the run (Engine.start inserts before it
        # first awaits), so pumps running side by side never take the same event or a slot twice.
        for name in [canvas_name] if canvas_name is not None else list(self.canvases):
            while not self._closed and len(self._running[name]) < self.max_concurrent:
                record = self.store.next_queued_trigger_event(name)
                if record is None:
                    break
                if not _is_trigger(self.canvases[name], record.node_id):
                    _log.warning(
                        "canvas %s: dropped event %s of node %s, no trigger any more",
                        name,
                        record.id,
                        record.node_id,
                    )
                    self.store.drop_trigger_event(record.id)
                    continue
                fired = FiredTrigger(record.node_id, record.event, record.id)
                try:
                    run_id = await self.engine.start(self.canvases[name], fired=fired)
                except Exception as error:
                    if self._keep_for_retry(name, record.id, error):
                        break
                    continue
                self._failures.pop(record.id, None)
                self._watch(name, run_id)
                started.append(run_id)
        return started

    def _keep_for_retry(self, canvas_name: str, event_id: str, error: Exception) -> bool:
        """After a failed start: True to keep the event at the head of the queue and retry it
        later (a busy database, up to ``MAX_START_ATTEMPTS``), False once it is marked failed so
        the events behind it go on (a canvas the event cannot start, or too many attempts)."""
        attempts = self._failures.get(event_id, 0) + 1
        self._failures[event_id] = attempts
        if isinstance(error, RunStoreError | sqlite3.OperationalError) and attempts < MAX_START_ATTEMPTS:
            _log.error(
                "canvas %s: trigger event %s did not start a run (attempt %d, retrying): %s",
                canvas_name,
                event_id,
                attempts,
                error,
            )
            self._retry_later(canvas_name, _RETRY_DELAY * 2 ** (attempts - 1))
            return True
        _log.error("canvas %s: trigger event %s failed, it starts no run: %s", canvas_name, event_id, error)
        try:
            self.store.fail_trigger_event(event_id, str(error) or type(error).__name__)
        except (RunStoreError, sqlite3.OperationalError) as busy:
            # Not even marked: it stays at the head, the next pass tries again.
            _log.error("canvas %s: event %s could not be marked failed: %s", canvas_name, event_id, busy)
            self._retry_later(canvas_name, _RETRY_DELAY * 2 ** min(attempts, 5))
            return True
        self._failures.pop(event_id, None)
        return False

    def _retry_later(self, canvas_name: str, delay: float) -> None:
        if canvas_name in self._retries:
            return

        async def retry() -> None:
            await asyncio.sleep(delay)
            del self._retries[canvas_name]
            await self.pump(canvas_name)

        task = asyncio.create_task(retry())
        self._retries[canvas_name] = task

    async def aclose(self) -> None:
        """Start nothing more; stop watching (the runs stay on disk and resume with the next process)."""
        self._closed = True
        tasks = [*self._watchers, *self._retries.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _watch(self, canvas_name: str, run_id: str) -> None:
        self._running[canvas_name].add(run_id)
        task = asyncio.create_task(self._await_end(canvas_name, run_id))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _await_end(self, canvas_name: str, run_id: str) -> None:
        try:
            await self.engine.wait(run_id)
        except asyncio.CancelledError:
            if self._closed:
                raise
        finally:
            self._running[canvas_name].discard(run_id)
        await self.pump(canvas_name)


def record_event(
    store: RunStore, canvas_name: str, node_id: str, event: dict[str, Any], *, delivery_id: str | None = None
) -> str:
    """Queue an event durably through ``store`` (any connection to the run database); see
    ``TriggerQueue.record``."""
    event_id = uuid.uuid4().hex
    with store.transaction():
        first = store.insert_trigger_event(event_id, canvas_name, node_id, event, delivery_id=delivery_id)
    if first is not None:
        raise Duplicate(first)
    return event_id


def armed_triggers(store: RunStore, canvas_name: str) -> list[dict[str, Any]]:
    """The triggers of ``canvas_name`` that a running ``daytonaflow up`` keeps armed, as JSON
    (``nodeId``, ``component``, ``url`` or ``nextFire``); none when no such process is alive."""
    listed = []
    for record in store.armed_triggers(canvas_name):
        if not owner_alive(record.owner):
            continue
        entry: dict[str, Any] = {"nodeId": record.node_id, "component": record.component}
        if record.url is not None:
            entry["url"] = record.url
        next_fire = _datetime(record.next_fire_at)
        if next_fire is not None:
            entry["nextFire"] = next_fire.isoformat().replace("+00:00", "Z")
        listed.append(entry)
    return listed


def _is_trigger(canvas: Canvas, node_id: str) -> bool:
    return any(node.id == node_id and node.type is NodeType.TRIGGER for node in canvas.spec.nodes)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
