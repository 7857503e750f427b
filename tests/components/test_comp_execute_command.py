"""daytona.executeCommand: quoting, channels, real timeouts, background starts that wait for a port."""

from __future__ import annotations

import json

import httpx
import pytest
from comp_support import SANDBOX_ID, DictSecrets, drive, error_body, fixture, inner_script

from daytonaflow.components import CreateSandbox, ExecuteCommand
from daytonaflow.components._sandbox_env import SECRET_REFS_LABEL
from daytonaflow.errors import ComponentError, ConfigError


def command_config(**overrides):
    return {"sandbox": SANDBOX_ID, "command": "pip install requests", **overrides}


async def test_exit_zero_routes_to_success_with_the_seed_payload(daytona, make_ctx, clock):
    daytona.next_outputs = ["Successfully installed requests-2.31.0\n"]
    ctx = make_ctx(command_config())
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "success"
    assert ctx.emitted[0][1].type == "daytona.command.response"
    assert ctx.data == {"exitCode": 0, "result": "Successfully installed requests-2.31.0\n", "timeout": False}


async def test_non_zero_exit_routes_to_failed(daytona, make_ctx, clock):
    daytona.next_exits = [[None, None, 2]]
    daytona.next_outputs = ["ls: cannot access 'nope'\n"]
    ctx = make_ctx(command_config(command="ls nope"))
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "failed"
    assert ctx.data == {"exitCode": 2, "result": "ls: cannot access 'nope'\n", "timeout": False}


async def test_cwd_and_env_are_shell_quoted_and_the_command_kept_verbatim(daytona, make_ctx, clock):
    config = command_config(
        command="echo $GREETING > out.txt",
        cwd="/home/daytona/my app; rm -rf /",
        env=[{"name": "GREETING", "value": "it's $(whoami)"}],
    )
    await drive(ExecuteCommand(), make_ctx(config), clock)
    script = inner_script(daytona.all_commands_ever()[0])
    assert "cd -- '/home/daytona/my app; rm -rf /' || exit 1" in script
    assert "export GREETING='it'\"'\"'s $(whoami)'" in script
    assert script.endswith("\necho $GREETING > out.txt")


async def test_default_timeout_is_sixty_seconds_enforced_inside_the_sandbox(daytona, make_ctx, clock):
    await drive(ExecuteCommand(), make_ctx(command_config()), clock)
    assert daytona.all_commands_ever()[0].startswith("timeout -k 5 60 bash -c ")


async def test_a_timed_out_command_routes_to_failed_with_timeout_and_partial_output(daytona, make_ctx, clock):
    daytona.next_exits = [[None] * 30 + [124]]
    daytona.next_outputs = ["Collecting requests\n"]
    ctx = make_ctx(command_config(timeout=3))
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "failed"
    assert ctx.data == {"exitCode": 124, "result": "Collecting requests\n", "timeout": True}


async def test_exit_124_before_the_deadline_is_an_ordinary_failure(daytona, make_ctx, clock):
    daytona.next_exits = [[None, 124]]
    ctx = make_ctx(command_config(command="exit 124"))
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.data["timeout"] is False


async def test_cancel_kills_the_running_command(daytona, make_ctx, clock):
    daytona.next_exits = [[None]]
    ctx = make_ctx(command_config())
    await ExecuteCommand().execute(ctx)
    await ExecuteCommand().cancel(ctx)
    assert len(daytona.deleted_sessions) == 1


async def test_engine_restart_resumes_the_same_command(daytona, make_ctx, clock):
    daytona.next_exits = [[None, None, 0]]
    first = make_ctx(command_config())
    await ExecuteCommand().execute(first)
    resumed = make_ctx(command_config(), metadata=first.metadata)
    await drive(ExecuteCommand(), resumed, clock)
    assert len(daytona.all_commands_ever()) == 1
    assert resumed.channel == "success"


async def test_a_missing_sandbox_fails_with_daytonas_message(daytona, make_ctx, clock):
    daytona.router.routes["create_session"].mock(
        return_value=httpx.Response(404, json=error_body(404, "Sandbox not found", "Not Found"))
    )
    daytona.router.routes["get_session"].mock(
        return_value=httpx.Response(404, json=error_body(404, "Sandbox not found", "Not Found"))
    )
    with pytest.raises(Exception, match="404: Not Found: Sandbox not found"):
        await drive(ExecuteCommand(), make_ctx(command_config()), clock)


# --- background ---------------------------------------------------------------------------------


async def test_background_returns_once_the_port_answers_and_leaves_the_process_running(
    daytona, make_ctx, clock
):
    daytona.next_exits = [[None]]
    daytona.next_outputs = ["Listening on :3000\n"]
    daytona.probe_exits = [1, 1, 0]
    ctx = make_ctx(command_config(command="npm start", background=True, waitForPort=3000))
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "success"
    data = ctx.data
    assert data["background"] is True
    assert data["port"] == 3000
    assert data["timeout"] is False
    assert "exitCode" not in data
    assert data["result"] == "Listening on :3000\n"
    assert daytona.deleted_sessions == []  # the server keeps running
    assert len(daytona.executed) == 3
    assert "/dev/tcp/127.0.0.1/3000" in daytona.executed[0]["command"]


async def test_a_background_command_that_exits_before_it_is_ready_ends_its_session(daytona, make_ctx, clock):
    daytona.next_exits = [[0]]
    ctx = make_ctx(command_config(command="true", background=True, waitForPort=3000))
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.data["exitCode"] == 0
    assert len(daytona.deleted_sessions) == 1


