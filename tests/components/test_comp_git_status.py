"""daytona.gitStatus against respx fixtures of Daytona's API."""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, drive
from git_support import REPO, SANDBOX_NAME, FakeGit, status

from daytonaflow.components import GitStatus
from daytonaflow.errors import ComponentError, ConfigError


@pytest.fixture
def git(daytona):
    return FakeGit(daytona)


async def test_reports_the_branch_and_every_changed_file(git, make_ctx, clock):
    git.statuses = [
        status(
            "feature",
            ("README.md", "Unmodified", "Modified"),
            ("report.md", "Untracked", "Untracked"),
            ahead=2,
            behind=1,
            branchPublished=False,
        )
    ]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": REPO})
    await drive(GitStatus(), ctx, clock)
    assert git.calls("git_status") == [{"path": REPO}]
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.git.status"
    assert ctx.data == {
        "sandboxId": SANDBOX_ID,
        "path": REPO,
        "currentBranch": "feature",
        "ahead": 2,
        "behind": 1,
        "branchPublished": False,
        "clean": False,
        "files": [
            {"name": "README.md", "staging": "Unmodified", "worktree": "Modified"},
            {"name": "report.md", "staging": "Untracked", "worktree": "Untracked"},
        ],
    }


async def test_a_repository_without_changes_is_clean(git, make_ctx, clock):
    ctx = make_ctx({"sandbox": SANDBOX_NAME, "path": "example-app"})
    await drive(GitStatus(), ctx, clock)
    assert ctx.data["clean"] is True
    assert ctx.data["files"] == []
    assert ctx.data["sandboxId"] == SANDBOX_ID


async def test_a_path_that_is_no_repository_fails_naming_it_with_daytonas_reason(git, make_ctx, clock):
    git.errors["git_status"] = (400, "git status failed: fatal: not a git repository")
    expected = f"git status of {REPO} failed: git status failed: fatal: not a git"
    with pytest.raises(ComponentError, match=expected):
        await drive(GitStatus(), make_ctx({"sandbox": SANDBOX_ID, "path": REPO}), clock)


async def test_the_path_is_required(git, daytona, make_ctx, clock):
    with pytest.raises(ConfigError, match="path is required"):
        await drive(GitStatus(), make_ctx({"sandbox": SANDBOX_ID}), clock)
    assert not daytona.router.calls
