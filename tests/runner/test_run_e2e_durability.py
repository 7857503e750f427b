"""Killed at random points and restarted, hello runs on the local server all finish: no duplicate or
leaked sandbox."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

components = pytest.importorskip("daytonaflow.components", reason="daytonaflow.components is not built yet")
localserver = pytest.importorskip(
    "daytonaflow.localserver", reason="daytonaflow.localserver is not built yet"
)

from daytonaflow.runner import RunStore  # noqa: E402

pytestmark = pytest.mark.sandbox
WORKER = Path(__file__).with_name("run_e2e_worker.py")
RUNS = 20


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-runner-kill-"))
    root.chmod(0o711)  # the unprivileged sandbox uid must traverse the state directory
    instance = localserver.LocalServer(state_dir=root / "state")
    try:
        instance.start()
    except localserver.IsolationUnavailableError as error:
        pytest.skip(f"bubblewrap sandboxes unavailable here: {error}")
    try:
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(root, ignore_errors=True)


def spawn(server: Any, db: Path, *mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DAYTONA_API_URL": server.api_url, "DAYTONA_API_KEY": server.api_key}
    env.pop("DAYTONA_TARGET", None)
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), *mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def kill_after_ready(process: subprocess.Popen[str], delay: float) -> None:
    assert process.stdout is not None
    process.stdout.readline()
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()


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
            (sandbox,) = store.resources(run.id)  # one sandbox per run: a re-run made no second one
            assert sandbox.state == "released"
            hello = next(e for e in store.events(run.id) if e.node_id == "say-hello")
            assert hello.event["data"]["result"].startswith("Hello, run ")
    headers = {"Authorization": f"Bearer {server.api_key}"}
    left = httpx.get(f"{server.api_url}/sandbox", headers=headers, timeout=30).json()
    items = left["items"] if isinstance(left, dict) else left
    assert [s for s in items if s.get("state") not in ("destroyed", "destroying")] == []
