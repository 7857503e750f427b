"""The run database: runs, node executions, events, metadata, scheduled checks and resources in SQLite.

Every state change the engine makes is one transaction, so a process killed at any point leaves the
database at a step it can resume from. The file is marked with an ``application_id`` and a schema
version so a foreign or newer database is refused instead of being misread.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from daytonaflow.runner.errors import RunNotFoundError, RunStoreError

#: "DfLw": marks a SQLite file as a daytonaflow run database.
APPLICATION_ID = 0x44664C77
SCHEMA_VERSION = 1
DB_ENV = "DAYTONAFLOW_DB"
#: Rows per query when a run's executions or events are read through in order.
_BATCH = 500

_SCHEMA = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    canvas_name TEXT NOT NULL,
    canvas TEXT NOT NULL,
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    keep_resources INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    finished_at REAL,
    resume_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_status ON runs(status);
CREATE TABLE executions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    run_id TEXT NOT NULL REFERENCES runs(id),
    node_id TEXT NOT NULL,
    node_name TEXT NOT NULL,
    component TEXT NOT NULL,
    trigger_event_id TEXT,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    channel TEXT,
    output_event_id TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    inputs TEXT NOT NULL DEFAULT '[]',
    inputs_seen INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX executions_by_run ON executions(run_id, status);
CREATE INDEX executions_by_run_seq ON executions(run_id, seq);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    run_id TEXT NOT NULL REFERENCES runs(id),
    execution_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    parent_event_id TEXT,
    event TEXT NOT NULL,
    created_at REAL NOT NULL,
    config TEXT
);
CREATE INDEX events_by_run ON events(run_id);
CREATE TABLE checks (
    execution_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    due_at REAL NOT NULL
);
CREATE TABLE resources (
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    component TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    acquired_at REAL NOT NULL,
    PRIMARY KEY (run_id, kind, resource_id)
);
"""

#: What ``daytonaflow up`` keeps for the triggers it arms; added to schema 1 (older versions never
#: read these tables, so no version bump is needed). A schedule's next fire time, and every
#: trigger event accepted (``queued`` until the run it starts is inserted, then ``started``).
_TRIGGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS trigger_schedules (
    canvas_name TEXT NOT NULL,
    node_id TEXT NOT NULL,
    config TEXT NOT NULL,
    reference_at REAL NOT NULL,
    next_fire_at REAL,
    PRIMARY KEY (canvas_name, node_id)
);
CREATE TABLE IF NOT EXISTS trigger_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    canvas_name TEXT NOT NULL,
    node_id TEXT NOT NULL,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    run_id TEXT,
    received_at REAL NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS trigger_events_by_canvas ON trigger_events(canvas_name, status, seq);
