"""daytona.gitPush against respx fixtures of Daytona's API."""

from __future__ import annotations

import logging

import pytest
from comp_support import SANDBOX_ID, DictSecrets, drive
from git_support import PASSWORD, REPO, TOKEN_SECRET, FakeGit, everything_recorded, status

from daytonaflow.components import GitPush
from daytonaflow.errors import ComponentError


@pytest.fixture
def git(daytona):
    return FakeGit(daytona)


def with_credentials(**extra):
    credentials = {"username": "bot", "password": TOKEN_SECRET}
    return {"sandbox": SANDBOX_ID, "path": REPO, "credentials": credentials, **extra}


def secrets():
    return DictSecrets({"github": {"token": PASSWORD}})


async def test_pushes_the_current_branch_and_reports_it(git, make_ctx, clock):
    git.statuses = [status("test-report")]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": REPO})
    await drive(GitPush(), ctx, clock)
    assert git.calls("git_push") == [{"path": REPO}]
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.git.pushed"
    assert ctx.data == {"sandboxId": SANDBOX_ID, "path": REPO, "branch": "test-report"}


async def test_the_credentials_go_to_the_push_request_and_nowhere_else(git, make_ctx, clock, caplog):
    caplog.set_level(logging.DEBUG)
    ctx = make_ctx(with_credentials(), secrets=secrets())
    await drive(GitPush(), ctx, clock)
    assert git.calls("git_push") == [{"path": REPO, "username": "bot", "password": PASSWORD}]
    assert PASSWORD not in everything_recorded(ctx)
    assert PASSWORD not in caplog.text


async def test_a_rejected_push_fails_with_daytonas_reason_and_never_shows_the_password(
    git, make_ctx, clock, caplog
):
    caplog.set_level(logging.DEBUG)
    git.errors["git_push"] = (
        400,
        f"git push failed: Authentication failed for 'https://bot:{PASSWORD}@git.test/'",
    )
    ctx = make_ctx(with_credentials(), secrets=secrets())
    with pytest.raises(ComponentError) as raised:
        await drive(GitPush(), ctx, clock)
    message = str(raised.value)
    assert message.startswith(f"git push of main in {REPO} failed: git push failed: Authentication failed")
    assert PASSWORD not in message
    assert PASSWORD not in everything_recorded(ctx)
    assert PASSWORD not in caplog.text


async def test_a_password_a_url_quotes_is_masked_in_that_form_too(git, make_ctx, clock):
    password = "p@ss/w0rd:with-specials"
    quoted = "p%40ss%2Fw0rd%3Awith-specials"
    git.errors["git_push"] = (
        400,
        f"git push failed: Authentication failed for 'https://bot:{quoted}@git.test/'",
    )
    ctx = make_ctx(with_credentials(), secrets=DictSecrets({"github": {"token": password}}))
    with pytest.raises(ComponentError) as raised:
        await drive(GitPush(), ctx, clock)
    assert "https://bot:[REDACTED]@git.test/" in str(raised.value)
    assert quoted not in str(raised.value)


async def test_a_detached_head_fails_before_any_push(git, make_ctx, clock):
    git.statuses = [status("")]
    expected = f"git push in {REPO}: HEAD is detached, check out a branch first"
    with pytest.raises(ComponentError, match=expected):
        await drive(GitPush(), make_ctx({"sandbox": SANDBOX_ID, "path": REPO}), clock)
    assert git.calls("git_push") == []


async def test_a_push_whose_answer_was_lost_is_repeated(git, daytona, make_ctx, clock):
    git.errors["git_push"] = (503, "unavailable")
    with pytest.raises(ComponentError, match="unavailable"):
        await drive(GitPush(), make_ctx({"sandbox": SANDBOX_ID, "path": REPO}), clock)
    # Pushing the same commits again changes nothing: the client repeats it like any idempotent call.
    assert len(git.calls("git_push")) == 4


def test_the_docs_warn_the_credentials_reach_git_in_the_sandbox_so_push_only_where_no_untrusted_code_ran():
    docs = " ".join(GitPush.docs.split())
    assert "Credentials go to git inside the sandbox." in docs
    assert "Push only from a sandbox where no untrusted code ran" in docs
