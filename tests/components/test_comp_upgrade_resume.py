"""Runs persisted by the version before the durable step, resumed after an upgrade, carry on where
they were: a command that had started is never started again, a clone is not made twice."""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, FakeCommand, drive, fixture

from daytonaflow.components import CreateRepositorySandbox, ExecuteCommand, InterruptedCommandError

SESSION = "daytonaflow-command-45a9fd541846ee6ac0ff"
REPOSITORY = {
    "repository": "https://github.com/superplanehq/example-app.git",
    "bootstrap": {"from": "inline", "script": "make setup"},
}


def old_step(clock, session: str = SESSION, command_id: str | None = "cmd-old") -> dict:
    """A running command, in the shape the earlier version persisted."""
    return {
        "sandbox": SANDBOX_ID,
        "session": session,
        "index": 0,
        "startedAt": clock.value - 5,
        "deadline": clock.value + 55,
        "commandId": command_id,
        "delay": 0.04,
        "launched": True,
    }


@pytest.fixture
def existing(daytona):
    daytona.sandboxes[SANDBOX_ID] = fixture("sandbox", id=SANDBOX_ID, labels={})
    daytona.states[SANDBOX_ID] = ["started"]
    return SANDBOX_ID


async def test_an_old_running_command_whose_sandbox_stopped_is_not_run_again(
    daytona, existing, make_ctx, clock
):
    daytona.stop(existing)  # the upgrade restarted the runner: the embedded backend's processes died
    ctx = make_ctx({"sandbox": SANDBOX_ID, "command": "make deploy"})
    ctx.metadata.set({"step": old_step(clock)})
    with pytest.raises(InterruptedCommandError, match='command "make deploy" was interrupted'):
        await ExecuteCommand().check(ctx)
    assert daytona.started == []
    assert daytona.restarted == []


async def test_an_old_running_command_on_a_live_sandbox_is_adopted_and_keeps_its_deadline(
    daytona, existing, make_ctx, clock
):
    # The old run's session and command are still there on the server.
    daytona.sessions[SESSION] = [FakeCommand("cmd-old", "make deploy", [None, 0], "deployed\n")]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "command": "make deploy"})
    ctx.metadata.set({"step": old_step(clock)})
    deadline = old_step(clock)["deadline"]
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "success"
    assert ctx.data["result"] == "deployed\n"
    assert daytona.started == []
    assert ctx.metadata.data["command"]["deadline"] == deadline
    assert SESSION in daytona.deleted_sessions


async def test_an_old_repository_sandbox_mid_bootstrap_is_not_cloned_again(
    daytona, existing, make_ctx, clock
):
    session = "daytonaflow-repository-45a9fd541846ee6ac0ff"
    daytona.sessions[session] = [FakeCommand("cmd-old", "make setup", [0], "set up\n")]
    ctx = make_ctx(REPOSITORY)
    ctx.metadata.set(
        {
            "phase": "bootstrapping",
            "start": {"sandboxId": SANDBOX_ID, "deadline": clock.value + 200, "delay": 0.02},
            "startedAt": "2026-01-19T11:59:00Z",
            "step": old_step(clock, session=session),
        }
    )
    await drive(CreateRepositorySandbox(), ctx, clock)
    assert ctx.channel == "default"
    assert daytona.clones == []
    assert daytona.started == []
    assert ctx.data["bootstrap"]["exitCode"] == 0
    assert ctx.data["sandboxStartedAt"] == "2026-01-19T11:59:00Z"
