"""The Temporal engine against the embedded engine, measured in the same run on the same machine.

It starts its own Temporal dev server (``temporal server start-dev``, in memory, loopback), one
``daytonaflow serve`` and real ``daytonaflow worker`` processes, with the test harness's code
(tests/temporal/temporal_testkit.py). Samples of the two engines are interleaved, so a load change on
a shared machine hits both; figures are medians. Every ``baseline.`` line is the embedded engine
(``Engine`` on a SQLite store in a temporary directory, in this process).

- chain: a start trigger and ``--nodes`` no-op nodes in a row; the overhead per node is the run's
  wall divided by its nodes (a no-op does nothing, so the time is the engine's). A second baseline,
  ``baseline.chain.bare_temporal_per_step``, is Temporal's own floor on the same server: a minimal
  workflow running as many empty activities one after another (a worker in this process, no
  daytonaflow code), so ``temporal.chain.adapter_per_node`` is what daytonaflow adds on top.
- throughput: ``--runs`` one-node runs submitted at once, with one and with two worker processes
  on a task queue of their own; runs per second from the first submission to the last end, and the
  two-worker/one-worker ratio (how it scales; on a machine with few cores, the dev server, the
  workers and this process share them).
- hello: examples/hello.yaml (a sandbox, Python in it, its deletion) on the local backend.

Prints ``name value unit`` lines.

    python bench/temporal.py [--nodes 200] [--runs 200] [--repeat 3] [--hello-repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

ROOT = Path(__file__).resolve().parents[1]
# The harness the Temporal tests use starts the processes (no second copy of that code here).
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "temporal")]

from serve_process import ServedProcess, serve_process  # noqa: E402
from temporal_testkit import DevServer, WorkerProcess, wait_ended  # noqa: E402

from daytonaflow.components import DaytonaIntegration  # noqa: E402
from daytonaflow.runner import Canvas, Engine, RunStore, load_canvas, parse_canvas  # noqa: E402

HELLO = ROOT / "examples" / "hello.yaml"
_RUN_SECONDS = 900.0


@activity.defn(name="bench.empty")
async def _empty_activity(step: int) -> int:
    return step


@workflow.defn(name="bench.bareChain")
class _BareChain:
    """Temporal's floor for a chain: one empty activity after another, nothing else."""

    @workflow.run
    async def run(self, steps: int) -> int:
        for step in range(steps):
            await workflow.execute_activity(
                _empty_activity, step, start_to_close_timeout=timedelta(seconds=60)
            )
        return steps


async def bare_chain(client: Any, task_queue: str, steps: int) -> float:
    started = time.perf_counter()
    await client.execute_workflow(
        _BareChain.run, steps, id=f"bench-bare-{uuid.uuid4().hex}", task_queue=task_queue
    )
    return time.perf_counter() - started


def chain_canvas(length: int) -> Canvas:
    ids = ["start"] + [f"n{i}" for i in range(length)]
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "TYPE_TRIGGER", "component": "start"}]
    nodes += [{"id": node_id, "type": "TYPE_ACTION", "component": "noop"} for node_id in ids[1:]]
    edges = [{"sourceId": a, "targetId": b, "channel": "default"} for a, b in itertools.pairwise(ids)]
    document = {"apiVersion": "v1", "kind": "Canvas", "metadata": {"name": "chain"}}
    return parse_canvas({**document, "spec": {"nodes": nodes, "edges": edges}})


def line(name: str, value: float, unit: str) -> None:
    text = str(int(value)) if unit == "count" else f"{value:.4f}"
    print(f"{name} {text} {unit}", flush=True)


class Temporal:
    """The Temporal side: a client and, per task queue, the worker processes serving it."""

    def __init__(self, server: DevServer, backend: ServedProcess, log_dir: Path) -> None:
        self.server = server
        self.backend = backend
        self.client: Any = None  # connected inside the event loop that uses it
        self._log_dir = log_dir
        self._workers: list[WorkerProcess] = []

    def queue_with_workers(self, count: int) -> Any:
        """A fresh task queue served by ``count`` ready worker processes; returns its TemporalRuns."""
        from daytonaflow.temporal import TemporalRuns, TemporalSettings

        queue = f"bench-{uuid.uuid4().hex[:8]}"
        for _ in range(count):
            log_path = self._log_dir / f"worker-{len(self._workers) + 1}.log"
            worker = WorkerProcess(self.server.address, queue, env=self.backend.env(), log_path=log_path)
            self._workers.append(worker)
            worker.start()
        for worker in self._workers[-count:]:
            worker.wait_ready()
        return TemporalRuns(self.client, TemporalSettings(address=self.server.address, task_queue=queue))

    def stop(self) -> None:
        for worker in self._workers:
            if worker.is_running():
                worker.stop()


async def temporal_run(runs: Any, client: Any, canvas: Canvas, run_input: Any = None) -> float:
    started = time.perf_counter()
    run_id = await runs.start(canvas, run_input)
    await wait_ended(client, run_id, timeout=_RUN_SECONDS)
    elapsed = time.perf_counter() - started
    record = (await runs.get(run_id)).record
    assert record.status == "succeeded", record.error
    return elapsed


async def temporal_many(runs: Any, client: Any, canvas: Canvas, count: int) -> float:
    started = time.perf_counter()
    run_ids = await asyncio.gather(*(runs.start(canvas) for _ in range(count)))
    await asyncio.gather(*(wait_ended(client, run_id, timeout=_RUN_SECONDS) for run_id in run_ids))
    elapsed = time.perf_counter() - started
    # Read back after the clock stopped: checking every run is not part of the throughput.
    statuses = {(await runs.get(run_id)).record.status for run_id in run_ids}
    assert statuses == {"succeeded"}, statuses
    return elapsed


