"""A sandbox found stopped under a node (its processes died with the embedded backend's runner).

Work that had not begun runs after one restart of the sandbox; a command already sent is never
run again: the node fails with a message naming the command and the sandbox.
"""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, ProcessDied, drive, fixture

from daytonaflow.components import (
    CreateRepositorySandbox,
    CreateSandbox,
    ExecuteCode,
    ExecuteCommand,
    InterruptedCommandError,
)
from daytonaflow.errors import ComponentError

COMMAND = {"sandbox": SANDBOX_ID, "command": "make deploy"}
CODE = {"sandbox": SANDBOX_ID, "code": "print('deploying')\nprint('done')"}


@pytest.fixture
def existing(daytona):
    """The sandbox the command runs in, as a createSandbox before the crash left it."""
    daytona.sandboxes[SANDBOX_ID] = fixture("sandbox", id=SANDBOX_ID, labels={})
    daytona.states[SANDBOX_ID] = ["started"]
    return SANDBOX_ID


async def _until_the_runner_dies(component, ctx, clock):
    """Run the node until its first wait, where the runner's process dies."""
    clock.crash_after(1)
    with pytest.raises(ProcessDied):
        await component.execute(ctx)


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
    await _until_the_runner_dies(component, first, clock)
    daytona.stop(existing)
    with pytest.raises(InterruptedCommandError) as failure:
        await component.execute(resumed_ctx(make_ctx, first))
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
    await _until_the_runner_dies(ExecuteCommand(), first, clock)
    daytona.stop(existing)
    with pytest.raises(InterruptedCommandError) as failure:
        await ExecuteCommand().execute(resumed_ctx(make_ctx, first))
    with pytest.raises(Exception, match="was interrupted") as again:
        await ExecuteCommand().execute(resumed_ctx(make_ctx, first))
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
    # Created; the runner dies before it reports started.
    await _until_the_runner_dies(CreateSandbox(), first, clock)
    daytona.stop(SANDBOX_ID)
    resumed = resumed_ctx(make_ctx, first)
    await CreateSandbox().execute(resumed)
    assert resumed.channel == "default"
    assert resumed.data == {"id": SANDBOX_ID, "state": "started"}
    assert daytona.restarted == [SANDBOX_ID]
    assert len(daytona.sandboxes) == 1


async def test_cancelling_a_command_whose_sandbox_stopped_is_quiet(daytona, existing, make_ctx, clock):
    daytona.next_exits = [[None]]
    first = make_ctx(COMMAND)
    await _until_the_runner_dies(ExecuteCommand(), first, clock)
    daytona.stop(existing)
    await ExecuteCommand().cancel(resumed_ctx(make_ctx, first))  # nothing runs there any more
    assert daytona.deleted_sessions == []


REPOSITORY = {
    "repository": "https://github.com/superplanehq/example-app.git",
    "bootstrap": {"from": "inline", "script": "make setup"},
}


async def _until_bootstrap_started(component, ctx, clock):
    clock.crash_when(lambda: (ctx.metadata.data.get("bootstrap") or {}).get("commandId") is not None)
    with pytest.raises(ProcessDied):
        await component.execute(ctx)


async def test_a_started_bootstrap_whose_sandbox_stopped_fails_and_deletes_the_sandbox(
    daytona, make_ctx, clock
):
    daytona.next_exits = [[None]]
    first = make_ctx(REPOSITORY)
    await _until_bootstrap_started(CreateRepositorySandbox(), first, clock)
    daytona.stop(SANDBOX_ID)
    with pytest.raises(ComponentError, match=r"bootstrap of .* was interrupted") as failure:
        await CreateRepositorySandbox().execute(resumed_ctx(make_ctx, first))
    assert f"sandbox {SANDBOX_ID} is deleted" in str(failure.value)
    assert daytona.deleted == [SANDBOX_ID]
    assert daytona.restarted == []


async def test_a_clone_cut_by_a_stopped_sandbox_is_cloned_again_after_a_restart(daytona, make_ctx, clock):
    first = make_ctx({"repository": REPOSITORY["repository"]})
    component = CreateRepositorySandbox()
    await component.execute(first)
    # The runner died during the clone: the metadata of that moment.
    first.metadata.set(
        next(state for state in first.metadata.history if state.get("cloning") and not state.get("cloned"))
    )
    daytona.stop(SANDBOX_ID)
    resumed = resumed_ctx(make_ctx, first)
    await component.execute(resumed)
    assert resumed.channel == "default"
    assert daytona.restarted == [SANDBOX_ID]
    assert len(daytona.clones) == 2
