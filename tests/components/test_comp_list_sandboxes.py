"""daytona.listSandboxes against Daytona's REST API (respx)."""

from __future__ import annotations

import json

import httpx
import pytest
from comp_support import drive, fixture
from files_support import FilesAndStates, assert_example_is_a_valid_event

from daytonaflow.components import ListSandboxes


@pytest.fixture
def states(daytona):
    return FilesAndStates(daytona).install()


async def test_lists_the_sandboxes_carrying_every_label(daytona, states, make_ctx, clock):
    states.add_sandbox("started", "sandbox-1", team="platform", env="ci")
    states.add_sandbox("stopped", "sandbox-2", team="platform", env="ci")
    states.add_sandbox("started", "sandbox-3", team="platform", env="prod")
    labels = [{"key": "team", "value": "platform"}, {"key": "env", "value": "ci"}]
    ctx = make_ctx({"labels": labels})
    await drive(ListSandboxes(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.sandboxes.listed"
    assert ctx.data == {
        "sandboxes": [{"id": "sandbox-1", "state": "started"}, {"id": "sandbox-2", "state": "stopped"}],
        "count": 2,
    }
    [call] = daytona.router.routes["list"].calls
    assert json.loads(call.request.url.params["labels"]) == {"team": "platform", "env": "ci"}
    assert call.request.url.params["limit"] == "100"


async def test_states_are_asked_of_daytona_and_others_are_left_out(daytona, states, make_ctx, clock):
    # The double ignores the states filter, as an older server may: the component filters too.
    states.add_sandbox("started", "sandbox-1")
    states.add_sandbox("stopped", "sandbox-2")
    states.add_sandbox("archived", "sandbox-3")
    ctx = make_ctx({"states": [{"state": "stopped"}, {"state": "archived"}]})
    await drive(ListSandboxes(), ctx, clock)
    assert [sandbox["id"] for sandbox in ctx.data["sandboxes"]] == ["sandbox-2", "sandbox-3"]
    [call] = daytona.router.routes["list"].calls
    assert call.request.url.params.get_list("states") == ["stopped", "archived"]


async def test_no_labels_lists_every_sandbox(daytona, states, make_ctx, clock):
    states.add_sandbox("started", "sandbox-1", team="a")
    ctx = make_ctx({})
    await drive(ListSandboxes(), ctx, clock)
    assert ctx.data["count"] == 1
    [call] = daytona.router.routes["list"].calls
    assert "labels" not in call.request.url.params


async def test_the_limit_stops_the_paging_and_cuts_the_list(daytona, states, make_ctx, clock):
    pages = {
        None: fixture(
            "sandbox_list",
            items=[{"id": f"sandbox-{n}", "state": "started"} for n in range(3)],
            nextCursor="p2",
        ),
        "p2": fixture(
            "sandbox_list",
            items=[{"id": f"sandbox-{n}", "state": "started"} for n in range(3, 6)],
            nextCursor="p3",
        ),
    }
    route = daytona.router.routes["list"]
    route.side_effect = lambda request: httpx.Response(200, json=pages[request.url.params.get("cursor")])
    ctx = make_ctx({"limit": 4})
    await drive(ListSandboxes(), ctx, clock)
    assert [sandbox["id"] for sandbox in ctx.data["sandboxes"]] == [f"sandbox-{n}" for n in range(4)]
    assert ctx.data["count"] == 4
    # No third page was asked for.
    assert [call.request.url.params.get("cursor") for call in route.calls] == [None, "p2"]


def test_a_state_that_is_not_a_sandbox_state_is_refused():
    [issue] = ListSandboxes.validate_config({"states": [{"state": "running"}]}, allow_expressions=False)
    assert issue.field == "states.0.state"
    assert issue.message.startswith("must be one of")


def test_the_limit_is_bounded():
    [issue] = ListSandboxes.validate_config({"limit": 0}, allow_expressions=False)
    assert (issue.field, issue.message) == ("limit", "must be between 1 and 1000")


async def test_a_bare_list_answer_of_an_older_server_is_read_too(daytona, states, make_ctx, clock):
    daytona.router.routes["list"].side_effect = None
    daytona.router.routes["list"].mock(
        return_value=httpx.Response(200, json=[{"id": "old-1", "state": "stopped"}])
    )
    ctx = make_ctx({})
    await drive(ListSandboxes(), ctx, clock)
    assert ctx.data == {"sandboxes": [{"id": "old-1", "state": "stopped"}], "count": 1}


def test_the_example_output_is_a_valid_event():
    assert_example_is_a_valid_event(ListSandboxes)
