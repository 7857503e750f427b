"""Runs as the browser sees them: started on the UI's engine, watched from the shared SQLite store.

The store is the one truth for state: a run started by the CLI in another process shows up the
same way as one started here. What the store does not keep, the live output of running nodes,
comes from the engine's observers for the runs this process drives, and is kept (bounded) per
execution so a browser that opens the run later still sees what came before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from daytonaflow.runner import Canvas, Engine, RunRecord, RunStore, RunUpdate
from daytonaflow.runner.progress import NODE_OUTPUT

#: How often the stream of a run driven by another process looks at the store.
STORE_POLL_SECONDS = 0.05
#: Live output kept per execution (its tail) for browsers that open the run view later...
MAX_KEPT_OUTPUT = 64 * 1024
#: ...and in all (the oldest runs' first to go).
MAX_KEPT_OUTPUT_TOTAL = 16 * 1024 * 1024
#: Output pieces queued for one browser; one that reads slower than this is sent the stream anew.
MAX_QUEUED_OUTPUT = 512
#: A comment line this often keeps a quiet stream's connection (and its disconnect detection) alive.
KEEPALIVE_SECONDS = 15.0


def run_snapshot(store: RunStore, record: RunRecord) -> dict[str, Any]:
    return {
        "run": record.to_json(),
        # No metadata: it is the components' private state, not for display.
        "executions": [e.to_json(metadata=False) for e in store.iter_executions(record.id)],
        "resources": [resource.to_json() for resource in store.resources(record.id)],
    }


@dataclass
class _Watcher:
    """One browser's stream of one run."""

    #: Woken on every update of the run from this process's engine.
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    output: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED_OUTPUT))
    #: Set when ``output`` overflowed: the stream ends, the browser reconnects and gets the tail anew.
    lagging: bool = False


class RunHub:
    """Starts runs on the engine, and fans its updates out to the browsers watching each run."""

    def __init__(self, store: RunStore, engine: Engine) -> None:
        self._store = store
        self._engine = engine
        self._watchers: dict[str, list[_Watcher]] = {}
        #: run id -> execution id -> (node id, the tail of its output)
        self._output: OrderedDict[str, dict[str, tuple[str, str]]] = OrderedDict()
        self._kept_bytes = 0
        self._waits: set[asyncio.Task[Any]] = set()
        engine.subscribe(self.observe)

    async def start(self, canvas: Canvas, run_input: Any, *, keep_resources: bool) -> RunRecord:
        run_id = await self._engine.start(canvas, run_input, keep_resources=keep_resources)
        # Someone must await the run's end for the engine to report a failure in it.
        task = asyncio.create_task(self._engine.wait(run_id))
        self._waits.add(task)
        task.add_done_callback(self._waits.discard)
        return self._store.get_run(run_id)

    async def cancel(self, run_id: str) -> RunRecord:
        return await self._engine.cancel(run_id)

    def drives(self, run_id: str) -> bool:
        return run_id in self._engine.active_runs

    async def cancel_all(self) -> None:
        """Cancel the runs this process drives (on shutdown): their sandboxes are reclaimed."""
        runs = self._engine.active_runs
        if runs:
            await asyncio.gather(*(self._engine.cancel(run_id) for run_id in runs), return_exceptions=True)

    async def stream(self, run_id: str) -> AsyncIterator[str]:
        """Server-sent events for one run: snapshots on change, output as it comes, then ``end``.

        The stream opens with each execution's output so far (``replay``: it replaces what the
        browser holds, so a reconnect never doubles a line).
        """
        watcher = _Watcher()
        self._watchers.setdefault(run_id, []).append(watcher)
        # Read in the same step as the registration: nothing is missed or sent twice.
        replay = list(self._output.get(run_id, {}).items())
        try:
            yield "retry: 500\n\n"
            for execution_id, (node_id, text) in replay:
                message = {"execution": execution_id, "node": node_id, "text": text, "replay": True}
                yield _sse("output", message)
            seen: tuple[Any, ...] | None = None
            quiet_since = time.monotonic()
            while True:
                record = self._store.get_run(run_id)
                signature = self._signature(record)
                if signature != seen:
                    seen = signature
                    quiet_since = time.monotonic()
                    yield _sse("snapshot", run_snapshot(self._store, record))
                while not watcher.output.empty():
                    yield _sse("output", watcher.output.get_nowait())
                if record.finished:
                    yield _sse("end", {"run": record.to_json()})
                    return
                if watcher.lagging:
                    return
                if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
                watcher.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watcher.changed.wait(), STORE_POLL_SECONDS)
        finally:
            self._watchers[run_id].remove(watcher)
            if not self._watchers[run_id]:
                del self._watchers[run_id]

    def _signature(self, record: RunRecord) -> tuple[Any, ...]:
        # Cheap questions that change whenever a snapshot would: no execution list is read for it.
        counts = tuple(sorted(self._store.execution_counts(record.id).items()))
        resources = tuple((r.resource_id, r.state) for r in self._store.resources(record.id))
        return (record.status, record.error, counts, self._store.count_events(record.id), resources)

    def observe(self, update: RunUpdate) -> None:
        """The engine's observer: output kept and queued for the streams, streams woken."""
        if update.kind == NODE_OUTPUT and update.text and update.execution_id:
            self._keep_output(update.run_id, update.execution_id, update.node_id or "", update.text)
        for watcher in self._watchers.get(update.run_id, ()):
            if update.kind == NODE_OUTPUT and update.text:
                message = {"execution": update.execution_id, "node": update.node_id, "text": update.text}
                try:
                    watcher.output.put_nowait(message)
                except asyncio.QueueFull:
                    watcher.lagging = True
            watcher.changed.set()

    def _keep_output(self, run_id: str, execution_id: str, node_id: str, text: str) -> None:
        kept = self._output.setdefault(run_id, {})
        self._output.move_to_end(run_id)
        node, previous = kept.get(execution_id, (node_id, ""))
        tail = (previous + text)[-MAX_KEPT_OUTPUT:]
        kept[execution_id] = (node, tail)
        self._kept_bytes += len(tail) - len(previous)
        while self._kept_bytes > MAX_KEPT_OUTPUT_TOTAL:
            oldest = next(iter(self._output.values()))
            if len(oldest) <= 1 and oldest is kept:
                break
            # The oldest run's first execution: another run's, or this run's other ones.
            first = next(key for key in oldest if oldest is not kept or key != execution_id)
            self._kept_bytes -= len(oldest.pop(first)[1])
            if not oldest:
                self._output.popitem(last=False)


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
