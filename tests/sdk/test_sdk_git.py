"""``sandbox.git`` of the official Python SDK against ``daytonaflow serve``: one test per call.

Remotes are bare repositories on the host, reached by path, ``file://`` or over a loopback
``git http-backend`` with basic auth; each test checks what git itself says afterwards (in the
sandbox, or with the host's git on the bare remote).
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from daytona import AsyncDaytona, DaytonaError, Sandbox
from git_repository import host_git, make_bare_remote, served_over_http

_USER, _PASSWORD = "alice", "s3cret-Pa55word"


def _in_sandbox(sandbox: Sandbox, command: str) -> str:
    response = sandbox.process.exec(command)
    assert response.exit_code == 0, response.result
    return response.result.strip()


@pytest.fixture(scope="module")
def remotes_root() -> Iterator[Path]:
    """A host directory the sandboxes' host uids can traverse (and write the remotes below)."""
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-git-remotes-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def remote(remotes_root: Path) -> Path:
    return make_bare_remote(remotes_root, f"remote-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def shared_repo(shared_sandbox: Sandbox, remotes_root: Path) -> str:
    """A clone in the module's sandbox, for the read-mostly tests."""
    bare = make_bare_remote(remotes_root, "shared")
    shared_sandbox.git.clone(url=str(bare), path="shared")
    return "shared"


def test_status_lists_the_changed_and_the_new_file(shared_sandbox: Sandbox, shared_repo: str) -> None:
    _in_sandbox(shared_sandbox, f"cd {shared_repo} && echo changed >> README.md && echo new > new.txt")
    try:
        status = shared_sandbox.git.status(shared_repo)
    finally:
        _in_sandbox(shared_sandbox, f"cd {shared_repo} && git checkout -- README.md && rm new.txt")
    assert status.current_branch == "main"
    by_name = {entry.name: entry for entry in status.file_status}
    assert by_name["README.md"].worktree == "Modified"
    assert by_name["README.md"].staging == "Unmodified"
    assert by_name["new.txt"].worktree == "Untracked"
    assert status.branch_published is True
    assert (status.ahead, status.behind) == (0, 0)


def test_branches_lists_every_local_branch(shared_sandbox: Sandbox, shared_repo: str) -> None:
    _in_sandbox(shared_sandbox, f"git -C {shared_repo} branch listed-branch")
    try:
        response = shared_sandbox.git.branches(shared_repo)
    finally:
        _in_sandbox(shared_sandbox, f"git -C {shared_repo} branch -D listed-branch")
    assert sorted(response.branches) == ["listed-branch", "main"]


def test_add_stages_the_file(sandbox: Sandbox, remote: Path) -> None:
    sandbox.git.clone(url=str(remote), path="repo")
    _in_sandbox(sandbox, "echo staged > repo/staged.txt")
    sandbox.git.add("repo", ["staged.txt"])
    assert _in_sandbox(sandbox, "git -C repo diff --cached --name-only") == "staged.txt"
    status = sandbox.git.status("repo")
    assert [(f.name, f.staging) for f in status.file_status] == [("staged.txt", "Added")]


def test_commit_returns_the_sha_and_records_the_author(sandbox: Sandbox, remote: Path) -> None:
    sandbox.git.clone(url=str(remote), path="repo")
    _in_sandbox(sandbox, "echo body > repo/file.txt")
    sandbox.git.add("repo", ["file.txt"])
    response = sandbox.git.commit("repo", "add file", author="Ada Lovelace", email="ada@example.com")
    assert response.sha == _in_sandbox(sandbox, "git -C repo rev-parse HEAD")
    log = _in_sandbox(sandbox, "git -C repo log -1 --format='%an <%ae>|%cn|%s'")
    assert log == "Ada Lovelace <ada@example.com>|Ada Lovelace|add file"
    assert sandbox.git.status("repo").ahead == 1


def test_commit_allow_empty_makes_a_commit_without_changes(sandbox: Sandbox, remote: Path) -> None:
    sandbox.git.clone(url=str(remote), path="repo")
    before = _in_sandbox(sandbox, "git -C repo rev-parse HEAD")
    with pytest.raises(DaytonaError, match="nothing"):
        sandbox.git.commit("repo", "empty", author="A", email="a@example.com")
    response = sandbox.git.commit("repo", "empty", author="A", email="a@example.com", allow_empty=True)
    assert response.sha != before
    assert _in_sandbox(sandbox, "git -C repo rev-parse HEAD~1") == before


def test_create_branch_creates_and_checks_it_out(sandbox: Sandbox, remote: Path) -> None:
    sandbox.git.clone(url=str(remote), path="repo")
    sandbox.git.create_branch("repo", "feature/x")
    assert _in_sandbox(sandbox, "git -C repo rev-parse --abbrev-ref HEAD") == "feature/x"
    assert "feature/x" in sandbox.git.branches("repo").branches


def test_checkout_branch_switches_the_worktree(sandbox: Sandbox, remote: Path) -> None:
    sandbox.git.clone(url=str(remote), path="repo")
    _in_sandbox(sandbox, "git -C repo branch other")
    sandbox.git.checkout_branch("repo", "other")
    assert _in_sandbox(sandbox, "git -C repo rev-parse --abbrev-ref HEAD") == "other"
    assert sandbox.git.status("repo").current_branch == "other"


def test_delete_branch_removes_it(sandbox: Sandbox, remote: Path) -> None:
    sandbox.git.clone(url=str(remote), path="repo")
    _in_sandbox(sandbox, "git -C repo branch doomed")
    sandbox.git.delete_branch("repo", "doomed")
    assert sandbox.git.branches("repo").branches == ["main"]


def _commit_in_sandbox(sandbox: Sandbox, repo: str, name: str) -> str:
    _in_sandbox(sandbox, f"echo {name} > {repo}/{name}")
    sandbox.git.add(repo, [name])
    return sandbox.git.commit(repo, f"add {name}", author="A", email="a@example.com").sha


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_push_lands_the_commit_in_the_bare_remote(sandbox: Sandbox, remote: Path, form: str) -> None:
    url = str(remote) if form == "path" else f"file://{remote}"
    sandbox.git.clone(url=url, path="repo")
    sha = _commit_in_sandbox(sandbox, "repo", "pushed.txt")
    sandbox.git.push("repo")
    assert host_git("--git-dir", str(remote), "rev-parse", "refs/heads/main") == sha
    status = sandbox.git.status("repo")
    assert (status.ahead, status.behind) == (0, 0)


def test_pull_brings_a_commit_made_in_the_remote(sandbox: Sandbox, remote: Path, remotes_root: Path) -> None:
    sandbox.git.clone(url=str(remote), path="repo")
    work = remotes_root / f"other-{uuid.uuid4().hex[:8]}"
    host_git("clone", "--quiet", str(remote), str(work))
    (work / "upstream.txt").write_text("from upstream\n")
    host_git("-C", str(work), "add", "upstream.txt")
    host_git("-C", str(work), "commit", "--quiet", "-m", "upstream change")
    host_git("-C", str(work), "push", "--quiet", "origin", "HEAD:refs/heads/main")
    sandbox.git.pull("repo")
    assert _in_sandbox(sandbox, "cat repo/upstream.txt") == "from upstream"
    assert _in_sandbox(sandbox, "git -C repo rev-parse HEAD") == host_git(
        "-C", str(work), "rev-parse", "HEAD"
    )


# ---- credentials over a loopback http remote --------------------------------------------------


@pytest.fixture
def http_remote(remote: Path) -> Iterator[tuple[str, Path]]:
    """``remote`` served at ``http://127.0.0.1:PORT/NAME`` behind basic auth."""
    with served_over_http(remote, _USER, _PASSWORD) as url:
        yield url, remote


def test_push_and_pull_authenticate_over_http(sandbox: Sandbox, http_remote: tuple[str, Path]) -> None:
    url, bare = http_remote
    sandbox.git.clone(url=url, path="repo", username=_USER, password=_PASSWORD)
    sha = _commit_in_sandbox(sandbox, "repo", "over-http.txt")
    sandbox.git.push("repo", username=_USER, password=_PASSWORD)
    assert host_git("--git-dir", str(bare), "rev-parse", "refs/heads/main") == sha
    _in_sandbox(sandbox, "git -C repo reset --quiet --hard HEAD~1")
    sandbox.git.pull("repo", username=_USER, password=_PASSWORD)
    assert _in_sandbox(sandbox, "git -C repo rev-parse HEAD") == sha
    # Nothing of the credentials stays in the sandbox's repository.
    assert _PASSWORD not in _in_sandbox(sandbox, "cat repo/.git/config; git -C repo remote -v")


def test_a_wrong_password_fails_without_showing_the_credentials(
    sandbox: Sandbox, http_remote: tuple[str, Path]
) -> None:
    url, _ = http_remote
    sandbox.git.clone(url=url, path="repo", username=_USER, password=_PASSWORD)
    _commit_in_sandbox(sandbox, "repo", "refused.txt")
    wrong = "wr0ng-" + uuid.uuid4().hex
    with pytest.raises(DaytonaError) as raised:
        sandbox.git.push("repo", username=_USER, password=wrong)
    message = str(raised.value)
    assert "Authentication failed" in message or "401" in message
    assert wrong not in message and _USER not in message


def test_push_to_a_remote_the_api_never_named_is_refused(sandbox: Sandbox, remote: Path) -> None:
    sandbox.git.clone(url=str(remote), path="repo")
    _in_sandbox(
        sandbox, f"git -C repo remote set-url origin {shlex.quote(str(remote.parent / 'elsewhere.git'))}"
    )
    _commit_in_sandbox(sandbox, "repo", "nowhere.txt")
    with pytest.raises(DaytonaError, match="not given to this sandbox through the API"):
        sandbox.git.push("repo")


# ---- what newer SDKs add (0.129 has none of these methods) -------------------------------------


def _needs(sandbox: Sandbox, method: str) -> None:
    if not hasattr(type(sandbox.git), method):
        pytest.skip(f"this daytona SDK has no git.{method}")


def test_init_creates_a_repository_on_the_initial_branch(sandbox: Sandbox) -> None:
    _needs(sandbox, "init")
    sandbox.git.init("fresh", initial_branch="trunk")
    assert _in_sandbox(sandbox, "git -C fresh symbolic-ref --short HEAD") == "trunk"
    sandbox.git.init("fresh-bare.git", bare=True)
    assert _in_sandbox(sandbox, "git -C fresh-bare.git rev-parse --is-bare-repository") == "true"


def test_reset_unstages_and_resets_hard(sandbox: Sandbox, remote: Path) -> None:
    _needs(sandbox, "reset")
    sandbox.git.clone(url=str(remote), path="repo")
    _in_sandbox(sandbox, "cd repo && echo changed > README.md && git add README.md")
    sandbox.git.reset("repo")
    assert _in_sandbox(sandbox, "git -C repo diff --cached --name-only") == ""
    assert _in_sandbox(sandbox, "git -C repo diff --name-only") == "README.md"
    sandbox.git.reset("repo", mode="hard", target="HEAD")
    assert _in_sandbox(sandbox, "cat repo/README.md") == "seed"


def test_restore_discards_a_worktree_change(sandbox: Sandbox, remote: Path) -> None:
    _needs(sandbox, "restore")
    sandbox.git.clone(url=str(remote), path="repo")
    _in_sandbox(sandbox, "echo changed > repo/README.md")
    sandbox.git.restore("repo", ["README.md"])
    assert _in_sandbox(sandbox, "cat repo/README.md") == "seed"


def test_remote_add_then_remotes_lists_it(sandbox: Sandbox, remote: Path) -> None:
    _needs(sandbox, "remote_add")
    sandbox.git.init("made")
    sandbox.git.remote_add("made", "origin", str(remote))
    assert [(r.name, r.url) for r in sandbox.git.remotes("made").remotes] == [("origin", str(remote))]
    assert sandbox.git.remote_get("made", "origin") == str(remote)
    assert sandbox.git.remote_get("made", "absent") is None


def test_remote_add_with_fetch_brings_the_remote_branches(sandbox: Sandbox, remote: Path) -> None:
    _needs(sandbox, "remote_add")
    sandbox.git.init("made")
    sandbox.git.remote_add("made", "upstream", str(remote), fetch=True)
    expected = host_git("--git-dir", str(remote), "rev-parse", "refs/heads/main")
    assert _in_sandbox(sandbox, "git -C made rev-parse refs/remotes/upstream/main") == expected


def test_a_remote_added_through_the_api_can_be_pushed_to(sandbox: Sandbox, remote: Path) -> None:
    _needs(sandbox, "remote_add")
    sandbox.git.init("made", initial_branch="side")
    sandbox.git.remote_add("made", "origin", f"file://{remote}")
    sha = _commit_in_sandbox(sandbox, "made", "first.txt")
    sandbox.git.push("made", set_upstream=True)
    assert host_git("--git-dir", str(remote), "rev-parse", "refs/heads/side") == sha
    assert sandbox.git.status("made").upstream == "origin/side"


def test_set_config_and_get_config_in_both_scopes(sandbox: Sandbox, remote: Path) -> None:
    _needs(sandbox, "set_config")
    sandbox.git.clone(url=str(remote), path="repo")
    sandbox.git.set_config("core.editor", "vi")
    sandbox.git.set_config("core.editor", "nano", scope="local", path="repo")
    assert sandbox.git.get_config("core.editor") == "vi"
    assert sandbox.git.get_config("core.editor", scope="local", path="repo") == "nano"
    assert sandbox.git.get_config("core.unsetkey") is None


def test_configure_user_sets_name_and_email(sandbox: Sandbox) -> None:
    _needs(sandbox, "configure_user")
    sandbox.git.configure_user("Grace Hopper", "grace@example.com")
    assert _in_sandbox(sandbox, "git config --global user.name; git config --global user.email") == (
        "Grace Hopper\ngrace@example.com"
    )


def test_dangerously_authenticate_lets_push_use_the_stored_credentials(
    sandbox: Sandbox, http_remote: tuple[str, Path]
) -> None:
    _needs(sandbox, "dangerously_authenticate")
    url, bare = http_remote
    sandbox.git.clone(url=url, path="repo", username=_USER, password=_PASSWORD)
    sandbox.git.dangerously_authenticate(_USER, _PASSWORD, host=url.split("/")[2], protocol="http")
    sha = _commit_in_sandbox(sandbox, "repo", "stored.txt")
    sandbox.git.push("repo")
    assert host_git("--git-dir", str(bare), "rev-parse", "refs/heads/main") == sha


def test_commit_history_parses_with_the_generated_model(sandbox: Sandbox, remote: Path) -> None:
    sandbox.git.clone(url=str(remote), path="repo")
    sha = _commit_in_sandbox(sandbox, "repo", "later.txt")
    history = sandbox.git._api_client.get_commit_history(path="repo")
    assert [(c.hash, c.message, c.author) for c in history[:1]] == [(sha, "add later.txt", "A")]
    assert [c.message for c in history[1:]] == ["seed"]


async def test_the_async_client_reads_the_status(async_client: AsyncDaytona, remote: Path) -> None:
    sandbox = await async_client.create()
    try:
        await sandbox.git.clone(url=str(remote), path="repo")
        await sandbox.process.exec("echo new > repo/async.txt")
        status = await sandbox.git.status("repo")
        assert [(f.name, f.worktree) for f in status.file_status] == [("async.txt", "Untracked")]
        assert (await sandbox.git.branches("repo")).branches == ["main"]
    finally:
        await async_client.delete(sandbox)
