"""Crash-resume on the embedded backend: ``daytonaflow run`` SIGKILLed at random points, then resumed.

Each round starts ``daytonaflow run`` on a canvas (create a sandbox, run a command that writes a
file, run code that reads it, delete the sandbox) with the embedded local server (no
``DAYTONA_API_KEY``), kills it with SIGKILL at a random moment of the run, and runs
``daytonaflow runs resume`` on the same database and state. The run must end succeeded, or failed
with the clear "was interrupted" message of a command that had started; no run may have made a
second sandbox; no sandbox may be left, neither in ``daytonaflow sandboxes`` nor in the local
server's state directory.

Prints ``name value unit`` lines: kills, completed, clear_failures, other_failures, duplicates,
leaks. Loopback only. Run: ``python bench/crash_resume.py [--kills 20] [--seed 7]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from daytonaflow.runner import RunStore

CANVAS = """\
apiVersion: v1
kind: Canvas
metadata: {name: crash-resume}
spec:
  nodes:
    - {id: start, name: start, type: TYPE_TRIGGER, component: start}
    - {id: create, name: create, type: TYPE_ACTION, component: daytona.createSandbox}
    - id: write
      name: write
      type: TYPE_ACTION
      component: daytona.executeCommand
      configuration:
        sandbox: '{{ $["create"].data.id }}'
        command: 'echo written >> /home/daytona/log.txt; sleep 1; echo done'
    - id: read
      name: read
      type: TYPE_ACTION
      component: daytona.executeCode
      configuration:
        sandbox: '{{ $["create"].data.id }}'
        code: |
          import time
          time.sleep(0.5)
          print(open("/home/daytona/log.txt").read().strip())
    - id: delete
      name: delete
      type: TYPE_ACTION
      component: daytona.deleteSandbox
      configuration:
        sandbox: '{{ $["create"].data.id }}'
  edges:
    - {sourceId: start, targetId: create, channel: default}
    - {sourceId: create, targetId: write, channel: default}
    - {sourceId: write, targetId: read, channel: success}
    - {sourceId: read, targetId: delete, channel: success}
"""
#: The words every clear failure of an interrupted command carries.
CLEAR_FAILURE = "was interrupted"
#: How long after the run started a kill may land (the run takes about this long).
KILL_WINDOW_SECONDS = 3.0
COMMAND_TIMEOUT_SECONDS = 240.0


@dataclass
class Figures:
    kills: int = 0
    completed: int = 0
    clear_failures: int = 0
    other_failures: int = 0
    duplicates: int = 0
    leaks: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        names = ("kills", "completed", "clear_failures", "other_failures", "duplicates", "leaks")
        return [f"{name} {getattr(self, name)} runs" for name in names]


class Workspace:
    """A database, a canvas and a local-server state directory the sandbox uid can traverse."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "runs.db"
        self.canvas = root / "canvas.yaml"
        self.canvas.write_text(CANVAS)
        self.env = {**os.environ, "XDG_DATA_HOME": str(root / "xdg")}
        for name in ("DAYTONA_API_KEY", "DAYTONA_API_URL", "DAYTONA_TARGET", "DAYTONAFLOW_DB"):
            self.env.pop(name, None)

    @property
    def sandbox_dirs(self) -> Path:
        return self.root / "xdg" / "daytonaflow" / "local" / "sandboxes"

    def cli(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "daytonaflow.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )


def _kill_during_run(workspace: Workspace, rng: random.Random) -> str | None:
    """Start a run, SIGKILL it at a random moment after it started; the run's id (None if none)."""
    process = workspace.cli("run", str(workspace.canvas), "--db", str(workspace.db), "--json")
    assert process.stdout is not None
    run_id = None
    for line in process.stdout:
        event = json.loads(line)
        if event.get("kind") == "run.started":
            run_id = event["run_id"]
            break
    time.sleep(rng.uniform(0.0, KILL_WINDOW_SECONDS))
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
    return run_id


def _resume(workspace: Workspace) -> str:
    process = workspace.cli("runs", "resume", "--db", str(workspace.db), "--json")
    _, stderr = process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
    return stderr


def _listed_sandboxes(workspace: Workspace) -> list[str]:
    process = workspace.cli("sandboxes", "--json")
    stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
    if process.returncode != 0:
        raise RuntimeError(f"daytonaflow sandboxes failed: {stderr}")
    return [item["id"] for item in json.loads(stdout)]


def _judge(workspace: Workspace, run_id: str, figures: Figures, resume_stderr: str) -> None:
    with RunStore(workspace.db) as store:
        record = store.get_run(run_id)
        sandboxes = [r for r in store.resources(run_id) if r.kind == "daytona.sandbox"]
    if len(sandboxes) > 1:
        figures.duplicates += 1
        figures.problems.append(f"run {run_id} made {len(sandboxes)} sandboxes")
    if record.status == "succeeded":
        figures.completed += 1
    elif record.status == "failed" and CLEAR_FAILURE in (record.error or ""):
        figures.clear_failures += 1
    else:
        figures.other_failures += 1
        figures.problems.append(f"run {run_id} ended {record.status}: {record.error} {resume_stderr[-500:]}")


def _count_leaks(workspace: Workspace, figures: Figures) -> None:
    # Listed first: that server start removes what a killed server left half-made (a spare being
    # started, a half-deleted sandbox), and its clean stop must leave nothing else on disk.
    listed = _listed_sandboxes(workspace)
    root = workspace.sandbox_dirs
    on_disk = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    leaked = set(on_disk) | set(listed)
    if leaked:
        figures.leaks += len(leaked)
        contents = {name: sorted(p.name for p in (root / name).iterdir()) for name in on_disk}
        figures.problems.append(f"leaked sandboxes: {sorted(leaked)} (on disk {contents}, listed {listed})")
        for sandbox_id in leaked:  # the next round starts clean
            workspace.cli("sandboxes", "delete", sandbox_id).communicate(timeout=COMMAND_TIMEOUT_SECONDS)


def crash_resume(kills: int, seed: int, root: Path) -> Figures:
    """``kills`` rounds of run, SIGKILL, resume in ``root``; the figures of how they ended."""
    rng = random.Random(seed)
    workspace = Workspace(root)
    figures = Figures()
    while figures.kills < kills:
        run_id = _kill_during_run(workspace, rng)
        if run_id is None:
            raise RuntimeError("daytonaflow run never started its run")
        figures.kills += 1
        _judge(workspace, run_id, figures, _resume(workspace))
        leaks_before = figures.leaks
        _count_leaks(workspace, figures)
        if figures.leaks != leaks_before:
            with RunStore(workspace.db) as store:
                record = store.get_run(run_id)
                held = [(r.kind, r.resource_id, r.state) for r in store.resources(run_id)]
                nodes = [(e.node_id, e.status) for e in store.executions(run_id)]
            figures.problems.append(f"run {run_id} {record.status} resources {held} nodes {nodes}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-crash-"))
    root.chmod(0o711)  # the unprivileged sandbox uid must traverse to the state directory
    started = time.monotonic()
    try:
        figures = crash_resume(args.kills, args.seed, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for line in figures.lines():
        print(line, flush=True)
    print(f"elapsed {time.monotonic() - started:.1f} s", flush=True)
    for problem in figures.problems:
        print(f"# {problem}", file=sys.stderr)


if __name__ == "__main__":
    main()
