"""A runner process that a node kills: the crash-loop test drives it through repeated resumes.

``run_crash_worker.py DB BACKEND start`` starts one run of a canvas whose ``die`` node (after
``make`` acquired a resource) SIGKILLs its own process, as a node exhausting memory would get
the runner killed. ``... resume`` takes over the unfinished runs, as ``daytonaflow runs resume``
does; ``... other`` resumes them and then runs an unrelated canvas, as ``daytonaflow run`` does.
Every attempt of ``die`` is journaled in the backend. Prints one ``status`` line per run at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, ClassVar

from run_fakes import FAKE_COMPONENTS, FakeBackend, FakeComponent, make_canvas

from daytonaflow.component import ExecutionContext
from daytonaflow.runner import Engine, RunStore, parse_canvas


class Die(FakeComponent):
    """Journals the attempt, then SIGKILLs the process it runs in."""

    name: ClassVar[str] = "test.die"

    async def execute(self, ctx: ExecutionContext) -> None:
        backend: FakeBackend = ctx.integration
        backend.record("die", ctx.execution_id)
        os.kill(os.getpid(), signal.SIGKILL)


CRASHING_CANVAS = make_canvas(
    [{"id": "make", "component": "test.acquire"}, {"id": "die", "component": "test.die"}],
    [("start", "make"), ("make", "die")],
    name="crashing",
)
OTHER_CANVAS = make_canvas(
    [{"id": "echo", "component": "test.echo", "configuration": {"value": "fine"}}],
    [("start", "echo")],
    name="unrelated",
)


async def main(argv: list[str]) -> int:
    db, backend_dir, mode = argv
    registry: dict[str, Any] = {**FAKE_COMPONENTS, Die.name: Die}
    with RunStore(db) as store:
        engine = Engine(store, registry=registry, integration=FakeBackend(Path(backend_dir)))
        run_ids = await engine.resume() if mode in ("resume", "other") else []
        if mode == "start":
            run_ids.append(await engine.start(parse_canvas(CRASHING_CANVAS)))
        if mode == "other":
            run_ids.append(await engine.start(parse_canvas(OTHER_CANVAS)))
        for run_id in run_ids:
            record = await engine.wait(run_id)
            print("status", record.canvas_name, record.status, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
