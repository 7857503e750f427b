"""The hello canvas end to end on the embedded local backend.

createSandbox → executeCode (python) → deleteSandbox, timed from the start of the run to its end.

The baseline, measured in the same process against the same server, is the bare API work the
canvas does: create a sandbox, wait until it is started, run the same Python code, delete it,
through the Daytona client with no engine. Prints ``name value unit`` lines (best and median of
``--repeat`` runs after one warm-up).

    python bench/hello.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from daytonaflow.components import DaytonaIntegration
from daytonaflow.localserver import LocalServer
from daytonaflow.runner import Engine, RunStore, load_canvas

HELLO = Path(__file__).resolve().parents[1] / "examples" / "hello.yaml"
CODE = 'import platform\nprint(f"Hello, World! Python {platform.python_version()}")\n'


async def canvas_once(engine: Engine) -> float:
    canvas = load_canvas(HELLO)
    started = time.perf_counter()
    record = await engine.run(canvas)
    elapsed = time.perf_counter() - started
    assert record.status == "succeeded", record.error
    return elapsed


async def bare_once(integration: DaytonaIntegration) -> float:
    client = integration.client
    started = time.perf_counter()
    sandbox = await client.create_sandbox({"autoStopInterval": 15})
    while sandbox.state != "started":
        await asyncio.sleep(0.005)
        sandbox = await client.get_sandbox(sandbox.id)
    result = await client.code_run(sandbox.id, CODE, "python")
    await client.delete_sandbox(sandbox.id)
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0 and "Hello" in result.result, result
    return elapsed


def report(name: str, samples: list[float]) -> None:
    print(f"{name}.best {min(samples):.4f} s")
    print(f"{name}.median {statistics.median(samples):.4f} s")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="measured runs of each (default 5)")
    args = parser.parse_args()
    # The server's default state directory, as `daytonaflow run` uses it.
    with tempfile.TemporaryDirectory() as directory, LocalServer() as server:
        integration = DaytonaIntegration(server.api_url, server.api_key)
        try:
            with RunStore(Path(directory) / "runs.db") as store:
                engine = Engine(store, integration=integration)
                await canvas_once(engine)
                await bare_once(integration)
                canvas = [await canvas_once(engine) for _ in range(args.repeat)]
                bare = [await bare_once(integration) for _ in range(args.repeat)]
        finally:
            await integration.aclose()
    report("hello.canvas.wall", canvas)
    report("baseline.client.wall", bare)
    gap = statistics.median(canvas) - statistics.median(bare)
    # Includes the components' own choices (code runs in a polled session, the baseline uses code-run).
    print(f"hello.canvas_minus_baseline.median {gap:.4f} s")
    print("target.hello.wall 0.5000 s")


if __name__ == "__main__":
    asyncio.run(main())
