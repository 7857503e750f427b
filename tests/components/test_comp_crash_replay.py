"""An engine that dies after a component cleaned up but before it committed the outcome.

The re-run must end the same way (same channel and payload, or same failure) without asking
Daytona about the session or sandbox the first run already deleted, and without running
anything twice.
"""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, DictSecrets, drive, fixture

from daytonaflow.components import CreateRepositorySandbox, CreateSandbox, ExecuteCode, ExecuteCommand
from daytonaflow.components._sandbox_env import SECRET_REFS_LABEL
from daytonaflow.errors import ComponentError


class EngineDied(Exception):
    """Stands for the engine process being killed while the hook emits."""


def dying_at_emit(ctx):
    def emit(channel, payload):
        raise EngineDied

    ctx.emit = emit
    return ctx


async def rerun(component, make_ctx, first, **kwargs):
    resumed = make_ctx(first.config, metadata=first.metadata, resources=first.resources, **kwargs)
    await component.check(resumed)
    return resumed


@pytest.mark.parametrize(
    ("component", "config"),
    [
        (ExecuteCommand(), {"sandbox": SANDBOX_ID, "command": "echo hi"}),
        (ExecuteCode(), {"sandbox": SANDBOX_ID, "code": "print('hi')"}),
    ],
)
async def test_a_command_outcome_is_replayed_after_its_session_was_deleted(
    daytona, make_ctx, clock, component, config
):
    daytona.next_outputs = ["hi\n"]
    first = dying_at_emit(make_ctx(config))
    with pytest.raises(EngineDied):
        await drive(component, first, clock)
    assert len(daytona.deleted_sessions) == 1
    resumed = await rerun(component, make_ctx, first)
    assert resumed.channel == "success"
    assert resumed.data["result"] == "hi\n"
    assert len(daytona.started) == 1


async def test_a_timed_out_command_is_replayed_as_timed_out(daytona, make_ctx, clock):
    daytona.next_exits = [[None] * 20 + [124]]
    first = dying_at_emit(make_ctx({"sandbox": SANDBOX_ID, "command": "sleep 100", "timeout": 2}))
    with pytest.raises(EngineDied):
        await drive(ExecuteCommand(), first, clock)
    resumed = await rerun(ExecuteCommand(), make_ctx, first)
    assert resumed.channel == "failed"
    assert resumed.data["timeout"] is True


async def test_a_repository_sandbox_outcome_is_replayed_after_the_bootstrap_session_was_deleted(
    daytona, make_ctx, clock
):
    config = {
        "repository": "https://github.com/org/app.git",
        "bootstrap": {"from": "inline", "script": "true"},
    }
    first = dying_at_emit(make_ctx(config))
    with pytest.raises(EngineDied):
        await drive(CreateRepositorySandbox(), first, clock)
    resumed = await rerun(CreateRepositorySandbox(), make_ctx, first)
    assert resumed.data["sandboxId"] == SANDBOX_ID
    assert resumed.data["bootstrap"]["exitCode"] == 0
    assert len(daytona.clones) == 1
    assert len(daytona.started) == 1


async def test_a_failed_bootstrap_fails_the_rerun_with_the_same_message(daytona, make_ctx, clock):
    daytona.next_exits = [[None, 2]]
    daytona.next_outputs = ["npm ERR! boom\n"]
    config = {"repository": "https://github.com/org/app.git", "bootstrap": {"from": "file", "path": "b.sh"}}
    first = make_ctx(config)
    with pytest.raises(ComponentError) as failure:
        await drive(CreateRepositorySandbox(), first, clock)
    with pytest.raises(ComponentError) as again:
        await rerun(CreateRepositorySandbox(), make_ctx, first)
    assert str(again.value) == str(failure.value)
    assert daytona.deleted == [SANDBOX_ID]


async def test_a_sandbox_that_failed_to_start_fails_the_rerun_with_the_same_message(daytona, make_ctx, clock):
    daytona.start_states = ["creating", "build_failed"]
    first = make_ctx({})
    with pytest.raises(ComponentError, match="build_failed") as failure:
        await drive(CreateSandbox(), first, clock)
    with pytest.raises(ComponentError) as again:
        await rerun(CreateSandbox(), make_ctx, first)
    assert str(again.value) == str(failure.value)
    assert not first.resources.held


async def test_recorded_outcomes_hold_no_secret_values(daytona, make_ctx, clock):
    daytona.sandboxes[SANDBOX_ID] = fixture("sandbox", labels={SECRET_REFS_LABEL: '[["s","k"]]'})
    daytona.states[SANDBOX_ID] = ["started"]
    daytona.next_outputs = ["value=very-secret-value\n"]
    ctx = make_ctx(
        {"sandbox": SANDBOX_ID, "command": "echo value=$K"},
        secrets=DictSecrets({"s": {"k": "very-secret-value"}}),
    )
    await drive(ExecuteCommand(), ctx, clock)
    assert "very-secret-value" not in str(ctx.metadata.history)
    assert ctx.metadata.data["outcome"]["data"]["result"] == "value=[REDACTED]\n"
