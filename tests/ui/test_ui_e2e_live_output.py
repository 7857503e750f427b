"""Live output: a command's first lines show in the run view while the command still runs."""

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
    select_node,
    start_run,
    wait_for_run_status,
)

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]

TICKER = "for i in 1 2 3 4; do echo line $i; sleep 1; done"

#: True at the one instant both hold: "line 1" is on screen and the node's state is still running.
_SEEN_WHILE_RUNNING_JS = """(node) => {
    const text = (id) => document.querySelector(`[data-testid="${id}"]`)?.textContent ?? '';
    const state = document.querySelector(`[data-testid="node-${node}"]`)?.getAttribute('data-state');
    const shown = text(`node-output-${node}`) + '\\n' + text('live-output');
    return state === 'running' && shown.includes('line 1');
}"""


@pytest.fixture
def ui_canvases(tmp_path: Path) -> Sequence[Path]:
    return [sandbox_command_canvas(tmp_path / "ticker.yaml", "ticker", TICKER)]


def test_a_running_commands_first_lines_show_before_it_finishes(
    page: Any, ui_server: UiServer, shot: Any
) -> None:
    open_listed(page, "ticker")
    by_testid(page, "node-command").wait_for()
    start_run(page)
    page.wait_for_function(_SEEN_WHILE_RUNNING_JS, arg="command", timeout=90_000)
    shot(page, "live-output-line-1")
    assert wait_for_run_status(page, ["succeeded", "failed", "cancelled"]) == "succeeded"
    select_node(page, "command")
    assert "line 4" in by_testid(page, "event-payload").inner_text()