CREATE TABLE IF NOT EXISTS armed_triggers (
    canvas_name TEXT NOT NULL,
    node_id TEXT NOT NULL,
    component TEXT NOT NULL,
    owner TEXT NOT NULL,
    url TEXT,
    PRIMARY KEY (canvas_name, node_id)
);
CREATE TABLE IF NOT EXISTS trigger_deliveries (
    canvas_name TEXT NOT NULL,
    node_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (canvas_name, node_id, delivery_id)
);
"""
_TRIGGER_TABLES = {"trigger_schedules", "trigger_events", "armed_triggers", "trigger_deliveries"}
TRIGGER_QUEUED = "queued"
TRIGGER_STARTED = "started"
#: The event's node is no trigger of the canvas any more (the canvas changed while it waited).
TRIGGER_DROPPED = "dropped"
#: The event cannot start a run (its ``error`` says why); the queue went on without it.
TRIGGER_FAILED = "failed"

#: Run states. ``running`` and ``cancelling`` are unfinished; the others are final.
RUN_RUNNING = "running"
RUN_CANCELLING = "cancelling"
RUN_SUCCEEDED = "succeeded"
RUN_FAILED = "failed"
RUN_CANCELLED = "cancelled"
UNFINISHED_RUN_STATES = (RUN_RUNNING, RUN_CANCELLING)

#: Execution states. ``pending``/``running`` re-run ``execute`` on resume; ``waiting``/``checking``
#: re-arm the scheduled check; the others are final.
EXEC_PENDING = "pending"
EXEC_RUNNING = "running"
EXEC_WAITING = "waiting"
EXEC_CHECKING = "checking"
#: A joining node (a merge) between inputs: open for more, no hook running, no check due.
EXEC_GATHERING = "gathering"
EXEC_EMITTED = "emitted"
EXEC_COMPLETED = "completed"
EXEC_FAILED = "failed"
EXEC_CANCELLED = "cancelled"
ACTIVE_EXEC_STATES = (EXEC_PENDING, EXEC_RUNNING, EXEC_WAITING, EXEC_CHECKING, EXEC_GATHERING)

#: Resource states: ``held`` until a node releases it or the run's end reclaims or keeps it.
RES_HELD = "held"
RES_RELEASED = "released"
RES_RECLAIMED = "reclaimed"
RES_KEPT = "kept"
RES_RECLAIM_FAILED = "reclaim_failed"


def default_db_path(environ: dict[str, str] | None = None) -> Path:
    """``$DAYTONAFLOW_DB``, else ``$XDG_DATA_HOME/daytonaflow/runs.db`` (``~/.local/share`` by default)."""
    env = os.environ if environ is None else environ
    if env.get(DB_ENV):
        return Path(env[DB_ENV]).expanduser()
    data_home = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "daytonaflow" / "runs.db"


@dataclass(frozen=True)
class ScheduleRecord:
    """A schedule trigger's durable state: its configuration (to see it change), when it was
    first armed (intervals count from it) and its next fire time (epoch seconds)."""

    canvas_name: str
    node_id: str
    config: str
    reference_at: float
    next_fire_at: float | None


@dataclass(frozen=True)
class TriggerEventRecord:
    """An event a trigger received (a webhook request, a schedule's tick) and the run it started."""

    id: str
    canvas_name: str
    node_id: str
    event: dict[str, Any]
    status: str
    run_id: str | None
    received_at: float
    error: str | None = None


@dataclass(frozen=True)
class ArmedTriggerRecord:
    """A trigger a ``daytonaflow up`` process (``owner``) keeps armed: a webhook's URL, a
    schedule's next fire time (epoch seconds)."""

    canvas_name: str
    node_id: str
    component: str
    owner: str
    url: str | None
    next_fire_at: float | None


@dataclass(frozen=True)
class RunRecord:
    id: str
    canvas_name: str
    canvas: dict[str, Any]
    input: Any
    status: str
    keep_resources: bool
    owner: str | None
    error: str | None
    created_at: float
    finished_at: float | None
    #: How many processes took the run over after a crash and died before it finished.
    resume_attempts: int = 0

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED_RUN_STATES

    def to_json(self) -> dict[str, Any]:
        """The run's own fields as JSON (``runs --json``, the UI's history)."""
        return {
            "id": self.id,
            "canvas": self.canvas_name,
            "status": self.status,
            "error": self.error,
            "input": self.input,
            "keepResources": self.keep_resources,
            "createdAt": self.created_at,
            "finishedAt": self.finished_at,
        }


@dataclass(frozen=True)
class ExecutionRecord:
    id: str
    run_id: str
    node_id: str
    node_name: str
    component: str
    trigger_event_id: str | None
    status: str
    metadata: dict[str, Any]
    channel: str | None
    output_event_id: str | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    #: The ids of the events that reached it, oldest first (one, but for a joining node).
    inputs: tuple[str, ...] = ()
    #: How many of ``inputs`` its hook has been given (a joining node's hook runs once per input).
    inputs_seen: int = 0

    def to_json(self, *, metadata: bool = True) -> dict[str, Any]:
        """As JSON; ``metadata`` (the component's private state) only where the caller shows it."""
        document: dict[str, Any] = {
            "id": self.id,
            "node": self.node_id,
            "nodeName": self.node_name,
            "component": self.component,
            "status": self.status,
            "channel": self.channel,
            "error": self.error,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "outputEventId": self.output_event_id,
        }
        if metadata:
            document["metadata"] = self.metadata
        return document


@dataclass(frozen=True)
class EventRecord:
    id: str
    run_id: str
    execution_id: str
    node_id: str
    channel: str
    parent_event_id: str | None
    event: dict[str, Any]
    created_at: float
    #: The resolved configuration of the execution that emitted it (``$["Node"].config``).
    config: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "node": self.node_id,
            "channel": self.channel,
            "parent": self.parent_event_id,
            "event": self.event,
        }


