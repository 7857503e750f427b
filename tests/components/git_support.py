"""Daytona's toolbox git API as respx routes, beside ``comp_support.FakeDaytona``'s, for the git
component tests: the shapes of Daytona's toolbox spec (GitStatus, GitCommitResponse, ...), a
request log per operation and errors on demand."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import httpx
from comp_support import SANDBOX_ID, TOOLBOX_URL, FakeDaytona, error_body, fixture

SANDBOX_NAME = "my-sandbox"
REPO = "/home/daytona/example-app"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
PASSWORD = "ghp_s3cr3t-t0ken-that-must-not-leak"
TOKEN_SECRET = {"secret": "github", "key": "token"}


def status(branch: str = "main", *files: tuple[str, str, str], **extra: Any) -> dict[str, Any]:
    """A GitStatus answer; each file is ``(name, staging, worktree)``."""
    entries = [{"name": n, "staging": s, "worktree": w, "extra": ""} for n, s, w in files]
    return {
        "currentBranch": branch,
        "fileStatus": entries,
        "ahead": 0,
        "behind": 0,
        "branchPublished": True,
        **extra,
    }


class FakeGit:
    """The git routes of one started sandbox (ID :data:`SANDBOX_ID`, name :data:`SANDBOX_NAME`)."""

    def __init__(self, daytona: FakeDaytona) -> None:
        self.daytona = daytona
        daytona.sandboxes[SANDBOX_ID] = fixture("sandbox", id=SANDBOX_ID, name=SANDBOX_NAME, state="started")
        daytona.states[SANDBOX_ID] = ["started"]
        # Looked up by name as Daytona allows (GET /sandbox/{idOrName}).
        daytona.sandboxes[SANDBOX_NAME] = daytona.sandboxes[SANDBOX_ID]
        daytona.states[SANDBOX_NAME] = ["started"]
        #: Successive status answers (the last repeats).
        self.statuses: list[dict[str, Any]] = [status()]
        self.branches: list[str] = ["main"]
        self.history: list[dict[str, str]] = []
        self.sha = SHA
        #: Operation -> (status, message) it answers with instead.
        self.errors: dict[str, tuple[int, str]] = {}
        #: Operation -> the request bodies (or query parameters) it received, in order.
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        box = rf"^{TOOLBOX_URL}/(?P<sid>[^/]+)/git"
        router = daytona.router
        for name, method, operation in (
            ("git_status", "GET", "status"),
            ("git_add", "POST", "add"),
            ("git_commit", "POST", "commit"),
            ("git_history", "GET", "history"),
            ("git_push", "POST", "push"),
            ("git_pull", "POST", "pull"),
            ("git_list_branches", "GET", "branches"),
            ("git_create_branch", "POST", "branches"),
            ("git_checkout", "POST", "checkout"),
        ):
            router.route(method=method, url__regex=rf"{box}/{operation}(\?.*)?$", name=name).mock(
                side_effect=self._answer(name)
            )

    def calls(self, name: str) -> list[dict[str, Any]]:
        return self.requests[name]

    def _answer(self, name: str) -> Any:
        def handle(request: httpx.Request, sid: str) -> httpx.Response:
            assert sid == SANDBOX_ID, f"the toolbox is addressed by the sandbox ID, not {sid!r}"
            body = json.loads(request.content) if request.content else dict(request.url.params)
            self.requests[name].append(body)
            if name in self.errors:
                code, message = self.errors[name]
                return httpx.Response(code, json=error_body(code, message, "Bad Request"))
            return self._success(name)

        return handle

    def _success(self, name: str) -> httpx.Response:
        if name == "git_status":
            answer = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return httpx.Response(200, json=answer)
        if name == "git_commit":
            return httpx.Response(200, json={"hash": self.sha})
        if name == "git_history":
            return httpx.Response(200, json=self.history)
        if name == "git_list_branches":
            return httpx.Response(200, json={"branches": self.branches})
        if name == "git_create_branch":
            return httpx.Response(201)
        return httpx.Response(200)


def everything_recorded(ctx: Any) -> str:
    """All a node execution left behind as text: emitted events, every metadata version, the
    payloads' private state."""
    events = [event.model_dump(mode="json") for _, event in ctx.emitted]
    return json.dumps({"events": events, "metadata": ctx.metadata.history, "reported": ctx.reported})
