"""Killed at random points and restarted, hello runs on the local server all finish: no duplicate or
leaked sandbox."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from run_support import kill_after_ready, sandbox_resources, spawn_worker

from daytonaflow.runner import RunStore

pytestmark = pytest.mark.sandbox
WORKER = Path(__file__).with_name("run_e2e_worker.py")
RUNS = 20


def spawn(server: Any, db: Path, *mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DAYTONA_API_URL": server.api_url, "DAYTONA_API_KEY": server.api_key}
    env.pop("DAYTONA_TARGET", None)
    return spawn_worker(WORKER, str(db), *mode, env=env)


def test_hello_runs_killed_at_random_points_finish_without_duplicate_or_leaked_sandboxes(
    server: Any, tmp_path: Path
) -> None:
    rng = random.Random(4242)
    db = tmp_path / "runs.db"
    kill_after_ready(spawn(server, db, "start", str(RUNS)), rng.uniform(0.0, 0.3))
    for _ in range(6):
        kill_after_ready(spawn(server, db, "resume"), rng.uniform(0.0, 0.25))
    final = spawn(server, db, "resume")
    _, stderr = final.communicate(timeout=180)
    assert final.returncode == 0, stderr
    with RunStore(db) as store:
        runs = store.list_runs(limit=100)
        assert len(runs) == RUNS
        assert {run.status for run in runs} == {"succeeded"}, [r.error for r in runs if r.error]
        for run in runs:
            (sandbox,) = sandbox_resources(store, run.id)  # one sandbox per run: a re-run made no second one
            assert sandbox.state == "released"
            hello = next(e for e in store.events(run.id) if e.node_id == "say-hello")
            assert hello.event["data"]["result"].startswith("Hello, run ")
    headers = {"Authorization": f"Bearer {server.api_key}"}
    left = httpx.get(f"{server.api_url}/sandbox", headers=headers, timeout=30).json()
    items = left["items"] if isinstance(left, dict) else left
    assert [s for s in items if s.get("state") not in ("destroyed", "destroying")] == []
