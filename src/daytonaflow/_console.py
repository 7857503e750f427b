"""Terminal rendering of runs for the CLI: the live progress view, the summary, history, JSON lines.

Only the CLI draws runs, so this sits beside it, not in the runner: the runner reports progress
as :class:`RunUpdate` and knows nothing of terminals.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from daytonaflow.runner import progress
from daytonaflow.runner.progress import RunUpdate
from daytonaflow.runner.store import EventRecord, ExecutionRecord, RunReader, RunRecord

_STATE_STYLES = {
    "pending": "dim",
    "running": "yellow",
    "checking": "yellow",
    "waiting": "cyan",
    "gathering": "cyan",
    "emitted": "green",
    "completed": "green",
    "succeeded": "bold green",
    "failed": "bold red",
    "cancelled": "magenta",
    "cancelling": "magenta",
}
EXCERPT_WIDTH = 60
#: Rows of each table ``runs show`` draws by default: a huge run is read and drawn a page at a time.
DEFAULT_PAGE_ROWS = 20
#: A running command's output, streamed in chunks (the live view shows each node's latest lines).
NODE_OUTPUT = "node.output"
#: How many of a running node's latest output lines the live view shows under its table.
LIVE_OUTPUT_LINES = 4
#: The most output lines of one execution printed off a terminal: a flood stays in the run's
#: record (``runs show``), not in the log.
MAX_PRINTED_OUTPUT_LINES = 1000
#: The width of a console that is not a terminal: wide enough that no value is ever cut or wrapped
#: (a pipe or a file has no width; a reader wants whole error messages, statuses and ids).
UNBOUNDED_WIDTH = 1 << 20
_NODE_STATES = (
    progress.NODE_STARTED,
    progress.NODE_WAITING,
    progress.NODE_EMITTED,
    progress.NODE_COMPLETED,
    progress.NODE_FAILED,
    progress.NODE_CANCELLED,
)
_RESOURCE_VERBS = {
    progress.RESOURCE_RECLAIMED: "reclaimed",
    progress.RESOURCE_KEPT: "kept",
    progress.RESOURCE_RECLAIM_FAILED: "could not reclaim",
}


class OutputConsole(Console):
    """A rich console whose reader may go away (``daytonaflow runs | head``).

    Rich's own answer to a broken pipe is ``SystemExit(1)`` raised wherever the write happened,
    a run's observer included. Here the console goes quiet and its file is pointed at /dev/null
    (so nothing fails again when the interpreter flushes it at exit); then, if ``stop_on_broken_pipe``,
    :class:`BrokenPipeError` ends the command, else the writes go on unseen (a run finishes).
    Off a terminal nothing is cut: the width is unbounded and tables never shrink a value.
    """

    def __init__(self, *, stderr: bool = False, stop_on_broken_pipe: bool = True, wrap: bool = False) -> None:
        super().__init__(stderr=stderr, highlight=False, emoji=False)
        self.stop_on_broken_pipe = stop_on_broken_pipe
        if not self.is_terminal and not wrap:
            self.width = UNBOUNDED_WIDTH

    def on_broken_pipe(self) -> None:
        self.quiet = True
        discard_output(self.file)
        if self.stop_on_broken_pipe:
            raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")


def discard_output(stream: IO[str]) -> None:
    """Point ``stream``'s descriptor at /dev/null: what is still buffered drains there quietly."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def fits(console: Console) -> bool:
    """Whether tables on ``console`` may stretch to its width: only a terminal has one."""
    return console.is_terminal


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
        if data.get("timeout") is True:
            text = f"timed out: {lines[-1]}" if lines else "timed out"
        elif "exitCode" in data:
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
    #: The latest complete output lines (the live view shows them while the node runs).
    latest: deque[str] = field(default_factory=lambda: deque(maxlen=LIVE_OUTPUT_LINES))
    #: An output line not ended yet (a chunk may stop mid-line).
    partial: str = ""
    printed_lines: int = 0
    told_waiting: bool = False


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
        elif update.node_id is not None and update.kind in _NODE_STATES:
            self._node(update)
        elif update.node_id is not None and update.kind == NODE_OUTPUT:
            self._output(update)
        elif update.kind in _RESOURCE_VERBS:
            note = f"{_RESOURCE_VERBS[update.kind]} {update.resource} (from node {update.node_id})"
            if update.error:
                note += f": {update.error}"
            self._say(note)
        else:
            return  # a kind this view does not know (a newer engine's): nothing to draw
        if self._live is not None:
            self._live.update(self._render())

    def _line(self, update: RunUpdate) -> _NodeLine:
        assert update.node_id is not None
        key = update.execution_id or update.node_id
        line = self._lines.get(key)
        if line is None:
            line = _NodeLine(update.node_id, update.node_name or update.node_id, update.component or "")
            self._lines[key] = line
        return line

    def _output(self, update: RunUpdate) -> None:
        """A running node's output: its latest lines in the live view; off a terminal, each line
        printed as it completes, prefixed by the node (up to :data:`MAX_PRINTED_OUTPUT_LINES`)."""
        text: Any = getattr(update, "text", None)
        if not isinstance(text, str):
            return
        line = self._line(update)
        *complete, line.partial = (line.partial + text).split("\n")
        for each in complete:
            self._output_line(line, each.rstrip("\r"))

    def _output_line(self, line: _NodeLine, text: str) -> None:
        if not text.strip():
            return
        line.latest.append(text)
        line.detail = text
        if self._live is not None:
            return
        line.printed_lines += 1
        if line.printed_lines <= MAX_PRINTED_OUTPUT_LINES:
            self._say(f"{line.name} | {text}")
        elif line.printed_lines == MAX_PRINTED_OUTPUT_LINES + 1:
            self._say(f"{line.name} | (more output not shown here; the run keeps it: daytonaflow runs show)")

    def _node(self, update: RunUpdate) -> None:
        line = self._line(update)
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
        if update.kind != progress.NODE_STARTED and line.partial.strip():
            # The command ended on a line without a newline: it is output all the same.
            self._output_line(line, line.partial)
            line.partial = ""
        if update.kind == progress.NODE_WAITING:
            # A node that polls waits again after every check: saying so once is enough.
            if line.told_waiting:
                return
            line.told_waiting = True
        if self._live is None and update.kind != progress.NODE_STARTED:
            self._say(
                f"{line.name} [{line.component}] {line.state}"
                + (f" on {line.channel}" if line.channel else "")
                + (f" in {format_duration(line.duration)}" if line.duration is not None else "")
                + (f": {line.detail}" if line.detail else "")
            )

    def _say(self, text: str) -> None:
        if self._live is None:
            try:
                self.console.print(text, markup=False, highlight=False, soft_wrap=True)
            except BrokenPipeError:
                # The reader went away: the run goes on unwatched (its record keeps everything),
                # the console now quiet.
                self.console.quiet = True
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
        output = [
            Text(f"{line.name} | {text}", style="dim", no_wrap=True, overflow="ellipsis")
            for line in self._lines.values()
            if line.state == "running"
            for text in line.latest
        ]
        notes = [Text(note, style="dim") for note in self._notes]
        return Group(table, *output, *notes)


