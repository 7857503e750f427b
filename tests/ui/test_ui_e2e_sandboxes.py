"""The sandboxes page: what the backend holds, and delete."""

from __future__ import annotations

import time
from typing import Any

import pytest
from ui_support import UiServer, by_testid, wait_until_no_sandboxes

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]


def _kept_sandbox(server: UiServer) -> str:
    """A run of this UI's backend that creates a sandbox and keeps it; the sandbox's id.

    Started through the API (the set-up, not the behaviour under test): a CLI run would hold its
    sandboxes in a backend of its own."""
    nodes = [
        {"id": "start", "name": "Manual Run", "type": "TYPE_TRIGGER", "component": "start"},
        {"id": "create-sandbox", "name": "Create Sandbox", "component": "daytona.createSandbox"},
    ]
    edges = [{"sourceId": "start", "targetId": "create-sandbox", "channel": "default"}]
    canvas = {"apiVersion": "v1", "kind": "Canvas", "metadata": {"name": "keeper"}}
    canvas["spec"] = {"nodes": nodes, "edges": edges}
    with server.client() as api:
        started = api.post("/api/runs", json={"canvas": canvas, "keepSandboxes": True})
        assert started.status_code == 201, started.text
        run_id = started.json()["run"]["id"]
        deadline = time.monotonic() + 120
        while api.get(f"/api/runs/{run_id}").json()["run"]["status"] == "running":
            assert time.monotonic() < deadline, "the keeper run did not finish"
            time.sleep(0.1)
        (sandbox,) = api.get("/api/sandboxes").json()["sandboxes"]
    return str(sandbox["id"])


def test_the_sandboxes_page_lists_a_held_sandbox_and_deletes_it(
    page: Any, ui_server: UiServer, shot: Any
) -> None:
    sandbox = _kept_sandbox(ui_server)
    page.on("dialog", lambda dialog: dialog.accept())  # a confirmation prompt, if the page asks
    by_testid(page, "tab-sandboxes").click()
    by_testid(page, "sandboxes-list").wait_for()
    row = by_testid(page, f"sandbox-row-{sandbox}")
    row.wait_for()
    shot(page, "sandboxes")
    by_testid(page, f"sandbox-delete-{sandbox}").click()
    row.wait_for(state="detached")
    assert wait_until_no_sandboxes(ui_server) == []
