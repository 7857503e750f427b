"""Twenty runs at once while their only worker is restarted ten times (alternately SIGTERM, the clean
stop of a deploy, and SIGKILL, a crash): every run still succeeds and no sandbox is left."""

from __future__ import annotations

import asyncio

import pytest
from temporal_testkit import Rig, command_canvas, live_sandboxes, wait_ended, wait_until

pytestmark = pytest.mark.sandbox
_RUNS = 20
_RESTARTS = 10
_RUN_SECONDS = 900.0
_HEARTBEAT_SECONDS = 3.0
#: How long each worker generation serves before the next restart.
_SERVE_SECONDS = 2.0
_GO = "/home/daytona/go"
#: The command holds every run open until the test says go: no run can end before the restarts do.
_COMMAND = f"while [ ! -e {_GO} ]; do sleep 0.2; done; echo finished"


async def test_twenty_runs_all_succeed_across_ten_worker_restarts(rig: Rig) -> None:
    from daytonaflow.temporal import RunOptions

    canvas = command_canvas(rig.label, _COMMAND, timeout=int(_RUN_SECONDS))
    options = RunOptions(heartbeat_seconds=_HEARTBEAT_SECONDS)
    worker = rig.workers.start()
    run_ids = [await rig.runs.start(canvas, options=options) for _ in range(_RUNS)]
    for restart in range(_RESTARTS):
        await asyncio.sleep(_SERVE_SECONDS)
        # Off the loop: stopping and starting wait for processes.
        await asyncio.to_thread(worker.stop if restart % 2 == 0 else worker.kill)
        worker = await asyncio.to_thread(rig.workers.start)

    async def all_created() -> bool:
        return len(await live_sandboxes(rig.integration, rig.label)) >= _RUNS

    await wait_until(all_created, timeout=_RUN_SECONDS, what=f"{_RUNS} sandboxes", interval=0.5)
    sandboxes = await live_sandboxes(rig.integration, rig.label)
    assert len(sandboxes) == _RUNS  # one per run: no restart made a second one
    for sandbox in sandboxes:
        await rig.integration.client.execute(sandbox.id, f"touch {_GO}")
    await asyncio.gather(*(wait_ended(rig.client, run_id, timeout=_RUN_SECONDS) for run_id in run_ids))
    outcomes = {}
    for run_id in run_ids:
        record = (await rig.runs.get(run_id)).record
        outcomes[run_id] = (record.status, record.error)
    assert outcomes == {run_id: ("succeeded", None) for run_id in run_ids}
    assert await live_sandboxes(rig.integration, rig.label) == []
