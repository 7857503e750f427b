"""The git components end to end: real HTTP to an embedded LocalServer, real sandboxes, real git,
with bare remotes on the host (reached by ``file://``, or over loopback HTTP behind basic auth).

What git did is checked with git itself: inside the sandbox through the server's own execute
endpoint, and on the bare remote with the host's git; never through the component under test.
"""

from __future__ import annotations

import itertools
import logging
import shlex
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from comp_support import DictSecrets, FakeContext
from git_repository import host_git, make_bare_remote, served_over_http
from local_support import Server, integration, sandbox, server
from sandbox_dirs import traversable_temp_dir

from daytonaflow.component import Component
from daytonaflow.components import (
    GitCheckout,
    GitClone,
    GitCommit,
    GitPull,
    GitPush,
    GitStatus,
)
from daytonaflow.errors import ComponentError
from daytonaflow.runner import Engine, RunStore, RunUpdate, parse_canvas

pytestmark = pytest.mark.sandbox
__all__ = ["integration", "sandbox", "server"]  # fixtures, from local_support

HOME = "/home/daytona"
AUTHOR = {"authorName": "Ada Lovelace", "authorEmail": "ada@example.com"}
USER = "tester"
PASSWORD = "right-pa55word-" + uuid.uuid4().hex
WRONG = "wrong-pa55word-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def remotes_root() -> Iterator[Path]:
    """Where the bare remotes live: a directory the sandboxes' host uids can traverse."""
    with traversable_temp_dir("daytonaflow-git-remotes-") as root:
        root.chmod(0o755)
        yield root


@pytest.fixture
def remote(remotes_root: Path) -> Path:
    return make_bare_remote(remotes_root, f"remote-{uuid.uuid4().hex[:8]}")


async def run_node(component: Component, ctx: FakeContext) -> dict[str, Any]:
    """Execute the node as an engine would (these finish in their first hook call); its data."""
    await component.execute(ctx)
    assert ctx.pending is None
    return ctx.data


async def test_clone_branch_commit_push_and_pull_round_trip_through_a_bare_remote(
    server: Server, sandbox: str, remote: Path, remotes_root: Path, make_ctx: Any, integration: Any
) -> None:
    path = f"{HOME}/{remote.name.removesuffix('.git')}"
    cloned = await run_node(GitClone(), make_ctx({"sandbox": sandbox, "repository": f"file://{remote}"}))
    assert cloned == {"sandboxId": sandbox, "repository": f"file://{remote}", "path": path, "branch": "main"}
    assert server.output(sandbox, f"cat {shlex.quote(path)}/README.md") == "seed"

    checkout = make_ctx({"sandbox": sandbox, "path": path, "branch": "feature", "create": True})
    assert (await run_node(GitCheckout(), checkout))["created"] is True
    assert server.output(sandbox, f"git -C {shlex.quote(path)} rev-parse --abbrev-ref HEAD") == "feature"

    await integration.client.upload_file(sandbox, f"{path}/report.md", b"# report\nall good\n")
    status = await run_node(GitStatus(), make_ctx({"sandbox": sandbox, "path": path}))
    assert status["currentBranch"] == "feature"
    assert status["clean"] is False
    assert status["files"] == [{"name": "report.md", "staging": "Untracked", "worktree": "Untracked"}]

    commit = make_ctx({"sandbox": sandbox, "path": path, "message": "Add the report", **AUTHOR})
    committed = await run_node(GitCommit(), commit)
    assert commit.channel == "default"
    head = server.output(sandbox, f"git -C {shlex.quote(path)} rev-parse HEAD")
    assert committed["sha"] == head
    assert committed["files"] == ["report.md"]
    log = server.output(sandbox, f"git -C {shlex.quote(path)} log -1 --format='%an <%ae>|%s'")
    assert log == "Ada Lovelace <ada@example.com>|Add the report"

    pushed = await run_node(GitPush(), make_ctx({"sandbox": sandbox, "path": path}))
    assert pushed == {"sandboxId": sandbox, "path": path, "branch": "feature"}
    assert host_git("--git-dir", str(remote), "rev-parse", "refs/heads/feature") == head
    assert host_git("--git-dir", str(remote), "show", "refs/heads/feature:report.md") == "# report\nall good"

    # Someone else pushes a commit on the branch; the pull brings it into the sandbox.
    work = remotes_root / f"other-{uuid.uuid4().hex[:8]}"
    host_git("clone", "--quiet", "--branch", "feature", str(remote), str(work))
    (work / "upstream.txt").write_text("from upstream\n")
    host_git("-C", str(work), "add", "upstream.txt")
    host_git("-C", str(work), "commit", "--quiet", "-m", "upstream change")
    host_git("-C", str(work), "push", "--quiet", "origin", "HEAD:refs/heads/feature")
    pulled = await run_node(GitPull(), make_ctx({"sandbox": sandbox, "path": path}))
    assert pulled == {"sandboxId": sandbox, "path": path, "branch": "feature"}
    assert server.output(sandbox, f"git -C {shlex.quote(path)} rev-parse HEAD") == host_git(
        "-C", str(work), "rev-parse", "HEAD"
    )
    assert server.output(sandbox, f"cat {shlex.quote(path)}/upstream.txt") == "from upstream"


async def test_a_commit_with_nothing_to_commit_goes_to_the_nothing_channel(
    server: Server, sandbox: str, remote: Path, make_ctx: Any
) -> None:
    path = "checkout with spaces"
    config = {"sandbox": sandbox, "repository": f"file://{remote}", "path": path}
    await run_node(GitClone(), make_ctx(config))
    before = server.output(sandbox, f"git -C {shlex.quote(path)} rev-parse HEAD")
    ctx = make_ctx({"sandbox": sandbox, "path": path, "message": "nothing here", **AUTHOR})
    data = await run_node(GitCommit(), ctx)
    assert ctx.channel == "nothing"
    assert data == {"sandboxId": sandbox, "path": path, "message": "nothing here", "files": []}
    assert server.output(sandbox, f"git -C {shlex.quote(path)} rev-parse HEAD") == before


