"""daytona.stopSandbox against Daytona's REST API (respx)."""

from __future__ import annotations

import httpx
import pytest
from comp_support import SANDBOX_ID, ProcessDied, drive, error_body
from files_support import FilesAndStates, assert_example_is_a_valid_event

from daytonaflow.components import StopSandbox, _timing
from daytonaflow.errors import ComponentError


@pytest.fixture
def states(daytona):
    return FilesAndStates(daytona).install()


async def test_a_started_sandbox_is_stopped_and_reported_once_stopped(daytona, states, make_ctx, clock):
    states.add_sandbox("started")
    states.stop_states = ["stopping", "stopping", "stopped"]
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(StopSandbox(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.sandbox"
    assert ctx.data == {"id": SANDBOX_ID, "state": "stopped"}
    assert states.stops == [{}]
    assert clock.sleeps[0] == _timing.FIRST_POLL_DELAY


async def test_force_asks_daytona_for_a_forced_stop(daytona, states, make_ctx, clock):
    states.add_sandbox("started")
    await drive(StopSandbox(), make_ctx({"sandbox": SANDBOX_ID, "force": True}), clock)
    assert states.stops == [{"force": "true"}]


async def test_a_stopped_sandbox_is_reported_without_asking_daytona_to_stop_it(
    daytona, states, make_ctx, clock
):
    states.add_sandbox("stopped")
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(StopSandbox(), ctx, clock)
    assert ctx.data == {"id": SANDBOX_ID, "state": "stopped"}
    assert states.stops == []


async def test_a_sandbox_not_stopped_by_the_timeout_fails_the_node(daytona, states, make_ctx, clock):
    states.add_sandbox("started")
    states.stop_states = ["stopping"]
    with pytest.raises(
        ComponentError,
        match=rf'node "node-1": sandbox {SANDBOX_ID} did not reach stopped within 10 s \(last state stopping',
    ):
        await drive(StopSandbox(), make_ctx({"sandbox": SANDBOX_ID, "timeout": 10}), clock)


async def test_a_stop_daytona_refuses_fails_the_node_with_its_message(daytona, states, make_ctx, clock):
    states.add_sandbox("started")
    daytona.router.routes["stop"].side_effect = None
    daytona.router.routes["stop"].mock(
        return_value=httpx.Response(400, json=error_body(400, "Sandbox is busy with a backup", "Bad Request"))
    )
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    with pytest.raises(ComponentError) as failure:
        await drive(StopSandbox(), ctx, clock)
    assert (
        str(failure.value)
        == f'node "node-1": cannot stop sandbox {SANDBOX_ID}: Sandbox is busy with a backup'
    )


async def test_a_503_on_the_stop_is_repeated(daytona, states, make_ctx, clock):
    states.add_sandbox("started")
    route = daytona.router.routes["stop"]
    serve = route.side_effect
    answers = iter([httpx.Response(503, json=error_body(503, "busy", "Service Unavailable"))])
    route.side_effect = lambda request, **params: next(answers, None) or serve(request, **params)
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(StopSandbox(), ctx, clock)
    assert len(route.calls) == 2
    assert ctx.data["state"] == "stopped"


async def test_a_missing_sandbox_fails_naming_it(daytona, states, make_ctx, clock):
    with pytest.raises(ComponentError, match='node "node-1": sandbox "ghost" was not found'):
        await drive(StopSandbox(), make_ctx({"sandbox": "ghost"}), clock)
    assert states.stops == []


async def test_a_re_run_after_the_engine_died_mid_wait_does_not_stop_again(daytona, states, make_ctx, clock):
    states.add_sandbox("started")
    states.stop_states = ["stopping"] * 5 + ["stopped"]
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    clock.crash_after(2)
    with pytest.raises(ProcessDied):
        await drive(StopSandbox(), ctx, clock)
    await drive(StopSandbox(), ctx, clock)
    assert ctx.data == {"id": SANDBOX_ID, "state": "stopped"}
    assert len(states.stops) == 1


async def test_a_cancel_mid_wait_never_deletes_the_sandbox(daytona, states, make_ctx, clock):
    states.add_sandbox("started")
    states.stop_states = ["stopping"]
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    clock.crash_after(2)
    with pytest.raises(ProcessDied):
        await drive(StopSandbox(), ctx, clock)
    await StopSandbox().cancel(ctx)
    assert not daytona.router.routes["delete"].calls
    assert not ctx.emitted


def test_the_example_output_is_a_valid_event():
    assert_example_is_a_valid_event(StopSandbox)
