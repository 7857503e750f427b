"""The core ``merge`` component's hooks, driven as the engine contract says (execute once per input).

The engine's side (one open execution per run for a joining node) is exercised end to end in
test_builtin_engine.py; here a recording context stands in for it.
"""

from __future__ import annotations

import time

import pytest
from builtin_support import HookContext, event, node_input

from daytonaflow.builtins import Merge
from daytonaflow.builtins._base import ExpressionResultError

SOURCES = ("build", "test")


def merge_context(config: dict[str, object] | None = None) -> HookContext:
    return HookContext(
        Merge,
        dict(config or {}),
        node_id="join",
        expected_sources=SOURCES,
        chain=[event("start", {}, "manual.run")],
    )


async def deliver(ctx: HookContext, *inputs: object, phase: str = "execute") -> None:
    """Deliver one more input the way the engine does: ``inputs`` grows, ``execute`` runs again."""
    ctx.reset()
    ctx.inputs = (*ctx.inputs, *inputs)  # type: ignore[arg-type]
    await (Merge().execute(ctx) if phase == "execute" else Merge().check(ctx))


def test_merge_joins_its_inputs() -> None:
    assert Merge.joins_inputs is True
    assert Merge.literal_fields == frozenset({"stopIfExpression"})


async def test_merge_waits_without_output_until_every_source_sent_an_input() -> None:
    ctx = merge_context()
    await deliver(ctx, node_input("build", "e1"))
    assert ctx.emitted is None
    assert ctx.check_delay is None
    await deliver(ctx, node_input("test", "e2"))
    assert ctx.channel == "success"
    assert ctx.emitted is not None and ctx.emitted[1].event_type == "merge.finished"
    assert ctx.data["eventIDs"] == ["e1", "e2"]
    assert [source["nodeId"] for source in ctx.data["sourceNodes"]] == ["build", "test"]
    assert all("receivedAt" in source for source in ctx.data["sourceNodes"])
    assert ctx.data["groupKey"] == ctx.execution_id
    assert ctx.data["stopEarly"] is False


async def test_two_channels_of_one_source_count_once() -> None:
    ctx = merge_context()
    await deliver(ctx, node_input("build", "e1", "success"))
    await deliver(ctx, node_input("build", "e2", "failed"))
    assert ctx.emitted is None
    await deliver(ctx, node_input("test", "e3"))
    assert ctx.channel == "success"


async def test_an_input_delivered_again_after_a_restart_is_recorded_once() -> None:
    ctx = merge_context()
    await deliver(ctx, node_input("build", "e1"))
    ctx.reset()
    await Merge().execute(ctx)  # the engine restarted and called the hook again with the same inputs
    assert ctx.metadata.get()["eventIDs"] == ["e1"]
    assert ctx.emitted is None


async def test_the_gathering_state_is_kept_in_metadata_with_superplanes_names() -> None:
    ctx = merge_context()
    await deliver(ctx, node_input("build", "e1"))
    state = ctx.metadata.get()
    assert state["eventIDs"] == ["e1"]
    assert state["sourceNodes"][0]["nodeId"] == "build" and "receivedAt" in state["sourceNodes"][0]
    assert state["sourceNodes"][1] == {"nodeId": "test"}


async def test_with_a_timeout_the_first_input_schedules_a_check_and_later_ones_keep_its_moment() -> None:
    ctx = merge_context({"enableTimeout": True, "executionTimeout": {"value": 2, "unit": "minutes"}})
    await deliver(ctx, node_input("build", "e1"))
    assert ctx.check_delay is not None and 119 < ctx.check_delay <= 120
    due = ctx.metadata.get()["timeoutAt"]
    await deliver(ctx, node_input("build", "e2"))
    assert ctx.check_delay is not None and ctx.check_delay <= due - time.time() + 0.01


async def test_the_timeout_emits_on_timeout_naming_the_sources_still_missing() -> None:
    ctx = merge_context({"enableTimeout": True, "executionTimeout": {"value": 30, "unit": "seconds"}})
    await deliver(ctx, node_input("build", "e1"))
    state = ctx.metadata.get()
    ctx.metadata.set({**state, "timeoutAt": time.time() - 1})  # the timer's moment has come
    await deliver(ctx, phase="check")
    assert ctx.channel == "timeout"
    assert ctx.emitted is not None
    assert ctx.emitted[1].event_type == "merge.timeout"
    assert ctx.data["timeoutSeconds"] == 30
    assert ctx.emitted[1].failure_summary() == 'timed out after 30 s waiting for input from "test"'


async def test_a_timeout_check_that_fires_early_waits_for_the_rest() -> None:
    ctx = merge_context({"enableTimeout": True, "executionTimeout": {"value": 1, "unit": "hours"}})
    await deliver(ctx, node_input("build", "e1"))
    await deliver(ctx, phase="check")
    assert ctx.emitted is None
    assert ctx.check_delay is not None and ctx.check_delay > 3500


async def test_without_enable_timeout_the_execution_timeout_is_not_applied() -> None:
    ctx = merge_context({"enableTimeout": False, "executionTimeout": {"value": 1, "unit": "minutes"}})
    await deliver(ctx, node_input("build", "e1"))
    assert ctx.check_delay is None


async def test_a_true_stop_condition_emits_on_fail_at_once() -> None:
    ctx = merge_context({"enableStopIf": True, "stopIfExpression": "root().data.stop == true"})
    ctx.chain = [event("start", {"stop": True}, "manual.run")]
    await deliver(ctx, node_input("build", "e1"))
    assert ctx.channel == "fail"
    assert ctx.emitted is not None and ctx.emitted[1].event_type == "merge.stopped"
    assert ctx.data["stopEarly"] is True
    assert ctx.emitted[1].failure_summary() == "stopped early: stopIfExpression was true"
    assert ctx.evaluated == [("root().data.stop == true", "stopIfExpression")]


async def test_a_false_stop_condition_keeps_waiting() -> None:
    ctx = merge_context({"enableStopIf": True, "stopIfExpression": "1 > 2"})
    await deliver(ctx, node_input("build", "e1"))
    assert ctx.emitted is None


async def test_a_stop_condition_that_is_no_boolean_fails_naming_the_node_and_field() -> None:
    ctx = merge_context({"enableStopIf": True, "stopIfExpression": '"yes"'})
    with pytest.raises(ExpressionResultError, match='node "join": field "stopIfExpression" must evaluate'):
        await deliver(ctx, node_input("build", "e1"))


def test_the_timeout_and_fail_channels_are_failure_channels() -> None:
    assert {channel.name: channel.failure for channel in Merge.channels} == {
        "success": False,
        "timeout": True,
        "fail": True,
    }


def test_merge_config_errors_name_the_field() -> None:
    issues = Merge.validate_config(
        {"enableStopIf": True, "enableTimeout": True, "executionTimeout": {"value": 0, "unit": "days"}},
        allow_expressions=False,
    )
    assert {issue.field: issue.message for issue in issues} == {
        "executionTimeout.value": "must be at least 1",
        "executionTimeout.unit": 'must be one of "minutes", "hours"',
        "stopIfExpression": "is required when enableStopIf is true",
    }
