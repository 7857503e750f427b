"""The six components end to end: real HTTP to an embedded LocalServer, real bubblewrap sandboxes.

Each component is driven directly, as an engine would (execute, then every scheduled check after
its real delay), with the in-memory context of ``comp_support``; what the sandbox really did is
checked through the server's own API, never through the component under test.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from comp_support import DictSecrets, FakeContext
from local_support import Server, integration, run_to_end, sandbox, server
from package_index import VALUE, pip_install_command, served_index

from daytonaflow.components import (
    SANDBOX_RESOURCE,
    CreateRepositorySandbox,
    CreateSandbox,
    DaytonaIntegration,
    DeleteSandbox,
    ExecuteCode,
    ExecuteCommand,
    GetPreviewUrl,
)
from daytonaflow.errors import ComponentError

pytestmark = pytest.mark.sandbox
__all__ = ["integration", "sandbox", "server"]  # fixtures, from local_support

WEB_PORT = 8000
PAGE = "hello from a component-started server"
SECRET_VALUE = "s3cr3t-value-that-must-not-leak"
API_KEY_SECRET = {"name": "API_KEY", "type": "env", "value": {"secret": "api-key-secret", "key": "API_KEY"}}
#: A process the timeout test starts; nothing else in any sandbox sleeps this long.
SLEEPER = "sleep 271.5"
#: Prints the PIDs whose argv is exactly sys.argv[1:] (by reading /proc: the probe never matches itself).
FIND_PROCESSES = """
import os, sys
wanted = [arg.encode() for arg in sys.argv[1:]]
found = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if cmdline.read().split(b"\\0")[:-1] == wanted:
                found.append(pid)
    except OSError:
        pass
print(" ".join(found))
"""


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repository() -> Iterator[str]:
    """A local git repository with a bootstrap script, as a ``file://`` URL."""
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-comp-repo-"))
    work = root / "example-app"
    (work / "scripts").mkdir(parents=True)
    (work / "README.md").write_text("# example app\n")
    (work / "scripts" / "bootstrap.sh").write_text(
        'echo "bootstrap from file in $(pwd) with key $API_KEY"\ntouch bootstrapped.marker\n'
    )
    git = ["git", "-C", str(work), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "initial"], check=True)
    try:
        yield f"file://{work}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def serve_site(sandbox_id: str) -> dict[str, Any]:
    """executeCommand's config that serves ``~/site`` on WEB_PORT in the background."""
    return {
        "sandbox": sandbox_id,
        "command": f"python3 -m http.server {WEB_PORT} --bind 127.0.0.1",
        "cwd": "/home/daytona/site",
        "background": True,
        "waitForPort": WEB_PORT,
        "timeout": 30,
    }


@dataclass
class WebStart:
    """A sandbox whose HTTP server executeCommand started in the background, and how it reported."""

    sandbox_id: str
    ctx: FakeContext


@pytest.fixture(scope="module")
def web(server: Server) -> Iterator[WebStart]:
    sandbox_id = server.create()
    server.run(sandbox_id, f"mkdir -p site && echo '{PAGE}' > site/index.html")

    async def start() -> FakeContext:
        connection = DaytonaIntegration(server.instance.api_url, server.instance.api_key)
        ctx = FakeContext(
            config=serve_site(sandbox_id),
            integration=connection,
        )
        try:
            await run_to_end(ExecuteCommand(), ctx)
        finally:
            await connection.aclose()
        return ctx

    # A module-wide fixture outlives any one test's event loop: it drives the component in its own.
    ctx = asyncio.run(start())
    yield WebStart(sandbox_id, ctx)
    server.delete(sandbox_id)


def processes_running(server: Server, sandbox_id: str, command: str) -> list[str]:
    """PIDs in the sandbox running exactly ``command`` (a space-separated argv)."""
    probe = f"python3 -c {shlex.quote(FIND_PROCESSES)} {command}"
    answer = server.run(sandbox_id, probe)
    assert answer["exitCode"] == 0, answer
    return str(answer["result"]).split()


