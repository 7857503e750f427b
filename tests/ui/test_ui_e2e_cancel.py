"""Cancel from the run view: the run ends cancelled and its sandbox is gone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ui_support import (
    FINAL_RESOURCE_STATES,
    UiServer,
    by_testid,
    open_listed,
    sandbox_command_canvas,
    start_run,
    wait_for_execution,
    wait_for_node_state,
    wait_for_run_status,
    wait_until_no_sandboxes,
)

from daytonaflow.runner import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]


@pytest.fixture
def ui_canvases(tmp_path: Path) -> Sequence[Path]:
    return [sandbox_command_canvas(tmp_path / "sleeper.yaml", "sleeper", "sleep 60", timeout=120)]


def test_cancel_during_a_running_node_ends_the_run_cancelled_and_leaves_no_sandbox(
    page: Any, ui_server: UiServer, shot: Any
) -> None:
    open_listed(page, "sleeper")
    by_testid(page, "node-command").wait_for()
    run_id = start_run(page)
    # The precondition from the server, not the page: how fast the page shows it is another test's.
    wait_for_execution(ui_server, run_id, "command", "running")
    with ui_server.client() as api:
        held = api.get("/api/sandboxes").json()["sandboxes"]
    assert len(held) == 1, held  # the command's sandbox exists while it runs

    by_testid(page, "btn-cancel").click()
    assert wait_for_run_status(page, ["succeeded", "failed", "cancelled"], timeout_ms=60_000) == "cancelled"
    wait_for_node_state(page, "command", ["cancelled"], timeout_ms=10_000)
    shot(page, "cancelled-run")
    with ui_server.client() as api:
        assert api.get(f"/api/runs/{run_id}").json()["run"]["status"] == "cancelled"
    assert wait_until_no_sandboxes(ui_server) == []
    with RunStore(ui_server.db) as store:
        resources = store.resources(run_id)
    sandboxes = [r for r in resources if r.kind == "daytona.sandbox"]
    assert len(sandboxes) == 1, resources
    assert {r.state for r in resources} <= FINAL_RESOURCE_STATES, resources
