"""Terminal rendering of runs: the live progress view, the summary, history, and JSON lines."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from daytonaflow.runner import progress
from daytonaflow.runner.progress import RunUpdate
from daytonaflow.runner.store import ExecutionRecord, RunRecord, RunStore

_STATE_STYLES = {
    "pending": "dim",
    "running": "yellow",
    "checking": "yellow",
    "waiting": "cyan",
    "emitted": "green",
    "completed": "green",
    "succeeded": "bold green",
    "failed": "bold red",
    "cancelled": "magenta",
    "cancelling": "magenta",
}
EXCERPT_WIDTH = 60


def excerpt(event: dict[str, Any] | None, width: int = EXCERPT_WIDTH) -> str:
    """A one-line glimpse of an event's data: a command's output if it has one, else compact JSON."""
    if not event:
        return ""
    data = event.get("data", {})
    text: str
    if isinstance(data, dict) and isinstance(data.get("status"), int) and isinstance(data.get("body"), str):
        lines = [line for line in data["body"].splitlines() if line.strip()]
        text = f"{data['status']}: {lines[0] if lines else ''}"
    elif isinstance(data, dict) and isinstance(data.get("result"), str):
        lines = [line for line in data["result"].splitlines() if line.strip()]
        text = lines[-1] if lines else '""'
        if "exitCode" in data:
            text = f"exit {data['exitCode']}: {text}"
    else:
        text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


@dataclass
class _NodeLine:
    node_id: str
    name: str
    component: str
    state: str = "pending"
    started: float | None = None
    duration: float | None = None
    channel: str = ""
    detail: str = ""


class RunView:
    """Live table of one run's nodes, fed with :class:`RunUpdate`; falls back to plain lines off a TTY."""

    def __init__(self, console: Console, *, every_run: bool = False) -> None:
        self.console = console
        #: Without ``every_run`` the view follows the first run that starts after it subscribed.
        self.every_run = every_run
        self.run_id: str | None = None
        self._lines: dict[str, _NodeLine] = {}
        self._title = ""
        self._live: Live | None = None
        self._notes: list[str] = []

    def __enter__(self) -> RunView:
        if self.console.is_terminal:
            self._live = Live(self._render(), console=self.console, refresh_per_second=12, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)

    def __call__(self, update: RunUpdate) -> None:
        if not self.every_run:
            if self.run_id is None and update.kind == progress.RUN_STARTED:
                self.run_id = update.run_id
            if update.run_id != self.run_id:
                return
        if update.kind in (progress.RUN_STARTED, progress.RUN_RESUMED):
            self._title = f"{update.canvas} · run {update.run_id}"
        elif update.node_id is not None and update.kind.startswith("node."):
            self._node(update)
        elif update.kind.startswith("resource."):
            verb = {
                progress.RESOURCE_RECLAIMED: "reclaimed",
                progress.RESOURCE_KEPT: "kept",
                progress.RESOURCE_RECLAIM_FAILED: "could not reclaim",
            }[update.kind]
            note = f"{verb} {update.resource} (from node {update.node_id})"
            if update.error:
                note += f": {update.error}"
            self._say(note)
        if self._live is not None:
            self._live.update(self._render())

    def _node(self, update: RunUpdate) -> None:
        assert update.node_id is not None
        line = self._lines.get(update.execution_id or update.node_id)
        if line is None:
            line = _NodeLine(update.node_id, update.node_name or update.node_id, update.component or "")
            self._lines[update.execution_id or update.node_id] = line
        line.state = update.status or line.state
        line.duration = update.duration
        if update.kind == progress.NODE_STARTED:
            line.started = time.monotonic() - (update.duration or 0.0)
        if update.channel:
            line.channel = update.channel
        if update.event is not None:
            line.detail = excerpt(update.event)
        if update.error:
            line.detail = update.error
        if self._live is None and update.kind != progress.NODE_STARTED:
            self._say(
                f"{line.name} [{line.component}] {line.state}"
                + (f" on {line.channel}" if line.channel else "")
                + (f" in {format_duration(line.duration)}" if line.duration is not None else "")
                + (f": {line.detail}" if line.detail else "")
            )

    def _say(self, text: str) -> None:
        if self._live is None:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self._notes.append(text)

    def _render(self) -> RenderableType:
        table = Table(title=Text(self._title) if self._title else None, title_justify="left", expand=True)
        table.add_column("node", no_wrap=True, overflow="ellipsis", max_width=28)
        table.add_column("state", no_wrap=True)
        table.add_column("time", justify="right", no_wrap=True)
        table.add_column("channel", no_wrap=True)
        table.add_column("output", no_wrap=True, overflow="ellipsis", ratio=1)
        for line in self._lines.values():
            duration = line.duration
            if line.state in ("running", "checking", "waiting") and line.started is not None:
                duration = time.monotonic() - line.started
            table.add_row(
                Text(line.name),
                Text(line.state, style=_STATE_STYLES.get(line.state, "")),
                format_duration(duration),
                Text(line.channel),
                Text(line.detail.splitlines()[0] if line.detail else ""),
            )
        notes = [Text(note, style="dim") for note in self._notes]
        return Group(table, *notes)