def acquired_sandbox(ctx: FakeContext) -> str:
    [sandbox_id] = [
        rid for action, kind, rid in ctx.resources.log if action == "acquire" and kind == SANDBOX_RESOURCE
    ]
    return sandbox_id


# --- createSandbox ----------------------------------------------------------------------------


async def test_create_sandbox_emits_the_started_sandbox_that_exists_on_the_server(server, make_ctx):
    ctx = make_ctx({})
    await run_to_end(CreateSandbox(), ctx)
    try:
        assert ctx.channel == "default"
        assert ctx.emitted[0][1].type == "daytona.sandbox"
        assert set(ctx.data) == {"id", "state"}
        assert ctx.data["state"] == "started"
        on_server = server.sandbox(ctx.data["id"])
        assert on_server.status_code == 200
        assert on_server.json()["state"] == "started"
        assert ctx.resources.held == {(SANDBOX_RESOURCE, ctx.data["id"])}
    finally:
        server.delete(ctx.data["id"])


async def _pip_install_after_create(
    server: Server, make_ctx: Any, create_config: dict[str, Any]
) -> tuple[FakeContext, list[str]]:
    """createSandbox with ``create_config``, then executeCommand pip-installing from a package
    index on the host's loopback (tests reach loopback only): the command's context, and the paths
    the index was asked for."""
    with tempfile.TemporaryDirectory() as directory, served_index(Path(directory)) as index:
        created = make_ctx(create_config)
        await run_to_end(CreateSandbox(), created)
        try:
            command = {
                "sandbox": created.data["id"],
                "command": pip_install_command(index.port),
                "timeout": 180,
            }
            ctx = make_ctx(command)
            await run_to_end(ExecuteCommand(), ctx)
        finally:
            server.delete(created.data["id"])
        return ctx, index.requests


async def test_pip_install_in_a_sandbox_created_with_network_allowed_installs_the_package(server, make_ctx):
    """The seed's `pip install` example on the local backend: createSandbox asks for egress."""
    ctx, _ = await _pip_install_after_create(
        server, make_ctx, {"network": "allow", "networkAllowList": "127.0.0.1/32"}
    )
    assert ctx.channel == "success", ctx.data["result"]
    assert "Successfully installed dfl-egress-probe-1.0" in ctx.data["result"]
    assert ctx.data["result"].endswith(f"{VALUE}\n")


async def test_a_sandbox_created_with_the_default_network_cannot_pip_install(server, make_ctx):
    ctx, asked = await _pip_install_after_create(server, make_ctx, {})
    assert ctx.channel == "failed"
    assert asked == []


async def test_create_sandbox_env_vars_are_visible_to_a_later_command(server, make_ctx):
    created = make_ctx({"env": [{"name": "GREETING", "value": "hello from env"}]})
    await run_to_end(CreateSandbox(), created)
    sandbox_id = created.data["id"]
    try:
        ctx = make_ctx({"sandbox": sandbox_id, "command": 'echo "greeting=$GREETING"'})
        await run_to_end(ExecuteCommand(), ctx)
        assert ctx.channel == "success"
        assert ctx.data["result"] == "greeting=hello from env\n"
    finally:
        server.delete(sandbox_id)


async def test_an_env_secret_reaches_later_commands_and_is_masked_in_their_output(server, make_ctx):
    secrets = DictSecrets({"api-key-secret": {"API_KEY": SECRET_VALUE}})
    created = make_ctx({"secrets": [API_KEY_SECRET]}, secrets=secrets)
    await run_to_end(CreateSandbox(), created)
    sandbox_id = created.data["id"]
    try:
        # The value is really in the sandbox (its length proves it without printing it) ...
        ctx = make_ctx(
            {"sandbox": sandbox_id, "command": 'echo "key=$API_KEY length=${#API_KEY}"'}, secrets=secrets
        )
        await run_to_end(ExecuteCommand(), ctx)
        assert ctx.channel == "success"
        # ... and printed, it is masked in the payload.
        assert ctx.data["result"] == f"key=[REDACTED] length={len(SECRET_VALUE)}\n"
        assert SECRET_VALUE not in str(ctx.metadata.history)
        assert SECRET_VALUE not in server.sandbox(sandbox_id).text
    finally:
        server.delete(sandbox_id)


