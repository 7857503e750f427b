"""The core ``wait`` component: a delay that is a persisted check, never a sleeping hook."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from builtin_support import HookContext

from daytonaflow.builtins import Wait
from daytonaflow.builtins.wait import WaitTargetInPastError


async def test_an_interval_wait_schedules_a_check_for_its_duration() -> None:
    ctx = HookContext(Wait, {"waitFor": 5, "unit": "minutes"})
    await Wait().execute(ctx)
    assert ctx.emitted is None
    assert ctx.check_delay is not None and 299 < ctx.check_delay <= 300
    assert ctx.metadata.get()["interval_duration"] == 300_000


async def test_wait_for_accepts_superplanes_string_of_digits() -> None:
    ctx = HookContext(Wait, {"mode": "interval", "waitFor": "2", "unit": "hours"})
    await Wait().execute(ctx)
    assert ctx.check_delay is not None and 7199 < ctx.check_delay <= 7200


async def test_the_check_emits_wait_finished_once_the_time_is_reached() -> None:
    ctx = HookContext(Wait, {"waitFor": 1})
    await Wait().execute(ctx)
    ctx.metadata.set({**ctx.metadata.get(), "due_at": time.time() - 0.1})
    ctx.reset()
    await Wait().check(ctx)
    assert ctx.channel == "default"
    assert ctx.emitted is not None and ctx.emitted[1].event_type == "wait.finished"
    assert (ctx.data["result"], ctx.data["reason"]) == ("completed", "timeout")
    assert ctx.data["started_at"].endswith("Z") and ctx.data["finished_at"].endswith("Z")


async def test_a_check_that_fires_early_waits_for_what_is_left() -> None:
    ctx = HookContext(Wait, {"waitFor": 1, "unit": "hours"})
    await Wait().execute(ctx)
    ctx.reset()
    await Wait().check(ctx)
    assert ctx.emitted is None
    assert ctx.check_delay is not None and ctx.check_delay > 3500


async def test_an_execute_run_again_after_a_restart_keeps_the_first_start() -> None:
    ctx = HookContext(Wait, {"waitFor": 1, "unit": "hours"})
    await Wait().execute(ctx)
    first = ctx.metadata.get()
    ctx.reset()
    await Wait().execute(ctx)
    assert ctx.metadata.get() == first


async def test_a_countdown_waits_until_the_given_moment() -> None:
    moment = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    ctx = HookContext(Wait, {"mode": "countdown", "waitUntil": moment})
    await Wait().execute(ctx)
    assert ctx.check_delay is not None and 590 < ctx.check_delay <= 600


async def test_a_countdown_to_a_moment_gone_fails_naming_the_node() -> None:
    ctx = HookContext(Wait, {"mode": "countdown", "waitUntil": "2020-01-01T00:00:00Z"}, node_id="later")
    with pytest.raises(
        WaitTargetInPastError, match='node "later": waitUntil 2020-01-01T00:00:00\\+00:00 is in the past'
    ):
        await Wait().execute(ctx)


def test_wait_config_errors_name_the_field() -> None:
    def issues(config: dict[str, object]) -> dict[str, str]:
        return {issue.field: issue.message for issue in Wait.validate_config(config, allow_expressions=True)}

    assert issues({"waitFor": 0}) == {"waitFor": "must be a positive whole number"}
    assert issues({"waitFor": "soon"}) == {"waitFor": "must be a positive whole number"}
    assert issues({"unit": "days"}) == {"unit": 'must be one of "seconds", "minutes", "hours"'}
    assert issues({"mode": "countdown"}) == {"waitUntil": 'is required when mode is "countdown"'}
    assert issues({"mode": "countdown", "waitUntil": "next tuesday"}) == {
        "waitUntil": "must be an ISO 8601 date and time, e.g. 2026-08-14T02:00:00Z"
    }
    assert issues({"waitFor": '{{ $["Plan"].data.delay }}'}) == {}
