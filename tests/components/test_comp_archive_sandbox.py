"""daytona.archiveSandbox against Daytona's REST API (respx)."""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, ProcessDied, drive
from files_support import FilesAndStates, assert_example_is_a_valid_event

from daytonaflow.components import ArchiveSandbox
from daytonaflow.errors import ComponentError


@pytest.fixture
def states(daytona):
    return FilesAndStates(daytona).install()


async def test_a_stopped_sandbox_is_archived_and_reported_once_archived(daytona, states, make_ctx, clock):
    states.add_sandbox("stopped")
    states.archive_states = ["archiving", "archiving", "archived"]
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(ArchiveSandbox(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.sandbox"
    assert ctx.data == {"id": SANDBOX_ID, "state": "archived"}
    assert states.archives == [SANDBOX_ID]


async def test_an_archived_sandbox_is_reported_without_asking_again(daytona, states, make_ctx, clock):
    states.add_sandbox("archived")
    await drive(ArchiveSandbox(), make_ctx({"sandbox": SANDBOX_ID}), clock)
    assert states.archives == []


async def test_a_backend_that_cannot_archive_fails_the_node_saying_so(daytona, states, make_ctx, clock):
    states.add_sandbox("stopped")
    states.archive_refusal = (
        400,
        "this server cannot archive a sandbox: it keeps every sandbox on local disk",
    )
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    with pytest.raises(ComponentError) as failure:
        await drive(ArchiveSandbox(), ctx, clock)
    assert str(failure.value) == (
        f'node "node-1": cannot archive sandbox {SANDBOX_ID}: this server cannot archive a sandbox:'
        " it keeps every sandbox on local disk"
    )
    assert not ctx.emitted
    # Asked once: a refusal is not repeated.
    assert states.archives == [SANDBOX_ID]


async def test_a_started_sandbox_daytona_refuses_to_archive_fails_with_its_message(
    daytona, states, make_ctx, clock
):
    states.add_sandbox("started")
    states.archive_refusal = (400, "Sandbox is not stopped")
    with pytest.raises(ComponentError, match=f"cannot archive sandbox {SANDBOX_ID}: Sandbox is not stopped"):
        await drive(ArchiveSandbox(), make_ctx({"sandbox": SANDBOX_ID}), clock)


async def test_a_missing_sandbox_fails_naming_it(daytona, states, make_ctx, clock):
    with pytest.raises(ComponentError, match='node "node-1": sandbox "ghost" was not found'):
        await drive(ArchiveSandbox(), make_ctx({"sandbox": "ghost"}), clock)


async def test_a_sandbox_not_archived_by_the_timeout_fails_the_node(daytona, states, make_ctx, clock):
    states.add_sandbox("stopped")
    states.archive_states = ["archiving"]
    with pytest.raises(ComponentError, match="did not reach archived within 30 s"):
        await drive(ArchiveSandbox(), make_ctx({"sandbox": SANDBOX_ID, "timeout": 30}), clock)


async def test_a_re_run_after_the_engine_died_mid_wait_does_not_archive_again(
    daytona, states, make_ctx, clock
):
    states.add_sandbox("stopped")
    states.archive_states = ["archiving"] * 5 + ["archived"]
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    clock.crash_after(2)
    with pytest.raises(ProcessDied):
        await drive(ArchiveSandbox(), ctx, clock)
    await drive(ArchiveSandbox(), ctx, clock)
    assert ctx.data["state"] == "archived"
    assert states.archives == [SANDBOX_ID]


def test_the_example_output_is_a_valid_event():
    assert_example_is_a_valid_event(ArchiveSandbox)