async def test_a_file_secret_is_written_into_the_sandbox_readable_only_by_its_owner(server, make_ctx):
    secrets = DictSecrets({"deploy": {"key": SECRET_VALUE}})
    path = "/home/daytona/.ssh/id_ed25519"
    config = {"secrets": [{"type": "file", "path": path, "value": {"secret": "deploy", "key": "key"}}]}
    created = make_ctx(config, secrets=secrets)
    await run_to_end(CreateSandbox(), created)
    sandbox_id = created.data["id"]
    try:
        listing = server.run(sandbox_id, f"stat -c '%a %n' {path} /home/daytona/.ssh; wc -c < {path}")
        assert listing["result"].split("\n")[:3] == [
            f"600 {path}",
            "700 /home/daytona/.ssh",
            str(len(SECRET_VALUE)),
        ]
    finally:
        server.delete(sandbox_id)


@pytest.mark.parametrize("path", ["/home/daytona/.creds", "/tmp/.creds"])
async def test_a_file_secret_directly_in_a_writable_root_is_written_with_mode_600(server, make_ctx, path):
    secrets = DictSecrets({"deploy": {"key": SECRET_VALUE}})
    config = {"secrets": [{"type": "file", "path": path, "value": {"secret": "deploy", "key": "key"}}]}
    created = make_ctx(config, secrets=secrets)
    await run_to_end(CreateSandbox(), created)
    sandbox_id = created.data["id"]
    try:
        root = path.rsplit("/", 1)[0]
        listing = server.run(sandbox_id, f"stat -c '%a %U' {path}; cat {path}; echo; stat -c %a {root}")
        mode_line, content, root_mode = listing["result"].split("\n")[:3]
        assert mode_line == "600 daytona"
        assert content == SECRET_VALUE
        # The root the secret sits in keeps its own mode (the folder request did not chmod it).
        assert root_mode == "755"
    finally:
        server.delete(sandbox_id)


# --- createSandbox options --------------------------------------------------------------------


async def test_create_sandbox_resources_and_auto_intervals_reach_the_server(server, make_ctx):
    config = {"cpu": 2, "memory": 2, "disk": 2, "autoArchiveInterval": 60, "autoDeleteInterval": 30}
    created = make_ctx(config)
    await run_to_end(CreateSandbox(), created)
    sandbox_id = created.data["id"]
    try:
        on_server = server.sandbox(sandbox_id).json()
        assert {key: on_server[key] for key in config} == config
        # The disk figure is a limit in force in the sandbox: the largest file it may write.
        largest_file = "python3 -c 'import resource; print(resource.getrlimit(resource.RLIMIT_FSIZE)[0])'"
        assert server.run(sandbox_id, largest_file)["result"].strip() == str(2 << 30)
    finally:
        server.delete(sandbox_id)


async def test_create_sandbox_with_network_block_all_cannot_reach_the_host(server, make_ctx):
    with tempfile.TemporaryDirectory() as directory, served_index(Path(directory)) as index:
        created = make_ctx({"network": "block"})
        await run_to_end(CreateSandbox(), created)
        sandbox_id = created.data["id"]
        try:
            assert server.sandbox(sandbox_id).json()["networkBlockAll"] is True
            ctx = make_ctx(
                {"sandbox": sandbox_id, "command": pip_install_command(index.port), "timeout": 180}
            )
            await run_to_end(ExecuteCommand(), ctx)
        finally:
            server.delete(sandbox_id)
    assert ctx.channel == "failed"
    assert index.requests == []


async def test_create_sandbox_network_allow_list_reaches_the_server(server, make_ctx):
    created = make_ctx({"network": "allow", "networkAllowList": "127.0.0.1/32"})
    await run_to_end(CreateSandbox(), created)
    sandbox_id = created.data["id"]
    try:
        on_server = server.sandbox(sandbox_id).json()
        assert (on_server["networkBlockAll"], on_server["networkAllowList"]) == (False, "127.0.0.1/32")
    finally:
        server.delete(sandbox_id)


