"""The toolbox's git routes answer bad input with a 400 naming the field, and say plainly when
git is missing or a path is no repository."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from localserver_testkit import Api

from daytonaflow.localserver import git
from daytonaflow.localserver.errors import GitOperationError

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def repo_sandbox(api: Api) -> Iterator[dict[str, Any]]:
    created = api.create()
    script = "git init -q -b main /home/daytona/repo && echo x > /home/daytona/repo/x.txt"
    assert api.run(created["id"], script)["exitCode"] == 0
    yield created
    api.delete(created["id"])


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/git/add", {"path": "repo", "files": "x.txt"}, "files"),
        ("/git/add", {"path": "repo", "files": []}, "files"),
        ("/git/branches", {"path": "repo", "name": "--force"}, "name"),
        ("/git/branches", {"path": "repo", "name": "a:b"}, "name"),
        ("/git/checkout", {"path": "repo", "branch": "-f"}, "branch"),
        ("/git/commit", {"path": "repo", "message": "a\u0000b", "author": "A", "email": "a@e"}, "message"),
        ("/git/push", {"path": "repo", "branch": "-x"}, "branch"),
        ("/git/reset", {"path": "repo", "mode": "sideways"}, "mode"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    api: Api, repo_sandbox: dict[str, Any], route: str, body: dict[str, Any], field: str
) -> None:
    response = api.toolbox("POST", repo_sandbox["id"], route, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


def test_a_path_that_is_no_repository_is_a_400_saying_so(api: Api, repo_sandbox: dict[str, Any]) -> None:
    response = api.toolbox("GET", repo_sandbox["id"], "/git/status", params={"path": "/tmp"})
    assert response.status_code == 400
    assert "not a git repository" in response.json()["message"]


def test_status_of_a_repository_without_commits_names_its_branch(
    api: Api, repo_sandbox: dict[str, Any]
) -> None:
    response = api.toolbox("GET", repo_sandbox["id"], "/git/status", params={"path": "repo"})
    assert response.status_code == 200, response.text
    assert response.json()["currentBranch"] == "main"
    assert response.json()["fileStatus"] == [
        {"name": "x.txt", "staging": "Untracked", "worktree": "Untracked", "extra": ""}
    ]


def test_history_of_a_repository_without_commits_is_empty(api: Api, repo_sandbox: dict[str, Any]) -> None:
    response = api.toolbox("GET", repo_sandbox["id"], "/git/history", params={"path": "repo"})
    assert response.status_code == 200, response.text
    assert response.json() == []


def test_pull_with_a_detached_head_says_to_check_out_a_branch(api: Api, repo_sandbox: dict[str, Any]) -> None:
    script = (
        "cd /home/daytona/repo && git add x.txt && git -c user.name=a -c user.email=a@b commit -qm x"
        " && git checkout -q --detach"
    )
    assert api.run(repo_sandbox["id"], script)["exitCode"] == 0
    try:
        response = api.toolbox("POST", repo_sandbox["id"], "/git/pull", json={"path": "repo"})
    finally:
        api.run(repo_sandbox["id"], "git -C /home/daytona/repo checkout -q main")
    assert response.status_code == 400
    assert response.json()["code"] == "GIT_DETACHED"


def test_a_sandbox_without_git_on_its_path_gets_a_clear_error(api: Api) -> None:
    created = api.create(env={"PATH": "/nonexistent"})
    try:
        response = api.toolbox("GET", created["id"], "/git/status", params={"path": "repo"})
    finally:
        api.delete(created["id"])
    assert response.status_code == 500
    assert response.json()["code"] == "GIT_NOT_INSTALLED"
    assert "install git on the host" in response.json()["message"]


async def test_a_bundle_transfer_that_never_ends_is_a_504(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sandbox could leave the agent's download waiting (a FIFO where its bundle should be)."""
    monkeypatch.setattr(git, "_NETWORK_TIMEOUT_SECONDS", 0.2)
    with pytest.raises(GitOperationError) as raised:
        await git._in_time(asyncio.Event().wait(), "git push (reading the bundle)")
    assert (raised.value.status, raised.value.code) == (504, "GIT_TIMEOUT")
