"""Ctrl-C on `daytonaflow run` with the embedded backend: quiet, ordered, exit 130, no sandbox left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_support import sandbox_resources
from sandbox_dirs import traversable_temp_dir

from daytonaflow.runner import RunStore

pytestmark = pytest.mark.sandbox
TIMEOUT_SECONDS = 180
SLEEPY = """\
apiVersion: v1
kind: Canvas
metadata: {name: sleepy}
spec:
  nodes:
    - {id: start, name: start, type: TYPE_TRIGGER, component: start}
    - {id: create, name: create, type: TYPE_ACTION, component: daytona.createSandbox}
    - id: nap
      name: nap
      type: TYPE_ACTION
      component: daytona.executeCommand
      configuration:
        sandbox: '{{ $["create"].data.id }}'
        command: 'echo napping; sleep 30'
  edges:
    - {sourceId: start, targetId: create, channel: default}
    - {sourceId: create, targetId: nap, channel: default}
"""


@pytest.fixture
def workspace() -> Iterator[Path]:
    with traversable_temp_dir("daytonaflow-interrupt-") as root:
        (root / "sleepy.yaml").write_text(SLEEPY)
        yield root


def _env(root: Path) -> dict[str, str]:
    env = {**os.environ, "XDG_DATA_HOME": str(root / "xdg")}
    for name in ("DAYTONA_API_KEY", "DAYTONA_API_URL", "DAYTONA_TARGET"):
        env.pop(name, None)
    return env


def _cli(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "daytonaflow.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(root),
        # Its own process group, as a shell gives a foreground job: the Ctrl-C goes to all of it.
        start_new_session=True,
    )


def test_ctrl_c_during_a_command_cancels_quietly_and_leaves_no_sandbox(workspace: Path) -> None:
    db = workspace / "runs.db"
    run = _cli(workspace, "run", str(workspace / "sleepy.yaml"), "--db", str(db), "--json")
    assert run.stdout is not None
    events = []
    for line in run.stdout:
        events.append(json.loads(line))
        # The command's first output, streamed as it runs: it is running now.
        if events[-1].get("node_id") == "nap" and events[-1]["kind"] == "node.output":
            break
    os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C does to the foreground job
    stdout, stderr = run.communicate(timeout=TIMEOUT_SECONDS)
    events += [json.loads(line) for line in stdout.splitlines()]
    assert run.returncode == 130, stderr
    assert "Traceback" not in stderr and "failed" not in stderr, stderr
    assert not [e for e in events if e["kind"] in ("node.failed", "resource.reclaim_failed")]
    with RunStore(db) as store:
        (record,) = store.list_runs()
        (sandbox,) = sandbox_resources(store, record.id)
    assert record.status == "cancelled"
    assert sandbox.state == "reclaimed"
    sandboxes = workspace / "xdg" / "daytonaflow" / "local" / "sandboxes"
    assert list(sandboxes.iterdir()) == []
    listing = _cli(workspace, "sandboxes", "--json")
    listed, errors = listing.communicate(timeout=TIMEOUT_SECONDS)
    assert listing.returncode == 0, errors
    assert json.loads(listed) == []
