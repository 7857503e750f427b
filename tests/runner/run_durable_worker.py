"""A process the durability test kills with SIGKILL at random points.

``run_durable_worker.py DB BACKEND start N`` starts N runs of the durable canvas and drives them;
``... resume`` takes over every unfinished run and drives it to the end. Prints ``ready`` once its
runs are started or claimed, then ``done`` when they all finished.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from run_fakes import FAKE_COMPONENTS, FakeBackend, make_canvas

from daytonaflow.runner import Engine, RunStore, parse_canvas

DURABLE_CANVAS = make_canvas(
    [
        {"id": "make", "component": "test.acquire", "configuration": {"delay": "{{ root().data.delay }}"}},
        {"id": "poll", "component": "test.poll", "configuration": {"polls": 3, "every": 0.1}},
        {"id": "echo", "component": "test.echo", "configuration": {"value": '{{ $["make"].data.id }}'}},
        {"id": "free", "component": "test.release", "configuration": {"id": "{{ previous().data.value }}"}},
        {"id": "record", "component": "test.record", "configuration": {"value": "{{ root().data.n }}"}},
    ],
    [("start", "make"), ("make", "poll"), ("poll", "echo"), ("echo", "free"), ("free", "record")],
    name="durable",
)


async def main(argv: list[str]) -> int:
    db, backend_dir, mode = argv[0], argv[1], argv[2]
    with RunStore(db) as store:
        # The test kills resuming workers many times in a row on purpose; the guard that fails a
        # run after two resumes died (DEFAULT_MAX_RESUME_ATTEMPTS) would end those runs early.
        engine = Engine(
            store,
            registry=FAKE_COMPONENTS,
            integration=FakeBackend(Path(backend_dir)),
            max_resume_attempts=None,
        )
        if mode == "start":
            canvas = parse_canvas(DURABLE_CANVAS)
            run_ids = [await engine.start(canvas, {"n": n, "delay": 0.03 * n}) for n in range(int(argv[3]))]
        else:
            run_ids = await engine.resume()
        print("ready", len(run_ids), flush=True)
        await asyncio.gather(*(engine.wait(run_id) for run_id in run_ids))
        print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