async def embedded_run(engine: Engine, canvas: Canvas, run_input: Any = None) -> float:
    started = time.perf_counter()
    record = await engine.run(canvas, run_input)
    elapsed = time.perf_counter() - started
    assert record.status == "succeeded", record.error
    return elapsed


async def embedded_many(engine: Engine, canvas: Canvas, count: int) -> float:
    started = time.perf_counter()
    run_ids = [await engine.start(canvas) for _ in range(count)]
    records = await asyncio.gather(*(engine.wait(run_id) for run_id in run_ids))
    elapsed = time.perf_counter() - started
    assert {record.status for record in records} == {"succeeded"}
    return elapsed


async def interleaved(repeat: int, *measures: Callable[[], Awaitable[float]]) -> list[list[float]]:
    """``repeat`` rounds, each taking one sample of every measure in turn; one list per measure."""
    samples: list[list[float]] = [[] for _ in measures]
    for _ in range(repeat):
        for index, measure in enumerate(measures):
            samples[index].append(await measure())
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=200, help="length of the no-op chain (default 200)")
    parser.add_argument(
        "--runs", type=int, default=200, help="one-node runs per throughput sample (default 200)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="samples of the chain and throughput (default 3)"
    )
    parser.add_argument("--hello-repeat", type=int, default=3, help="samples of the hello canvas (default 3)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as directory,
        DevServer(log_dir=Path(directory)) as server,
        serve_process(prefix="daytonaflow-bench-") as backend,
    ):
        temporal = Temporal(server, backend, Path(directory))
        try:
            asyncio.run(_measure_both(args, temporal, Path(directory)))
        finally:
            temporal.stop()


async def _measure_both(args: argparse.Namespace, temporal: Temporal, directory: Path) -> None:
    from temporalio.client import Client

    temporal.client = await Client.connect(temporal.server.address)
    integration = DaytonaIntegration(temporal.backend.api_url, temporal.backend.api_key)
    try:
        with RunStore(directory / "embedded.db") as store:
            engine = Engine(store, integration=integration)
            try:
                await _measure(args, temporal, engine)
            finally:
                await engine.aclose()
    finally:
        await integration.aclose()


async def _measure(args: argparse.Namespace, temporal: Temporal, engine: Engine) -> None:
    one_worker = temporal.queue_with_workers(1)
    two_workers = temporal.queue_with_workers(2)
    client = temporal.client

    chain, one_node, hello = chain_canvas(args.nodes), chain_canvas(1), load_canvas(HELLO)
    # Warm up both sides (imports, the store, the workers' first workflow task, the sandbox caches).
    await temporal_run(one_worker, client, chain_canvas(10))
    await temporal_run(two_workers, client, chain_canvas(10))
    await embedded_run(engine, chain_canvas(10))
    await temporal_run(one_worker, client, hello)
    await embedded_run(engine, hello)

    bare_queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
    bare_worker = Worker(
        client,
        task_queue=bare_queue,
        workflows=[_BareChain],
        activities=[_empty_activity],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with bare_worker:
        await bare_chain(client, bare_queue, 10)
        on_temporal, embedded, bare = await interleaved(
            args.repeat,
            lambda: temporal_run(one_worker, client, chain),
            lambda: embedded_run(engine, chain),
            lambda: bare_chain(client, bare_queue, args.nodes),
        )
    line("temporal.chain.nodes", args.nodes, "count")
    line("temporal.chain.wall", statistics.median(on_temporal), "s")
    line("baseline.chain.wall", statistics.median(embedded), "s")
    line("temporal.chain.overhead_per_node", statistics.median(on_temporal) / args.nodes * 1000, "ms")
    line("baseline.chain.overhead_per_node", statistics.median(embedded) / args.nodes * 1000, "ms")
    line("temporal.chain.overhead_ratio", statistics.median(on_temporal) / statistics.median(embedded), "x")
    bare_per_step = statistics.median(bare) / args.nodes * 1000
    line("baseline.chain.bare_temporal_per_step", bare_per_step, "ms")
    line(
        "temporal.chain.adapter_per_node",
        statistics.median(on_temporal) / args.nodes * 1000 - bare_per_step,
        "ms",
    )

    single, double, embedded = await interleaved(
        args.repeat,
        lambda: temporal_many(one_worker, client, one_node, args.runs),
        lambda: temporal_many(two_workers, client, one_node, args.runs),
        lambda: embedded_many(engine, one_node, args.runs),
    )
    single_rate, double_rate = args.runs / statistics.median(single), args.runs / statistics.median(double)
    line("temporal.throughput.runs", args.runs, "count")
    line("temporal.throughput.1_worker", single_rate, "runs/s")
    line("temporal.throughput.2_workers", double_rate, "runs/s")
    line("temporal.throughput.2_over_1_workers", double_rate / single_rate, "x")
    line("baseline.throughput", args.runs / statistics.median(embedded), "runs/s")

    on_temporal, embedded = await interleaved(
        args.hello_repeat,
        lambda: temporal_run(one_worker, client, hello),
        lambda: embedded_run(engine, hello),
    )
    line("temporal.hello.wall", statistics.median(on_temporal), "s")
    line("baseline.hello.wall", statistics.median(embedded), "s")
    line("temporal.hello.minus_baseline", statistics.median(on_temporal) - statistics.median(embedded), "s")


if __name__ == "__main__":
    main()
