"""daytona.gitPush against respx fixtures of Daytona's API."""

from __future__ import annotations

import base64
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
    assert "https://[REDACTED]@git.test/" in str(raised.value)
    assert quoted not in str(raised.value)


SPECIAL = "p@ss$w0rd/2"
BASIC = "Basic " + base64.b64encode(f"bot:{SPECIAL}".encode()).decode()


@pytest.mark.parametrize(
    ("password", "shown"),
    [
        pytest.param(SPECIAL, "p%40ss$w0rd%2F2", id="go-userinfo-escaping"),
        pytest.param(SPECIAL, "p%40ss%24w0rd%2f2", id="lower-case-percent-encoding"),
        pytest.param(SPECIAL, "p%40ss%24w0rd/2", id="quote-default-safe-set"),
        pytest.param("p@ss w0rd/2", "p%40ss+w0rd%2F2", id="form-encoding"),
        pytest.param(SPECIAL, BASIC, id="basic-auth"),
        pytest.param(SPECIAL, "p@ss$w0rd\\/2", id="json-slash-escaping"),
        pytest.param('p"ss\\w0rd', 'p\\"ss\\\\w0rd', id="json-escaping"),
    ],
)
async def test_a_password_echoed_in_an_encoded_form_is_masked_in_that_form(
    git, make_ctx, clock, password, shown
):
    git.errors["git_push"] = (400, f"git push failed: the remote answered to {shown} with 403")
    ctx = make_ctx(with_credentials(), secrets=DictSecrets({"github": {"token": password}}))
    with pytest.raises(ComponentError) as raised:
        await drive(GitPush(), ctx, clock)
    message = str(raised.value)
    assert shown.removeprefix("Basic ") not in message
    assert "the remote answered to " in message and "[REDACTED] with 403" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://someone:an-unrelated-t0ken@git.test/app.git",
        "https://ghp_t0ken-as-the-user@git.test/app.git",
    ],
)
async def test_the_userinfo_of_any_url_in_a_failure_is_masked(git, make_ctx, clock, url):
    git.errors["git_push"] = (400, f"git push failed: could not read from '{url}'")
    with pytest.raises(ComponentError) as raised:
        await drive(GitPush(), make_ctx(with_credentials(), secrets=secrets()), clock)
    assert "could not read from 'https://[REDACTED]@git.test/app.git'" in str(raised.value)


async def test_a_password_under_four_characters_is_refused_before_any_push(git, make_ctx, clock):
    ctx = make_ctx(with_credentials(), secrets=DictSecrets({"github": {"token": "p4s"}}))
    with pytest.raises(ComponentError) as raised:
        await drive(GitPush(), ctx, clock)
    assert str(raised.value) == (
        "credentials.password: the value of secret 'github' key 'token' is under 4 characters; "
        "a password that short cannot be masked in messages, so it is refused (use a token)"
    )
    assert git.calls("git_push") == []


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
