"""Runs as JSON for ``runs --json`` and ``runs show --json``: no terminal rendering, so no rich."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, Any

from daytonaflow.runner.store import RunReader, RunRecord

#: Records joined into one write: an unbuffered stdout (PYTHONUNBUFFERED) makes each write a syscall.
_WRITE_BATCH = 500


def write_run_document(record: RunRecord, store: RunReader, stream: IO[str]) -> None:
    """Everything stored about a run as one JSON object (``runs show --json``), written as it is read.

    Executions and events are read in batches and written one per line, so a run of any size
    starts printing at once and never sits whole in memory.
    """
    stream.write('{\n  "run": ' + _indented(record.to_json()) + ",\n")
    _write_list(stream, "executions", (e.to_json() for e in store.iter_executions(record.id)))
    _write_list(stream, "events", (event.to_json() for event in store.iter_events(record.id)))
    _write_list(stream, "resources", (resource.to_json() for resource in store.resources(record.id)))
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


def _compact(value: Any) -> str:
    # One record per line, no ``indent``: only then does json use its C encoder (and with no other
    # argument, its one shared encoder instead of a new one per call).
    return json.dumps(value)


def _indented(value: Any) -> str:
    return json.dumps(value, indent=2).replace("\n", "\n  ")
