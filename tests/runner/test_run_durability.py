"""Durable runs: SIGKILL at random points, restart, and every run completes once, nothing leaked."""

from __future__ import annotations

import asyncio
import collections
import random
import socket
import subprocess
from pathlib import Path
from typing import Any

from run_fakes import FAKE_COMPONENTS, FakeBackend, make_canvas
from run_support import kill_after_ready, spawn_worker

from daytonaflow.runner import Engine, RunStore, parse_canvas

WORKER = Path(__file__).with_name("run_durable_worker.py")
RUNS = 20


def spawn(db: Path, backend: Path, *mode: str) -> subprocess.Popen[str]:
    return spawn_worker(WORKER, str(db), str(backend), *mode)


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


DEAD_OWNER = f"{socket.gethostname()}:999999999:0"


async def test_a_run_whose_node_failed_before_a_crash_resumes_as_failed_and_runs_no_further(
    store: RunStore, backend: FakeBackend
) -> None:
    canvas = parse_canvas(
        make_canvas(
            [
                {"id": "make", "component": "test.acquire"},
                {"id": "fail", "component": "test.fail", "configuration": {"message": "tests failed"}},
                {"id": "poll", "component": "test.poll", "configuration": {"every": 0.01, "polls": 2}},
                {"id": "after", "component": "test.echo", "configuration": {"value": 1}},
            ],
            [("start", "make"), ("make", "fail"), ("make", "poll"), ("poll", "after")],
        )
    )
    first = Engine(store, registry=FAKE_COMPONENTS, integration=backend)
    stuck: list[asyncio.Task[Any]] = []

    async def dies_while_stopping(run: Any) -> None:
        # The process is killed right after the failure was recorded, before anything was stopped.
        stuck.append(asyncio.current_task())  # type: ignore[arg-type]
        await asyncio.Event().wait()

    first._stop_all = dies_while_stopping  # type: ignore[method-assign]
    run_id = await first.start(canvas)
    while not stuck:
        await asyncio.sleep(0.001)
    await first.aclose()
    for task in stuck:
        task.cancel()
    store.claim_run(run_id, store.get_run(run_id).owner, DEAD_OWNER)

    second = Engine(store, registry=FAKE_COMPONENTS, integration=backend)
    assert await second.resume() == [run_id]
    record = await asyncio.wait_for(second.wait(run_id), 10)

    assert record.status == "failed"
    assert record.error == 'node "fail": tests failed'
    statuses = {e.node_id: e.status for e in store.executions(run_id)}
    assert statuses["poll"] == "cancelled"
    assert "after" not in statuses
    assert backend.live() == []
