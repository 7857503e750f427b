"""Engine overhead per node, and how the engine scales with the length and width of a canvas.

Overhead: a no-op component in a 1,000-node chain and in 1,000 parallel runs. Each parallel run is
a start trigger and one no-op node, so its per-node figure includes creating and finishing the
run. The baseline, measured in the same process, is what the same shape costs with bare asyncio
(one task per node, awaited in sequence for the chain, all at once for the parallel runs); the
engine's overhead is the difference divided by the number of nodes.

Scaling: a chain of 10,000 no-op nodes each reading ``{{ previous().data }}`` (cost per node and
peak memory), beside a 1,000-node chain of the same nodes and a 10,000-node chain without
expressions; each chain runs in a child process of its own, so ``ru_maxrss`` is that run's peak.
Validation of a canvas fanning out from its trigger to 10,000 branches, beside 1,000 branches
and a 10,000-node chain (as many nodes and edges, no fan-out), and of a 10,000-node chain whose
every node names the trigger (``$["start"]``). Each time is printed as wall time and, as
``..._cpu_...``, as the CPU time alone (on a shared machine the wall also counts waits for a
core). Every step is persisted to a SQLite database in a temporary directory, as in real runs.
Prints ``name value unit`` lines.

    python bench/engine.py [--nodes 1000] [--runs 1000] [--long-chain 10000] [--branches 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from daytonaflow.component import Component, ExecutionContext
from daytonaflow.errors import ConfigIssue
from daytonaflow.events import Payload
from daytonaflow.runner import Canvas, Engine, RunStore, check_canvas, parse_canvas


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


#: What each node of the expression chain resolves: its predecessor's event data.
PREVIOUS_DATA = {"value": "{{ previous().data }}"}
#: What each node of the named chain validates: a reference to the trigger by its name.
NAMES_THE_TRIGGER = {"value": '{{ $["start"].data }}'}


def chain_canvas(length: int, configuration: dict[str, Any] | None = None) -> Canvas:
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "TYPE_TRIGGER", "component": "start"}]
    nodes += [
        {"id": f"n{i}", "component": NoOp.name, "configuration": dict(configuration or {})}
        for i in range(length)
    ]
    ids = ["start"] + [f"n{i}" for i in range(length)]
    edges = [{"sourceId": a, "targetId": b, "channel": "default"} for a, b in itertools.pairwise(ids)]
    return _canvas("chain", nodes, edges)


def fanout_canvas(branches: int) -> Canvas:
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "TYPE_TRIGGER", "component": "start"}]
    nodes += [{"id": f"b{i}", "component": NoOp.name} for i in range(branches)]
    edges = [{"sourceId": "start", "targetId": f"b{i}", "channel": "default"} for i in range(branches)]
    return _canvas("fanout", nodes, edges)


def _canvas(name: str, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> Canvas:
    return parse_canvas(
        {
            "apiVersion": "v1",
            "kind": "Canvas",
            "metadata": {"name": name},
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


def validation_ms(canvas: Canvas, repeat: int = 5) -> tuple[float, float]:
    """(wall, CPU) milliseconds of the fastest of ``repeat`` validations of ``canvas``.

    The fastest, because the machine may be shared: it is the least disturbed one.
    """
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        check_canvas(canvas, REGISTRY)  # what Engine.validate runs
        best_wall = min(best_wall, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - cpu_started)
    return best_wall * 1000, best_cpu * 1000


async def chain_child(length: int, expressions: bool) -> None:
    """In a child process: run one chain, print its wall and CPU time and this process's peak memory."""
    with tempfile.TemporaryDirectory() as directory, RunStore(Path(directory) / "bench.db") as store:
        engine = Engine(store, registry=REGISTRY)
        canvas = chain_canvas(length, PREVIOUS_DATA if expressions else None)
        cpu_started = time.process_time()
        wall = await engine_chain(engine, canvas)
        cpu = time.process_time() - cpu_started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mib": peak_kib / 1024}), flush=True)


@dataclass(frozen=True)
class ChainFigures:
    wall_ms_per_node: float
    #: CPU time alone: on a shared machine, wall time also counts the waits for a core
    cpu_ms_per_node: float
    peak_mib: float


def measure_chain(length: int, expressions: bool) -> ChainFigures:
    """The figures of one chain run in a fresh process."""
    command = [sys.executable, __file__, "--child-chain", str(length)]
    if expressions:
        command.append("--child-expressions")
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return ChainFigures(figures["wall"] / length * 1000, figures["cpu"] / length * 1000, figures["peak_mib"])


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
    parser.add_argument(
        "--long-chain", type=int, default=10000, help="length of the expression chain (default 10000)"
    )
    parser.add_argument(
        "--branches", type=int, default=10000, help="branches of the validated fan-out (default 10000)"
    )
    parser.add_argument("--child-chain", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-expressions", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_chain is not None:
        await chain_child(args.child_chain, args.child_expressions)
        return
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

    long, short = args.long_chain, max(1, args.long_chain // 10)
    measured = {
        f"expression_chain_{long}": measure_chain(long, expressions=True),
        f"baseline.expression_chain_{short}": measure_chain(short, expressions=True),
        f"baseline.plain_chain_{long}": measure_chain(long, expressions=False),
    }
    for name, figures in measured.items():
        line(f"{name}_ms_per_node", figures.wall_ms_per_node, "ms")
    line("target.expression_chain_ms_per_node", 0.3, "ms")
    for name, figures in measured.items():
        line(f"{name}_cpu_ms_per_node", figures.cpu_ms_per_node, "ms")
    for name, figures in measured.items():
        line(f"{name}_peak_mib", figures.peak_mib, "MiB")
    line("target.expression_chain_peak_mib", 150, "MiB")

    wide, narrow = args.branches, max(1, args.branches // 10)
    validations = {
        f"fanout_validation_{wide}": validation_ms(fanout_canvas(wide)),
        f"baseline.fanout_validation_{narrow}": validation_ms(fanout_canvas(narrow)),
        f"baseline.chain_validation_{wide}": validation_ms(chain_canvas(wide)),
        # Each node names the trigger: every reference is checked against the nodes upstream.
        f"named_chain_validation_{wide}": validation_ms(chain_canvas(wide, NAMES_THE_TRIGGER)),
    }
    for name, (wall, _) in validations.items():
        line(f"{name}_ms", wall, "ms")
    line("target.fanout_validation_ms", 50, "ms")
    for name, (_, cpu) in validations.items():
        line(f"{name}_cpu_ms", cpu, "ms")


if __name__ == "__main__":
    asyncio.run(main())
