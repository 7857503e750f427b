"""daytona.gitCommit against respx fixtures of Daytona's API."""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, drive
from git_support import REPO, SHA, FakeGit, status

from daytonaflow.components import GitCommit
from daytonaflow.errors import ComponentError, ConfigError

AUTHOR = {"authorName": "Ada Lovelace", "authorEmail": "ada@example.com"}
STAGED = status("main", ("report.md", "Added", "Unmodified"), ("README.md", "Modified", "Unmodified"))


@pytest.fixture
def git(daytona):
    return FakeGit(daytona)


def config(**extra):
    return {"sandbox": SANDBOX_ID, "path": REPO, "message": "Add the test report", **AUTHOR, **extra}


async def test_stages_everything_then_commits_as_the_author(git, make_ctx, clock):
    git.statuses = [STAGED]
    ctx = make_ctx(config())
    await drive(GitCommit(), ctx, clock)
    assert git.calls("git_add") == [{"path": REPO, "files": ["."]}]
    assert git.calls("git_commit") == [
        {
            "path": REPO,
            "message": "Add the test report",
            "author": "Ada Lovelace",
            "email": "ada@example.com",
            "allow_empty": False,
        }
    ]
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.git.committed"
    assert ctx.data == {
        "sandboxId": SANDBOX_ID,
        "path": REPO,
        "sha": SHA,
        "message": "Add the test report",
        "files": ["report.md", "README.md"],
    }


async def test_only_the_configured_files_are_staged(git, make_ctx, clock):
    git.statuses = [STAGED]
    await drive(GitCommit(), make_ctx(config(files=["report.md", "docs/a b.md"])), clock)
    assert git.calls("git_add") == [{"path": REPO, "files": ["report.md", "docs/a b.md"]}]


async def test_nothing_staged_goes_to_the_nothing_channel_without_a_commit(git, make_ctx, clock):
    git.statuses = [status("main", ("left-out.txt", "Untracked", "Untracked"))]
    ctx = make_ctx(config(files=["report.md"]))
    await drive(GitCommit(), ctx, clock)
    assert git.calls("git_commit") == []
    assert ctx.channel == "nothing"
    assert ctx.data == {"sandboxId": SANDBOX_ID, "path": REPO, "message": "Add the test report", "files": []}


async def test_allow_empty_commits_with_nothing_staged(git, make_ctx, clock):
    ctx = make_ctx(config(allowEmpty=True))
    await drive(GitCommit(), ctx, clock)
    assert git.calls("git_commit")[0]["allow_empty"] is True
    assert ctx.channel == "default"
    assert (ctx.data["sha"], ctx.data["files"]) == (SHA, [])


async def test_a_commit_sent_before_a_restart_is_found_again_not_made_twice(git, make_ctx, clock):
    git.statuses = [STAGED, status("main")]
    newest = {"hash": SHA, "message": "Add the test report\n", "author": "A", "email": "a@x", "timestamp": ""}
    git.history = [newest]
    first = make_ctx(config())
    git.errors["git_commit"] = (502, "the gateway lost the answer")
    with pytest.raises(ComponentError):
        await drive(GitCommit(), first, clock)
    # The answer was lost, yet the commit was made: the re-run after a restart finds it.
    del git.errors["git_commit"]
    resumed = make_ctx(config())
    resumed.metadata.set({"committing": first.metadata.data["committing"]})
    await drive(GitCommit(), resumed, clock)
    assert len(git.calls("git_commit")) == 1
    assert resumed.channel == "default"
    assert resumed.data["sha"] == SHA
    assert resumed.data["files"] == ["report.md", "README.md"]


async def test_a_failed_commit_names_the_repository_with_daytonas_reason(git, make_ctx, clock):
    git.statuses = [STAGED]
    git.errors["git_commit"] = (400, "git commit failed: Author identity unknown")
    expected = f"git commit in {REPO} failed: git commit failed: Author identity"
    with pytest.raises(ComponentError, match=expected):
        await drive(GitCommit(), make_ctx(config()), clock)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"files": []}, "files must list at least one path"),
        ({"files": [""]}, "files.0 must not be empty"),
        ({"message": None}, "message is required"),
        ({"authorEmail": None}, "authorEmail is required"),
    ],
)
async def test_bad_configuration_names_the_field(git, daytona, make_ctx, clock, change, message):
    broken = {key: value for key, value in {**config(), **change}.items() if value is not None}
    with pytest.raises(ConfigError, match=message):
        await drive(GitCommit(), make_ctx(broken), clock)
    assert not daytona.router.calls
