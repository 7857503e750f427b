"""What travels between the client, the workflow and the activities: run options and run snapshots.

A snapshot holds the run's records with every field of runner/store.py's record classes, so
:class:`RunSnapshot` rebuilds the very classes the embedded store returns and the CLI's tables
render a Temporal run as they render a stored one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from daytonaflow.runner.engine import DEFAULT_MAX_NODE_EXECUTIONS
from daytonaflow.runner.store import EventRecord, ExecutionRecord, ResourceRecord, RunRecord

#: Above this, Temporal (which terminates a workflow at 50,000 events) could end a run before its
#: cancel hooks and reclaim have run.
HISTORY_EVENTS_CEILING = 45_000


@dataclass(frozen=True)
class RunOptions:
    """How the workflow drives one run (part of the workflow input)."""

    #: A hook whose worker stopped heartbeating this long ago is taken as lost and run again.
    heartbeat_seconds: float = 10.0
    #: The longest a hook should wait on something outside before handing the wait to the
    #: workflow as a durable timer (``ctx.hook_wait_limit``); None: no limit.
    hook_wait_limit: float | None = 2.0
    max_node_executions: int = DEFAULT_MAX_NODE_EXECUTIONS
    #: How long a component's ``cancel`` hook may take.
    cancel_timeout: float = 30.0
    #: How many lost workers one node execution survives before it fails.
    max_worker_losses: int = 25
    #: The run fails cleanly once its history holds this many events (Temporal terminates a
    #: workflow at 50,000; the run's end, its cancel hooks and reclaim need room after it).
    max_history_events: int = 40_000

    def __post_init__(self) -> None:
        # The workflow runs with these: a value it cannot run with fails the run at once, named.
        if not self.heartbeat_seconds > 0:
            raise ValueError(f"heartbeat_seconds must be above 0, not {self.heartbeat_seconds}")
        if self.hook_wait_limit is not None and not self.hook_wait_limit >= 0:
            raise ValueError(f"hook_wait_limit must be 0 or more, not {self.hook_wait_limit}")
        if not self.cancel_timeout > 0:
            raise ValueError(f"cancel_timeout must be above 0, not {self.cancel_timeout}")
        if self.max_node_executions < 1:
            raise ValueError(f"max_node_executions must be 1 or more, not {self.max_node_executions}")
        if self.max_worker_losses < 0:
            raise ValueError(f"max_worker_losses must be 0 or more, not {self.max_worker_losses}")
        if not 1 <= self.max_history_events <= HISTORY_EVENTS_CEILING:
            raise ValueError(
                f"max_history_events must be between 1 and {HISTORY_EVENTS_CEILING},"
                f" not {self.max_history_events}"
            )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, document: dict[str, Any] | None) -> RunOptions:
        """The options of a workflow input; fields this version does not know (a newer client's) are
        left out rather than failing the run."""
        known = {option.name for option in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in (document or {}).items() if key in known})


def record_json(record: RunRecord | ExecutionRecord | EventRecord | ResourceRecord) -> dict[str, Any]:
    """Every field of a record, JSON-able (an execution's inputs as a list)."""
    document = dataclasses.asdict(record)
    if isinstance(record, ExecutionRecord):
        document["inputs"] = list(record.inputs)
    return document


def execution_from_json(document: dict[str, Any]) -> ExecutionRecord:
    return ExecutionRecord(**{**document, "inputs": tuple(document.get("inputs", ()))})


class RunSnapshot:
    """One Temporal run as the embedded store would answer for it (the read side ``runs show`` uses).

    The methods take the run id like :class:`~daytonaflow.runner.store.RunStore`'s; a snapshot
    holds one run, so they answer for that run whatever the id.
    """

    def __init__(
        self,
        record: RunRecord,
        executions: list[ExecutionRecord],
        events: list[EventRecord],
        resources: list[ResourceRecord],
    ) -> None:
        self.record = record
        self._executions = executions
        self._events = events
        self._resources = resources

    @classmethod
    def from_json(cls, document: dict[str, Any], *, record: RunRecord | None = None) -> RunSnapshot:
        """The snapshot the workflow's ``daytonaflow.snapshot`` query returns; ``record`` overrides
        the run's own (the client knows the final status before the workflow's state says it)."""
        return cls(
            record if record is not None else RunRecord(**document["run"]),
            [execution_from_json(item) for item in document.get("executions", [])],
            [EventRecord(**item) for item in document.get("events", [])],
            [ResourceRecord(**item) for item in document.get("resources", [])],
        )

    def execution_counts(self, run_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for execution in self._executions:
            counts[execution.status] = counts.get(execution.status, 0) + 1
        return counts

    def count_executions(self, run_id: str) -> int:
        return len(self._executions)

    def count_events(self, run_id: str) -> int:
        return len(self._events)

    def executions(self, run_id: str, *, offset: int = 0, limit: int | None = None) -> list[ExecutionRecord]:
        return _page(self._executions, offset, limit)

    def events(self, run_id: str, *, offset: int = 0, limit: int | None = None) -> list[EventRecord]:
        return _page(self._events, offset, limit)

    def iter_executions(self, run_id: str) -> Iterator[ExecutionRecord]:
        return iter(list(self._executions))

    def iter_events(self, run_id: str) -> Iterator[EventRecord]:
        return iter(list(self._events))

    def resources(self, run_id: str) -> list[ResourceRecord]:
        return list(self._resources)


def _page(items: list[Any], offset: int, limit: int | None) -> list[Any]:
    return items[offset:] if limit is None else items[offset : offset + limit]
