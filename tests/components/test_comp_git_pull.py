"""daytona.gitPull against respx fixtures of Daytona's API."""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, DictSecrets, drive
from git_support import PASSWORD, REPO, TOKEN_SECRET, FakeGit, everything_recorded, status

from daytonaflow.components import GitPull
from daytonaflow.errors import ComponentError


@pytest.fixture
def git(daytona):
    return FakeGit(daytona)


async def test_pulls_the_current_branch_and_reports_it(git, make_ctx, clock):
    git.statuses = [status("feature")]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": REPO})
    await drive(GitPull(), ctx, clock)
    assert git.calls("git_pull") == [{"path": REPO}]
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.git.pulled"
    assert ctx.data == {"sandboxId": SANDBOX_ID, "path": REPO, "branch": "feature"}


async def test_the_credentials_come_from_the_secret_and_stay_out_of_the_payload(git, make_ctx, clock):
    config = {"sandbox": SANDBOX_ID, "path": REPO, "credentials": {"password": TOKEN_SECRET}}
    ctx = make_ctx(config, secrets=DictSecrets({"github": {"token": PASSWORD}}))
    await drive(GitPull(), ctx, clock)
    assert git.calls("git_pull") == [{"path": REPO, "username": "x-access-token", "password": PASSWORD}]
    assert PASSWORD not in everything_recorded(ctx)


async def test_a_merge_conflict_fails_with_gits_message(git, make_ctx, clock):
    git.errors["git_pull"] = (409, "git pull: merge conflict, resolve it in the sandbox: CONFLICT (content)")
    with pytest.raises(ComponentError, match=f"git pull of main in {REPO} failed: git pull: merge conflict"):
        await drive(GitPull(), make_ctx({"sandbox": SANDBOX_ID, "path": REPO}), clock)


def test_the_docs_warn_the_credentials_reach_git_in_the_sandbox_so_pull_only_where_no_untrusted_code_ran():
    docs = " ".join(GitPull.docs.split())
    assert "Credentials go to git inside the sandbox." in docs
    assert "Pull with credentials only from a sandbox where no untrusted code ran" in docs
