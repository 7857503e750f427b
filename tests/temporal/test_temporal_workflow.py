"""The canvas workflow on a real Temporal dev server: routing, joins, loops, checks, failures, cancel.

Each test runs an in-process worker (``build_worker`` in the test's loop) on the test's own task
queue, with the built-in components and test-only ones registered through ``registry=``: no
sandboxes, and every behaviour is the workflow's own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from test_temporal_workflow_components import (
    BOX,
    CANCELLED_WITH,
    HOLDING,
    MARKER_ENV,
    RECLAIMED,
    TEST_COMPONENTS,
    make_canvas,
)

from daytonaflow.component import Component
from daytonaflow.runner import CanvasError, Engine, RunInputError, RunStore, parse_canvas
from daytonaflow.runner.canvas import Canvas
from daytonaflow.runner.progress import RunUpdate
from daytonaflow.temporal import (
    CanvasWorkflow,
    RunOptions,
    TemporalConnectionError,
    TemporalRunNotFoundError,
    TemporalRuns,
    TemporalSettings,
    build_worker,
    connect,
)
from daytonaflow.temporal._worker import PASSTHROUGH_MODULES

pytestmark = pytest.mark.timeout(180)

#: Short heartbeats: a test that loses a worker notices it within seconds.
FAST = RunOptions(heartbeat_seconds=3.0, cancel_timeout=20.0)


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    settings: TemporalSettings,
    registry: Mapping[str, type[Component]] = TEST_COMPONENTS,
    **options: Any,
) -> AsyncIterator[None]:
    worker = build_worker(client, settings, registry=registry, **options)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        await worker.shutdown()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def worker(temporal_client: Client, temporal_settings: TemporalSettings) -> AsyncIterator[None]:
    async with running_worker(temporal_client, temporal_settings):
        yield


@pytest.fixture
def runs(temporal_client: Client, temporal_settings: TemporalSettings) -> TemporalRuns:
    return TemporalRuns(temporal_client, temporal_settings)


async def run_to_end(
    runs: TemporalRuns, canvas: Canvas, run_input: Any = None, **start: Any
) -> tuple[Any, list[RunUpdate]]:
    updates: list[RunUpdate] = []
    run_id = await runs.start(canvas, run_input, registry=TEST_COMPONENTS, options=FAST, **start)
    record = await asyncio.wait_for(runs.watch(run_id, updates.append), 120)
    return record, updates


def canvas_of(nodes: list[dict[str, Any]], edges: list[Any]) -> Canvas:
    return parse_canvas(make_canvas(nodes, edges))


def emitted(updates: list[RunUpdate]) -> list[tuple[str | None, str | None]]:
    return [(u.node_id, u.channel) for u in updates if u.kind == "node.emitted"]


# --- routing -------------------------------------------------------------------------------------


async def test_an_if_routes_the_run_by_channel_to_the_branch_its_expression_picks(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of(
        [
            {"id": "check", "component": "if", "configuration": {"expression": "root().data.size > 2"}},
            {"id": "big", "component": "test.echo", "configuration": {"value": "big"}},
            {"id": "small", "component": "test.echo", "configuration": {"value": "small"}},
        ],
        [("start", "check"), ("check", "big", "true"), ("check", "small", "false")],
    )
    record, updates = await run_to_end(runs, canvas, {"size": 5})
    assert record.status == "succeeded", record.error
    assert emitted(updates) == [("start", "default"), ("check", "true"), ("big", "default")]
    snapshot = await runs.get(record.id)
    assert [e.node_id for e in snapshot.events(record.id)] == ["start", "check", "big"]
    assert snapshot.events(record.id)[-1].event["data"] == {"value": "big"}


async def test_a_fan_out_starts_every_listener_of_the_channel(worker: None, runs: TemporalRuns) -> None:
    nodes = [{"id": f"n{i}", "component": "test.echo", "configuration": {"value": i}} for i in range(6)]
    canvas = canvas_of(nodes, [("start", f"n{i}") for i in range(6)])
    record, updates = await run_to_end(runs, canvas)
    assert record.status == "succeeded", record.error
    values = sorted(
        u.event["data"]["value"]
        for u in updates
        if u.kind == "node.emitted" and u.event and u.node_id != "start"
    )
    assert values == list(range(6))
    snapshot = await runs.get(record.id)
    assert snapshot.execution_counts(record.id) == {"emitted": 7}


# --- joins ---------------------------------------------------------------------------------------


async def test_a_merge_emits_once_after_an_input_from_every_upstream_node(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of(
        [
            {"id": "a", "component": "test.echo", "configuration": {"value": "A"}},
            {"id": "b", "component": "test.echo", "configuration": {"value": "B"}},
            {"id": "join", "component": "merge"},
            {
                "id": "after",
                "component": "test.echo",
                "configuration": {"value": '{{ $["a"].data.value }}{{ $["b"].data.value }}'},
            },
        ],
        [("start", "a"), ("start", "b"), ("a", "join"), ("b", "join"), ("join", "after", "success")],
    )
    record, updates = await run_to_end(runs, canvas)
    assert record.status == "succeeded", record.error
    joins = [u for u in updates if u.node_id == "join" and u.kind == "node.emitted"]
    assert len(joins) == 1 and joins[0].channel == "success"
    assert len(joins[0].event["data"]["eventIDs"]) == 2
    assert [u.event["data"] for u in updates if u.node_id == "after" and u.kind == "node.emitted"] == [
        {"value": "AB"}
    ]


async def test_a_merge_whose_timeout_passes_fails_the_run_on_its_unhandled_timeout_channel(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of(
        [
            {"id": "gate", "component": "if", "configuration": {"expression": "false"}},
            {"id": "a", "component": "test.echo", "configuration": {"value": "A"}},
            {"id": "b", "component": "test.echo", "configuration": {"value": "B"}},
            {
                "id": "join",
                "component": "merge",
                "configuration": {"enableTimeout": True, "executionTimeout": {"value": 1, "unit": "seconds"}},
            },
        ],
        [("start", "a"), ("start", "gate"), ("gate", "b", "true"), ("a", "join"), ("b", "join")],
    )
    record, updates = await run_to_end(runs, canvas)
    assert record.status == "failed"
    assert record.error == (
        'node "join" emitted on "timeout" and no edge handles it:'
        ' timed out after 1 s waiting for input from "b"'
    )
    assert ("join", "timeout") in emitted(updates)


async def test_a_merge_still_missing_an_input_when_nothing_can_send_it_fails_as_stuck(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of(
        [
            {"id": "gate", "component": "if", "configuration": {"expression": "false"}},
            {"id": "a", "component": "test.echo", "configuration": {"value": "A"}},
            {"id": "b", "component": "test.echo", "configuration": {"value": "B"}},
            {"id": "join", "component": "merge"},
        ],
        [("start", "a"), ("start", "gate"), ("gate", "b", "true"), ("a", "join"), ("b", "join")],
    )
    record, _ = await run_to_end(runs, canvas)
    assert record.status == "failed"
    assert record.error == (
        'node "join": still waiting for input from "b" when the run had nothing left to run'
    )


# --- loops and failures --------------------------------------------------------------------------


async def test_a_loop_that_never_exits_fails_at_its_bound_with_the_engines_message(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of(
        [{"id": "spin", "component": "test.echo", "configuration": {"value": 1}}],
        [("start", "spin"), ("spin", "spin")],
    )
    run_id = await runs.start(
        canvas, registry=TEST_COMPONENTS, options=RunOptions(heartbeat_seconds=3.0, max_node_executions=8)
    )
    record = await asyncio.wait_for(runs.watch(run_id, lambda update: None), 120)
    assert record.status == "failed"
    assert (
        record.error == 'node "spin": reached its limit of 8 executions in this run (a loop that never ends?)'
    )
    snapshot = await runs.get(run_id)
    assert len([e for e in snapshot.events(run_id) if e.node_id == "spin"]) == 8


async def test_an_unhandled_failure_channel_fails_the_run_quoting_the_payloads_summary(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of([{"id": "probe", "component": "test.failing_channel"}], [("start", "probe")])
    record, updates = await run_to_end(runs, canvas)
    assert record.status == "failed"
    assert record.error == 'node "probe" emitted on "failed" and no edge handles it: exit code 3'
    assert updates[-1].kind == "run.finished" and updates[-1].status == "failed"


async def test_a_handled_failure_channel_routes_on_and_the_run_succeeds(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of(
        [
            {"id": "probe", "component": "test.failing_channel"},
            {"id": "cleanup", "component": "test.echo", "configuration": {"value": "ok"}},
        ],
        [("start", "probe"), ("probe", "cleanup", "failed")],
    )
    record, updates = await run_to_end(runs, canvas)
    assert record.status == "succeeded", record.error
    assert emitted(updates)[-1] == ("cleanup", "default")


async def test_a_hook_that_raises_fails_its_node_and_the_run_with_the_components_message(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of([{"id": "bad", "component": "test.raise"}], [("start", "bad")])
    record, updates = await run_to_end(runs, canvas)
    assert record.status == "failed"
    assert record.error == 'node "bad": test.raise refused: boom'
    failed = [u for u in updates if u.kind == "node.failed"]
    assert [(u.node_id, u.error) for u in failed] == [("bad", "test.raise refused: boom")]
    snapshot = await runs.get(record.id)
    assert snapshot.execution_counts(record.id) == {"emitted": 1, "failed": 1}


# --- expressions and time ------------------------------------------------------------------------


async def test_now_in_a_template_reads_workflow_time(worker: None, runs: TemporalRuns) -> None:
    canvas = canvas_of(
        [{"id": "stamp", "component": "test.echo", "configuration": {"value": "{{ now() }}"}}],
        [("start", "stamp")],
    )
    record, updates = await run_to_end(runs, canvas)
    assert record.status == "succeeded", record.error
    stamp = next(u for u in updates if u.node_id == "stamp" and u.kind == "node.emitted")
    assert stamp.event is not None
    moment = datetime.fromisoformat(str(stamp.event["data"]["value"]).replace("Z", "+00:00"))
    started = next(u for u in updates if u.node_id == "stamp" and u.kind == "node.started")
    # Workflow time is the time of the workflow task that resolved it: the node's start, not later.
    assert abs(moment.timestamp() - started.timestamp) < 1.0


async def test_a_literal_expression_is_evaluated_by_the_hook_on_the_context_the_workflow_sent(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of(
        [
            {"id": "first", "component": "test.echo", "configuration": {"value": 7}},
            {
                "id": "keep",
                "component": "filter",
                "configuration": {"expression": '$["first"].data.value == 7 && root().data.go'},
            },
            {"id": "after", "component": "test.echo", "configuration": {"value": "through"}},
        ],
        [("start", "first"), ("first", "keep"), ("keep", "after")],
    )
    record, updates = await run_to_end(runs, canvas, {"go": True})
    assert record.status == "succeeded", record.error
    assert emitted(updates)[-1] == ("after", "default")


# --- scheduled checks ----------------------------------------------------------------------------


async def test_a_wait_node_emits_after_its_delay_through_a_durable_timer(
    worker: None, runs: TemporalRuns, temporal_client: Client
) -> None:
    canvas = canvas_of(
        [{"id": "pause", "component": "wait", "configuration": {"waitFor": "2", "unit": "seconds"}}],
        [("start", "pause")],
    )
    record, updates = await run_to_end(runs, canvas)
    assert record.status == "succeeded", record.error
    kinds = [u.kind for u in updates if u.node_id == "pause"]
    assert kinds == ["node.started", "node.waiting", "node.emitted"]
    waiting = next(u for u in updates if u.kind == "node.waiting")
    done = next(u for u in updates if u.node_id == "pause" and u.kind == "node.emitted")
    assert done.timestamp - waiting.timestamp >= 1.9
    history = await temporal_client.get_workflow_handle(f"daytonaflow-{record.id}").fetch_history()
    timers = [e for e in history.events if e.HasField("timer_started_event_attributes")]
    assert len(timers) == 1


# --- cancellation and reclaim --------------------------------------------------------------------


async def test_cancelling_a_run_calls_the_cancel_hook_with_its_latest_metadata_and_reclaims(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of([{"id": "hold", "component": "test.hold"}], [("start", "hold")])
    run_id = await runs.start(canvas, registry=TEST_COMPONENTS, options=FAST)
    await _until(lambda: run_id in HOLDING)
    record = await asyncio.wait_for(runs.cancel(run_id), 120)
    assert record.status == "cancelled"
    assert CANCELLED_WITH[run_id] == {"box": f"box-{run_id}", "stage": "holding"}
    assert RECLAIMED.count(("test.box", f"box-{run_id}")) == 1
    snapshot = await runs.get(run_id)
    assert [(r.resource_id, r.state) for r in snapshot.resources(run_id)] == [(f"box-{run_id}", "reclaimed")]
    assert snapshot.execution_counts(run_id) == {"emitted": 1, "cancelled": 1}


async def test_a_failed_run_reclaims_what_it_held(worker: None, runs: TemporalRuns) -> None:
    canvas = canvas_of(
        [{"id": "take", "component": "test.take"}, {"id": "bad", "component": "test.raise"}],
        [("start", "take"), ("take", "bad")],
    )
    record, updates = await run_to_end(runs, canvas)
    assert record.status == "failed"
    assert RECLAIMED.count(("test.box", f"taken-{record.id}")) == 1
    assert [u.kind for u in updates][-2:] == ["resource.reclaimed", "run.finished"]
    snapshot = await runs.get(record.id)
    assert [r.state for r in snapshot.resources(record.id)] == ["reclaimed"]


async def test_keep_resources_keeps_what_the_run_held(worker: None, runs: TemporalRuns) -> None:
    canvas = canvas_of([{"id": "take", "component": "test.take"}], [("start", "take")])
    record, updates = await run_to_end(runs, canvas, keep_resources=True)
    assert record.status == "succeeded", record.error
    assert ("test.box", f"taken-{record.id}") not in RECLAIMED
    assert [u.resource for u in updates if u.kind == "resource.kept"] == [f"test.box:taken-{record.id}"]
    snapshot = await runs.get(record.id)
    assert [r.state for r in snapshot.resources(record.id)] == ["kept"]


async def _until(condition: Any, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.05)


# --- the same progress as the embedded engine ------------------------------------------------------


async def test_progress_updates_equal_the_embedded_engines_for_the_same_canvas(
    worker: None, runs: TemporalRuns, tmp_path: Path
) -> None:
    canvas = canvas_of(
        [
            {"id": "first", "component": "test.echo", "configuration": {"value": 2}},
            {
                "id": "branch",
                "component": "if",
                "configuration": {"expression": '$["first"].data.value == 2'},
            },
            {"id": "yes", "component": "noop"},
            {"id": "pause", "component": "wait", "configuration": {"waitFor": 1, "unit": "seconds"}},
            {"id": "no", "component": "noop"},
            {"id": "take", "component": "test.take"},
        ],
        [
            ("start", "first"),
            ("first", "branch"),
            ("branch", "yes", "true"),
            ("branch", "no", "false"),
            ("yes", "pause"),
            ("pause", "take"),
        ],
    )
    _, temporal_updates = await run_to_end(runs, canvas)
    embedded_updates: list[RunUpdate] = []
    with RunStore(tmp_path / "runs.db") as store:
        engine = Engine(store, registry=TEST_COMPONENTS, observers=[embedded_updates.append])
        await asyncio.wait_for(engine.run(canvas), 60)

    def shape(updates: list[RunUpdate]) -> list[tuple[Any, ...]]:
        return [
            (
                u.kind,
                u.node_id,
                u.node_name,
                u.component,
                u.status,
                u.channel,
                u.error,
                u.event and u.event["type"],
            )
            for u in updates
        ]

    assert shape(temporal_updates) == shape(embedded_updates)
    assert shape(temporal_updates)[-1][:5] == ("run.finished", None, None, None, "succeeded")


# --- durability across a lost worker -------------------------------------------------------------


async def test_metadata_set_in_a_hook_survives_its_worker_being_killed_and_the_hook_runs_again_with_it(
    runs: TemporalRuns, temporal_client: Client, temporal_settings: TemporalSettings, tmp_path: Path
) -> None:
    script = Path(__file__).with_name("test_temporal_workflow_components.py")
    env = {**os.environ, MARKER_ENV: str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, str(script), temporal_settings.address, temporal_settings.task_queue],
        env=env,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        canvas = canvas_of([{"id": "slow", "component": "test.durable"}], [("start", "slow")])
        run_id = await runs.start(canvas, registry=TEST_COMPONENTS, options=RunOptions(heartbeat_seconds=2.0))
        await _until(lambda: (tmp_path / run_id).exists())
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        async with running_worker(temporal_client, temporal_settings):
            updates: list[RunUpdate] = []
            record = await asyncio.wait_for(runs.watch(run_id, updates.append), 120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert record.status == "succeeded", record.error
    final = next(u for u in updates if u.node_id == "slow" and u.kind == "node.emitted")
    assert final.event is not None
    assert final.event["data"]["value"] == {
        "first_pid": process.pid,
        "box": f"durable-{run_id}",
        "resumed_pid": os.getpid(),
    }
    # The box the lost attempt acquired was recorded before it died, and reclaimed once at the end.
    assert RECLAIMED.count((BOX, f"durable-{run_id}")) == 1
    history = await temporal_client.get_workflow_handle(f"daytonaflow-{run_id}").fetch_history()
    timed_out = [e for e in history.events if e.HasField("activity_task_timed_out_event_attributes")]
    assert len(timed_out) == 1


# --- secrets ---------------------------------------------------------------------------------------


class _Vault:
    def get(self, secret: str, key: str) -> str:
        return SECRET_VALUE


SECRET_VALUE = "s3cr3t-Temporal-value-42"


async def test_no_secret_value_reaches_the_runs_history(
    runs: TemporalRuns, temporal_client: Client, temporal_settings: TemporalSettings
) -> None:
    canvas = canvas_of(
        [
            {"id": "use", "component": "test.reveal_secret"},
            {"id": "refuse", "component": "test.reveal_secret_in_error"},
        ],
        [("start", "use"), ("use", "refuse")],
    )
    async with running_worker(temporal_client, temporal_settings, secrets=_Vault()):
        record, updates = await run_to_end(runs, canvas)
    assert record.status == "failed"
    assert record.error == 'node "refuse": the server refused token ***'
    used = next(u for u in updates if u.node_id == "use" and u.kind == "node.emitted")
    assert used.event is not None and used.event["data"]["value"] == {
        "echo": "***",
        "length": len(SECRET_VALUE),
    }
    history = await temporal_client.get_workflow_handle(f"daytonaflow-{record.id}").fetch_history()
    text = history_text(history)
    assert "token=***" in text  # the metadata signal is there, redacted
    assert "the server refused token ***" in text
    assert SECRET_VALUE not in text


def history_text(history: Any) -> str:
    """The history as JSON with every payload's data decoded too (payloads are base64 in the JSON)."""
    document = json.loads(history.to_json())
    decoded: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("data"), str) and isinstance(value.get("metadata"), dict):
                decoded.append(base64.b64decode(value["data"]).decode(errors="replace"))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(document)
    assert decoded, "the history holds no payload at all"
    return json.dumps(document) + "\n" + "\n".join(decoded)


