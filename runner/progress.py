"""What the engine tells observers while runs go on (the CLI's live view and ``--json`` stream)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

RUN_STARTED = "run.started"
RUN_RESUMED = "run.resumed"
RUN_FINISHED = "run.finished"
NODE_STARTED = "node.started"
NODE_WAITING = "node.waiting"
#: A piece of a running node's output (``text``), as it comes; not persisted.
NODE_OUTPUT = "node.output"
NODE_EMITTED = "node.emitted"
NODE_COMPLETED = "node.completed"
NODE_FAILED = "node.failed"
NODE_CANCELLED = "node.cancelled"
RESOURCE_RECLAIMED = "resource.reclaimed"
RESOURCE_KEPT = "resource.kept"
RESOURCE_RECLAIM_FAILED = "resource.reclaim_failed"


@dataclass(frozen=True)
class RunUpdate:
    """One step of a run; fields that do not apply to ``kind`` are None."""

    kind: str
    run_id: str
    canvas: str = ""
    node_id: str | None = None
    node_name: str | None = None
    component: str | None = None
    execution_id: str | None = None
    status: str | None = None
    channel: str | None = None
    #: Seconds since the node's execution started (node updates) or the run started (run.finished).
    duration: float | None = None
    #: The emitted event ``{type, data, timestamp}`` (node.emitted).
    event: dict[str, Any] | None = None
    error: str | None = None
    resource: str | None = None
    #: A piece of output (node.output).
    text: str | None = None
    timestamp: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


Observer = Callable[[RunUpdate], None]
