"""daytona.createSandbox: create, wait for started without blocking, inject secrets, clean up failures."""

from __future__ import annotations

import itertools
import json

import httpx
import pytest
from comp_support import SANDBOX_ID, DictSecrets, FakeContext, ProcessDied, drive, error_body

from daytonaflow.components import IDEMPOTENCY_LABEL, SANDBOX_RESOURCE, CreateSandbox
from daytonaflow.components._sandbox_env import ENV_FILE
from daytonaflow.components._timing import FIRST_POLL_DELAY, MAX_POLL_DELAY
from daytonaflow.errors import ComponentError, ConfigError

SECRET_VALUE = "s3cr3t-value-that-must-not-leak"
API_KEY_SECRET = {"name": "API_KEY", "type": "env", "value": {"secret": "api-key-secret", "key": "API_KEY"}}


async def test_emits_the_started_sandbox_on_the_default_channel(daytona, make_ctx, clock):
    ctx = make_ctx({})
    await drive(CreateSandbox(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.sandbox"
    assert ctx.data == {"id": SANDBOX_ID, "state": "started"}


async def test_sends_snapshot_target_env_labels_public_and_auto_stop(daytona, make_ctx, clock):
    config = {
        "snapshot": "python:3.12",
        "target": "eu",
        "autoStopInterval": 0,
        "env": [{"name": "NODE_ENV", "value": "production"}],
        "public": True,
        "labels": [{"key": "team", "value": "platform"}],
    }
    await drive(CreateSandbox(), make_ctx(config), clock)
    body = daytona.create_bodies[0]
    assert body["snapshot"] == "python:3.12"
    assert body["target"] == "eu"
    assert body["autoStopInterval"] == 0
    assert body["env"] == {"NODE_ENV": "production"}
    assert body["public"] is True
    assert body["labels"]["team"] == "platform"
    assert body["labels"][IDEMPOTENCY_LABEL] == "run-1/exec-1"


async def test_the_backend_default_network_sends_no_network_fields(daytona, make_ctx, clock):
    await drive(CreateSandbox(), make_ctx({}), clock)
    body = daytona.create_bodies[0]
    assert "networkBlockAll" not in body
    assert "networkAllowList" not in body


async def test_network_block_sends_network_block_all(daytona, make_ctx, clock):
    await drive(CreateSandbox(), make_ctx({"network": "block"}), clock)
    assert daytona.create_bodies[0]["networkBlockAll"] is True


async def test_network_allow_sends_the_allow_list(daytona, make_ctx, clock):
    config = {"network": "allow", "networkAllowList": "10.0.0.0/8, 192.168.1.0/24"}
    await drive(CreateSandbox(), make_ctx(config), clock)
    body = daytona.create_bodies[0]
    assert body["networkBlockAll"] is False
    assert body["networkAllowList"] == "10.0.0.0/8, 192.168.1.0/24"


def test_an_allow_list_that_is_not_cidr_blocks_is_a_config_error_naming_the_field():
    issues = CreateSandbox().validate_config(
        {"network": "allow", "networkAllowList": "example.com"}, allow_expressions=True
    )
    assert [issue.field for issue in issues] == ["networkAllowList"]
    assert "CIDR" in issues[0].message


async def test_uses_the_integration_target_when_the_config_has_none(daytona, integration, make_ctx, clock):
    integration.target = "us"
    await drive(CreateSandbox(), make_ctx({}), clock)
    assert daytona.create_bodies[0]["target"] == "us"


async def test_default_auto_stop_interval_is_sent(daytona, make_ctx, clock):
    await drive(CreateSandbox(), make_ctx({}), clock)
    assert daytona.create_bodies[0]["autoStopInterval"] == 15


async def test_the_first_look_at_the_state_comes_within_tens_of_milliseconds_as_an_idle_wait(
    daytona, make_ctx, clock
):
    ctx = make_ctx({})
    await CreateSandbox().execute(ctx)
    assert clock.sleeps[0] == FIRST_POLL_DELAY
    assert FIRST_POLL_DELAY <= 0.05
    # The engine may run other nodes meanwhile.
    assert ctx.waits == 1
    assert ctx.data["state"] == "started"


async def test_polling_backs_off_by_doubling_up_to_a_cap_of_seconds(daytona, make_ctx, clock):
    daytona.start_states = ["creating"] * 12 + ["started"]
    ctx = make_ctx({})
    await drive(CreateSandbox(), ctx, clock)
    delays = clock.sleeps
    assert delays[0] == FIRST_POLL_DELAY
    assert all(later >= earlier for earlier, later in itertools.pairwise(delays))
    assert delays[1] == 2 * delays[0]
    assert max(delays) == MAX_POLL_DELAY
    assert ctx.data["state"] == "started"


async def test_tracks_the_sandbox_as_a_run_resource(daytona, make_ctx, clock):
    ctx = make_ctx({})
    await drive(CreateSandbox(), ctx, clock)
    assert (SANDBOX_RESOURCE, SANDBOX_ID) in ctx.resources.held


@pytest.mark.parametrize("state", ["error", "build_failed"])
async def test_a_failed_state_fails_the_node_and_deletes_the_sandbox(daytona, make_ctx, clock, state):
    daytona.start_states = ["creating", state]
    ctx = make_ctx({})
    with pytest.raises(ComponentError, match=f"entered state {state}: snapshot pull failed"):
        await drive(CreateSandbox(), ctx, clock)
    assert daytona.deleted == [SANDBOX_ID]
    assert (SANDBOX_RESOURCE, SANDBOX_ID) not in ctx.resources.held


async def test_not_starting_before_the_timeout_fails_and_deletes_the_sandbox(daytona, make_ctx, clock):
    daytona.start_states = ["creating"]
    ctx = make_ctx({"timeout": 5})
    with pytest.raises(ComponentError, match="did not reach started before the timeout"):
        await drive(CreateSandbox(), ctx, clock)
    assert daytona.deleted == [SANDBOX_ID]
    # The last check lands on the deadline, not a full back-off step after it.
    assert sum(clock.sleeps) == pytest.approx(5)


async def test_resuming_after_a_restart_continues_with_the_same_sandbox(daytona, make_ctx, clock):
    daytona.start_states = ["creating", "creating", "started"]
    first = make_ctx({})
    clock.crash_after(1)
    with pytest.raises(ProcessDied):
        await CreateSandbox().execute(first)
    # The engine restarts: a new component instance and context, with the persisted metadata.
    resumed = make_ctx({}, metadata=first.metadata, resources=first.resources)
    await drive(CreateSandbox(), resumed, clock)
    assert len(daytona.create_bodies) == 1
    assert resumed.data["id"] == SANDBOX_ID


async def test_running_execute_again_for_the_same_execution_never_creates_a_second_sandbox(
    daytona, make_ctx, clock
):
    clock.crash_after(1)
    with pytest.raises(ProcessDied):
        await CreateSandbox().execute(make_ctx({}))
    second = make_ctx({})  # same run and execution ids, metadata lost
    await drive(CreateSandbox(), second, clock)
    assert len(daytona.create_bodies) == 1
    assert second.data["id"] == SANDBOX_ID


async def test_env_secrets_go_to_a_private_env_file_not_the_create_request(daytona, make_ctx, clock):
    secrets = DictSecrets({"api-key-secret": {"API_KEY": SECRET_VALUE}})
    ctx = make_ctx({"secrets": [API_KEY_SECRET]}, secrets=secrets)
    await drive(CreateSandbox(), ctx, clock)
    assert daytona.files[ENV_FILE] == f"export API_KEY={SECRET_VALUE}\n".encode()
    assert daytona.modes[ENV_FILE] == "0600"
    assert SECRET_VALUE not in json.dumps(daytona.create_bodies)


async def test_file_secrets_are_written_with_mode_600(daytona, make_ctx, clock):
    secrets = DictSecrets({"deploy": {"key": SECRET_VALUE}})
    config = {
        "secrets": [
            {
                "type": "file",
                "path": "/home/daytona/.ssh/id_ed25519",
                "value": {"secret": "deploy", "key": "key"},
            }
        ]
    }
    await drive(CreateSandbox(), make_ctx(config, secrets=secrets), clock)
    assert daytona.files["/home/daytona/.ssh/id_ed25519"] == SECRET_VALUE.encode()
    assert daytona.modes["/home/daytona/.ssh/id_ed25519"] == "0600"
    assert ("/home/daytona/.ssh", "0700") in daytona.folders


async def test_a_file_secret_directly_in_the_home_is_written_there_with_mode_600(daytona, make_ctx, clock):
    secrets = DictSecrets({"deploy": {"key": SECRET_VALUE}})
    config = {
        "secrets": [
            {"type": "file", "path": "/home/daytona/.creds", "value": {"secret": "deploy", "key": "key"}}
        ]
    }
    await drive(CreateSandbox(), make_ctx(config, secrets=secrets), clock)
    assert daytona.files["/home/daytona/.creds"] == SECRET_VALUE.encode()
    assert daytona.modes["/home/daytona/.creds"] == "0600"


async def test_env_var_is_accepted_as_an_alias_of_env(daytona, make_ctx, clock):
    secrets = DictSecrets({"s": {"k": SECRET_VALUE}})
    config = {"secrets": [{"type": "env-var", "name": "TOKEN", "value": {"secret": "s", "key": "k"}}]}
    await drive(CreateSandbox(), make_ctx(config, secrets=secrets), clock)
    assert daytona.files[ENV_FILE] == f"export TOKEN={SECRET_VALUE}\n".encode()


async def test_secret_values_never_reach_payloads_metadata_or_logs(daytona, make_ctx, clock, caplog):
    caplog.set_level("DEBUG")
    secrets = DictSecrets({"api-key-secret": {"API_KEY": SECRET_VALUE}})
    ctx = make_ctx({"secrets": [API_KEY_SECRET]}, secrets=secrets)
    await drive(CreateSandbox(), ctx, clock)
    assert SECRET_VALUE not in json.dumps(ctx.data)
    assert SECRET_VALUE not in json.dumps(ctx.metadata.history)
    assert SECRET_VALUE not in caplog.text


async def test_a_missing_secret_fails_before_any_sandbox_is_created(daytona, make_ctx, clock):
    config = {
        "secrets": [{"type": "env", "name": "API_KEY", "value": {"secret": "absent", "key": "API_KEY"}}]
    }
    with pytest.raises(ComponentError, match='secret "absent" has no key "API_KEY"'):
        await drive(CreateSandbox(), make_ctx(config), clock)
    assert daytona.create_bodies == []


async def test_an_invalid_config_fails_before_any_api_call(daytona, make_ctx, clock):
    with pytest.raises(ConfigError, match="autoStopInterval must be at least 0"):
        await drive(CreateSandbox(), make_ctx({"autoStopInterval": -1}), clock)
    assert not daytona.router.calls


async def test_a_rejected_create_raises_daytonas_message(daytona, make_ctx, clock):
    daytona.router.routes["create"].mock(
        return_value=httpx.Response(400, json=error_body(400, "Snapshot nope not found", "Bad Request"))
    )
    with pytest.raises(ComponentError, match="failed with 400: Bad Request: Snapshot nope not found"):
        await drive(CreateSandbox(), make_ctx({"snapshot": "nope"}), clock)


async def test_cancel_deletes_the_sandbox_being_created(daytona, make_ctx, clock):
    ctx = make_ctx({})
    await CreateSandbox().execute(ctx)
    await CreateSandbox().cancel(ctx)
    assert daytona.deleted == [SANDBOX_ID]
    assert not ctx.resources.held


async def test_cancel_while_the_create_was_in_flight_finds_the_sandbox_by_its_label(daytona, make_ctx):
    ctx = make_ctx({})  # run-1 / exec-1: the create landed but its answer was never recorded
    ctx.metadata.set({"creating": "run-1/exec-1"})
    daytona.sandboxes[SANDBOX_ID] = {"id": SANDBOX_ID, "labels": {IDEMPOTENCY_LABEL: "run-1/exec-1"}}
    daytona.sandboxes["sandbox-of-another-node"] = {
        "id": "sandbox-of-another-node",
        "labels": {IDEMPOTENCY_LABEL: "run-1/exec-2"},
    }
    await CreateSandbox().cancel(ctx)
    assert daytona.deleted == [SANDBOX_ID]


async def test_cancel_before_anything_was_created_deletes_nothing(daytona, make_ctx):
    daytona.sandboxes["sandbox-of-another-node"] = {
        "id": "sandbox-of-another-node",
        "labels": {IDEMPOTENCY_LABEL: "run-1/exec-2"},
    }
    await CreateSandbox().cancel(make_ctx({}))
    assert daytona.deleted == []


async def test_reclaim_deletes_a_leftover_sandbox(daytona, integration):
    daytona.sandboxes[SANDBOX_ID] = {"id": SANDBOX_ID, "labels": {}}
    await CreateSandbox.reclaim(SANDBOX_RESOURCE, SANDBOX_ID, integration)
    assert daytona.deleted == [SANDBOX_ID]


async def test_reclaim_of_a_sandbox_already_gone_is_quiet(daytona, integration):
    await CreateSandbox.reclaim(SANDBOX_RESOURCE, "sandbox-gone", integration)
    assert daytona.deleted == []


async def test_without_an_integration_the_node_fails_with_a_hint(daytona, clock):
    ctx = FakeContext(config={}, integration=None)
    with pytest.raises(ComponentError, match="DAYTONA_API_KEY"):
        await drive(CreateSandbox(), ctx, clock)
    assert not daytona.router.calls


async def test_without_a_permissions_endpoint_secrets_are_made_private_with_chmod(daytona, make_ctx, clock):
    daytona.router.routes["permissions"].mock(
        return_value=httpx.Response(404, json=error_body(404, "Cannot POST /files/permissions", "Not Found"))
    )
    secrets = DictSecrets({"api-key-secret": {"API_KEY": SECRET_VALUE}})
    ctx = make_ctx({"secrets": [API_KEY_SECRET]}, secrets=secrets)
    await drive(CreateSandbox(), ctx, clock)
    assert daytona.executed == [{"command": f"chmod 0600 -- {ENV_FILE}", "timeout": 30}]
    assert ctx.data["state"] == "started"


async def test_a_failure_to_write_secrets_deletes_the_sandbox(daytona, make_ctx, clock):
    daytona.router.routes["upload"].mock(
        return_value=httpx.Response(400, json=error_body(400, "disk quota exceeded", "Bad Request"))
    )
    secrets = DictSecrets({"api-key-secret": {"API_KEY": SECRET_VALUE}})
    ctx = make_ctx({"secrets": [API_KEY_SECRET]}, secrets=secrets)
    with pytest.raises(
        ComponentError, match=r"could not write secrets into sandbox .*disk quota exceeded"
    ) as failure:
        await drive(CreateSandbox(), ctx, clock)
    assert SECRET_VALUE not in str(failure.value)
    assert daytona.deleted == [SANDBOX_ID]


async def test_a_lost_create_answer_still_yields_exactly_one_sandbox(daytona, make_ctx, clock):
    route = daytona.router.routes["create"]
    original = route.side_effect

    def lose_first_answer(request):
        response = original(request)
        if route.call_count == 1:
            raise httpx.ReadError("connection reset after the sandbox was created")
        return response

    route.side_effect = lose_first_answer
    ctx = make_ctx({})
    await drive(CreateSandbox(), ctx, clock)
    assert ctx.data == {"id": SANDBOX_ID, "state": "started"}
    assert len(daytona.sandboxes) == 1
    assert route.call_count == 1


async def test_rate_limited_creation_is_retried_without_duplicates(daytona, make_ctx, clock, sleeps):
    route = daytona.router.routes["create"]
    original = route.side_effect
    limited = httpx.Response(429, json=error_body(429, "Too many requests", "Too Many Requests"))
    answers = iter([limited, limited])
    route.side_effect = lambda request: next(answers, None) or original(request)
    ctx = make_ctx({})
    await drive(CreateSandbox(), ctx, clock)
    assert len(daytona.sandboxes) == 1
    assert len(sleeps.delays) == 2