@dataclass(frozen=True)
class ResourceRecord:
    run_id: str
    kind: str
    resource_id: str
    node_id: str
    component: str
    execution_id: str
    state: str
    error: str | None
    acquired_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.resource_id,
            "node": self.node_id,
            "state": self.state,
            "error": self.error,
        }


@dataclass(frozen=True)
class CheckRecord:
    execution_id: str
    run_id: str
    due_at: float


class RunReader(Protocol):
    """The reads that show one run (its summary, ``runs show`` and its JSON document).

    The run database answers them, and so does a run of another engine (a Temporal run's snapshot):
    both are drawn by the same tables and written as the same documents.
    """

    def execution_counts(self, run_id: str) -> Mapping[str, int]: ...

    def count_events(self, run_id: str) -> int: ...

    def executions(
        self, run_id: str, *, offset: int = 0, limit: int | None = None
    ) -> Sequence[ExecutionRecord]: ...

    def events(self, run_id: str, *, offset: int = 0, limit: int | None = None) -> Sequence[EventRecord]: ...

    def iter_executions(self, run_id: str) -> Iterable[ExecutionRecord]: ...

    def iter_events(self, run_id: str) -> Iterable[EventRecord]: ...

    def resources(self, run_id: str) -> Sequence[ResourceRecord]: ...