async def test_a_path_is_never_shell_syntax(
    server: Server, sandbox: str, remote: Path, make_ctx: Any
) -> None:
    path = "$(touch pwned)"
    await run_node(GitClone(), make_ctx({"sandbox": sandbox, "repository": f"file://{remote}", "path": path}))
    status = await run_node(GitStatus(), make_ctx({"sandbox": sandbox, "path": path}))
    assert status["clean"] is True
    assert server.output(sandbox, "ls -A").splitlines().count("pwned") == 0
    assert server.output(sandbox, f"cat {shlex.quote(path)}/README.md") == "seed"


# ---- credentials from secrets, through a real run ----------------------------------------------


def _push_canvas(url: str) -> dict[str, Any]:
    """createSandbox → gitClone (the right password) → gitCheckout → gitCommit → gitPush (the wrong one)."""
    sandbox = '{{ $["daytona.createSandbox"].data.id }}'
    path = '{{ $["daytona.gitClone"].data.path }}'

    def credentials(key: str) -> dict[str, Any]:
        return {"username": USER, "password": {"secret": "git", "key": key}}

    nodes = [
        {"id": "start", "type": "TYPE_TRIGGER", "component": "start"},
        {"id": "create", "type": "TYPE_ACTION", "component": "daytona.createSandbox", "configuration": {}},
        {
            "id": "clone",
            "type": "TYPE_ACTION",
            "component": "daytona.gitClone",
            "configuration": {"sandbox": sandbox, "repository": url, "credentials": credentials("right")},
        },
        {
            "id": "branch",
            "type": "TYPE_ACTION",
            "component": "daytona.gitCheckout",
            "configuration": {"sandbox": sandbox, "path": path, "branch": "report", "create": True},
        },
        {
            "id": "commit",
            "type": "TYPE_ACTION",
            "component": "daytona.gitCommit",
            "configuration": {
                "sandbox": sandbox,
                "path": path,
                "message": "empty",
                "allowEmpty": True,
                **AUTHOR,
            },
        },
        {
            "id": "push",
            "type": "TYPE_ACTION",
            "component": "daytona.gitPush",
            "configuration": {"sandbox": sandbox, "path": path, "credentials": credentials("wrong")},
        },
    ]
    chain = ["start", "create", "clone", "branch", "commit", "push"]
    edges = [{"sourceId": a, "targetId": b, "channel": "default"} for a, b in itertools.pairwise(chain)]
    return {
        "apiVersion": "v1",
        "kind": "Canvas",
        "metadata": {"name": "git-credentials"},
        "spec": {"nodes": nodes, "edges": edges},
    }


async def test_a_push_with_wrong_credentials_fails_clearly_and_no_secret_is_stored_anywhere(
    server: Server, remote: Path, integration: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    updates: list[RunUpdate] = []
    secrets = DictSecrets({"git": {"right": PASSWORD, "wrong": WRONG}})
    with served_over_http(remote, USER, PASSWORD) as url, RunStore(tmp_path / "runs.db") as store:
        engine = Engine(store, integration=integration, secrets=secrets, observers=[updates.append])
        try:
            record = await engine.run(parse_canvas(_push_canvas(url)))
        finally:
            await engine.aclose()
        assert record.status == "failed"
        executions = {e.node_id: e for e in store.executions(record.id)}
        assert [executions[n].status for n in ("clone", "branch", "commit")] == ["emitted"] * 3
        error = executions["push"].error or ""
        assert error.startswith("git push of report in /home/daytona/remote-"), error
        assert "Authentication failed" in error or "401" in error, error
        assert host_git("--git-dir", str(remote), "branch", "--list", "report") == ""
        stored = [
            *(e.to_json(metadata=True) for e in store.executions(record.id)),
            *(e.to_json() for e in store.events(record.id)),
            store.get_run(record.id).to_json(),
        ]
    recorded = repr(stored) + repr([update.to_json() for update in updates]) + caplog.text
    database = b"".join(path.read_bytes() for path in tmp_path.glob("runs.db*"))
    for secret in (PASSWORD, WRONG):
        assert secret not in recorded
        assert secret.encode() not in database
    # The run's end reclaimed the sandbox it made.
    sandbox_id = next(e for e in store_events(updates) if e["type"] == "daytona.sandbox")["data"]["id"]
    assert server.sandbox(sandbox_id).status_code == 404


def store_events(updates: list[RunUpdate]) -> list[dict[str, Any]]:
    return [update.event for update in updates if update.event is not None]


async def test_a_wrong_password_for_gitclone_is_a_clear_error_without_the_secret(
    server: Server, sandbox: str, remote: Path, make_ctx: Any
) -> None:
    with served_over_http(remote, USER, PASSWORD) as url:
        credentials = {"username": USER, "password": {"secret": "git", "key": "wrong"}}
        ctx = make_ctx(
            {"sandbox": sandbox, "repository": url, "credentials": credentials},
            secrets=DictSecrets({"git": {"wrong": WRONG}}),
        )
        with pytest.raises(ComponentError) as raised:
            await GitClone().execute(ctx)
    message = str(raised.value)
    assert message.startswith(f"git clone of {url} into {HOME}/{remote.name.removesuffix('.git')} failed:")
    assert WRONG not in message
    assert WRONG not in repr(ctx.metadata.history)
