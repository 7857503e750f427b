"""Durable runs: SIGKILL at random points, restart, and every run completes once, nothing leaked."""

from __future__ import annotations

import collections
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from run_fakes import FakeBackend

from daytonaflow.runner import RunStore

WORKER = Path(__file__).with_name("run_durable_worker.py")
RUNS = 20


def spawn(db: Path, backend: Path, *mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(backend), *mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after_ready(process: subprocess.Popen[str], delay: float) -> None:
    assert process.stdout is not None
    process.stdout.readline()  # "ready N" (or EOF if it died first)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_runs_killed_at_random_points_resume_to_completion_without_duplicates(tmp_path: Path) -> None:
    rng = random.Random(20260119)
    db, backend_dir = tmp_path / "runs.db", tmp_path / "backend"
    kill_after_ready(spawn(db, backend_dir, "start", str(RUNS)), rng.uniform(0.0, 0.4))
    for _ in range(8):
        kill_after_ready(spawn(db, backend_dir, "resume"), rng.uniform(0.05, 0.6))
    final = spawn(db, backend_dir, "resume")
    stdout, stderr = final.communicate(timeout=120)
    assert final.returncode == 0, stderr
    assert stdout.rstrip().endswith("done")

    backend = FakeBackend(backend_dir)
    with RunStore(db) as store:
        runs = store.list_runs(limit=100)
        assert len(runs) == RUNS
        assert {run.status for run in runs} == {"succeeded"}
        for run in runs:
            emitted = collections.Counter(event.node_id for event in store.events(run.id))
            assert emitted == dict.fromkeys(["start", "make", "poll", "echo", "free", "record"], 1)
            assert [r.state for r in store.resources(run.id)] == ["released"]
    created: dict[str, set[str]] = collections.defaultdict(set)
    for entry in backend.entries():
        if entry["op"] == "create":
            created[entry["run"]].add(entry["id"])
    assert sorted(created) == sorted(run.id for run in runs)
    assert {len(ids) for ids in created.values()} == {1}, "a run created more than one resource"
    assert backend.live() == []
    assert len(list((backend_dir / "done").iterdir())) == RUNS
