"""What handing waits to the engine costs: one ``sleep 3`` command node, with and without a limit.

On the embedded engine with the embedded local server (real sandboxes), the node
``daytona.executeCommand`` running ``sleep 3`` is timed (its execution's start to its end, from
the run store) with ``Engine(hook_wait_limit=None)`` (the hook follows the command to its end)
and with each limit given (the wait becomes scheduled checks: fast first, doubling, capped at
5 s). The rounds are interleaved so a shared machine's load weighs on all alike; each figure is
the median of ``--repeat`` rounds. ``extra`` is the median minus the one without a limit: how
much later the end of the command is noticed. Prints ``name value unit`` lines.

    python bench/hook_wait_limit.py [--repeat 3] [--limits 0.2,2]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from daytonaflow.components import DaytonaIntegration
from daytonaflow.localserver import LocalServer
from daytonaflow.runner import Engine, RunStore, RunUpdate, parse_canvas

COMMAND = "sleep 3"
NODE = "sleep"


class BenchError(Exception):
    """A measured run did not do what it is measured doing."""


def line(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.4f} {unit}", flush=True)


def canvas() -> Any:
    return parse_canvas(
        {
            "apiVersion": "v1",
            "kind": "Canvas",
            "metadata": {"name": "bench-hook-wait-limit"},
            "spec": {
                "nodes": [
                    {"id": "start", "type": "TYPE_TRIGGER", "component": "start"},
                    {
                        "id": NODE,
                        "type": "TYPE_ACTION",
                        "component": "daytona.executeCommand",
                        "configuration": {"sandbox": "{{ root().data.sandbox }}", "command": COMMAND},
                    },
                ],
                "edges": [{"sourceId": "start", "targetId": NODE, "channel": "default"}],
            },
        }
    )


async def node_seconds(
    store: RunStore, integration: DaytonaIntegration, sandbox_id: str, limit: float | None
) -> tuple[float, int]:
    """The command node's wall time and how many checks it took."""
    updates: list[RunUpdate] = []
    engine = Engine(store, integration=integration, observers=[updates.append], hook_wait_limit=limit)
    try:
        record = await engine.run(canvas(), {"sandbox": sandbox_id})
    finally:
        await engine.aclose()
    if record.status != "succeeded":
        raise BenchError(f"the run ended {record.status}: {record.error}")
    (execution,) = [e for e in store.executions(record.id) if e.node_id == NODE]
    if execution.started_at is None or execution.finished_at is None:
        raise BenchError("the command node has no start or end time")
    checks = sum(1 for u in updates if u.kind == "node.waiting" and u.node_id == NODE)
    return execution.finished_at - execution.started_at, checks


async def bench(repeat: int, limits: list[float]) -> None:
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-bench-hook-wait-"))
    root.chmod(0o711)  # the unprivileged sandbox uid traverses it
    server = LocalServer(state_dir=root / "state")
    server.start()
    integration = DaytonaIntegration(server.api_url, server.api_key)
    try:
        sandbox_id = (await integration.client.create_sandbox({}, idempotency_key="bench-hook-wait")).id
        settings: list[float | None] = [None, *limits]
        seconds: dict[float | None, list[float]] = {limit: [] for limit in settings}
        checks: dict[float | None, list[int]] = {limit: [] for limit in settings}
        with RunStore(root / "runs.db") as store:
            await node_seconds(store, integration, sandbox_id, None)  # warm-up
            for _ in range(repeat):
                for limit in settings:
                    wall, count = await node_seconds(store, integration, sandbox_id, limit)
                    seconds[limit].append(wall)
                    checks[limit].append(count)
        baseline = statistics.median(seconds[None])
        line("hook_wait.sleep3_node_no_limit", baseline, "s")
        for limit in limits:
            median = statistics.median(seconds[limit])
            line(f"hook_wait.sleep3_node_limit_{limit:g}", median, "s")
            line(f"hook_wait.sleep3_extra_limit_{limit:g}", median - baseline, "s")
            line(f"hook_wait.sleep3_checks_limit_{limit:g}", statistics.median(checks[limit]), "checks")
        await integration.client.delete_sandbox(sandbox_id, force=True)
    finally:
        await integration.aclose()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limits", default="0.2,2", help="comma-separated hook wait limits (seconds)")
    args = parser.parse_args()
    limits = [float(value) for value in args.limits.split(",") if value.strip()]
    asyncio.run(bench(args.repeat, limits))


if __name__ == "__main__":
    main()