async def test_create_sandbox_preview_port_gives_a_preview_url_that_serves(server, make_ctx):
    created = make_ctx({"previewPort": WEB_PORT})
    await run_to_end(CreateSandbox(), created)
    sandbox_id = created.data["id"]
    try:
        url = created.data["previewUrl"]
        assert url == f"http://127.0.0.1:{server.instance.proxy_port}/preview/{WEB_PORT}-{sandbox_id}"
        server.run(sandbox_id, f"mkdir -p site && echo '{PAGE}' > site/index.html")
        started = make_ctx(serve_site(sandbox_id))
        await run_to_end(ExecuteCommand(), started)
        assert started.channel == "success"
        assert server.preview(url).status_code == 401
        response = server.preview(url, **{"x-daytona-preview-token": created.data["previewToken"]})
        assert response.status_code == 200
        assert response.text == PAGE + "\n"
    finally:
        server.delete(sandbox_id)


async def test_repository_sandbox_takes_the_same_options(server, repository, make_ctx):
    config = {
        "repository": repository,
        "cpu": 2,
        "autoDeleteInterval": 60,
        "network": "block",
        "previewPort": WEB_PORT,
        "timeout": 120,
    }
    ctx = make_ctx(config)
    await run_to_end(CreateRepositorySandbox(), ctx)
    sandbox_id = ctx.data["sandboxId"]
    try:
        on_server = server.sandbox(sandbox_id).json()
        assert (on_server["cpu"], on_server["autoDeleteInterval"], on_server["networkBlockAll"]) == (
            2,
            60,
            True,
        )
        url = ctx.data["previewUrl"]
        assert url == f"http://127.0.0.1:{server.instance.proxy_port}/preview/{WEB_PORT}-{sandbox_id}"
        # The token is the sandbox's: nothing listens on the port yet, but the proxy lets it through.
        assert server.preview(url).status_code == 401
        assert server.preview(url, **{"x-daytona-preview-token": ctx.data["previewToken"]}).status_code != 401
    finally:
        server.delete(sandbox_id)


# --- executeCommand ---------------------------------------------------------------------------


async def test_execute_command_exit_zero_routes_to_success_with_its_output(sandbox, make_ctx):
    ctx = make_ctx({"sandbox": sandbox, "command": "echo hello; echo from-stderr >&2; whoami"})
    await run_to_end(ExecuteCommand(), ctx)
    assert ctx.channel == "success"
    assert ctx.emitted[0][1].type == "daytona.command.response"
    assert ctx.data["exitCode"] == 0
    assert ctx.data["timeout"] is False
    assert "hello\n" in ctx.data["result"]
    assert "from-stderr" in ctx.data["result"]


async def test_execute_command_non_zero_exit_routes_to_failed(sandbox, make_ctx):
    ctx = make_ctx({"sandbox": sandbox, "command": "echo about to fail; exit 3"})
    await run_to_end(ExecuteCommand(), ctx)
    assert ctx.channel == "failed"
    assert ctx.data == {"exitCode": 3, "result": "about to fail\n", "timeout": False}


async def test_execute_command_timeout_kills_the_process_and_keeps_partial_output(server, sandbox, make_ctx):
    ctx = make_ctx({"sandbox": sandbox, "command": f"echo partial-output; {SLEEPER}", "timeout": 1})
    await run_to_end(ExecuteCommand(), ctx)
    assert ctx.channel == "failed"
    assert ctx.data["timeout"] is True
    assert ctx.data["exitCode"] in (124, 137)
    assert ctx.data["result"].startswith("partial-output\n")
    # Nothing of it survives in the sandbox: no process runs the sleeper any more ...
    assert processes_running(server, sandbox, SLEEPER) == []
    # ... which the probe would see: a detached sleeper started by hand is found.
    server.run(sandbox, f"nohup {SLEEPER} >/dev/null 2>&1 &")
    assert len(processes_running(server, sandbox, SLEEPER)) == 1


async def test_execute_command_working_directory_with_spaces_is_quoted(server, sandbox, make_ctx):
    server.run(sandbox, "mkdir -p '/home/daytona/my dir; with $(odd) chars'")
    ctx = make_ctx({"sandbox": sandbox, "command": "pwd", "cwd": "/home/daytona/my dir; with $(odd) chars"})
    await run_to_end(ExecuteCommand(), ctx)
    assert ctx.channel == "success"
    assert ctx.data["result"] == "/home/daytona/my dir; with $(odd) chars\n"


