"""A worker killed with SIGKILL mid-run (a lost machine): a second worker completes the run, with the
one sandbox the run created (no duplicate made by the re-run, none leaked), the command not re-run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporal_testkit import Rig, command_canvas, live_sandboxes, read_in_sandbox, wait_ended, wait_until

from daytonaflow.runner import Canvas

pytestmark = pytest.mark.sandbox
_RUN_SECONDS = 300.0
_RUNS_LOG = "/home/daytona/runs.log"
#: Short heartbeats so the lost worker is noticed within seconds, not the default ten.
_HEARTBEAT_SECONDS = 3.0


@contextlib.asynccontextmanager
async def _sandboxes_seen(rig: Rig) -> AsyncIterator[set[str]]:
    """Every sandbox id carrying the test's label the server listed while the block ran."""
    seen: set[str] = set()
    task = asyncio.create_task(_labelled_ids(rig, seen))
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _labelled_ids(rig: Rig, seen: set[str]) -> None:
    while True:
        seen.update(sandbox.id for sandbox in await live_sandboxes(rig.integration, rig.label))
        await asyncio.sleep(0.05)


async def _start(rig: Rig, canvas: Canvas) -> str:
    from daytonaflow.temporal import RunOptions

    run_id: str = await rig.runs.start(canvas, options=RunOptions(heartbeat_seconds=_HEARTBEAT_SECONDS))
    return run_id


async def _finish_on_a_second_worker(rig: Rig, run_id: str) -> Any:
    # Off the loop, so the sandbox watch goes on while the worker starts.
    await asyncio.to_thread(rig.workers.start)
    await wait_ended(rig.client, run_id, timeout=_RUN_SECONDS)
    snapshot = await rig.runs.get(run_id)
    assert snapshot.record.status == "succeeded", snapshot.record.error
    return snapshot


def _the_created_sandbox(snapshot: Any, run_id: str) -> str:
    """The id the create node emitted, after checking the run recorded exactly that one sandbox."""
    (created,) = [e.event["data"]["id"] for e in snapshot.events(run_id) if e.node_id == "create-sandbox"]
    sandboxes = [r for r in snapshot.resources(run_id) if r.kind == "daytona.sandbox"]
    assert [(r.resource_id, r.node_id) for r in sandboxes] == [(created, "create-sandbox")]
    return str(created)


async def test_a_worker_killed_while_a_command_runs_is_replaced_without_rerunning_it(rig: Rig) -> None:
    command = f'echo ran >> {_RUNS_LOG}; sleep 8; echo "runs=$(wc -l < {_RUNS_LOG})"'
    first = rig.workers.start()
    async with _sandboxes_seen(rig) as seen:
        run_id = await _start(rig, command_canvas(rig.label, command))

        async def command_started() -> bool:
            return await read_in_sandbox(rig.integration, rig.label, _RUNS_LOG) == "ran\n"

        await wait_until(command_started, timeout=_RUN_SECONDS, what="the command to run", interval=0.2)
        await asyncio.to_thread(first.kill)
        snapshot = await _finish_on_a_second_worker(rig, run_id)
    created = _the_created_sandbox(snapshot, run_id)
    (ran,) = [e.event["data"] for e in snapshot.events(run_id) if e.node_id == "run-command"]
    # One line in the log: the second worker followed the running command instead of starting it again.
    assert (ran["exitCode"], ran["result"].strip().splitlines()[-1]) == (0, "runs=1")
    assert seen == {created}
    assert await live_sandboxes(rig.integration, rig.label) == []


async def test_a_worker_killed_while_a_sandbox_starts_is_replaced_without_a_second_sandbox(rig: Rig) -> None:
    first = rig.workers.start()
    async with _sandboxes_seen(rig) as seen:
        run_id = await _start(rig, command_canvas(rig.label, "echo done"))

        async def sandbox_requested() -> bool:
            return bool(await live_sandboxes(rig.integration, rig.label))

        # The create request reached the server; the worker has not necessarily recorded the sandbox.
        await wait_until(
            sandbox_requested, timeout=_RUN_SECONDS, what="the sandbox to be requested", interval=0.02
        )
        await asyncio.to_thread(first.kill)
        snapshot = await _finish_on_a_second_worker(rig, run_id)
    created = _the_created_sandbox(snapshot, run_id)
    assert seen == {created}
    assert await live_sandboxes(rig.integration, rig.label) == []
