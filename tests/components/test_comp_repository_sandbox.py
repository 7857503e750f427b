"""daytona.createRepositorySandbox: start, clone and bootstrap in one session; failures clean up."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from comp_support import SANDBOX_ID, DictSecrets, ProcessDied, drive, inner_script

from daytonaflow.components import SANDBOX_RESOURCE, CreateRepositorySandbox
from daytonaflow.components._git import repository_name
from daytonaflow.errors import ComponentError

REPOSITORY = "https://github.com/superplanehq/example-app.git"
API_KEY_SECRET = {"name": "API_KEY", "type": "env", "value": {"key": "API_KEY", "secret": "api-key-secret"}}
SECRET_VALUE = "api-key-value-never-shown"
TOKEN = "ghp_tokenvalue0123456789"


def seed_config(**overrides):
    """The configuration behind the seed's example payload."""
    return {
        "repository": REPOSITORY,
        "bootstrap": {"from": "file", "path": "scripts/bootstrap.sh"},
        "secrets": [API_KEY_SECRET],
        "timeout": 300,
        **overrides,
    }


def seed_secrets(**extra):
    return DictSecrets({"api-key-secret": {"API_KEY": SECRET_VALUE}, **extra})


async def test_emits_the_seed_fields_plus_the_bootstrap_outcome(daytona, make_ctx, clock):
    daytona.next_outputs = ["bootstrapped\n"]
    ctx = make_ctx(seed_config(), secrets=seed_secrets())
    await drive(CreateRepositorySandbox(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.repository.sandbox"
    data = ctx.data
    assert data["sandboxId"] == SANDBOX_ID
    assert data["directory"] == "/home/daytona/example-app"
    assert data["repository"] == REPOSITORY
    assert data["secrets"] == [API_KEY_SECRET]
    assert data["timeout"] == 300
    assert data["sandboxStartedAt"].endswith("Z")
    assert data["bootstrap"] == {
        "from": "file",
        "path": "scripts/bootstrap.sh",
        "exitCode": 0,
        "log": "bootstrapped\n",
    }


async def test_clone_then_bootstrap_run_in_sequence_in_the_repository(daytona, make_ctx, clock):
    await drive(CreateRepositorySandbox(), make_ctx(seed_config(), secrets=seed_secrets()), clock)
    assert daytona.clones == [{"url": REPOSITORY, "path": "/home/daytona/example-app"}]
    [bootstrap] = (inner_script(command) for command in daytona.all_commands_ever())
    assert "cd -- /home/daytona/example-app || exit 1\nbash -- scripts/bootstrap.sh" in bootstrap
    [session] = daytona.deleted_sessions
    assert session.startswith("daytonaflow-repository-")
    order = [
        route.name
        for call in daytona.router.calls
        for route in daytona.router.routes
        if route.pattern.match(call.request)
    ]
    assert order.index("git_clone") < order.index("exec")


async def test_an_inline_bootstrap_script_is_uploaded_and_run_in_the_repository(daytona, make_ctx, clock):
    config = seed_config(bootstrap={"from": "inline", "script": "npm ci\nnpm run build <<EOF\nEOF\n"})
    ctx = make_ctx(config, secrets=seed_secrets())
    await drive(CreateRepositorySandbox(), ctx, clock)
    [(path, content)] = [(p, c) for p, c in daytona.files.items() if "bootstrap-" in p]
    assert content == b"npm ci\nnpm run build <<EOF\nEOF\n"
    assert f"bash -- {path}" in inner_script(daytona.all_commands_ever()[0])
    assert ctx.data["bootstrap"]["from"] == "inline"
    assert ctx.data["bootstrap"]["script"] == "npm ci\nnpm run build <<EOF\nEOF\n"


async def test_without_a_bootstrap_only_the_clone_runs(daytona, make_ctx, clock):
    config = seed_config()
    del config["bootstrap"]
    ctx = make_ctx(config, secrets=seed_secrets())
    await drive(CreateRepositorySandbox(), ctx, clock)
    assert len(daytona.clones) == 1
    assert daytona.all_commands_ever() == []
    assert "bootstrap" not in ctx.data


async def test_scp_style_repositories_clone_into_their_name(daytona, make_ctx, clock):
    config = seed_config(repository="git@github.com:superplanehq/other-app.git", branch="develop")
    ctx = make_ctx(config, secrets=seed_secrets())
    await drive(CreateRepositorySandbox(), ctx, clock)
    assert ctx.data["directory"] == "/home/daytona/other-app"
    assert daytona.clones == [
        {
            "url": "git@github.com:superplanehq/other-app.git",
            "path": "/home/daytona/other-app",
            "branch": "develop",
        }
    ]


@pytest.mark.parametrize(
    ("repository", "name"),
    [
        ("https://github.com/org/app.git", "app"),
        ("https://gitlab.example.com/group/sub/app", "app"),
        ("https://github.com/org/app/", "app"),
        ("git@github.com:org/app.git", "app"),
        ("ssh://git@host:2222/org/app.git", "app"),
        ("file:///srv/git/app/.git", "app"),
    ],
)
def test_the_clone_directory_is_derived_from_the_repository(repository, name):
    assert repository_name(repository) == name


async def test_a_github_token_secret_becomes_the_clone_credential(daytona, make_ctx, clock):
    token_secret = {"name": "GITHUB_TOKEN", "type": "env", "value": {"secret": "github", "key": "token"}}
    config = seed_config(secrets=[API_KEY_SECRET, token_secret])
    ctx = make_ctx(config, secrets=seed_secrets(github={"token": TOKEN}))
    await drive(CreateRepositorySandbox(), ctx, clock)
    [clone] = daytona.clones
    assert (clone["username"], clone["password"]) == ("x-access-token", TOKEN)
    assert TOKEN not in "\n".join(daytona.all_commands_ever())
    assert TOKEN not in json.dumps(ctx.data)
    assert TOKEN not in json.dumps(ctx.metadata.history)


async def test_without_a_github_token_the_clone_is_anonymous(daytona, make_ctx, clock):
    await drive(CreateRepositorySandbox(), make_ctx(seed_config(), secrets=seed_secrets()), clock)
    assert "password" not in daytona.clones[0]


async def test_a_failed_clone_fails_the_node_with_daytonas_message_and_deletes_the_sandbox(
    daytona, make_ctx, clock
):
    daytona.clone_error = (
        "git clone failed: fatal: repository 'https://github.com/superplanehq/nope.git/' not found"
    )
    ctx = make_ctx(seed_config(), secrets=seed_secrets())
    with pytest.raises(ComponentError) as failure:
        await drive(CreateRepositorySandbox(), ctx, clock)
    message = str(failure.value)
    assert message.startswith(f"clone of {REPOSITORY} failed; log tail:\n")
    assert "fatal: repository" in message
    assert daytona.deleted == [SANDBOX_ID]
    assert (SANDBOX_RESOURCE, SANDBOX_ID) not in ctx.resources.held
    assert daytona.all_commands_ever() == []  # no bootstrap after a failed clone


async def test_a_failed_clone_masks_the_token_in_its_encoded_forms_and_any_url_userinfo(
    daytona, make_ctx, clock
):
    token_secret = {"name": "GITHUB_TOKEN", "type": "env", "value": {"secret": "github", "key": "token"}}
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    daytona.clone_error = (
        f"git clone failed: sent Authorization: Basic {basic}; "
        "fatal: could not read from 'https://someone:other-t0ken@github.com/org/app.git'"
    )
    config = seed_config(secrets=[API_KEY_SECRET, token_secret])
    ctx = make_ctx(config, secrets=seed_secrets(github={"token": TOKEN}))
    with pytest.raises(ComponentError) as failure:
        await drive(CreateRepositorySandbox(), ctx, clock)
    message = str(failure.value)
    assert "sent Authorization: Basic [REDACTED];" in message
    assert "could not read from 'https://[REDACTED]@github.com/org/app.git'" in message
    assert basic.rstrip("=") not in message and "other-t0ken" not in message


async def test_a_failed_bootstrap_fails_the_node_and_deletes_the_sandbox(daytona, make_ctx, clock):
    daytona.next_exits = [[None, 3]]
    daytona.next_outputs = ["npm ERR! missing script: build\n"]
    ctx = make_ctx(seed_config(), secrets=seed_secrets())
    with pytest.raises(ComponentError, match=r"bootstrap of .* failed with exit code 3; log tail:\nnpm ERR!"):
        await drive(CreateRepositorySandbox(), ctx, clock)
    assert daytona.deleted == [SANDBOX_ID]


async def test_keep_on_failure_keeps_the_sandbox_and_says_so(daytona, make_ctx, clock):
    daytona.next_exits = [[None, 1]]
    ctx = make_ctx(seed_config(keepOnFailure=True), secrets=seed_secrets())
    with pytest.raises(ComponentError, match=f"sandbox {SANDBOX_ID} kept"):
        await drive(CreateRepositorySandbox(), ctx, clock)
    assert daytona.deleted == []
    assert (SANDBOX_RESOURCE, SANDBOX_ID) not in ctx.resources.held  # not reclaimed at run end


async def test_cancel_deletes_a_sandbox_kept_on_failure_and_releases_it_only_then(daytona, make_ctx, clock):
    daytona.next_exits = [[None]]
    ctx = make_ctx(seed_config(keepOnFailure=True), secrets=seed_secrets())
    clock.crash_when(lambda: "bootstrap" in ctx.metadata.data)
    with pytest.raises(ProcessDied):
        await CreateRepositorySandbox().execute(ctx)
    daytona.router.routes["delete"].mock(return_value=httpx.Response(503, json={"message": "busy"}))
    await CreateRepositorySandbox().cancel(ctx)
    # The delete failed: the sandbox stays a run resource, so the run's end deletes it.
    assert (SANDBOX_RESOURCE, SANDBOX_ID) in ctx.resources.held
    daytona.router.routes["delete"].mock(side_effect=daytona._delete)
    await CreateRepositorySandbox().cancel(ctx)
    assert daytona.deleted == [SANDBOX_ID]
    assert (SANDBOX_RESOURCE, SANDBOX_ID) not in ctx.resources.held


async def test_secret_values_printed_by_the_bootstrap_are_masked(daytona, make_ctx, clock):
    daytona.next_exits = [[None, 1]]
    daytona.next_outputs = [f"using key {SECRET_VALUE}\nfailed\n"]
    ctx = make_ctx(seed_config(), secrets=seed_secrets())
    with pytest.raises(ComponentError) as failure:
        await drive(CreateRepositorySandbox(), ctx, clock)
    assert SECRET_VALUE not in str(failure.value)
    assert "using key [REDACTED]" in str(failure.value)


async def test_the_bootstrap_sees_env_secrets_through_the_sandbox_env_file(daytona, make_ctx, clock):
    await drive(CreateRepositorySandbox(), make_ctx(seed_config(), secrets=seed_secrets()), clock)
    [command] = daytona.all_commands_ever()
    env_file = "/home/daytona/.daytonaflow/env"
    assert inner_script(command).startswith(f"if [ -r {env_file} ]; then . {env_file}; fi")
    assert SECRET_VALUE not in command
    assert daytona.files[env_file] == f"export API_KEY={SECRET_VALUE}\n".encode()


async def test_the_overall_timeout_bounds_start_clone_and_bootstrap(daytona, make_ctx, clock):
    daytona.next_exits = [[None] * 50 + [124]]
    ctx = make_ctx(seed_config(timeout=10), secrets=seed_secrets())
    with pytest.raises(ComponentError, match=r"bootstrap of .* timed out"):
        await drive(CreateRepositorySandbox(), ctx, clock)
    assert daytona.all_commands_ever()[0].startswith("timeout -k 5 ")


async def test_a_sandbox_in_error_fails_and_is_deleted_before_any_clone(daytona, make_ctx, clock):
    daytona.start_states = ["creating", "error"]
    with pytest.raises(ComponentError, match="entered state error"):
        await drive(CreateRepositorySandbox(), make_ctx(seed_config(), secrets=seed_secrets()), clock)
    assert daytona.deleted == [SANDBOX_ID]
    assert daytona.clones == []


async def test_restarting_mid_bootstrap_resumes_without_cloning_again(daytona, make_ctx, clock):
    daytona.next_exits = [[None, None, None, 0]]
    first = make_ctx(seed_config(), secrets=seed_secrets())
    clock.crash_when(lambda: "bootstrap" in first.metadata.data)
    with pytest.raises(ProcessDied):
        await CreateRepositorySandbox().execute(first)
    resumed = make_ctx(
        seed_config(), secrets=seed_secrets(), metadata=first.metadata, resources=first.resources
    )
    await drive(CreateRepositorySandbox(), resumed, clock)
    assert len(daytona.all_commands_ever()) == 1
    assert len(daytona.clones) == 1
    assert len(daytona.create_bodies) == 1
    assert resumed.data["bootstrap"]["exitCode"] == 0


async def test_restarting_mid_clone_clones_again_into_a_clean_directory(daytona, make_ctx, clock):
    first = make_ctx(seed_config(), secrets=seed_secrets())
    await drive(CreateRepositorySandbox(), first, clock)
    crashed_during_clone = next(
        state for state in first.metadata.history if state.get("cloning") and not state.get("cloned")
    )
    resumed = make_ctx(seed_config(), secrets=seed_secrets())
    resumed.metadata.set(crashed_during_clone)
    await CreateRepositorySandbox().execute(resumed)
    assert "/home/daytona/example-app" in daytona.deleted_files
    assert len(daytona.clones) == 2
    assert resumed.channel == "default"


async def test_keep_on_failure_also_keeps_the_sandbox_after_a_failed_clone(daytona, make_ctx, clock):
    daytona.clone_error = "git clone failed: fatal: Authentication failed"
    ctx = make_ctx(seed_config(keepOnFailure=True), secrets=seed_secrets())
    with pytest.raises(ComponentError, match="Authentication failed"):
        await drive(CreateRepositorySandbox(), ctx, clock)
    assert daytona.deleted == []


async def test_an_ssh_repository_never_receives_the_token(daytona, make_ctx, clock):
    token_secret = {"name": "GITHUB_TOKEN", "type": "env", "value": {"secret": "github", "key": "token"}}
    config = seed_config(repository="git@github.com:org/app.git", secrets=[token_secret])
    await drive(
        CreateRepositorySandbox(), make_ctx(config, secrets=seed_secrets(github={"token": TOKEN})), clock
    )
    assert "password" not in daytona.clones[0]


async def test_cancel_deletes_the_sandbox(daytona, make_ctx, clock):
    daytona.next_exits = [[None]]
    ctx = make_ctx(seed_config(), secrets=seed_secrets())
    component = CreateRepositorySandbox()
    clock.crash_when(lambda: "bootstrap" in ctx.metadata.data)
    with pytest.raises(ProcessDied):
        await component.execute(ctx)
    await component.cancel(ctx)
    assert daytona.deleted == [SANDBOX_ID]
    assert not ctx.resources.held


async def test_reclaim_deletes_a_leftover_sandbox(daytona, integration):
    daytona.sandboxes[SANDBOX_ID] = {"id": SANDBOX_ID, "labels": {}}
    await CreateRepositorySandbox.reclaim(SANDBOX_RESOURCE, SANDBOX_ID, integration)
    assert daytona.deleted == [SANDBOX_ID]
