"""``daytonaflow runs cancel ID --engine temporal`` mid-command: the run ends cancelled, the command's
execution is cancelled and the run's sandbox is deleted."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from serve_process import daytonaflow_cli
from temporal_testkit import Rig, command_canvas, live_sandboxes, read_in_sandbox, wait_until

from daytonaflow.runner.store import EXEC_CANCELLED, RES_RECLAIMED, RUN_CANCELLED

pytestmark = pytest.mark.sandbox
_SECONDS = 300.0
_STARTED = "/home/daytona/started"


async def test_runs_cancel_ends_the_run_cancelled_and_deletes_its_sandbox(rig: Rig) -> None:
    rig.workers.start()
    canvas = command_canvas(rig.label, f"echo started > {_STARTED}; sleep 600", timeout=900)
    run_id = await rig.runs.start(canvas)

    async def command_started() -> bool:
        return await read_in_sandbox(rig.integration, rig.label, _STARTED) is not None

    await wait_until(command_started, timeout=_SECONDS, what="the command to run", interval=0.2)
    command = [
        daytonaflow_cli(),
        "runs",
        "cancel",
        run_id,
        "--engine",
        "temporal",
        "--temporal",
        rig.workers.address,
    ]
    cancelled = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=_SECONDS, check=False
    )
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    snapshot = await rig.runs.get(run_id)
    assert snapshot.record.status == RUN_CANCELLED
    statuses = {e.node_id: e.status for e in snapshot.executions(run_id)}
    assert statuses["run-command"] == EXEC_CANCELLED
    assert "delete-sandbox" not in statuses
    sandboxes = [r for r in snapshot.resources(run_id) if r.kind == "daytona.sandbox"]
    assert [r.state for r in sandboxes] == [RES_RECLAIMED]
    assert await live_sandboxes(rig.integration, rig.label) == []
