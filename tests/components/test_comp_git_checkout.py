"""daytona.gitCheckout against respx fixtures of Daytona's API."""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, drive
from git_support import REPO, FakeGit

from daytonaflow.components import GitCheckout
from daytonaflow.errors import ComponentError


@pytest.fixture
def git(daytona):
    return FakeGit(daytona)


def config(**extra):
    return {"sandbox": SANDBOX_ID, "path": REPO, "branch": "test-report", **extra}


async def test_switches_to_an_existing_branch_without_creating_one(git, make_ctx, clock):
    ctx = make_ctx(config())
    await drive(GitCheckout(), ctx, clock)
    assert git.calls("git_checkout") == [{"path": REPO, "branch": "test-report"}]
    assert git.calls("git_create_branch") == []
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.git.checkedOut"
    assert ctx.data == {"sandboxId": SANDBOX_ID, "path": REPO, "branch": "test-report", "created": False}


async def test_create_makes_the_branch_then_switches_to_it(git, make_ctx, clock):
    ctx = make_ctx(config(create=True))
    await drive(GitCheckout(), ctx, clock)
    assert git.calls("git_create_branch") == [{"path": REPO, "name": "test-report"}]
    assert git.calls("git_checkout") == [{"path": REPO, "branch": "test-report"}]
    assert ctx.data["created"] is True


async def test_create_of_a_branch_that_exists_fails_naming_it(git, make_ctx, clock):
    git.branches = ["main", "test-report"]
    with pytest.raises(ComponentError, match=r"branch 'test-report' already exists in .*turn create off"):
        await drive(GitCheckout(), make_ctx(config(create=True)), clock)
    assert git.calls("git_create_branch") == []
    assert git.calls("git_checkout") == []


async def test_a_branch_created_before_a_restart_is_switched_to_not_created_twice(git, make_ctx, clock):
    git.branches = ["main", "test-report"]
    ctx = make_ctx(config(create=True))
    ctx.metadata.set({"creating": True})
    await drive(GitCheckout(), ctx, clock)
    assert git.calls("git_create_branch") == []
    assert git.calls("git_checkout") == [{"path": REPO, "branch": "test-report"}]
    assert ctx.data["created"] is True


async def test_an_unknown_branch_fails_with_daytonas_reason(git, make_ctx, clock):
    git.errors["git_checkout"] = (400, "git checkout failed: error: pathspec 'test-report' did not match")
    with pytest.raises(ComponentError, match=r"git checkout of 'test-report' in .* failed: .*did not match"):
        await drive(GitCheckout(), make_ctx(config()), clock)