async def test_background_commands_are_not_wrapped_in_a_timeout(daytona, make_ctx, clock):
    daytona.next_exits = [[None]]
    await drive(ExecuteCommand(), make_ctx(command_config(background=True)), clock)
    assert daytona.all_commands_ever()[0].startswith("bash -c ")


async def test_background_without_a_port_returns_once_the_process_stays_up(daytona, make_ctx, clock):
    daytona.next_exits = [[None]]
    ctx = make_ctx(command_config(command="sleep 1000", background=True))
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "success"
    assert ctx.data["sessionId"].startswith("daytonaflow-background-")


async def test_a_background_process_that_dies_routes_to_failed(daytona, make_ctx, clock):
    daytona.next_exits = [[None, 1]]
    daytona.next_outputs = ["Error: Cannot find module 'express'\n"]
    ctx = make_ctx(command_config(command="node server.js", background=True, waitForPort=3000))
    daytona.probe_exits = [1, 1, 1]
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "failed"
    assert ctx.data["exitCode"] == 1
    assert "Cannot find module" in ctx.data["result"]


async def test_a_port_that_never_answers_times_out_and_stops_the_process(daytona, make_ctx, clock):
    daytona.next_exits = [[None]]
    daytona.probe_exits = [1] * 100
    ctx = make_ctx(command_config(command="npm start", background=True, waitForPort=8080, timeout=5))
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "failed"
    assert ctx.data["timeout"] is True
    assert len(daytona.deleted_sessions) == 1


@pytest.mark.parametrize("port", [0, 65536])
async def test_wait_for_port_must_be_a_valid_port(daytona, make_ctx, clock, port):
    with pytest.raises(ConfigError, match="waitForPort must be between 1 and 65535"):
        await drive(ExecuteCommand(), make_ctx(command_config(background=True, waitForPort=port)), clock)


async def test_values_of_secrets_injected_into_the_sandbox_are_masked_in_the_result(daytona, make_ctx, clock):
    labels = {SECRET_REFS_LABEL: '[["api-key-secret","API_KEY"]]'}
    daytona.sandboxes[SANDBOX_ID] = fixture("sandbox", labels=labels)
    daytona.states[SANDBOX_ID] = ["started"]
    daytona.next_outputs = ["token is sk-live-0123456789\n"]
    secrets = DictSecrets({"api-key-secret": {"API_KEY": "sk-live-0123456789"}})
    ctx = make_ctx(command_config(command="echo token is $API_KEY"), secrets=secrets)
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.data["result"] == "token is [REDACTED]\n"


async def test_output_is_never_reported_unmasked_when_the_sandbox_cannot_be_read(daytona, make_ctx, clock):
    daytona.router.routes["get"].mock(
        return_value=httpx.Response(503, json=error_body(503, "Service Unavailable", "Service Unavailable"))
    )
    daytona.next_outputs = ["token is sk-live-0123456789\n"]
    secrets = DictSecrets({"api-key-secret": {"API_KEY": "sk-live-0123456789"}})
    ctx = make_ctx(command_config(command="echo token is $API_KEY"), secrets=secrets)
    with pytest.raises(
        ComponentError, match=f"cannot read which secrets sandbox {SANDBOX_ID} holds"
    ) as failure:
        await drive(ExecuteCommand(), ctx, clock)
    assert not ctx.emitted
    assert "sk-live" not in str(failure.value)
    assert "sk-live" not in json.dumps(ctx.metadata.history)


async def test_create_sandbox_records_secret_references_for_later_masking(daytona, make_ctx, clock):
    secret = {"type": "env", "name": "API_KEY", "value": {"secret": "api-key-secret", "key": "API_KEY"}}
    secrets = DictSecrets({"api-key-secret": {"API_KEY": "sk-live-0123456789"}})
    await drive(CreateSandbox(), make_ctx({"secrets": [secret]}, secrets=secrets), clock)
    assert daytona.create_bodies[0]["labels"][SECRET_REFS_LABEL] == '[["api-key-secret","API_KEY"]]'
    assert "sk-live" not in str(daytona.create_bodies)


async def test_a_lost_answer_to_the_command_start_adopts_the_command_instead_of_running_it_twice(
    daytona, make_ctx, clock
):
    route = daytona.router.routes["exec"]
    original = route.side_effect
    calls = []

    def lose_answer(request, sid, session):
        response = original(request, sid, session)
        calls.append(response)
        if len(calls) == 1:
            raise httpx.ReadError("connection reset after the command started")
        return response

    route.side_effect = lose_answer
    ctx = make_ctx(command_config())
    await drive(ExecuteCommand(), ctx, clock)
    assert daytona.router.routes["exec"].call_count == 1
    assert len(daytona.started) == 1
    assert ctx.channel == "success"


async def test_a_refused_command_start_is_started_again_once(daytona, make_ctx, clock):
    route = daytona.router.routes["exec"]
    original = route.side_effect
    answers = iter([httpx.Response(502, json=error_body(502, "bad gateway", "Bad Gateway"))])
    route.side_effect = lambda request, sid, session: next(answers, None) or original(request, sid, session)
    ctx = make_ctx(command_config())
    await drive(ExecuteCommand(), ctx, clock)
    assert route.call_count == 2
    assert len(daytona.started) == 1
    assert ctx.channel == "success"
