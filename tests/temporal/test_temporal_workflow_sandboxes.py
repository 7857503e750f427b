"""The canvas workflow driving the Daytona components against a real ``daytonaflow serve``.

An in-process worker with the session's local backend as its integration: the components' durable
state (the sandbox in their metadata, the sandbox as a run resource) goes through the workflow's
signals, and the workflow's last step reclaims what the run still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from temporal_testkit import command_canvas, live_sandboxes
from temporalio.client import Client

from daytonaflow.runner.progress import RunUpdate
from daytonaflow.temporal import RunOptions, TemporalRuns, TemporalSettings, build_worker

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(300)]


async def _run(
    client: Client, settings: TemporalSettings, integration: Any, canvas: Any
) -> tuple[Any, list[RunUpdate], TemporalRuns]:
    runs = TemporalRuns(client, settings)
    worker = build_worker(client, settings, integration=integration)
    task = asyncio.create_task(worker.run())
    updates: list[RunUpdate] = []
    try:
        run_id = await runs.start(canvas, options=RunOptions(heartbeat_seconds=5.0))
        record = await asyncio.wait_for(runs.watch(run_id, updates.append), 240)
    finally:
        await worker.shutdown()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return record, updates, runs


async def test_a_failing_command_fails_the_run_and_the_workflow_reclaims_its_sandbox(
    temporal_client: Client, temporal_settings: TemporalSettings, integration: Any, label: str
) -> None:
    canvas = command_canvas(label, "echo about to fail; exit 3")
    record, updates, runs = await _run(temporal_client, temporal_settings, integration, canvas)
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.startswith('node "run-command" emitted on "failed" and no edge handles it')
    snapshot = await runs.get(record.id)
    states = {r.kind: r.state for r in snapshot.resources(record.id)}
    # The creation marker is released once the sandbox is recorded; the sandbox itself is reclaimed.
    assert states == {"daytona.sandbox-creation": "released", "daytona.sandbox": "reclaimed"}
    assert [u.kind for u in updates][-2:] == ["resource.reclaimed", "run.finished"]
    assert await live_sandboxes(integration, label) == []


async def test_a_command_canvas_runs_to_success_and_its_delete_node_releases_the_sandbox(
    temporal_client: Client, temporal_settings: TemporalSettings, integration: Any, label: str
) -> None:
    canvas = command_canvas(label, "echo hello from temporal")
    record, updates, runs = await _run(temporal_client, temporal_settings, integration, canvas)
    assert record.status == "succeeded", record.error
    ran = next(u for u in updates if u.node_id == "run-command" and u.kind == "node.emitted")
    assert ran.channel == "success"
    assert ran.event is not None and "hello from temporal" in str(ran.event["data"])
    snapshot = await runs.get(record.id)
    states = {r.kind: r.state for r in snapshot.resources(record.id)}
    assert states.get("daytona.sandbox") == "released"
    assert await live_sandboxes(integration, label) == []