async def test_execute_command_env_values_are_not_shell_syntax(sandbox, make_ctx):
    config = {
        "sandbox": sandbox,
        "command": 'printf "%s" "$ODD"',
        "env": [{"name": "ODD", "value": "$(id) `x` 'q'"}],
    }
    ctx = make_ctx(config)
    await run_to_end(ExecuteCommand(), ctx)
    assert ctx.channel == "success"
    assert ctx.data["result"] == "$(id) `x` 'q'"


async def test_background_command_reports_success_once_its_port_answers(web):
    ctx = web.ctx
    assert ctx.channel == "success"
    assert ctx.data["background"] is True
    assert ctx.data["port"] == WEB_PORT
    assert ctx.data["timeout"] is False
    assert "exitCode" not in ctx.data
    assert ctx.data["sessionId"].startswith("daytonaflow-background-")
    assert ctx.data["commandId"]


async def test_background_server_keeps_serving_for_later_commands(server, web):
    fetch = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{WEB_PORT}/').read().decode())"
    fetched = server.run(web.sandbox_id, f"python3 -c {shlex.quote(fetch)}")
    assert fetched["exitCode"] == 0
    assert fetched["result"] == PAGE + "\n\n"


# --- executeCode ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "values = [6, 7]\nprint(values[0] * values[1])\n"),
        ("javascript", "const values = [6, 7];\nconsole.log(values[0] * values[1]);\n"),
        ("typescript", "const values: number[] = [6, 7];\nconsole.log(values[0] * values[1]);\n"),
    ],
)
async def test_execute_code_runs_each_language_and_returns_what_it_printed(sandbox, make_ctx, language, code):
    ctx = make_ctx({"sandbox": sandbox, "language": language, "code": code})
    await run_to_end(ExecuteCode(), ctx)
    assert ctx.emitted[0][1].type == "daytona.execute.response"
    assert (ctx.channel, ctx.data) == ("success", {"exitCode": 0, "result": "42\n"})


async def test_execute_code_failure_routes_to_failed_with_its_error_output(sandbox, make_ctx):
    ctx = make_ctx(
        {"sandbox": sandbox, "language": "python", "code": "raise SystemExit('boom: bad input')\n"}
    )
    await run_to_end(ExecuteCode(), ctx)
    assert ctx.channel == "failed"
    assert ctx.data == {"exitCode": 1, "result": "boom: bad input\n"}


async def test_execute_code_timeout_kills_the_run_and_keeps_its_partial_output(sandbox, make_ctx):
    code = "import time\nprint('before the wait', flush=True)\ntime.sleep(271.5)\nprint('never')\n"
    ctx = make_ctx({"sandbox": sandbox, "language": "python", "code": code, "timeout": 500})
    await run_to_end(ExecuteCode(), ctx)
    assert ctx.channel == "failed"
    assert ctx.data["timeout"] is True
    assert ctx.data["exitCode"] in (124, 137)
    assert ctx.data["result"] == "before the wait\n"


# --- getPreviewUrl ----------------------------------------------------------------------------


async def test_signed_preview_url_reaches_the_background_server_without_headers(server, web, make_ctx):
    ctx = make_ctx({"sandbox": web.sandbox_id, "port": WEB_PORT, "signed": True, "expiresInSeconds": 120})
    await run_to_end(GetPreviewUrl(), ctx)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.preview.response"
    data = ctx.data
    assert {key: data[key] for key in ("sandbox", "port", "signed", "expiresInSeconds")} == {
        "sandbox": web.sandbox_id,
        "port": WEB_PORT,
        "signed": True,
        "expiresInSeconds": 120,
    }
    assert data["url"] == f"http://127.0.0.1:{server.instance.proxy_port}/preview/{WEB_PORT}-{data['token']}"
    response = server.preview(data["url"])
    assert response.status_code == 200
    assert response.text == PAGE + "\n"


