"""Stopping ``daytonaflow ui``: Ctrl-C ends it and its embedded backend without leaving sandboxes."""

from __future__ import annotations

import json
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


def test_cli_commands_share_the_open_uis_embedded_backend(tmp_path: Path) -> None:
    # One server per state directory: without sharing, `daytonaflow run` would fail on its lock.
    with running_ui_server(tmp_path / "ui") as server, server.client() as api:
        api.get("/api/sandboxes").raise_for_status()  # the UI's backend is up
        listed = server.cli("sandboxes", "--json")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert json.loads(listed.stdout) == []
        ran = server.cli("run", str(HELLO), "--db", str(server.db))
        assert ran.returncode == 0, ran.stdout + ran.stderr
