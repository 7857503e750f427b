"""Resolution throughput of the expression language, next to baselines measured in the same run.

Prints `name value unit` lines. Target: >= 100,000 resolutions/s of a single reference.
Run: python bench/expressions.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from daytonaflow.expressions import ChainEntry, ExpressionContext, resolve

SINGLE = '{{ $["Create Sandbox"].data.id }}'
MIXED = (
    'cd {{ $["Clone"].data.path }} && git checkout << root().data.branch >> # {{ previous().data.exitCode }}'
)


def build_context(nodes: int = 20) -> ExpressionContext:
    chain = [
        ChainEntry(
            f"node-{index}",
            f"Step {index}",
            "daytona.executeCommand",
            {"type": "default", "data": {"exitCode": 0, "result": f"out {index}"}, "timestamp": "t"},
        )
        for index in range(nodes - 2)
    ]
    chain.insert(
        0,
        ChainEntry(
            "node-sb", "Create Sandbox", "daytona.createSandbox",
            {"type": "default", "data": {"id": "sb-123", "state": "started"}, "timestamp": "t"},
        ),
    )  # fmt: skip
    chain.insert(
        1,
        ChainEntry(
            "node-clone", "Clone", "daytona.executeCommand",
            {"type": "default", "data": {"path": "/work/app"}, "timestamp": "t"},
        ),
    )  # fmt: skip
    root = {"type": "manual", "data": {"branch": "main"}, "timestamp": "t"}
    return ExpressionContext(chain, root)


def rate(work: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``work``, measured over about ``seconds``."""
    batch = 1_000
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            work()
        calls += batch
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each figure")
    seconds = parser.parse_args().seconds

    ctx = build_context(20)
    assert resolve(SINGLE, ctx) == "sb-123"
    assert resolve(MIXED, ctx) == "cd /work/app && git checkout main # 0"
    events = {entry.node_name: entry.event for entry in ctx.chain}

    figures = {
        "baseline_dict_lookup": rate(lambda: events["Create Sandbox"]["data"]["id"], seconds),
        "baseline_str_format": rate(
            lambda: "cd {} && git checkout {} # {}".format(
                events["Clone"]["data"]["path"], "main", events["Step 17"]["data"]["exitCode"]
            ),
            seconds,
        ),
        "resolve_single_reference": rate(lambda: resolve(SINGLE, ctx), seconds),
        "resolve_mixed_three_references": rate(lambda: resolve(MIXED, ctx), seconds),
    }
    for name, value in figures.items():
        unit = "ops/s" if name.startswith("baseline") else "resolutions/s"
        print(f"{name} {value:.0f} {unit}")
    ratio = figures["resolve_single_reference"] / figures["baseline_dict_lookup"]
    print(f"single_reference_vs_dict_lookup {ratio:.3f} ratio")
    print(f"single_reference_target_met {int(figures['resolve_single_reference'] >= 100_000)} bool")


if __name__ == "__main__":
    main()
