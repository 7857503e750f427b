"""A process the end-to-end durability test kills with SIGKILL: hello runs on a given Daytona API.

``run_e2e_worker.py DB start N`` starts N runs of examples/hello.yaml; ``... resume`` takes over
the unfinished ones. The API comes from DAYTONA_API_URL / DAYTONA_API_KEY (the test's local
server). Prints ``ready`` once its runs are started or claimed, ``done`` when they all finished.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from daytonaflow.components import DaytonaIntegration
from daytonaflow.runner import Engine, RunStore, load_canvas

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello.yaml"


async def main(argv: list[str]) -> int:
    integration = DaytonaIntegration.from_env()
    assert integration is not None, "DAYTONA_API_KEY must point the worker at a server"
    try:
        with RunStore(argv[0]) as store:
            # Killed while resuming many times in a row on purpose: no guard against crash loops.
            engine = Engine(store, integration=integration, max_resume_attempts=None)
            if argv[1] == "start":
                canvas = load_canvas(HELLO)
                run_ids = [await engine.start(canvas, {"name": f"run {n}"}) for n in range(int(argv[2]))]
            else:
                run_ids = await engine.resume()
            print("ready", len(run_ids), flush=True)
            await asyncio.gather(*(engine.wait(run_id) for run_id in run_ids))
            print("done", flush=True)
    finally:
        await integration.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
