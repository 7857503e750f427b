"""Engine overhead per node: a no-op component in a 1,000-node chain and in 1,000 parallel runs.

Each parallel run is a start trigger and one no-op node, so its per-node figure includes creating
and finishing the run. The baseline, measured in the same process, is what the same shape costs
with bare asyncio (one task per node, awaited in sequence for the chain, all at once for the
parallel runs); the engine's overhead is the difference divided by the number of nodes. Every
step is persisted to a SQLite database in a temporary directory, as in real runs. Prints
``name value unit`` lines.

    python bench/engine.py [--nodes 1000] [--runs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from daytonaflow.component import Component, ExecutionContext
from daytonaflow.errors import ConfigIssue
from daytonaflow.events import Payload
from daytonaflow.runner import Canvas, Engine, RunStore, parse_canvas


class NothingPayload(Payload):
    event_type: ClassVar[str] = "bench.nothing"


class NoOp(Component):
    """Emits an empty payload at once: all the time a run takes is the engine's."""

    name: ClassVar[str] = "bench.noop"
    label: ClassVar[str] = "No-op"
    description: ClassVar[str] = "Does nothing."
    icon: ClassVar[str] = "circle"
    color: ClassVar[str] = "gray"
    payload_type: ClassVar[type[Payload]] = NothingPayload

    @classmethod
    def documentation(cls) -> str:
        return "Does nothing."

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return {"type": "object"}

    @classmethod
    def manifest(cls) -> dict[str, Any]:
        return {"name": cls.name}

    @classmethod
    def example_output(cls) -> dict[str, Any]:
        return {"type": NothingPayload.event_type, "data": {}, "timestamp": "2026-01-19T12:00:00Z"}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        return []

    async def execute(self, ctx: ExecutionContext) -> None:
        ctx.emit("default", NothingPayload())


REGISTRY: dict[str, type[Component]] = {NoOp.name: NoOp}


def chain_canvas(length: int) -> Canvas:
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "TYPE_TRIGGER", "component": "start"}]
    nodes += [{"id": f"n{i}", "component": NoOp.name} for i in range(length)]
    ids = ["start"] + [f"n{i}" for i in range(length)]
    edges = [{"sourceId": a, "targetId": b, "channel": "default"} for a, b in itertools.pairwise(ids)]
    return parse_canvas(
        {
            "apiVersion": "v1",
            "kind": "Canvas",
            "metadata": {"name": "chain"},
            "spec": {"nodes": nodes, "edges": edges},
        }
    )


async def _noop() -> None:
    await asyncio.sleep(0)


async def baseline_chain(length: int) -> float:
    started = time.perf_counter()
    for _ in range(length):
        await asyncio.create_task(_noop())
    return time.perf_counter() - started


async def baseline_parallel(runs: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(asyncio.create_task(_noop()) for _ in range(runs)))
    return time.perf_counter() - started


async def engine_chain(engine: Engine, canvas: Canvas) -> float:
    started = time.perf_counter()
    record = await engine.run(canvas)
    elapsed = time.perf_counter() - started
    assert record.status == "succeeded", record.error
    return elapsed


async def engine_parallel(engine: Engine, canvas: Canvas, runs: int) -> float:
    started = time.perf_counter()
    run_ids = [await engine.start(canvas) for _ in range(runs)]
    records = await asyncio.gather(*(engine.wait(run_id) for run_id in run_ids))
    elapsed = time.perf_counter() - started
    assert {record.status for record in records} == {"succeeded"}
    return elapsed


def line(name: str, value: float, unit: str) -> None:
    text = str(int(value)) if unit == "count" else f"{value:.4f}"
    print(f"{name} {text} {unit}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000, help="length of the chain (default 1000)")
    parser.add_argument(
        "--runs", type=int, default=1000, help="parallel runs of a one-node canvas (default 1000)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, RunStore(Path(directory) / "bench.db") as store:
        engine = Engine(store, registry=REGISTRY)
        chain = chain_canvas(args.nodes)
        started = time.perf_counter()
        engine.validate(chain)
        line("engine.chain.validate", (time.perf_counter() - started) * 1000, "ms")
        await engine_chain(engine, chain_canvas(10))  # warm up imports and the database
        chain_wall = await engine_chain(engine, chain)
        chain_base = await baseline_chain(args.nodes)
        line("engine.chain.nodes", args.nodes, "count")
        line("engine.chain.wall", chain_wall, "s")
        line("baseline.chain.wall", chain_base, "s")
        line("engine.chain.overhead_per_node", (chain_wall - chain_base) / args.nodes * 1000, "ms")

        one = chain_canvas(1)
        parallel_wall = await engine_parallel(engine, one, args.runs)
        parallel_base = await baseline_parallel(args.runs)
        line("engine.parallel.runs", args.runs, "count")
        line("engine.parallel.wall", parallel_wall, "s")
        line("baseline.parallel.wall", parallel_base, "s")
        line("engine.parallel.overhead_per_node", (parallel_wall - parallel_base) / args.runs * 1000, "ms")
        line("target.overhead_per_node", 1.0, "ms")


if __name__ == "__main__":
    asyncio.run(main())
