"""One run history: runs of the CLI show in the UI, runs of the UI in ``daytonaflow runs``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ui_support import HELLO, UiServer, by_testid, open_listed, start_run, wait_for_run_status

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]


def _cli_runs(server: UiServer) -> list[dict[str, Any]]:
    listed = server.cli("runs", "--json", "--db", str(server.db))
    assert listed.returncode == 0, listed.stderr
    runs: list[dict[str, Any]] = json.loads(listed.stdout)
    return runs


def test_a_run_started_from_the_cli_appears_in_the_history(page: Any, ui_server: UiServer, shot: Any) -> None:
    by_testid(page, "palette").wait_for()
    ran = ui_server.cli("run", str(HELLO), "--db", str(ui_server.db))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (run,) = _cli_runs(ui_server)

    by_testid(page, "tab-runs").click()
    row = by_testid(page, f"run-row-{run['id']}")
    row.wait_for()
    shot(page, "history-cli-run")
    row.click()
    view = by_testid(page, "run-view")
    view.wait_for()
    assert view.get_attribute("data-run-id") == run["id"]
    assert wait_for_run_status(page, ["succeeded", "failed", "cancelled"], timeout_ms=30_000) == "succeeded"


def test_a_run_started_from_the_ui_appears_in_the_cli_history(page: Any, ui_server: UiServer) -> None:
    open_listed(page, "hello")
    by_testid(page, "node-say-hello").wait_for()
    run_id = start_run(page)
    assert wait_for_run_status(page, ["succeeded", "failed", "cancelled"]) == "succeeded"
    listed = {run["id"]: run for run in _cli_runs(ui_server)}
    assert run_id in listed, listed
    assert listed[run_id]["status"] == "succeeded"
