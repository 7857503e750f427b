"""Stopping ``daytonaflow ui``: Ctrl-C ends it and its embedded backend without leaving sandboxes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ui_support import HELLO, running_ui_server

pytestmark = pytest.mark.sandbox


def test_sigint_right_after_a_run_leaves_no_sandbox_volume_mounted(tmp_path: Path) -> None:
    # A run hands the backend's spare sandbox out and starts the next one: Ctrl-C comes meanwhile.
    with running_ui_server(tmp_path / "ui") as server, server.client() as api:
        canvas = api.get("/api/canvas", params={"path": str(HELLO)}).json()["canvas"]
        run_id = api.post("/api/runs", json={"canvas": canvas}).json()["run"]["id"]
        deadline = time.monotonic() + 120
        while api.get(f"/api/runs/{run_id}").json()["run"]["status"] == "running":
            assert time.monotonic() < deadline, "the run did not finish"
            time.sleep(0.05)
    assert server.process.returncode is not None
    assert server.leftover_mounts == [], (
        f"still mounted after exit {server.process.returncode}:\n{server.output()}"
    )