class JsonLines:
    """Writes every update as one JSON object per line (``--json``)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._reader_gone = False

    def __call__(self, update: RunUpdate) -> None:
        if self._reader_gone:
            return
        try:
            self.stream.write(json.dumps(update.to_json(), separators=(",", ":"), default=str) + "\n")
            self.stream.flush()
        except BrokenPipeError:
            # The reader went away (`daytonaflow run c.yaml --json | head`): the run goes on unwatched,
            # and what is still buffered drains into /dev/null instead of failing again at exit.
            self._reader_gone = True
            discard_output(self.stream)


def summary(record: RunRecord, store: RunReader, *, engine_options: str = "") -> RenderableType:
    """The end-of-run report: outcome, duration, failed node, resources.

    ``engine_options`` (e.g. `` --temporal HOST:PORT``) follow the run id in the command it suggests.
    """
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
    parts.append(Text(f"details: daytonaflow runs show {record.id}{engine_options}", style="dim"))
    return Group(*parts)


def runs_table(records: list[RunRecord], *, expand: bool = True) -> Table:
    """The run history; ``expand`` fills a terminal's width (off a terminal, each value is whole)."""
    table = Table(expand=expand)
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


@dataclass(frozen=True)
class Page:
    """Which rows of each table ``runs show`` draws: page ``number`` (1-based; -1 is the last)."""

    number: int = 1
    size: int = DEFAULT_PAGE_ROWS

    def pages(self, total: int) -> int:
        return max(1, -(-total // self.size))

    def shown(self, total: int) -> int:
        """The 1-based page drawn of a table of ``total`` rows: past either end, the nearest one."""
        pages = self.pages(total)
        wanted = self.number if self.number > 0 else pages + 1 + self.number
        return min(max(wanted, 1), pages)

    def offset(self, total: int) -> int:
        return (self.shown(total) - 1) * self.size


def run_details(
    record: RunRecord, store: RunReader, page: Page | None = None, *, engine_options: str = ""
) -> RenderableType:
    """``runs show``: the summary, then one page of the run's nodes and events, then its resources.

    Only the page's rows are read and drawn, so a run of 10,000 events shows as fast as one of ten.
    ``engine_options`` as for :func:`summary`.
    """
    page = page or Page()
    counts = store.execution_counts(record.id)
    executions_total = sum(counts.values())
    events_total = store.count_events(record.id)
    parts: list[RenderableType] = [summary(record, store, engine_options=engine_options)]
    if executions_total > page.size or events_total > page.size:
        states = ", ".join(f"{n:,} {status}" for status, n in sorted(counts.items()))
        parts.append(Text(f"{executions_total:,} node executions ({states}) · {events_total:,} events"))
    offset = page.offset(executions_total)
    executions = store.executions(record.id, offset=offset, limit=page.size)
    parts.append(_executions_table(executions, _title("nodes", offset, len(executions), executions_total)))
    offset = page.offset(events_total)
    events = store.events(record.id, offset=offset, limit=page.size)
    title = _title("events", offset, len(events), events_total)
    parts.append(_events_table(events, _node_names(record), title))
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
    pages = max(page.pages(executions_total), page.pages(events_total))
    if pages > 1:
        shown = page.shown(max(executions_total, events_total))
        hint = f"page {shown} of {pages}, {page.size} rows each:"
        hint += f" daytonaflow runs show {record.id}{engine_options}"
        hint += " --page N (-1 the last) --limit ROWS; everything: --json"
        parts.append(Text(hint, style="dim"))
    return Group(*parts)


def _title(name: str, offset: int, shown: int, total: int) -> str:
    if shown >= total:
        return name
    return f"{name} {offset + 1:,}-{offset + shown:,} of {total:,}"


def _executions_table(executions: Iterable[ExecutionRecord], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("node", "component", "status", "channel", "duration", "error"):
        table.add_column(column, overflow="fold" if column == "error" else "ellipsis")
    for execution in executions:
        table.add_row(
            Text(execution.node_name),
            Text(execution.component),
            Text(execution.status, style=_STATE_STYLES.get(execution.status, "")),
            Text(execution.channel or ""),
            format_duration(_execution_duration(execution)),
            Text(execution.error or ""),
        )
    return table


def _events_table(events: Iterable[EventRecord], names: dict[str, str], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("node", "channel", "type", "data"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(
            Text(names.get(event.node_id, event.node_id)),
            Text(event.channel),
            Text(str(event.event.get("type", ""))),
            Text(json.dumps(event.event.get("data", {}), sort_keys=True)),
        )
    return table


def _node_names(record: RunRecord) -> dict[str, str]:
    """Node names by id, from the canvas the run was started with (no read of every execution)."""
    spec = record.canvas.get("spec")
    nodes = spec.get("nodes") if isinstance(spec, dict) else None
    names: dict[str, str] = {}
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            names[node["id"]] = str(node.get("name") or node["id"])
    return names


def _execution_duration(execution: ExecutionRecord) -> float | None:
    if execution.started_at is None or execution.finished_at is None:
        return None
    return execution.finished_at - execution.started_at


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
