"""daytona.executeCode: runs code in a session, routes by exit code, kills at the timeout."""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, ProcessDied, drive

from daytonaflow.components import ExecuteCode
from daytonaflow.components._sandbox_env import ENV_FILE
from daytonaflow.components._timing import FIRST_POLL_DELAY
from daytonaflow.errors import ConfigError


def code_config(**overrides):
    return {"sandbox": SANDBOX_ID, "code": 'print("Hello, World!")', "language": "python", **overrides}


async def test_exit_zero_routes_to_success_with_the_seed_payload(daytona, make_ctx, clock):
    ctx = make_ctx(code_config())
    await drive(ExecuteCode(), ctx, clock)
    assert ctx.channel == "success"
    assert ctx.emitted[0][1].type == "daytona.execute.response"
    assert ctx.data == {"exitCode": 0, "result": "Hello, World!\n"}


async def test_non_zero_exit_routes_to_failed(daytona, make_ctx, clock):
    daytona.next_exits = [[None, 1]]
    daytona.next_outputs = ["Traceback (most recent call last):\nZeroDivisionError\n"]
    ctx = make_ctx(code_config(code="1/0"))
    await drive(ExecuteCode(), ctx, clock)
    assert ctx.channel == "failed"
    assert ctx.data["exitCode"] == 1
    assert "ZeroDivisionError" in ctx.data["result"]


async def test_the_code_is_uploaded_and_run_by_the_language_interpreter(daytona, make_ctx, clock):
    await drive(ExecuteCode(), make_ctx(code_config()), clock)
    [(path, content)] = [(path, data) for path, data in daytona.files.items() if path.endswith(".py")]
    assert content == b'print("Hello, World!")'
    [command] = daytona.all_commands_ever()
    assert f"exec python3 {path}" in command
    assert ENV_FILE in command  # later steps see secrets injected as env vars


@pytest.mark.parametrize(
    ("language", "extension", "runner"),
    [("javascript", ".js", "exec node"), ("typescript", ".ts", "ts-node")],
)
async def test_each_language_gets_its_interpreter(daytona, make_ctx, clock, language, extension, runner):
    await drive(ExecuteCode(), make_ctx(code_config(language=language, code="console.log(1)")), clock)
    [command] = daytona.all_commands_ever()
    assert runner in command
    assert any(path.endswith(extension) for path in daytona.files)


async def test_the_session_and_code_file_are_removed_afterwards(daytona, make_ctx, clock):
    await drive(ExecuteCode(), make_ctx(code_config()), clock)
    assert len(daytona.deleted_sessions) == 1
    assert daytona.sessions == {}
    assert any(path.endswith(".py") for path in daytona.deleted_files)


async def test_waiting_for_the_code_frees_the_engine_and_first_looks_within_milliseconds(
    daytona, make_ctx, clock
):
    ctx = make_ctx(code_config())
    await ExecuteCode().execute(ctx)
    assert ctx.waits >= 1
    assert clock.sleeps[0] == FIRST_POLL_DELAY
    assert ctx.channel == "success"


async def test_the_timeout_in_milliseconds_is_enforced_inside_the_sandbox(daytona, make_ctx, clock):
    await drive(ExecuteCode(), make_ctx(code_config(timeout=1500)), clock)
    [command] = daytona.all_commands_ever()
    assert command.startswith("timeout -k 5 1.5 bash -c ")


async def test_a_timed_out_run_routes_to_failed_with_timeout_and_keeps_partial_output(
    daytona, make_ctx, clock
):
    daytona.next_exits = [[None] * 40 + [124]]
    daytona.next_outputs = ["working...\n"]
    ctx = make_ctx(code_config(timeout=2000))
    await drive(ExecuteCode(), ctx, clock)
    assert ctx.channel == "failed"
    assert ctx.data == {"exitCode": 124, "result": "working...\n", "timeout": True}


async def test_a_run_the_sandbox_did_not_stop_is_killed_by_deleting_its_session(daytona, make_ctx, clock):
    daytona.next_exits = [[None]]
    ctx = make_ctx(code_config(timeout=1000))
    await drive(ExecuteCode(), ctx, clock)
    assert ctx.channel == "failed"
    assert ctx.data["timeout"] is True
    assert len(daytona.deleted_sessions) == 1


async def test_long_output_is_bounded_with_a_marker(daytona, make_ctx, clock):
    daytona.next_outputs = ["x" * 5000 + "THE END"]
    ctx = make_ctx(code_config(maxOutputBytes=1024))
    await drive(ExecuteCode(), ctx, clock)
    result = ctx.data["result"]
    assert len(result.encode()) <= 1024
    assert "truncated" in result
    assert result.endswith("THE END")
    assert ctx.data["truncated"] is True


async def test_cancel_kills_the_running_code(daytona, make_ctx, clock):
    daytona.next_exits = [[None]]
    ctx = make_ctx(code_config())
    clock.crash_after(3)  # the engine stops the hook while the code runs, then cancels
    with pytest.raises(ProcessDied):
        await ExecuteCode().execute(ctx)
    await ExecuteCode().cancel(ctx)
    assert len(daytona.deleted_sessions) == 1
    assert any(path.endswith(".py") for path in daytona.deleted_files)


async def test_a_restart_before_the_command_id_was_saved_adopts_the_running_command(daytona, make_ctx, clock):
    ctx = make_ctx(code_config())
    clock.crash_after(1)
    with pytest.raises(ProcessDied):
        await ExecuteCode().execute(ctx)
    # Simulate a crash right after the command started but before its ID was persisted.
    first_state = next(state for state in ctx.metadata.history if state.get("command", {}).get("launched"))
    assert first_state["command"]["commandId"] is None
    resumed = make_ctx(code_config())
    resumed.metadata.set(first_state)
    await drive(ExecuteCode(), resumed, clock)
    assert len(daytona.all_commands_ever()) == 1
    assert resumed.channel == "success"


async def test_language_must_be_supported(daytona, make_ctx, clock):
    with pytest.raises(ConfigError, match='language must be one of "python", "typescript", "javascript"'):
        await drive(ExecuteCode(), make_ctx(code_config(language="ruby")), clock)
    assert not daytona.router.calls
