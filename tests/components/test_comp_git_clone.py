"""daytona.gitClone against respx fixtures of Daytona's API."""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, DictSecrets, drive
from git_support import PASSWORD, REPO, SANDBOX_NAME, TOKEN_SECRET, FakeGit, everything_recorded, status

from daytonaflow.components import GitClone
from daytonaflow.errors import ComponentError, ConfigError

URL = "https://github.com/superplanehq/example-app.git"


@pytest.fixture
def git(daytona):
    return FakeGit(daytona)


def secrets():
    return DictSecrets({"github": {"token": PASSWORD}})


async def test_clones_into_the_repository_name_under_home_and_reports_the_branch(
    git, daytona, make_ctx, clock
):
    git.statuses = [status("main")]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "repository": URL})
    await drive(GitClone(), ctx, clock)
    assert daytona.clones == [{"url": URL, "path": REPO}]
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.git.cloned"
    assert ctx.data == {"sandboxId": SANDBOX_ID, "repository": URL, "path": REPO, "branch": "main"}


async def test_the_path_branch_and_commit_are_sent_to_daytona(git, daytona, make_ctx, clock):
    git.statuses = [status("")]
    ctx = make_ctx(
        {"sandbox": SANDBOX_ID, "repository": URL, "path": "work/app", "branch": "v1", "commit": "a1b2c3d"}
    )
    await drive(GitClone(), ctx, clock)
    assert daytona.clones == [{"url": URL, "path": "work/app", "branch": "v1", "commit_id": "a1b2c3d"}]
    # A checked-out commit detaches HEAD: no branch to report.
    assert ctx.data == {"sandboxId": SANDBOX_ID, "repository": URL, "path": "work/app", "commit": "a1b2c3d"}


async def test_a_sandbox_named_by_name_is_reported_by_its_id(git, daytona, make_ctx, clock):
    ctx = make_ctx({"sandbox": SANDBOX_NAME, "repository": URL})
    await drive(GitClone(), ctx, clock)
    assert ctx.data["sandboxId"] == SANDBOX_ID


async def test_credentials_from_a_secret_go_to_the_clone_request_only(git, daytona, make_ctx, clock):
    config = {"sandbox": SANDBOX_ID, "repository": URL, "credentials": {"password": TOKEN_SECRET}}
    ctx = make_ctx(config, secrets=secrets())
    await drive(GitClone(), ctx, clock)
    assert daytona.clones[0]["username"] == "x-access-token"
    assert daytona.clones[0]["password"] == PASSWORD
    assert PASSWORD not in everything_recorded(ctx)


async def test_a_failed_clone_names_the_repository_with_daytonas_reason_and_masks_the_password(
    git, daytona, make_ctx, clock
):
    daytona.clone_error = f"authentication failed for https://bot:{PASSWORD}@github.com/org/app.git"
    credentials = {"username": "bot", "password": TOKEN_SECRET}
    config = {"sandbox": SANDBOX_ID, "repository": URL, "credentials": credentials}
    ctx = make_ctx(config, secrets=secrets())
    with pytest.raises(ComponentError) as raised:
        await drive(GitClone(), ctx, clock)
    message = str(raised.value)
    assert message == (
        f"git clone of {URL} into {REPO} failed: authentication failed for https://[REDACTED]@github.com/org/app.git"
    )
    assert PASSWORD not in message
    assert PASSWORD not in everything_recorded(ctx)


async def test_a_missing_secret_fails_naming_the_field_before_any_clone(git, daytona, make_ctx, clock):
    config = {"sandbox": SANDBOX_ID, "repository": URL, "credentials": {"password": TOKEN_SECRET}}
    with pytest.raises(ComponentError, match=r"credentials\.password: cannot resolve the secret: .*github"):
        await drive(GitClone(), make_ctx(config), clock)
    assert daytona.clones == []


async def test_an_unknown_sandbox_fails_with_daytonas_message(git, daytona, make_ctx, clock):
    expected = "looking up sandbox 'gone' failed: Sandbox with ID or name gone not found"
    with pytest.raises(ComponentError, match=expected):
        await drive(GitClone(), make_ctx({"sandbox": "gone", "repository": URL}), clock)
    assert daytona.clones == []


async def test_a_clone_that_completed_before_a_restart_is_not_repeated(git, daytona, make_ctx, clock):
    first = make_ctx({"sandbox": SANDBOX_ID, "repository": URL})
    first.metadata.set({"cloning": True})
    await drive(GitClone(), first, clock)
    assert daytona.clones == []
    assert first.data["path"] == REPO


async def test_a_clone_cut_short_before_it_made_the_repository_runs_again(git, daytona, make_ctx, clock):
    git.errors["git_status"] = (400, "not a git repository")
    ctx = make_ctx({"sandbox": SANDBOX_ID, "repository": URL})
    ctx.metadata.set({"cloning": True})
    with pytest.raises(ComponentError, match="git status of"):
        await drive(GitClone(), ctx, clock)
    assert daytona.clones == [{"url": URL, "path": REPO}]


@pytest.mark.parametrize(
    ("config", "issues"),
    [
        ({"repository": "https://example.com/"}, ["repository"]),
        ({"repository": "https://example.com/", "path": "/home/daytona/site"}, []),
        ({"repository": "not a url"}, ["repository"]),
    ],
)
def test_the_clone_directory_must_be_derivable_or_given(config, issues):
    found = GitClone.validate_config({"sandbox": SANDBOX_ID, **config}, allow_expressions=True)
    assert [issue.field for issue in found] == issues


@pytest.mark.parametrize(
    "repository",
    [
        "https://bob:ghp_SECRETTOKEN@github.com/o/app.git",
        "https://ghp_SECRETTOKEN@github.com/o/app.git",
        "ssh://git:ghp_SECRETTOKEN@host/o/app.git",
    ],
)
async def test_a_repository_url_carrying_credentials_is_refused_pointing_to_credentials_before_any_clone(
    git, daytona, make_ctx, clock, repository
):
    expected = (
        'node "node": repository must not carry a user or password (scheme://user:password@host): '
        "give them in credentials (from a secret) instead"
    )
    for path in (None, "work/app"):
        config = {"sandbox": SANDBOX_ID, "repository": repository, **({"path": path} if path else {})}
        assert [str(issue) for issue in GitClone.validate_config(config, allow_expressions=True)] == [
            expected.removeprefix('node "node": ')
        ]
        with pytest.raises(ConfigError) as raised:
            await drive(GitClone(), make_ctx(config), clock)
        assert str(raised.value) == expected
    assert daytona.clones == []


@pytest.mark.parametrize("repository", ["ssh://git@host:2222/o/app.git", "git@github.com:o/app.git", URL])
def test_a_repository_url_with_a_user_and_no_secret_is_accepted(repository):
    config = {"sandbox": SANDBOX_ID, "repository": repository}
    assert GitClone.validate_config(config, allow_expressions=False) == []
