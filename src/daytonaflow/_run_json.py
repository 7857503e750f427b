"""Runs as JSON for ``runs --json`` and ``runs show --json``: no terminal rendering, so no rich."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, Any

from daytonaflow.runner.store import EventRecord, ExecutionRecord, RunRecord, RunStore

#: Records joined into one write: an unbuffered stdout (PYTHONUNBUFFERED) makes each write a syscall.
_WRITE_BATCH = 500


def run_header(record: RunRecord) -> dict[str, Any]:
    """A run's own fields, as JSON (``runs --json`` lists these)."""
    return {
        "id": record.id,
        "canvas": record.canvas_name,
        "status": record.status,
        "error": record.error,
        "input": record.input,
        "keepResources": record.keep_resources,
        "createdAt": record.created_at,
        "finishedAt": record.finished_at,
    }


def write_run_document(record: RunRecord, store: RunStore, stream: IO[str]) -> None:
    """Everything stored about a run as one JSON object (``runs show --json``), written as it is read.

    Executions and events are read in batches and written one per line, so a run of any size
    starts printing at once and never sits whole in memory.
    """
    stream.write('{\n  "run": ' + _indented(run_header(record)) + ",\n")
    executions = (_execution_document(execution) for execution in store.iter_executions(record.id))
    _write_list(stream, "executions", executions)
    _write_list(stream, "events", (_event_document(event) for event in store.iter_events(record.id)))
    resources = (
        {"kind": r.kind, "id": r.resource_id, "node": r.node_id, "state": r.state, "error": r.error}
        for r in store.resources(record.id)
    )
    _write_list(stream, "resources", resources)
    stream.write('  "canvas": ' + _compact(record.canvas) + "\n}\n")


def _write_list(stream: IO[str], name: str, items: Iterable[dict[str, Any]]) -> None:
    stream.write(f'  "{name}": [')
    chunk: list[str] = []
    first = True
    for item in items:
        chunk.append(("\n    " if first else ",\n    ") + _compact(item))
        first = False
        if len(chunk) >= _WRITE_BATCH:
            stream.write("".join(chunk))
            chunk.clear()
    stream.write("".join(chunk) + ("],\n" if first else "\n  ],\n"))


def _execution_document(execution: ExecutionRecord) -> dict[str, Any]:
    return {
        "id": execution.id,
        "node": execution.node_id,
        "nodeName": execution.node_name,
        "component": execution.component,
        "status": execution.status,
        "channel": execution.channel,
        "error": execution.error,
        "metadata": execution.metadata,
        "startedAt": execution.started_at,
        "finishedAt": execution.finished_at,
    }


def _event_document(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "node": event.node_id,
        "channel": event.channel,
        "parent": event.parent_event_id,
        "event": event.event,
    }


def _compact(value: Any) -> str:
    # One record per line, no ``indent``: only then does json use its C encoder (and with no other
    # argument, its one shared encoder instead of a new one per call).
    return json.dumps(value)


def _indented(value: Any) -> str:
    return json.dumps(value, indent=2).replace("\n", "\n  ")
