"""daytona.startSandbox against Daytona's REST API (respx): the adaptive wait, re-runs, cancel."""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, ProcessDied, drive
from files_support import FilesAndStates, assert_example_is_a_valid_event

from daytonaflow.components import StartSandbox, _timing
from daytonaflow.errors import ComponentError


@pytest.fixture
def states(daytona):
    return FilesAndStates(daytona).install()


def starts(daytona) -> int:
    return len(daytona.router.routes["start"].calls)


async def test_a_stopped_sandbox_is_started_and_reported_once_started(daytona, states, make_ctx, clock):
    states.add_sandbox("stopped")
    states.start_states = ["starting", "starting", "starting", "started"]
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(StartSandbox(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.sandbox"
    assert ctx.data == {"id": SANDBOX_ID, "state": "started"}
    assert starts(daytona) == 1


async def test_the_wait_is_createSandboxs_adaptive_one_milliseconds_first_then_backing_off(
    daytona, states, make_ctx, clock
):
    states.add_sandbox("stopped")
    states.start_states = ["starting"] * 12 + ["started"]
    await drive(StartSandbox(), make_ctx({"sandbox": SANDBOX_ID}), clock)
    expected, delay = [], None
    for _ in clock.sleeps:
        delay = _timing.next_poll_delay(delay)
        expected.append(delay)
    assert clock.sleeps == expected
    assert clock.sleeps[0] == _timing.FIRST_POLL_DELAY
    assert max(clock.sleeps) == _timing.MAX_POLL_DELAY


async def test_an_archived_sandbox_is_started_too(daytona, states, make_ctx, clock):
    states.add_sandbox("archived")
    states.start_states = ["restoring", "started"]
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(StartSandbox(), ctx, clock)
    assert ctx.data["state"] == "started"
    assert starts(daytona) == 1


async def test_a_started_sandbox_is_reported_without_asking_daytona_to_start_it(
    daytona, states, make_ctx, clock
):
    states.add_sandbox("started")
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(StartSandbox(), ctx, clock)
    assert ctx.data == {"id": SANDBOX_ID, "state": "started"}
    assert starts(daytona) == 0


async def test_a_sandbox_already_starting_is_waited_for_not_started_again(daytona, states, make_ctx, clock):
    states.add_sandbox("starting")
    daytona.states[SANDBOX_ID] = ["starting", "starting", "started"]
    await drive(StartSandbox(), make_ctx({"sandbox": SANDBOX_ID}), clock)
    assert starts(daytona) == 0


async def test_a_sandbox_that_enters_error_fails_the_node_with_its_reason(daytona, states, make_ctx, clock):
    states.add_sandbox("stopped")
    states.start_states = ["starting", "error"]
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    with pytest.raises(
        ComponentError,
        match=rf'node "node-1": sandbox {SANDBOX_ID} entered state error: snapshot pull failed instead of',
    ):
        await drive(StartSandbox(), ctx, clock)
    # A sandbox the node did not make is never deleted by it.
    assert not daytona.router.routes["delete"].calls


async def test_a_sandbox_not_started_by_the_timeout_fails_the_node(daytona, states, make_ctx, clock):
    states.add_sandbox("stopped")
    states.start_states = ["starting"]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "timeout": 5})
    with pytest.raises(
        ComponentError,
        match=rf"sandbox {SANDBOX_ID} did not reach started within 5 s \(last state starting\)",
    ):
        await drive(StartSandbox(), ctx, clock)
    assert not ctx.emitted
    assert not daytona.router.routes["delete"].calls


async def test_a_missing_sandbox_fails_naming_it(daytona, states, make_ctx, clock):
    with pytest.raises(ComponentError, match='node "node-1": sandbox "ghost" was not found'):
        await drive(StartSandbox(), make_ctx({"sandbox": "ghost"}), clock)


async def test_a_re_run_after_the_engine_died_mid_wait_carries_on_without_starting_again(
    daytona, states, make_ctx, clock
):
    states.add_sandbox("stopped")
    states.start_states = ["starting"] * 6 + ["started"]
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    clock.crash_after(3)
    with pytest.raises(ProcessDied):
        await drive(StartSandbox(), ctx, clock)
    await drive(StartSandbox(), ctx, clock)
    assert ctx.data == {"id": SANDBOX_ID, "state": "started"}
    assert starts(daytona) == 1


async def test_a_re_run_keeps_the_first_attempts_deadline(daytona, states, make_ctx, clock):
    states.add_sandbox("stopped")
    states.start_states = ["starting"]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "timeout": 60})
    clock.crash_after(1)
    with pytest.raises(ProcessDied):
        await drive(StartSandbox(), ctx, clock)
    clock.advance(120)  # the engine was down past the deadline
    with pytest.raises(ComponentError, match="did not reach started within 60 s"):
        await drive(StartSandbox(), ctx, clock)
    assert starts(daytona) == 1


async def test_a_start_lost_with_the_attempt_that_sent_it_is_asked_again(daytona, states, make_ctx, clock):
    states.add_sandbox("stopped")
    route = daytona.router.routes["start"]
    serve = route.side_effect

    def dies_first(request, **params):
        route.side_effect = serve
        asked.append(request)
        raise ProcessDied  # the engine died with the request in flight; Daytona never saw it

    asked = []
    route.side_effect = dies_first
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    with pytest.raises(ProcessDied):
        await drive(StartSandbox(), ctx, clock)
    await drive(StartSandbox(), ctx, clock)
    assert ctx.data["state"] == "started"
    assert len(asked) == 1
    assert len(route.calls) == 1  # the one answered, by the re-run


async def test_a_wait_past_the_hook_limit_is_handed_to_the_engine_and_resumed_by_checks(
    daytona, states, make_ctx, clock
):
    states.add_sandbox("stopped")
    states.start_states = ["starting"] * 4 + ["started"]
    ctx = make_ctx({"sandbox": SANDBOX_ID}, hook_wait_limit=0.0)
    await drive(StartSandbox(), ctx, clock)
    assert ctx.scheduled, "the wait was handed to the engine"
    assert ctx.scheduled[0] == _timing.FIRST_CHECK_DELAY
    assert ctx.data == {"id": SANDBOX_ID, "state": "started"}
    assert starts(daytona) == 1


async def test_a_cancel_mid_wait_leaves_the_sandbox_alone_and_emits_nothing(daytona, states, make_ctx, clock):
    states.add_sandbox("stopped")
    states.start_states = ["starting"]
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    clock.crash_after(2)
    with pytest.raises(ProcessDied):
        await drive(StartSandbox(), ctx, clock)
    await StartSandbox().cancel(ctx)
    assert not daytona.router.routes["delete"].calls
    assert SANDBOX_ID in daytona.sandboxes
    assert not ctx.emitted


def test_the_example_output_is_a_valid_event():
    assert_example_is_a_valid_event(StartSandbox)