async def test_standard_preview_url_reaches_the_server_with_its_token_header(server, web, make_ctx):
    ctx = make_ctx({"sandbox": web.sandbox_id, "port": WEB_PORT, "signed": False})
    await run_to_end(GetPreviewUrl(), ctx)
    data = ctx.data
    assert data["signed"] is False
    assert "expiresInSeconds" not in data
    assert data["url"] == f"http://127.0.0.1:{server.instance.proxy_port}/preview/{WEB_PORT}-{web.sandbox_id}"
    assert server.preview(data["url"]).status_code == 401
    response = server.preview(data["url"], **{"x-daytona-preview-token": data["token"]})
    assert response.status_code == 200
    assert response.text == PAGE + "\n"


# --- createRepositorySandbox ------------------------------------------------------------------


async def test_repository_sandbox_with_a_file_bootstrap_matches_the_seed_payload(
    server, repository, make_ctx
):
    secrets = DictSecrets({"api-key-secret": {"API_KEY": SECRET_VALUE}})
    config = {
        "repository": repository,
        "bootstrap": {"from": "file", "path": "scripts/bootstrap.sh"},
        "secrets": [API_KEY_SECRET],
        "timeout": 120,
    }
    ctx = make_ctx(config, secrets=secrets)
    await run_to_end(CreateRepositorySandbox(), ctx)
    data = ctx.data
    try:
        assert ctx.channel == "default"
        assert ctx.emitted[0][1].type == "daytona.repository.sandbox"
        assert set(data) == {
            "bootstrap",
            "directory",
            "repository",
            "sandboxId",
            "sandboxStartedAt",
            "secrets",
            "timeout",
        }
        assert data["repository"] == repository
        assert data["directory"] == "/home/daytona/example-app"
        assert data["secrets"] == [API_KEY_SECRET]
        assert data["timeout"] == 120
        assert data["sandboxStartedAt"].endswith("Z")
        assert data["bootstrap"] == {
            "from": "file",
            "path": "scripts/bootstrap.sh",
            "exitCode": 0,
            "log": "bootstrap from file in /home/daytona/example-app with key [REDACTED]\n",
        }
        listing = server.run(data["sandboxId"], "ls /home/daytona/example-app")
        assert listing["result"].split() == ["README.md", "bootstrapped.marker", "scripts"]
    finally:
        server.delete(data["sandboxId"])


async def test_repository_sandbox_runs_an_inline_bootstrap_in_the_clone(server, repository, make_ctx):
    script = "cat README.md\ncat <<EOF > built.txt\nbuilt {{ not an expression }}\nEOF\n"
    ctx = make_ctx({"repository": repository, "bootstrap": {"from": "inline", "script": script}})
    await run_to_end(CreateRepositorySandbox(), ctx)
    data = ctx.data
    try:
        assert data["bootstrap"] == {
            "from": "inline",
            "script": script,
            "exitCode": 0,
            "log": "# example app\n",
        }
        assert data["secrets"] == []
        built = server.run(data["sandboxId"], "cat /home/daytona/example-app/built.txt")
        assert built["result"] == "built {{ not an expression }}\n"
    finally:
        server.delete(data["sandboxId"])


async def test_a_failing_bootstrap_fails_the_node_with_its_log_tail_and_deletes_the_sandbox(
    server, repository, make_ctx
):
    script = "echo installing; echo 'npm ERR! missing script: build' >&2; exit 3\n"
    ctx = make_ctx({"repository": repository, "bootstrap": {"from": "inline", "script": script}})
    with pytest.raises(ComponentError) as failure:
        await run_to_end(CreateRepositorySandbox(), ctx)
    message = str(failure.value)
    assert message.startswith(f"bootstrap of {repository} failed with exit code 3; log tail:\n")
    assert "installing" in message
    assert "npm ERR! missing script: build" in message
    assert not ctx.emitted
    sandbox_id = acquired_sandbox(ctx)
    assert ctx.resources.held == set()
    assert server.sandbox(sandbox_id).status_code == 404