class JsonLines:
    """Writes every update as one JSON object per line (``--json``)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, update: RunUpdate) -> None:
        self.stream.write(json.dumps(update.to_json(), separators=(",", ":"), default=str) + "\n")
        self.stream.flush()


def summary(record: RunRecord, store: RunStore) -> RenderableType:
    """The end-of-run report: outcome, duration, failed node, resources."""
    style = _STATE_STYLES.get(record.status, "")
    duration = (record.finished_at or time.time()) - record.created_at
    head = Text.assemble(
        ("run ", ""), (record.id, "bold"), (f" {record.canvas_name}: ", ""), (record.status, style)
    )
    head.append(f" in {format_duration(duration)}")
    parts: list[RenderableType] = [head]
    if record.error:
        parts.append(Text(record.error, style="red"))
    leaked = [r for r in store.resources(record.id) if r.state == "reclaim_failed"]
    for resource in leaked:
        parts.append(
            Text(f"not reclaimed: {resource.kind} {resource.resource_id}: {resource.error}", style="red")
        )
    kept = [r for r in store.resources(record.id) if r.state == "kept"]
    for resource in kept:
        parts.append(
            Text(f"kept: {resource.kind} {resource.resource_id} (node {resource.node_id})", style="cyan")
        )
    parts.append(Text(f"details: daytonaflow runs show {record.id}", style="dim"))
    return Group(*parts)


def runs_table(records: list[RunRecord]) -> Table:
    table = Table(expand=True)
    for column in ("run", "canvas", "status", "started", "duration"):
        table.add_column(column, no_wrap=True)
    table.add_column("error", no_wrap=True, overflow="ellipsis", ratio=1)
    for record in records:
        duration = (record.finished_at - record.created_at) if record.finished_at else None
        table.add_row(
            record.id,
            Text(record.canvas_name),
            Text(record.status, style=_STATE_STYLES.get(record.status, "")),
            _when(record.created_at),
            format_duration(duration),
            Text(record.error.splitlines()[0] if record.error else ""),
        )
    return table


def run_details(record: RunRecord, store: RunStore) -> RenderableType:
    executions = Table(title="nodes", title_justify="left")
    for column in ("node", "component", "status", "channel", "duration", "error"):
        executions.add_column(column, overflow="fold" if column == "error" else "ellipsis")
    for execution in store.executions(record.id):
        executions.add_row(
            Text(execution.node_name),
            Text(execution.component),
            Text(execution.status, style=_STATE_STYLES.get(execution.status, "")),
            Text(execution.channel or ""),
            format_duration(_execution_duration(execution)),
            Text(execution.error or ""),
        )
    names = {execution.node_id: execution.node_name for execution in store.executions(record.id)}
    events = Table(title="events", title_justify="left")
    for column in ("node", "channel", "type", "data"):
        events.add_column(column, overflow="fold")
    for event in store.events(record.id):
        events.add_row(
            Text(names.get(event.node_id, event.node_id)),
            Text(event.channel),
            Text(str(event.event.get("type", ""))),
            Text(json.dumps(event.event.get("data", {}), sort_keys=True)),
        )
    parts: list[RenderableType] = [summary(record, store), executions, events]
    resources = store.resources(record.id)
    if resources:
        table = Table(title="resources", title_justify="left")
        for column in ("kind", "id", "node", "state", "error"):
            table.add_column(column, overflow="fold")
        for resource in resources:
            table.add_row(
                *(Text(cell) for cell in (resource.kind, resource.resource_id, resource.node_id)),
                Text(resource.state),
                Text(resource.error or ""),
            )
        parts.append(table)
    return Group(*parts)


def run_document(record: RunRecord, store: RunStore) -> dict[str, Any]:
    """Everything stored about a run, as JSON (``runs show --json``)."""
    return {
        "run": {
            "id": record.id,
            "canvas": record.canvas_name,
            "status": record.status,
            "error": record.error,
            "input": record.input,
            "keepResources": record.keep_resources,
            "createdAt": record.created_at,
            "finishedAt": record.finished_at,
        },
        "executions": [
            {
                "id": e.id,
                "node": e.node_id,
                "nodeName": e.node_name,
                "component": e.component,
                "status": e.status,
                "channel": e.channel,
                "error": e.error,
                "metadata": e.metadata,
                "startedAt": e.started_at,
                "finishedAt": e.finished_at,
            }
            for e in store.executions(record.id)
        ],
        "events": [
            {
                "id": e.id,
                "node": e.node_id,
                "channel": e.channel,
                "parent": e.parent_event_id,
                "event": e.event,
            }
            for e in store.events(record.id)
        ],
        "resources": [
            {"kind": r.kind, "id": r.resource_id, "node": r.node_id, "state": r.state, "error": r.error}
            for r in store.resources(record.id)
        ],
        "canvas": record.canvas,
    }


def _execution_duration(execution: ExecutionRecord) -> float | None:
    if execution.started_at is None or execution.finished_at is None:
        return None
    return execution.finished_at - execution.started_at


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
