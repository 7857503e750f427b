"""daytona.getSandbox against Daytona's REST API (respx)."""

from __future__ import annotations

import httpx
import pytest
from comp_support import SANDBOX_ID, drive, error_body, fixture
from files_support import FilesAndStates, assert_example_is_a_valid_event

from daytonaflow.components import SANDBOX_RESOURCE, GetSandbox
from daytonaflow.errors import ComponentError


@pytest.fixture
def states(daytona):
    return FilesAndStates(daytona).install()


@pytest.mark.parametrize("state", ["started", "stopped", "archived"])
async def test_reports_the_sandbox_id_and_its_current_state(daytona, states, make_ctx, clock, state):
    states.add_sandbox(state)
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(GetSandbox(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.sandbox"
    assert ctx.data == {"id": SANDBOX_ID, "state": state}
    [call] = daytona.router.routes["get"].calls
    assert call.request.method == "GET"


async def test_a_name_is_reported_as_the_id_daytona_answers_with(daytona, states, make_ctx, clock):
    # Daytona answers GET /sandbox/{sandboxIdOrName} for a name too.
    daytona.sandboxes["my-box"] = fixture("sandbox", id=SANDBOX_ID, name="my-box")
    daytona.states["my-box"] = ["started"]
    ctx = make_ctx({"sandbox": "my-box"})
    await drive(GetSandbox(), ctx, clock)
    assert ctx.data == {"id": SANDBOX_ID, "state": "started"}


async def test_a_missing_sandbox_fails_naming_the_node_and_the_sandbox(daytona, states, make_ctx, clock):
    ctx = make_ctx({"sandbox": "gone-box"})
    with pytest.raises(ComponentError) as failure:
        await drive(GetSandbox(), ctx, clock)
    assert str(failure.value) == (
        'node "node-1": sandbox "gone-box" was not found (Sandbox with ID or name gone-box not found)'
    )
    assert not ctx.emitted


async def test_a_get_is_repeated_after_a_503(daytona, states, make_ctx, clock):
    states.add_sandbox("started")
    route = daytona.router.routes["get"]
    serve = route.side_effect
    answers = iter([httpx.Response(503, json=error_body(503, "busy", "Service Unavailable"))])
    route.side_effect = lambda request, **params: next(answers, None) or serve(request, **params)
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(GetSandbox(), ctx, clock)
    assert len(route.calls) == 2
    assert ctx.data["state"] == "started"


async def test_looking_a_sandbox_up_does_not_make_it_a_run_resource(daytona, states, make_ctx, clock):
    states.add_sandbox("started")
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(GetSandbox(), ctx, clock)
    assert (SANDBOX_RESOURCE, SANDBOX_ID) not in ctx.resources.held
    await GetSandbox().cancel(ctx)
    assert not daytona.router.routes["delete"].calls


def test_the_example_output_is_a_valid_event():
    assert_example_is_a_valid_event(GetSandbox)