class RunStore:
    """One connection to the run database; use from one thread (the engine's event loop)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        """``busy_timeout``: how long a statement waits for another connection's write lock."""
        self.path = Path(path)
        self._depth = 0
        self._db = _open(self.path, busy_timeout)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic step; nested uses join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._db.rollback()
            raise
        self._depth = 0
        self._execute("COMMIT")

    # --- runs -------------------------------------------------------------------------------

    def insert_run(
        self, run_id: str, canvas: dict[str, Any], run_input: Any, *, keep_resources: bool, owner: str
    ) -> None:
        self._execute(
            "INSERT INTO runs (id, canvas_name, canvas, input, status, keep_resources, owner, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                str(canvas.get("metadata", {}).get("name", "")),
                _dumps(canvas),
                _dumps(run_input),
                RUN_RUNNING,
                int(keep_resources),
                owner,
                time.time(),
            ),
        )

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._rows("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise RunNotFoundError(f'no run "{run_id}" in {self.path}')
        return _run(rows[0])

    def find_run(self, prefix: str) -> RunRecord:
        """The run whose id is ``prefix`` or starts with it (unambiguously)."""
        rows = self._rows(
            "SELECT * FROM runs WHERE id = ? OR id LIKE ? ESCAPE '\\' LIMIT 3",
            (prefix, _like_prefix(prefix)),
        )
        exact = [row for row in rows if row["id"] == prefix]
        if exact:
            return _run(exact[0])
        if not rows:
            raise RunNotFoundError(f'no run "{prefix}" in {self.path}')
        if len(rows) > 1:
            raise RunNotFoundError(f'"{prefix}" matches several runs; give more of the id')
        return _run(rows[0])

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._rows("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,))
        return [_run(row) for row in rows]

    def unfinished_runs(self) -> list[RunRecord]:
        rows = self._rows(
            "SELECT * FROM runs WHERE status IN (?, ?) ORDER BY created_at", UNFINISHED_RUN_STATES
        )
        return [_run(row) for row in rows]

    def claim_run(self, run_id: str, expected_owner: str | None, owner: str) -> bool:
        """Take ownership of a run if nobody else took it since ``expected_owner`` was read."""
        cursor = self._execute(
            "UPDATE runs SET owner = ? WHERE id = ? AND owner IS ?", (owner, run_id, expected_owner)
        )
        return cursor.rowcount == 1

    def set_run_status(self, run_id: str, status: str, *, error: str | None = None) -> None:
        finished_at = None if status in UNFINISHED_RUN_STATES else time.time()
        self._execute(
            "UPDATE runs SET status = ?, error = COALESCE(?, error), finished_at = ? WHERE id = ?",
            (status, error, finished_at, run_id),
        )

    def count_resume_attempt(self, run_id: str) -> None:
        """Record that this process is resuming the run (committed before any of it runs again)."""
        self._execute("UPDATE runs SET resume_attempts = resume_attempts + 1 WHERE id = ?", (run_id,))

    def clear_resume_attempts(self, run_id: str) -> None:
        """The process that resumed the run leaves it on purpose: that attempt did not crash."""
        self._execute("UPDATE runs SET resume_attempts = 0 WHERE id = ?", (run_id,))

    def set_run_error(self, run_id: str, error: str) -> None:
        """Record why a still-running run is failing, so a resume after a crash finishes it as failed."""
        self._execute("UPDATE runs SET error = ? WHERE id = ?", (error, run_id))

    # --- executions ---------------------------------------------------------------------------

    def insert_execution(
        self,
        execution_id: str,
        run_id: str,
        node_id: str,
        node_name: str,
        component: str,
        trigger_event_id: str | None,
        status: str = EXEC_PENDING,
    ) -> None:
        inputs = _dumps([trigger_event_id] if trigger_event_id is not None else [])
        self._execute(
            "INSERT INTO executions (id, run_id, node_id, node_name, component, trigger_event_id, status,"
            " created_at, inputs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                execution_id,
                run_id,
                node_id,
                node_name,
                component,
                trigger_event_id,
                status,
                time.time(),
                inputs,
            ),
        )

    def add_input(self, execution_id: str, inputs: list[str]) -> None:
        """Record the inputs a joining execution has received so far (``inputs``, oldest first)."""
        self._execute("UPDATE executions SET inputs = ? WHERE id = ?", (_dumps(inputs), execution_id))

    def set_inputs_seen(self, execution_id: str, seen: int, status: str) -> None:
        """After a joining execution's hook: how many inputs it has been given, and its state."""
        self._execute(
            "UPDATE executions SET inputs_seen = ?, status = ? WHERE id = ?", (seen, status, execution_id)
        )

    def count_executions(self, run_id: str) -> int:
        return int(self._rows("SELECT count(*) AS n FROM executions WHERE run_id = ?", (run_id,))[0]["n"])

    def executions(self, run_id: str, *, offset: int = 0, limit: int | None = None) -> list[ExecutionRecord]:
        """The run's executions in the order they were created; ``offset``/``limit`` take one page."""
        rows = self._rows(
            "SELECT * FROM executions WHERE run_id = ? ORDER BY seq LIMIT ? OFFSET ?",
            (run_id, -1 if limit is None else limit, offset),
        )
        return [_execution(row) for row in rows]

    def iter_executions(self, run_id: str, *, batch: int = _BATCH) -> Iterator[ExecutionRecord]:
        """Every execution of the run, read ``batch`` rows at a time (a huge run is never all in memory)."""
        for row in self._batches("executions", run_id, batch):
            yield _execution(row)

    def execution_counts(self, run_id: str) -> dict[str, int]:
        """How many of the run's executions are in each state."""
        rows = self._rows(
            "SELECT status, count(*) AS n FROM executions WHERE run_id = ? GROUP BY status", (run_id,)
        )
        return {row["status"]: row["n"] for row in rows}

    def mark_started(self, execution_id: str, status: str) -> None:
        self._execute(
            "UPDATE executions SET status = ?, started_at = COALESCE(started_at, ?) WHERE id = ?",
            (status, time.time(), execution_id),
        )

    def finish_execution(
        self,
        execution_id: str,
        status: str,
        *,
        channel: str | None = None,
        output_event_id: str | None = None,
        error: str | None = None,
    ) -> None:
        with self.transaction():
            self._execute(
                "UPDATE executions SET status = ?, channel = ?, output_event_id = ?, error = ?,"
                " finished_at = ? WHERE id = ?",
                (status, channel, output_event_id, error, time.time(), execution_id),
            )
            self._execute("DELETE FROM checks WHERE execution_id = ?", (execution_id,))

    def set_metadata(self, execution_id: str, metadata: dict[str, Any]) -> None:
        self._execute("UPDATE executions SET metadata = ? WHERE id = ?", (_dumps(metadata), execution_id))

    # --- events and checks ---------------------------------------------------------------------

    def insert_event(
        self,
        event_id: str,
        run_id: str,
        execution_id: str,
        node_id: str,
        channel: str,
        parent_event_id: str | None,
        event: dict[str, Any],
        config: dict[str, Any] | None = None,
    ) -> None:
        self._execute(
            "INSERT INTO events (id, run_id, execution_id, node_id, channel, parent_event_id, event,"
            " created_at, config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                run_id,
                execution_id,
                node_id,
                channel,
                parent_event_id,
                _dumps(event),
                time.time(),
                None if config is None else _dumps(config),
            ),
        )

    def events(self, run_id: str, *, offset: int = 0, limit: int | None = None) -> list[EventRecord]:
        """The run's events in the order they were emitted; ``offset``/``limit`` take one page."""
        rows = self._rows(
            "SELECT * FROM events WHERE run_id = ? ORDER BY seq LIMIT ? OFFSET ?",
            (run_id, -1 if limit is None else limit, offset),
        )
        return [_event(row) for row in rows]

    def iter_events(self, run_id: str, *, batch: int = _BATCH) -> Iterator[EventRecord]:
        """Every event of the run, read ``batch`` rows at a time."""
        for row in self._batches("events", run_id, batch):
            yield _event(row)

    def count_events(self, run_id: str) -> int:
        return int(self._rows("SELECT count(*) AS n FROM events WHERE run_id = ?", (run_id,))[0]["n"])

    def schedule_check(self, execution_id: str, run_id: str, due_at: float) -> None:
        with self.transaction():
            self._execute(
                "INSERT OR REPLACE INTO checks (execution_id, run_id, due_at) VALUES (?, ?, ?)",
                (execution_id, run_id, due_at),
            )
            self._execute("UPDATE executions SET status = ? WHERE id = ?", (EXEC_WAITING, execution_id))

    def checks(self, run_id: str) -> list[CheckRecord]:
        rows = self._rows("SELECT * FROM checks WHERE run_id = ?", (run_id,))
        return [CheckRecord(row["execution_id"], row["run_id"], row["due_at"]) for row in rows]

    # --- resources ---------------------------------------------------------------------------

    def acquire_resource(
        self, run_id: str, kind: str, resource_id: str, node_id: str, component: str, execution_id: str
    ) -> None:
        self._execute(
            "INSERT INTO resources (run_id, kind, resource_id, node_id, component, execution_id, state,"
            " acquired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (run_id, kind, resource_id) DO UPDATE SET state = excluded.state, error = NULL",
            (run_id, kind, resource_id, node_id, component, execution_id, RES_HELD, time.time()),
        )

    def set_resource_state(
        self, run_id: str, kind: str, resource_id: str, state: str, error: str | None = None
    ) -> None:
        self._execute(
            "UPDATE resources SET state = ?, error = ? WHERE run_id = ? AND kind = ? AND resource_id = ?",
            (state, error, run_id, kind, resource_id),
        )

    def resources(self, run_id: str) -> list[ResourceRecord]:
        rows = self._rows("SELECT * FROM resources WHERE run_id = ? ORDER BY acquired_at", (run_id,))
        return [ResourceRecord(**dict(row)) for row in rows]

    # --- triggers (daytonaflow up) ------------------------------------------------------------

    def schedule_state(self, canvas_name: str, node_id: str) -> ScheduleRecord | None:
        rows = self._rows(
            "SELECT * FROM trigger_schedules WHERE canvas_name = ? AND node_id = ?", (canvas_name, node_id)
        )
        return ScheduleRecord(**dict(rows[0])) if rows else None

    def set_schedule_state(
        self, canvas_name: str, node_id: str, config: str, reference_at: float, next_fire_at: float | None
    ) -> None:
        self._execute(
            "INSERT OR REPLACE INTO trigger_schedules"
            " (canvas_name, node_id, config, reference_at, next_fire_at) VALUES (?, ?, ?, ?, ?)",
            (canvas_name, node_id, config, reference_at, next_fire_at),
        )

    def insert_trigger_event(
        self,
        event_id: str,
        canvas_name: str,
        node_id: str,
        event: dict[str, Any],
        *,
        delivery_id: str | None = None,
    ) -> str | None:
        """Queue an event; with a ``delivery_id`` seen before for the node, insert nothing and
        return the event that delivery queued (a replay)."""
        now = time.time()
        if delivery_id is not None:
            cursor = self._execute(
                "INSERT OR IGNORE INTO trigger_deliveries"
                " (canvas_name, node_id, delivery_id, event_id, received_at) VALUES (?, ?, ?, ?, ?)",
                (canvas_name, node_id, delivery_id, event_id, now),
            )
            if cursor.rowcount != 1:
                rows = self._rows(
                    "SELECT event_id FROM trigger_deliveries"
                    " WHERE canvas_name = ? AND node_id = ? AND delivery_id = ?",
                    (canvas_name, node_id, delivery_id),
                )
                return str(rows[0][0])
        self._execute(
            "INSERT INTO trigger_events (id, canvas_name, node_id, event, status, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, canvas_name, node_id, _dumps(event), TRIGGER_QUEUED, now),
        )
        return None

    def next_queued_trigger_event(self, canvas_name: str) -> TriggerEventRecord | None:
        """The oldest queued event of ``canvas_name`` (read alone: the queue may hold many)."""
        rows = self._rows(
            "SELECT * FROM trigger_events WHERE canvas_name = ? AND status = ? ORDER BY seq LIMIT 1",
            (canvas_name, TRIGGER_QUEUED),
        )
        return _trigger_event(rows[0]) if rows else None

    def fail_trigger_event(self, event_id: str, error: str) -> None:
        self._execute(
            "UPDATE trigger_events SET status = ?, error = ? WHERE id = ? AND status = ?",
            (TRIGGER_FAILED, error, event_id, TRIGGER_QUEUED),
        )

    def prune_trigger_events(self, before: float) -> int:
        """Forget the events received before ``before`` that are done with (dropped, failed, or
        started a run that has finished) and the delivery ids seen before it; returns how many
        events went. Queued events and those of unfinished runs stay whatever their age."""
        unfinished = ", ".join("?" for _ in UNFINISHED_RUN_STATES)
        with self.transaction():
            cursor = self._execute(
                "DELETE FROM trigger_events WHERE received_at < ? AND (status IN (?, ?) OR (status = ?"
                " AND NOT EXISTS (SELECT 1 FROM runs r"
                f" WHERE r.id = run_id AND r.status IN ({unfinished}))))",
                (before, TRIGGER_DROPPED, TRIGGER_FAILED, TRIGGER_STARTED, *UNFINISHED_RUN_STATES),
            )
            self._execute("DELETE FROM trigger_deliveries WHERE received_at < ?", (before,))
        return int(cursor.rowcount)

    def start_trigger_event(self, event_id: str, run_id: str) -> None:
        cursor = self._execute(
            "UPDATE trigger_events SET status = ?, run_id = ? WHERE id = ? AND status = ?",
            (TRIGGER_STARTED, run_id, event_id, TRIGGER_QUEUED),
        )
        if cursor.rowcount != 1:
            # Rolls the run's insert back with it: an event starts one run, never two.
            raise RunStoreError(f'trigger event "{event_id}" is not queued (it started a run already)')

    def drop_trigger_event(self, event_id: str) -> None:
        self._execute(
            "UPDATE trigger_events SET status = ? WHERE id = ? AND status = ?",
            (TRIGGER_DROPPED, event_id, TRIGGER_QUEUED),
        )

    def trigger_events(self, canvas_name: str, *, status: str | None = None) -> list[TriggerEventRecord]:
        sql = "SELECT * FROM trigger_events WHERE canvas_name = ?"
        parameters: tuple[Any, ...] = (canvas_name,)
        if status is not None:
            sql += " AND status = ?"
            parameters += (status,)
        return [_trigger_event(row) for row in self._rows(sql + " ORDER BY seq", parameters)]

    def count_queued_trigger_events(self, canvas_name: str) -> int:
        rows = self._rows(
            "SELECT count(*) FROM trigger_events WHERE canvas_name = ? AND status = ?",
            (canvas_name, TRIGGER_QUEUED),
        )
        return int(rows[0][0])

    def active_trigger_runs(self, canvas_name: str) -> list[str]:
        """The unfinished runs that trigger events of ``canvas_name`` started."""
        rows = self._rows(
            "SELECT t.run_id FROM trigger_events t JOIN runs r ON r.id = t.run_id"
            f" WHERE t.canvas_name = ? AND r.status IN ({', '.join('?' for _ in UNFINISHED_RUN_STATES)})"
            " ORDER BY t.seq",
            (canvas_name, *UNFINISHED_RUN_STATES),
        )
        return [row[0] for row in rows]

    def set_armed_triggers(
        self, owner: str, canvas_name: str, triggers: Sequence[tuple[str, str, str | None]]
    ) -> None:
        """Record that ``owner`` keeps ``triggers`` (node id, component, URL) of a canvas armed."""
        with self.transaction():
            self._execute("DELETE FROM armed_triggers WHERE canvas_name = ?", (canvas_name,))
            for node_id, component, url in triggers:
                self._execute(
                    "INSERT INTO armed_triggers (canvas_name, node_id, component, owner, url)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (canvas_name, node_id, component, owner, url),
                )

    def clear_armed_triggers(self, owner: str) -> None:
        self._execute("DELETE FROM armed_triggers WHERE owner = ?", (owner,))

    def armed_triggers(self, canvas_name: str) -> list[ArmedTriggerRecord]:
        rows = self._rows(
            "SELECT a.canvas_name, a.node_id, a.component, a.owner, a.url, s.next_fire_at"
            " FROM armed_triggers a LEFT JOIN trigger_schedules s"
            " ON s.canvas_name = a.canvas_name AND s.node_id = a.node_id"
            " WHERE a.canvas_name = ? ORDER BY a.rowid",
            (canvas_name,),
        )
        return [ArmedTriggerRecord(**dict(row)) for row in rows]

    # --- integrity ---------------------------------------------------------------------------

    def check(self) -> list[str]:
        """SQLite's full integrity check of the file: the problems it finds, none when it is sound.

        Opening checks nothing beyond the header (a check reads the whole file, which grows with
        the history): damage met later fails the statement that meets it, naming the file.
        """
        try:
            problems = [str(row[0]) for row in self._db.execute("PRAGMA integrity_check").fetchall()]
        except sqlite3.DatabaseError as error:
            # Damage bad enough to stop the check where it starts is itself the finding.
            return [str(error)]
        return [] if problems == ["ok"] else problems

    # --- internals ---------------------------------------------------------------------------

    def _rows(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """All rows of a query; damage met while stepping through them is reported like any other."""
        cursor = self._execute(sql, parameters)
        try:
            rows: list[sqlite3.Row] = cursor.fetchall()
        except sqlite3.DatabaseError as error:
            if not _is_damage(error):
                raise
            raise self._damaged(error) from error
        return rows

    def _batches(self, table: str, run_id: str, batch: int) -> Iterator[sqlite3.Row]:
        """A run's rows of ``table`` in ``seq`` order, one page of ``batch`` per query (keyset paging:
        each page starts from the index, so the last page costs what the first does)."""
        after = 0
        while True:
            rows = self._rows(
                f"SELECT * FROM {table} WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (run_id, after, batch),
            )
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1]["seq"]

    def _damaged(self, error: sqlite3.DatabaseError) -> RunStoreError:
        return RunStoreError(f"{self.path}: the run database is damaged ({error})")

    def _execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, parameters)
        except sqlite3.DatabaseError as error:
            if not _is_damage(error):
                raise
            raise self._damaged(error) from error


