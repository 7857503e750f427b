"""A run whose resumes keep killing their process is failed, not resumed by every later command."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path

from run_fakes import FAKE_COMPONENTS, FakeBackend, make_canvas

from daytonaflow.runner import DEFAULT_MAX_RESUME_ATTEMPTS, Engine, RunStore, parse_canvas

WORKER = Path(__file__).with_name("run_crash_worker.py")
DEAD_OWNER = f"{socket.gethostname()}:999999999:0"


def worker(db: Path, backend: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WORKER), str(db), str(backend), mode],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_run_whose_resume_killed_its_process_twice_is_failed_and_later_commands_work(
    tmp_path: Path,
) -> None:
    db, backend_dir = tmp_path / "runs.db", tmp_path / "backend"
    assert DEFAULT_MAX_RESUME_ATTEMPTS == 2
    # The first process and two resumes die in the `die` node.
    for mode in ("start", "resume", "resume"):
        assert worker(db, backend_dir, mode).returncode == -signal.SIGKILL
    # The third command, an unrelated run, no longer dies with it.
    other = worker(db, backend_dir, "other")
    assert other.returncode == 0, other.stderr
    assert other.stdout.splitlines() == ["status crashing failed", "status unrelated succeeded"]

    backend = FakeBackend(backend_dir)
    assert [entry["op"] for entry in backend.entries()].count("die") == 3
    assert backend.live() == []  # the crashing run's resource was reclaimed when it was failed
    with RunStore(db) as store:
        crashing = next(run for run in store.list_runs() if run.canvas_name == "crashing")
        assert crashing.error == (
            "not resumed again: the process died in each of the last 2 resumes of this run before it"
            ' finished (nodes interrupted: "die"); a node may be crashing the runner'
        )
        (die,) = [e for e in store.executions(crashing.id) if e.node_id == "die"]
        assert (die.status, die.error) == ("failed", crashing.error)
    assert worker(db, backend_dir, "resume").stdout == ""  # nothing left to resume


def test_one_crashed_resume_is_still_resumed(tmp_path: Path) -> None:
    db, backend_dir = tmp_path / "runs.db", tmp_path / "backend"
    assert worker(db, backend_dir, "start").returncode == -signal.SIGKILL
    assert worker(db, backend_dir, "resume").returncode == -signal.SIGKILL
    # Below the limit the run is tried again (and dies again): one crash may have been bad luck.
    assert worker(db, backend_dir, "resume").returncode == -signal.SIGKILL
    assert [entry["op"] for entry in FakeBackend(backend_dir).entries()].count("die") == 3


async def test_an_engine_that_closes_on_purpose_does_not_count_as_a_crashed_resume(
    store: RunStore, backend: FakeBackend
) -> None:
    canvas = parse_canvas(
        make_canvas(
            [{"id": "wait", "component": "test.poll", "configuration": {"every": 60, "polls": 2}}],
            [("start", "wait")],
        )
    )
    first = Engine(store, registry=FAKE_COMPONENTS, integration=backend)
    run_id = await first.start(canvas)
    await first.aclose()
    store.claim_run(run_id, store.get_run(run_id).owner, DEAD_OWNER)  # as if its owner died
    for _ in range(3):
        engine = Engine(store, registry=FAKE_COMPONENTS, integration=backend)
        assert await engine.resume() == [run_id]
        await engine.aclose()
        store.claim_run(run_id, store.get_run(run_id).owner, DEAD_OWNER)
        assert store.get_run(run_id).status == "running"
        assert store.get_run(run_id).resume_attempts == 0


async def test_a_resumed_run_that_takes_a_step_starts_counting_its_crashes_anew(
    store: RunStore, backend: FakeBackend
) -> None:
    """Only resumes that die before the run moves on count: a run resumed beside a crashing one,
    or in a process killed from outside after it made progress, is not failed for it."""
    canvas = parse_canvas(
        make_canvas(
            [
                {"id": "soon", "component": "test.poll", "configuration": {"every": 0.05, "polls": 1}},
                {"id": "later", "component": "test.poll", "configuration": {"every": 60, "polls": 2}},
            ],
            [("start", "soon"), ("soon", "later")],
        )
    )
    first = Engine(store, registry=FAKE_COMPONENTS, integration=backend)
    run_id = await first.start(canvas)
    await first.aclose()
    store.claim_run(run_id, store.get_run(run_id).owner, DEAD_OWNER)
    store.count_resume_attempt(run_id)  # as if one resume had died already
    engine = Engine(store, registry=FAKE_COMPONENTS, integration=backend)
    assert await engine.resume() == [run_id]
    assert store.get_run(run_id).resume_attempts == 2
    for _ in range(200):
        if any(e.node_id == "soon" and e.status == "emitted" for e in store.executions(run_id)):
            break
        await asyncio.sleep(0.01)
    assert store.get_run(run_id).resume_attempts == 0
    await engine.aclose()
