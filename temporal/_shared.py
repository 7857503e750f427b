"""Names and small helpers the workflow, the activities and the client share (no Temporal imports)."""

from __future__ import annotations

from typing import Any

from daytonaflow.errors import DaytonaflowError
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


def describe(error: BaseException) -> str:
    """An error as one line, as the embedded engine words it: ours by message, others with their type."""
    if isinstance(error, DaytonaflowError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def mentions_delimiters(value: Any) -> bool:
    """Whether a configuration value holds anything a template could resolve (the engine's own test)."""
    if isinstance(value, str):
        return "{{" in value or "<<" in value
    if isinstance(value, dict):
        return any(mentions_delimiters(item) for item in value.values())
    if isinstance(value, list):
        return any(mentions_delimiters(item) for item in value)
    return False


def upstream_order(pair: tuple[int, ChainEntry]) -> int:
    return pair[0]


def pick_upstream(emitted: list[tuple[int, ChainEntry]], key: str) -> ChainEntry | None:
    """runner/engine.py's lookup among upstream nodes: by name, then id, then (unambiguous) component.

    ``emitted`` holds (emit order, entry) of each upstream node's latest event.
    """
    for attribute in ("node_name", "node_id", "component"):
        found = [pair for pair in emitted if getattr(pair[1], attribute) == key]
        if attribute == "component" and len({entry.node_name for _, entry in found}) > 1:
            return None  # ambiguous: the template must name the node
        if found:
            return max(found, key=upstream_order)[1]
    return None


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