def _open(path: Path, busy_timeout: float) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
    except sqlite3.Error as error:
        raise RunStoreError(f"{path}: cannot open the run database ({error})") from error
    db.row_factory = sqlite3.Row
    try:
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if application_id == 0 and tables == 0:
            _create(db)
        elif application_id != APPLICATION_ID:
            raise RunStoreError(
                f"{path} is not a daytonaflow run database (a SQLite file from another application);"
                " pass another path with --db or DAYTONAFLOW_DB"
            )
        elif version > SCHEMA_VERSION:
            raise RunStoreError(
                f"{path} was written by a newer daytonaflow"
                f" (schema {version}, this one knows {SCHEMA_VERSION})"
            )
        elif version < SCHEMA_VERSION:
            raise RunStoreError(f"{path} has an unknown schema version {version}")
        # The trigger tables first: a column added to one of them needs the table there.
        _add_trigger_tables(db)
        _add_missing_columns(db)
        _add_missing_indexes(db)
        db.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a killed process (the case the runner promises); only power
        # loss may drop the last commits.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
    except RunStoreError:
        db.close()
        raise
    except sqlite3.DatabaseError as error:
        db.close()
        # Only now is the file read through: what the check finds says more than the first error.
        found = [problem for problem in _quick_check(path) if problem != str(error)]
        detail = "; ".join([str(error), *found[:3]])
        raise RunStoreError(
            f"{path} is not a usable daytonaflow run database ({detail}); move it aside or pass --db"
        ) from error
    return db


