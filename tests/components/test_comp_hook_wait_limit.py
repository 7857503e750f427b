"""A hook wait limit (``ctx.hook_wait_limit``): a wait that outlasts it is handed to the engine.

The step then saves what the wait needs, schedules a check (fast first, doubling, capped) and
returns; the check carries on the same wait: never a second sandbox or command.
"""

from __future__ import annotations

import httpx
import pytest
from comp_support import SANDBOX_ID, drive, fixture

from daytonaflow.components import CreateSandbox, ExecuteCode, ExecuteCommand
from daytonaflow.components._timing import FIRST_CHECK_DELAY, MAX_CHECK_DELAY, next_check_delay

LIMIT = 0.2


def test_check_delays_start_fast_double_and_are_capped_at_five_seconds():
    delays = [next_check_delay(None)]
    for _ in range(9):
        delays.append(next_check_delay(delays[-1]))
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0]
    assert (FIRST_CHECK_DELAY, MAX_CHECK_DELAY) == (0.1, 5.0)


async def test_a_long_sandbox_start_is_handed_to_the_engine_with_growing_check_delays(
    daytona, make_ctx, clock
):
    daytona.start_states = ["creating"] * 120 + ["started"]
    ctx = make_ctx({}, hook_wait_limit=LIMIT)
    await drive(CreateSandbox(), ctx, clock)
    assert ctx.data == {"id": SANDBOX_ID, "state": "started"}
    # The backoff lives in the metadata: each check's re-run continues it.
    assert ctx.scheduled[:8] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert max(ctx.scheduled) == MAX_CHECK_DELAY
    assert len(daytona.create_bodies) == 1


async def test_without_a_limit_a_sandbox_start_is_waited_for_within_the_hook(daytona, make_ctx, clock):
    daytona.start_states = ["creating"] * 120 + ["started"]
    ctx = make_ctx({})
    await drive(CreateSandbox(), ctx, clock)
    assert ctx.data == {"id": SANDBOX_ID, "state": "started"}
    assert ctx.scheduled == []
    assert "handoff" not in ctx.metadata.data


async def test_a_polled_command_is_handed_off_and_reports_its_output_once_started_once(
    daytona, make_ctx, clock
):
    daytona.sandboxes[SANDBOX_ID] = fixture("sandbox", id=SANDBOX_ID, labels={})
    daytona.states[SANDBOX_ID] = ["started"]
    daytona.next_exits = [[None] * 60 + [0]]
    daytona.next_outputs = ["built\ndeployed\n"]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "command": "make deploy"}, hook_wait_limit=LIMIT)
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "success"
    assert ctx.data["result"] == "built\ndeployed\n"
    assert len(ctx.scheduled) >= 3
    assert len(daytona.started) == 1
    assert "".join(ctx.reported) == "built\ndeployed\n"


async def test_a_restart_handed_to_the_engine_is_carried_on_and_the_command_runs_once(
    daytona, make_ctx, clock
):
    daytona.sandboxes[SANDBOX_ID] = fixture("sandbox", id=SANDBOX_ID, labels={})
    daytona.stop(SANDBOX_ID)
    start, get = daytona.router.routes["start"].side_effect, daytona.router.routes["get"].side_effect

    def slow_start(request: httpx.Request, sid: str) -> httpx.Response:
        # As Daytona's cloud: the start is accepted, and the sandbox (its toolbox) takes a while.
        start(request, sid)
        daytona.stopped.add(sid)
        daytona.states[sid] = ["starting"] * 60 + ["started"]
        return httpx.Response(200, json={**daytona.sandboxes[sid], "state": "starting"})

    def toolbox_once_started(request: httpx.Request, sid: str) -> httpx.Response:
        response: httpx.Response = get(request, sid)
        if response.json().get("state") == "started":
            daytona.stopped.discard(sid)
        return response

    daytona.router.routes["start"].side_effect = slow_start
    daytona.router.routes["get"].side_effect = toolbox_once_started
    ctx = make_ctx({"sandbox": SANDBOX_ID, "command": "make deploy"}, hook_wait_limit=LIMIT)
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "success"
    assert len(ctx.scheduled) >= 3
    assert daytona.restarted == [SANDBOX_ID]
    assert len(daytona.started) == 1


async def test_cancel_finds_the_sandbox_by_its_creation_key_when_the_metadata_names_none(
    daytona, make_ctx, clock
):
    daytona.start_states = ["creating"] * 120 + ["started"]
    ctx = make_ctx({}, hook_wait_limit=LIMIT)
    await CreateSandbox().execute(ctx)
    assert ctx.pending is not None  # handed to the engine while the sandbox starts
    ctx.metadata.data = {}  # what recorded the create was lost
    await CreateSandbox().cancel(ctx)
    assert daytona.deleted == [SANDBOX_ID]


async def test_cancel_of_a_command_node_with_no_metadata_looks_no_sandbox_up(daytona, make_ctx):
    ctx = make_ctx({"sandbox": SANDBOX_ID, "command": "make deploy"})
    await ExecuteCommand().cancel(ctx)
    assert not daytona.router.routes["list"].called
    assert daytona.deleted == []


@pytest.mark.parametrize("limit", [None, LIMIT])
async def test_a_command_past_its_deadline_is_reported_timed_out_with_or_without_checks(
    daytona, make_ctx, clock, limit
):
    daytona.sandboxes[SANDBOX_ID] = fixture("sandbox", id=SANDBOX_ID, labels={})
    daytona.states[SANDBOX_ID] = ["started"]
    # Running until coreutils' timeout ends it (124) after its 2 s: the deadline is absolute.
    daytona.next_exits = [[None] * 40 + [124]]
    config = {"sandbox": SANDBOX_ID, "command": "sleep 30", "timeout": 2}
    ctx = make_ctx(config, hook_wait_limit=limit)
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "failed"
    assert (ctx.data["exitCode"], ctx.data["timeout"]) == (124, True)
    assert len(daytona.started) == 1


async def test_checks_of_a_command_that_still_runs_write_no_metadata_once_their_delay_is_capped(
    daytona, make_ctx, clock
):
    # On a distributed engine each write is a history event: a re-run that changes nothing is free.
    daytona.sandboxes[SANDBOX_ID] = fixture("sandbox", id=SANDBOX_ID, labels={})
    daytona.states[SANDBOX_ID] = ["started"]
    daytona.next_exits = [[None]]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "code": "print('hi')"}, hook_wait_limit=LIMIT)
    component = ExecuteCode()
    await component.execute(ctx)
    while ctx.pending is not None and ctx.pending < MAX_CHECK_DELAY:
        clock.advance(ctx.pending)
        ctx.pending = None
        await component.check(ctx)
    writes = len(ctx.metadata.history)
    for _ in range(5):
        clock.advance(ctx.pending or 0.0)
        ctx.pending = None
        await component.check(ctx)
    assert ctx.pending == MAX_CHECK_DELAY
    assert len(ctx.metadata.history) == writes
    assert len(daytona.started) == 1