# --- determinism ---------------------------------------------------------------------------------------


async def test_a_finished_runs_history_replays_without_nondeterminism(
    worker: None, runs: TemporalRuns, temporal_client: Client
) -> None:
    canvas = canvas_of(
        [
            {"id": "a", "component": "test.echo", "configuration": {"value": "{{ now() }}"}},
            {"id": "b", "component": "test.echo", "configuration": {"value": 2}},
            {"id": "join", "component": "merge"},
            {"id": "pause", "component": "wait", "configuration": {"waitFor": 1, "unit": "seconds"}},
            {"id": "take", "component": "test.take"},
        ],
        [
            ("start", "a"),
            ("start", "b"),
            ("a", "join"),
            ("b", "join"),
            ("join", "pause", "success"),
            ("pause", "take"),
        ],
    )
    record, _ = await run_to_end(runs, canvas)
    assert record.status == "succeeded", record.error
    history = await temporal_client.get_workflow_handle(f"daytonaflow-{record.id}").fetch_history()
    replayer = Replayer(
        workflows=[CanvasWorkflow],
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


async def test_a_worker_shut_down_under_a_hook_hands_it_back_and_another_worker_finishes_it(
    runs: TemporalRuns, temporal_client: Client, temporal_settings: TemporalSettings
) -> None:
    canvas = canvas_of([{"id": "slow", "component": "test.durable"}], [("start", "slow")])
    first = build_worker(temporal_client, temporal_settings, registry=TEST_COMPONENTS)
    first_task = asyncio.create_task(first.run())
    run_id = await runs.start(canvas, registry=TEST_COMPONENTS, options=FAST)
    snapshot_metadata: dict[str, Any] = {}

    async def first_attempt_recorded() -> bool:
        snapshot = await runs.get(run_id)
        executions = [e for e in snapshot.executions(run_id) if e.node_id == "slow"]
        snapshot_metadata.update(executions[0].metadata if executions else {})
        return "first_pid" in snapshot_metadata

    await _until_async(first_attempt_recorded)
    await first.shutdown()
    await first_task
    async with running_worker(temporal_client, temporal_settings):
        record = await asyncio.wait_for(runs.watch(run_id, lambda update: None), 120)
    assert record.status == "succeeded", record.error
    history = await temporal_client.get_workflow_handle(f"daytonaflow-{run_id}").fetch_history()
    scheduled = [e.activity_task_scheduled_event_attributes for e in history.events]
    hooks = [a for a in scheduled if a.activity_type.name == "daytonaflow.hook"]
    assert len(hooks) == 2  # the handed-back attempt, then the one that emitted


async def test_a_node_whose_workers_keep_being_lost_fails_past_the_limit(
    runs: TemporalRuns, temporal_client: Client, temporal_settings: TemporalSettings
) -> None:
    canvas = canvas_of([{"id": "slow", "component": "test.hold"}], [("start", "slow")])
    first = build_worker(temporal_client, temporal_settings, registry=TEST_COMPONENTS)
    first_task = asyncio.create_task(first.run())
    options = RunOptions(heartbeat_seconds=3.0, max_worker_losses=0)
    run_id = await runs.start(canvas, registry=TEST_COMPONENTS, options=options)
    await _until(lambda: run_id in HOLDING)
    await first.shutdown()
    await first_task
    async with running_worker(temporal_client, temporal_settings):
        record = await asyncio.wait_for(runs.watch(run_id, lambda update: None), 120)
    assert record.status == "failed"
    assert record.error == 'node "slow": the worker running its execute hook was lost 1 times (limit 0)'
    # The box it acquired before its worker went is reclaimed all the same.
    assert RECLAIMED.count((BOX, f"box-{run_id}")) == 1


async def _until_async(condition: Any, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.1)


# --- progress of a long hook, and the hook-wait hint ------------------------------------------------


async def test_a_long_hooks_output_reaches_the_watcher_through_its_heartbeats(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of([{"id": "talk", "component": "test.talk"}], [("start", "talk")])
    updates: list[RunUpdate] = []
    options = RunOptions(heartbeat_seconds=1.5)
    run_id = await runs.start(canvas, registry=TEST_COMPONENTS, options=options)
    record = await asyncio.wait_for(runs.watch(run_id, updates.append), 120)
    assert record.status == "succeeded", record.error
    outputs = [u for u in updates if u.kind == "node.output"]
    assert "line two" in [u.text for u in outputs]
    assert {(u.node_id, u.component) for u in outputs} == {("talk", "test.talk")}
    kinds = [u.kind for u in updates if u.node_id == "talk"]
    assert kinds[0] == "node.started" and kinds[-1] == "node.emitted"


async def test_each_hook_gets_the_runs_hook_wait_limit(worker: None, runs: TemporalRuns) -> None:
    canvas = canvas_of([{"id": "hint", "component": "test.hint"}], [("start", "hint")])
    run_id = await runs.start(canvas, registry=TEST_COMPONENTS, options=RunOptions(hook_wait_limit=1.5))
    updates: list[RunUpdate] = []
    record = await asyncio.wait_for(runs.watch(run_id, updates.append), 120)
    assert record.status == "succeeded", record.error
    emitted_value = [u.event["data"] for u in updates if u.node_id == "hint" and u.event]
    assert emitted_value == [{"value": 1.5}]


# --- reading runs ------------------------------------------------------------------------------------


async def test_runs_are_listed_newest_first_and_found_by_an_id_prefix(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of(
        [{"id": "one", "component": "test.echo", "configuration": {"value": 1}}], [("start", "one")]
    )
    first, _ = await run_to_end(runs, canvas)
    second, _ = await run_to_end(runs, canvas, {"again": True})
    listed = await runs.list(limit=50)
    ids = [record.id for record in listed]
    assert ids.index(second.id) < ids.index(first.id)
    assert {r.id: (r.status, r.canvas_name) for r in listed}[first.id] == ("succeeded", "test")
    found = await runs.get(second.id[:8])
    assert found.record.id == second.id
    assert found.record.input == {"again": True}
    assert found.count_events(second.id) == 2
    assert [e.node_id for e in found.iter_executions(second.id)] == ["start", "one"]


async def test_an_unknown_run_id_is_a_clear_error_naming_the_namespace(runs: TemporalRuns) -> None:
    with pytest.raises(
        TemporalRunNotFoundError, match=r'^no run "abcdef123456" in Temporal namespace default at '
    ):
        await runs.get("abcdef123456")


async def test_an_unreachable_server_is_a_connection_error_naming_the_address() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = TemporalSettings(address=f"127.0.0.1:{port}")
    with pytest.raises(
        TemporalConnectionError, match=rf"cannot connect to the Temporal server at 127\.0\.0\.1:{port}"
    ):
        await asyncio.wait_for(connect(settings), 60)


async def test_an_unreadable_tls_file_is_a_connection_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    settings = TemporalSettings(address="127.0.0.1:7233", tls_ca=missing)
    with pytest.raises(TemporalConnectionError, match=f"cannot read the TLS CA certificate {missing}"):
        await connect(settings)


async def test_a_metadata_signal_from_an_abandoned_attempt_is_ignored(
    worker: None, runs: TemporalRuns, temporal_client: Client
) -> None:
    canvas = canvas_of([{"id": "hold", "component": "test.hold"}], [("start", "hold")])
    run_id = await runs.start(canvas, registry=TEST_COMPONENTS, options=FAST)
    await _until(lambda: run_id in HOLDING)
    snapshot = await runs.get(run_id)
    hold = next(e for e in snapshot.executions(run_id) if e.node_id == "hold")
    # What a lost worker's late set would send: the same execution, an attempt already given up on.
    stale = {"execution_id": hold.id, "attempt": 0, "metadata": {"stale": True}}
    await temporal_client.get_workflow_handle(f"daytonaflow-{run_id}").signal("daytonaflow.metadata", stale)
    record = await asyncio.wait_for(runs.cancel(run_id), 120)
    assert record.status == "cancelled"
    assert CANCELLED_WITH[run_id] == {"box": f"box-{run_id}", "stage": "holding"}


async def test_a_run_whose_history_nears_its_limit_fails_cleanly_instead_of_being_terminated(
    worker: None, runs: TemporalRuns
) -> None:
    nodes = [{"id": f"n{i}", "component": "noop"} for i in range(12)]
    edges = [("start", "n0"), *((f"n{i}", f"n{i + 1}") for i in range(11))]
    canvas = canvas_of(nodes, edges)
    run_id = await runs.start(
        canvas, registry=TEST_COMPONENTS, options=RunOptions(heartbeat_seconds=3.0, max_history_events=30)
    )
    record = await asyncio.wait_for(runs.watch(run_id, lambda update: None), 120)
    assert record.status == "failed"
    assert record.error is not None
    assert re.fullmatch(
        r'node "n\d+": the run\'s Temporal history reached \d+ events \(\d+\.\d MB\), near its limits'
        r" \(30 events, 42 MB\): the run stops here \(split the canvas, or run it on the embedded engine\)",
        record.error,
    ), record.error


async def test_cancelling_a_run_waiting_on_a_timer_cancels_the_timer_and_ends_cancelled(
    worker: None, runs: TemporalRuns, temporal_client: Client
) -> None:
    canvas = canvas_of(
        [{"id": "pause", "component": "wait", "configuration": {"waitFor": 1, "unit": "hours"}}],
        [("start", "pause")],
    )
    run_id = await runs.start(canvas, registry=TEST_COMPONENTS, options=FAST)
    updates: list[RunUpdate] = []
    watching = asyncio.create_task(runs.watch(run_id, updates.append))
    await _until(lambda: any(u.kind == "node.waiting" for u in updates))
    record = await asyncio.wait_for(runs.cancel(run_id), 120)
    await asyncio.wait_for(watching, 60)
    assert record.status == "cancelled"
    assert [u.kind for u in updates if u.node_id == "pause"] == [
        "node.started",
        "node.waiting",
        "node.cancelled",
    ]
    assert updates[-1].kind == "run.finished" and updates[-1].status == "cancelled"
    history = await temporal_client.get_workflow_handle(f"daytonaflow-{run_id}").fetch_history()
    assert sum(e.HasField("timer_canceled_event_attributes") for e in history.events) == 1


async def test_submitting_checks_the_canvas_and_the_input_as_the_embedded_engine_does(
    runs: TemporalRuns, tmp_path: Path
) -> None:
    canvas = canvas_of([{"id": "one", "component": "test.echo"}], [("start", "one")])
    broken = canvas_of([{"id": "one", "component": "test.nowhere"}], [("start", "one")])
    with RunStore(tmp_path / "runs.db") as store:
        engine = Engine(store, registry=TEST_COMPONENTS)
        with pytest.raises(RunInputError) as embedded_input:
            await engine.start(canvas, [1, 2])
        with pytest.raises(CanvasError) as embedded_canvas:
            await engine.start(broken)
    with pytest.raises(RunInputError) as temporal_input:
        await runs.start(canvas, [1, 2], registry=TEST_COMPONENTS)
    with pytest.raises(CanvasError) as temporal_canvas:
        await runs.start(broken, registry=TEST_COMPONENTS)
    assert (
        str(temporal_input.value)
        == str(embedded_input.value)
        == "the run input must be a JSON object, not list"
    )
    assert str(temporal_canvas.value) == str(embedded_canvas.value)
    assert "test.nowhere" in str(temporal_canvas.value)


async def test_an_edge_on_a_channels_old_name_still_routes(worker: None, runs: TemporalRuns) -> None:
    canvas = canvas_of(
        [
            {"id": "old", "component": "test.renamed"},
            {"id": "after", "component": "test.echo", "configuration": {"value": "reached"}},
        ],
        [("start", "old"), ("old", "after", "finished")],
    )
    record, updates = await run_to_end(runs, canvas)
    assert record.status == "succeeded", record.error
    assert emitted(updates) == [("start", "default"), ("old", "done"), ("after", "default")]


async def test_a_failing_branch_stops_the_others_through_their_cancel_hooks_and_reclaims(
    worker: None, runs: TemporalRuns
) -> None:
    canvas = canvas_of(
        [{"id": "hold", "component": "test.hold"}, {"id": "bad", "component": "test.late_raise"}],
        [("start", "hold"), ("start", "bad")],
    )
    record, updates = await run_to_end(runs, canvas)
    assert record.status == "failed"
    assert record.error == 'node "bad": test.late_raise refused: boom'
    assert CANCELLED_WITH[record.id] == {"box": f"box-{record.id}", "stage": "holding"}
    assert RECLAIMED.count((BOX, f"box-{record.id}")) == 1
    assert [(u.node_id, u.kind) for u in updates if u.kind in ("node.failed", "node.cancelled")] == [
        ("bad", "node.failed"),
        ("hold", "node.cancelled"),
    ]


async def test_a_malformed_signal_is_ignored_and_the_run_goes_on(
    worker: None, runs: TemporalRuns, temporal_client: Client
) -> None:
    canvas = canvas_of(
        [{"id": "pause", "component": "wait", "configuration": {"waitFor": 2, "unit": "seconds"}}],
        [("start", "pause")],
    )
    run_id = await runs.start(canvas, registry=TEST_COMPONENTS, options=FAST)
    pause = None
    while pause is None:
        snapshot = await runs.get(run_id)
        pause = next((e for e in snapshot.executions(run_id) if e.node_id == "pause"), None)
    handle = temporal_client.get_workflow_handle(f"daytonaflow-{run_id}")
    # A handler that raised would fail every replay of the run's workflow task: the run would hang.
    await handle.signal("daytonaflow.resource", {"execution_id": pause.id, "attempt": 1})
    await handle.signal("daytonaflow.metadata", {"execution_id": pause.id, "metadata": "not a mapping"})
    await handle.signal("daytonaflow.resource", ["not", "a", "message"])
    record = await asyncio.wait_for(runs.watch(run_id, lambda update: None), 120)
    assert record.status == "succeeded"


async def test_a_sandbox_acquired_by_an_abandoned_attempt_is_still_reclaimed(
    worker: None, runs: TemporalRuns, temporal_client: Client
) -> None:
    canvas = canvas_of([{"id": "hold", "component": "test.hold"}], [("start", "hold")])
    run_id = await runs.start(canvas, registry=TEST_COMPONENTS, options=FAST)
    await _until(lambda: run_id in HOLDING)
    snapshot = await runs.get(run_id)
    hold = next(e for e in snapshot.executions(run_id) if e.node_id == "hold")
    # A lost worker's attempt made this box before the workflow gave up on it: it exists all the same.
    late = {"execution_id": hold.id, "attempt": 0, "op": "acquire", "kind": "test.box", "resource_id": "late"}
    await temporal_client.get_workflow_handle(f"daytonaflow-{run_id}").signal("daytonaflow.resource", late)
    await asyncio.wait_for(runs.cancel(run_id), 120)
    snapshot = await runs.get(run_id)
    states = {resource.resource_id: resource.state for resource in snapshot.resources(run_id)}
    assert states["late"] == "reclaimed", states
    assert ("test.box", "late") in RECLAIMED
