"""The run view follows a run as it goes: a node's state changes show while the run still runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ui_support import (
    UiServer,
    by_testid,
    open_listed,
    sandbox_command_canvas,
    start_run,
    wait_for_execution,
    wait_for_node_state,
    wait_for_run_status,
)

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]


@pytest.fixture
def ui_canvases(tmp_path: Path) -> Sequence[Path]:
    return [sandbox_command_canvas(tmp_path / "pause.yaml", "pause", "sleep 10", timeout=120)]


def test_the_run_view_shows_the_running_node_while_it_runs(page: Any, ui_server: UiServer, shot: Any) -> None:
    open_listed(page, "pause")
    by_testid(page, "node-command").wait_for()
    run_id = start_run(page)
    wait_for_execution(ui_server, run_id, "command", "running")
    # The command sleeps 10 s: both must show well before it ends (the store is polled ≤ 50 ms).
    wait_for_node_state(page, "create-sandbox", ["emitted"], timeout_ms=5_000)
    wait_for_node_state(page, "command", ["running"], timeout_ms=5_000)
    shot(page, "live-state-running")
    with ui_server.client() as api:
        executions = api.get(f"/api/runs/{run_id}").json()["executions"]
    assert any(e["node"] == "command" and e["status"] == "running" for e in executions)
    assert wait_for_run_status(page, ["succeeded", "failed", "cancelled"]) == "succeeded"