async def test_a_failing_clone_fails_the_node_and_deletes_the_sandbox(server, repository, make_ctx):
    missing = repository.replace("example-app", "no-such-app")
    ctx = make_ctx({"repository": missing, "bootstrap": {"from": "inline", "script": "echo never"}})
    with pytest.raises(ComponentError, match=rf"^clone of {re.escape(missing)} failed") as failure:
        await run_to_end(CreateRepositorySandbox(), ctx)
    assert "no-such-app" in str(failure.value).split("log tail:", 1)[1]
    assert not ctx.emitted
    assert server.sandbox(acquired_sandbox(ctx)).status_code == 404


# --- deleteSandbox and reclaim ----------------------------------------------------------------


async def test_delete_sandbox_deletes_it_and_a_second_delete_reports_it_already_gone(server, make_ctx):
    sandbox_id = server.create()
    first = make_ctx({"sandbox": sandbox_id})
    await run_to_end(DeleteSandbox(), first)
    assert first.channel == "default"
    assert first.emitted[0][1].type == "daytona.delete.response"
    assert first.data == {"deleted": True, "id": sandbox_id}
    assert server.sandbox(sandbox_id).status_code == 404

    second = make_ctx({"sandbox": sandbox_id}, execution_id="exec-2")
    await run_to_end(DeleteSandbox(), second)
    assert second.data == {"deleted": False, "id": sandbox_id, "alreadyDeleted": True}


async def test_reclaim_deletes_a_sandbox_a_run_left_behind(server, integration):
    sandbox_id = server.create()
    await CreateSandbox.reclaim(SANDBOX_RESOURCE, sandbox_id, integration)
    assert server.sandbox(sandbox_id).status_code == 404
    # Reclaiming is idempotent: a sandbox already gone is not an error.
    await CreateSandbox.reclaim(SANDBOX_RESOURCE, sandbox_id, integration)


# --- following the output -------------------------------------------------------------------------


async def test_a_command_is_followed_through_the_output_stream_not_polled(sandbox, make_ctx):
    ctx = make_ctx({"sandbox": sandbox, "command": "echo first; sleep 0.5; echo second >&2"})
    await run_to_end(ExecuteCommand(), ctx)
    assert ctx.channel == "success"
    # The pieces came while it ran, stdout and stderr alike, and add up to the payload's output.
    assert "".join(ctx.reported) == ctx.data["result"] == "first\nsecond\n"
    assert ctx.reported[0] == "first\n"


async def test_a_secret_in_followed_output_is_masked_in_every_reported_piece(server, make_ctx):
    secrets = DictSecrets({"api-key-secret": {"API_KEY": SECRET_VALUE}})
    created = make_ctx({"secrets": [API_KEY_SECRET]}, secrets=secrets)
    await run_to_end(CreateSandbox(), created)
    sandbox_id = created.data["id"]
    try:
        # Printed a few characters at a time: the value arrives split across pieces.
        script = 'for i in $(seq 0 3 ${#API_KEY}); do printf %s "${API_KEY:$i:3}"; sleep 0.05; done; echo'
        ctx = make_ctx({"sandbox": sandbox_id, "command": script}, secrets=secrets)
        await run_to_end(ExecuteCommand(), ctx)
        shown = "".join(ctx.reported)
        assert SECRET_VALUE not in shown
        assert "[REDACTED]" in shown
        assert ctx.data["result"] == "[REDACTED]\n"
    finally:
        server.delete(sandbox_id)


async def test_a_resumed_command_is_followed_again_and_never_started_twice(server, sandbox, make_ctx):
    command = "sleep 1; echo started once >> /tmp/runs; cat /tmp/runs"
    first = make_ctx({"sandbox": sandbox, "command": command})
    task = asyncio.create_task(ExecuteCommand().execute(first))
    for _ in range(200):
        if (first.metadata.data.get("command") or {}).get("commandId"):
            break
        await asyncio.sleep(0.01)
    task.cancel()  # the engine's process dies while the node follows the command
    await asyncio.gather(task, return_exceptions=True)
    resumed = make_ctx(first.config, metadata=first.metadata, resources=first.resources)
    await run_to_end(ExecuteCommand(), resumed)
    assert resumed.channel == "success"
    assert resumed.data["result"] == "started once\n"
