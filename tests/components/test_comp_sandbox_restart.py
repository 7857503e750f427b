"""A sandbox found stopped under a node (its processes died with the embedded backend's runner).

Work that had not begun runs after one restart of the sandbox; a command already sent is never
run again: the node fails with a message naming the command and the sandbox.
"""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, drive, fixture

from daytonaflow.components import CreateRepositorySandbox, CreateSandbox, ExecuteCode, ExecuteCommand
from daytonaflow.components.sandbox_restart import InterruptedCommandError
from daytonaflow.errors import ComponentError

COMMAND = {"sandbox": SANDBOX_ID, "command": "make deploy"}
CODE = {"sandbox": SANDBOX_ID, "code": "print('deploying')\nprint('done')"}


@pytest.fixture
def existing(daytona):
    """The sandbox the command runs in, as a createSandbox before the crash left it."""
    daytona.sandboxes[SANDBOX_ID] = fixture("sandbox", id=SANDBOX_ID, labels={})
    daytona.states[SANDBOX_ID] = ["started"]
    return SANDBOX_ID


def resumed_ctx(make_ctx, first):
    return make_ctx(first.config, metadata=first.metadata, resources=first.resources)


@pytest.mark.parametrize(
    ("component", "config", "named"),
    [
        (ExecuteCommand(), COMMAND, 'command "make deploy"'),
        (ExecuteCode(), CODE, "python code \"print('deploying')\" (first of 2 lines)"),
    ],
)
async def test_a_started_command_whose_sandbox_stopped_fails_naming_it_and_never_runs_again(
    daytona, existing, make_ctx, clock, component, config, named
):
    daytona.next_exits = [[None]]  # still running when the runner dies
    first = make_ctx(config)
    await component.execute(first)
    daytona.stop(existing)
    with pytest.raises(InterruptedCommandError) as failure:
        await component.check(resumed_ctx(make_ctx, first))
    message = str(failure.value)
    assert message.startswith(f'node "node-1": {named} was interrupted')
    assert f"sandbox {existing} was found stopped" in message
    assert "die with the runner process" in message
    assert "not run again" in message
    assert len(daytona.started) == 1
    assert daytona.restarted == []


async def test_the_interruption_is_replayed_after_a_crash_without_asking_the_sandbox_again(
    daytona, existing, make_ctx, clock
):
    daytona.next_exits = [[None]]
    first = make_ctx(COMMAND)
    await ExecuteCommand().execute(first)
    daytona.stop(existing)
    with pytest.raises(InterruptedCommandError) as failure:
        await ExecuteCommand().check(resumed_ctx(make_ctx, first))
    with pytest.raises(Exception, match="was interrupted") as again:
        await ExecuteCommand().check(resumed_ctx(make_ctx, first))
    assert str(again.value) == str(failure.value)
    assert len(daytona.started) == 1


async def test_a_command_not_yet_sent_when_its_sandbox_stopped_runs_after_one_restart(
    daytona, existing, make_ctx, clock
):
    daytona.stop(existing)  # the runner died before this node started: it resumes as pending
    ctx = make_ctx(COMMAND)
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "success"
    assert daytona.restarted == [existing]
    assert len(daytona.started) == 1


async def test_code_whose_upload_found_the_sandbox_stopped_is_uploaded_and_run_after_a_restart(
    daytona, existing, make_ctx, clock
):
    daytona.stop(existing)
    ctx = make_ctx(CODE)
    await drive(ExecuteCode(), ctx, clock)
    assert ctx.channel == "success"
    assert daytona.restarted == [existing]
    assert any(path.endswith(".py") for path in daytona.files)


async def test_a_sandbox_that_stopped_while_starting_is_started_once_and_emitted(daytona, make_ctx, clock):
    first = make_ctx({})
    await CreateSandbox().execute(first)  # created; the runner dies before it reports started
    daytona.stop(SANDBOX_ID)
    resumed = resumed_ctx(make_ctx, first)
    await CreateSandbox().check(resumed)
    assert resumed.channel == "default"
    assert resumed.data == {"id": SANDBOX_ID, "state": "started"}
    assert daytona.restarted == [SANDBOX_ID]
    assert len(daytona.sandboxes) == 1


async def test_cancelling_a_command_whose_sandbox_stopped_is_quiet(daytona, existing, make_ctx, clock):
    daytona.next_exits = [[None]]
    first = make_ctx(COMMAND)
    await ExecuteCommand().execute(first)
    daytona.stop(existing)
    await ExecuteCommand().cancel(resumed_ctx(make_ctx, first))  # nothing runs there any more
    assert daytona.deleted_sessions == []


REPOSITORY = {
    "repository": "https://github.com/superplanehq/example-app.git",
    "bootstrap": {"from": "inline", "script": "make setup"},
}


async def _until_bootstrap_started(component, ctx, clock):
    await component.execute(ctx)
    while not (ctx.metadata.data.get("step") or {}).get("commandId"):
        assert ctx.pending is not None, "the bootstrap never started"
        delay, ctx.pending = ctx.pending, None
        clock.advance(delay)
        await component.check(ctx)


async def test_a_started_bootstrap_whose_sandbox_stopped_fails_and_deletes_the_sandbox(
    daytona, make_ctx, clock
):
    daytona.next_exits = [[None]]
    first = make_ctx(REPOSITORY)
    await _until_bootstrap_started(CreateRepositorySandbox(), first, clock)
    daytona.stop(SANDBOX_ID)
    with pytest.raises(ComponentError, match=r"bootstrap of .* was interrupted") as failure:
        await CreateRepositorySandbox().check(resumed_ctx(make_ctx, first))
    assert f"sandbox {SANDBOX_ID} is deleted" in str(failure.value)
    assert daytona.deleted == [SANDBOX_ID]
    assert daytona.restarted == []


async def test_a_clone_cut_by_a_stopped_sandbox_is_cloned_again_after_a_restart(daytona, make_ctx, clock):
    first = make_ctx({"repository": REPOSITORY["repository"]})
    component = CreateRepositorySandbox()
    await component.execute(first)
    while first.metadata.data.get("phase") == "starting":
        delay, first.pending = first.pending, None
        clock.advance(delay)
        await component.check(first)
    # The runner died during the clone: the metadata of that moment has no outcome yet.
    before_outcome = {key: value for key, value in first.metadata.data.items() if key != "outcome"}
    first.metadata.set({**before_outcome, "phase": "cloning"})
    daytona.stop(SANDBOX_ID)
    resumed = resumed_ctx(make_ctx, first)
    await component.check(resumed)
    assert resumed.channel == "default"
    assert daytona.restarted == [SANDBOX_ID]
    assert len(daytona.clones) == 2