def _quick_check(path: Path) -> list[str]:
    """SQLite's quick check of a file that failed to open: its problems, or none it could name."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=5.0)) as db:
            problems = [str(row[0]) for row in db.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as error:
        return [str(error)]
    return [] if problems == ["ok"] else problems


def _create(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        # Re-check inside the write lock: another process may have created it meanwhile.
        if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise


#: Columns added to schema 1 after its release, with their definitions. Older daytonaflow versions
#: read such a database unchanged (they select columns by name), so no version bump is needed.
_ADDED_COLUMNS = {
    "runs": {"resume_attempts": "INTEGER NOT NULL DEFAULT 0"},
    "executions": {"inputs": "TEXT NOT NULL DEFAULT '[]'", "inputs_seen": "INTEGER NOT NULL DEFAULT 0"},
    "events": {"config": "TEXT"},
    "trigger_events": {"error": "TEXT"},
}


def _add_missing_columns(db: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()}
        for name, definition in columns.items():
            if name not in present:
                try:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
                except sqlite3.OperationalError as error:
                    # Another process added it between our look and our ALTER.
                    if "duplicate column" not in str(error):
                        raise


#: Indexes added to schema 1 after its release: paging a run's nodes in order reads only that page.
_ADDED_INDEXES = {"executions_by_run_seq": "executions(run_id, seq)"}


def _add_missing_indexes(db: sqlite3.Connection) -> None:
    present = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    for name, definition in _ADDED_INDEXES.items():
        if name not in present:
            db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")


def _add_trigger_tables(db: sqlite3.Connection) -> None:
    present = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not _TRIGGER_TABLES.issubset(present):
        db.executescript(_TRIGGER_SCHEMA)


def _is_damage(error: sqlite3.DatabaseError) -> bool:
    """Whether the file is at fault; a broken constraint or a lock is the program's or another's."""
    if isinstance(error, sqlite3.IntegrityError | sqlite3.OperationalError):
        return _is_corruption(error)
    return True


def _is_corruption(error: sqlite3.DatabaseError) -> bool:
    text = str(error).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        canvas_name=row["canvas_name"],
        canvas=json.loads(row["canvas"]),
        input=json.loads(row["input"]),
        status=row["status"],
        keep_resources=bool(row["keep_resources"]),
        owner=row["owner"],
        error=row["error"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        resume_attempts=row["resume_attempts"],
    )


def _execution(row: sqlite3.Row) -> ExecutionRecord:
    return ExecutionRecord(
        id=row["id"],
        run_id=row["run_id"],
        node_id=row["node_id"],
        node_name=row["node_name"],
        component=row["component"],
        trigger_event_id=row["trigger_event_id"],
        status=row["status"],
        metadata=json.loads(row["metadata"]),
        channel=row["channel"],
        output_event_id=row["output_event_id"],
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        inputs=tuple(json.loads(row["inputs"])),
        inputs_seen=row["inputs_seen"],
    )


def _trigger_event(row: sqlite3.Row) -> TriggerEventRecord:
    return TriggerEventRecord(
        id=row["id"],
        canvas_name=row["canvas_name"],
        node_id=row["node_id"],
        event=json.loads(row["event"]),
        status=row["status"],
        run_id=row["run_id"],
        received_at=row["received_at"],
        error=row["error"],
    )


def _event(row: sqlite3.Row) -> EventRecord:
    return EventRecord(
        id=row["id"],
        run_id=row["run_id"],
        execution_id=row["execution_id"],
        node_id=row["node_id"],
        channel=row["channel"],
        parent_event_id=row["parent_event_id"],
        event=json.loads(row["event"]),
        created_at=row["created_at"],
        config=None if row["config"] is None else json.loads(row["config"]),
    )
