"""The ``daytonaflow`` command as a whole process: ``--help``, the hello canvas, ``runs show`` of a huge run.

Every figure is the wall time of a fresh CLI process, as a user starts it. The baseline, measured
in the same run and the same venv, is ``python -c "import httpx"``; the processes are interleaved
(baseline, help, hello, show, ...) so that the load of a shared machine weighs on all alike, and
each figure is the median of ``--repeat`` rounds after one warm-up round.

- ``cli.help``: ``daytonaflow --help`` (target ≤ 0.5 x the baseline).
- ``cli.hello``: ``daytonaflow run examples/hello.yaml`` on the embedded local backend (its default
  state directory), a real sandbox created, used and deleted (target ≤ 3.5 x the baseline).
- ``runs_show_10000_events_s`` / ``runs_show_json_10000_events_s``: ``daytonaflow runs show ID``
  (and ``--json``) of one run of 10,000 node executions and 10,000 events, written beforehand
  through the run store's API into a temporary database (target ≤ 1 s each).

The children run byte-compiled, as an installed package does: the bench gives them a bytecode
cache of their own (``PYTHONPYCACHEPREFIX`` in a temporary directory, filled by the warm-up), so
an environment with ``PYTHONDONTWRITEBYTECODE`` does not make them compile every module each time.
Prints ``name value unit`` lines.

    python bench/cli.py [--repeat 7] [--events 10000] [--skip-hello]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from daytonaflow.runner import RunStore
from daytonaflow.runner.store import EXEC_COMPLETED, RUN_SUCCEEDED

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "examples" / "hello.yaml"
TARGET_HELP_RATIO = 0.5
TARGET_HELLO_RATIO = 3.5
TARGET_SHOW_SECONDS = 1.0


class BenchError(Exception):
    """A measured command did not do what it is measured doing."""


def line(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.4f} {unit}", flush=True)


def timed(argv: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return elapsed


def build_huge_run(db: Path, events: int) -> str:
    """One finished run of a chain of ``events`` nodes, each execution with its one event, written
    through the store's API (the calls the engine makes, in one transaction to build it fast)."""
    run_id = "bench-huge-run"
    nodes = [{"id": "start", "type": "TYPE_TRIGGER", "component": "start"}]
    nodes += [{"id": f"n{i}", "name": f"Step {i}", "component": "bench.noop"} for i in range(events - 1)]
    ids = [node["id"] for node in nodes]
    edges = [{"sourceId": a, "targetId": b, "channel": "default"} for a, b in itertools.pairwise(ids)]
    canvas = {
        "apiVersion": "v1",
        "kind": "Canvas",
        "metadata": {"name": "huge"},
        "spec": {"nodes": nodes, "edges": edges},
    }
    with RunStore(db) as store, store.transaction():
        store.insert_run(run_id, canvas, {"size": events}, keep_resources=False, owner="bench")
        parent: str | None = None
        for index, node in enumerate(nodes):
            execution_id = f"exec-{index}"
            component = str(node["component"])
            store.insert_execution(
                execution_id, run_id, node["id"], str(node.get("name", node["id"])), component, parent
            )
            store.mark_started(execution_id, "running")
            event_id = f"event-{index}"
            event = {
                "type": "bench.step",
                "data": {"index": index, "text": f"step {index} done"},
                "timestamp": "2026-01-19T12:00:00Z",
            }
            store.insert_event(event_id, run_id, execution_id, node["id"], "default", parent, event)
            store.finish_execution(execution_id, EXEC_COMPLETED, channel="default", output_event_id=event_id)
            parent = event_id
        store.set_run_status(run_id, RUN_SUCCEEDED)
    return run_id


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument("--events", type=int, default=10_000, help="events of the huge run (default 10000)")
    parser.add_argument("--skip-hello", action="store_true", help="leave out the hello canvas (no sandboxes)")
    args = parser.parse_args()
    daytonaflow = shutil.which("daytonaflow", path=str(Path(sys.executable).parent))
    if daytonaflow is None:
        raise BenchError(f"no daytonaflow command beside {sys.executable}: install the package in this venv")
    with tempfile.TemporaryDirectory(prefix="daytonaflow-bench-cli-") as directory:
        work = Path(directory)
        # The embedded server keeps its default state directory, as `daytonaflow run` uses it.
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env.pop("DAYTONA_API_KEY", None)
        env.update(PYTHONPYCACHEPREFIX=str(work / "pycache"))
        hello_db, huge_db = work / "hello.db", work / "huge.db"
        started = time.perf_counter()
        run_id = build_huge_run(huge_db, args.events)
        line("setup.huge_run_build", time.perf_counter() - started, "s")
        commands = {
            "baseline.import_httpx": [sys.executable, "-c", "import httpx"],
            "cli.help": [daytonaflow, "--help"],
            "cli.runs_help": [daytonaflow, "runs", "--help"],
            "runs_show": [daytonaflow, "runs", "show", run_id, "--db", str(huge_db)],
            "runs_show_json": [daytonaflow, "runs", "show", run_id, "--json", "--db", str(huge_db)],
        }
        if not args.skip_hello:
            commands["cli.hello"] = [daytonaflow, "run", str(HELLO), "--db", str(hello_db)]
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(args.repeat + 1):
            for name, argv in commands.items():
                elapsed = timed(argv, env, work)
                if round_:  # the first round fills the bytecode cache and the server's state
                    samples[name].append(elapsed)
        median = {name: statistics.median(values) for name, values in samples.items()}
        baseline = median["baseline.import_httpx"]
        line("baseline.import_httpx.wall.median", baseline, "s")
        line("cli.help.wall.median", median["cli.help"], "s")
        line("cli.help.ratio", median["cli.help"] / baseline, "x")
        line("cli.runs_help.ratio", median["cli.runs_help"] / baseline, "x")
        line("target.cli.help.ratio", TARGET_HELP_RATIO, "x")
        if "cli.hello" in median:
            line("cli.hello.wall.median", median["cli.hello"], "s")
            line("cli.hello.ratio", median["cli.hello"] / baseline, "x")
            line("target.cli.hello.ratio", TARGET_HELLO_RATIO, "x")
        line(f"runs_show_{args.events}_events_s", median["runs_show"], "s")
        line(f"runs_show_json_{args.events}_events_s", median["runs_show_json"], "s")
        line("target.runs_show_s", TARGET_SHOW_SECONDS, "s")


if __name__ == "__main__":
    main()
