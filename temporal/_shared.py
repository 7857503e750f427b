"""Names and small helpers the workflow, the activities and the client share (no Temporal imports)."""

from __future__ import annotations

from typing import Any

from daytonaflow.expressions import ChainEntry

WORKFLOW_NAME = "daytonaflow.canvas"
WORKFLOW_ID_PREFIX = "daytonaflow-"
ACTIVITY_HOOK = "daytonaflow.hook"
ACTIVITY_CANCEL = "daytonaflow.cancel"
ACTIVITY_RECLAIM = "daytonaflow.reclaim"
SIGNAL_METADATA = "daytonaflow.metadata"
SIGNAL_RESOURCE = "daytonaflow.resource"
QUERY_PROGRESS = "daytonaflow.progress"
QUERY_SNAPSHOT = "daytonaflow.snapshot"
#: The failure type of a workflow whose run failed (its details hold the run's snapshot).
RUN_FAILED_ERROR = "daytonaflow.RunFailed"
#: An activity's failure type when its worker shut down under it: the workflow runs the hook again.
WORKER_SHUTDOWN_ERROR = "daytonaflow.WorkerShutdown"
#: An activity's failure type when the worker has no such component installed.
COMPONENT_MISSING_ERROR = "daytonaflow.ComponentMissing"
#: What replaces a secret value wherever it would reach Temporal's history.
REDACTED = "***"


def workflow_id(run_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{run_id}"


def entry_json(entry: ChainEntry) -> dict[str, Any]:
    return {
        "node_id": entry.node_id,
        "node_name": entry.node_name,
        "component": entry.component,
        "event": entry.event,
        "config": entry.config,
    }


def entry_of(document: dict[str, Any]) -> ChainEntry:
    return ChainEntry(
        document["node_id"],
        document["node_name"],
        document["component"],
        document["event"],
        document["config"],
    )
