"""The run view of hello: each node's event payload in the inspector; the README's screenshots.

With ``DAYTONAFLOW_UI_DOCS=DIR`` the editor and run view shots are also written to
``DIR/ui-editor.png`` and ``DIR/ui-run.png`` (how docs/ui-*.png are made:
``DAYTONAFLOW_UI_DOCS=docs pytest tests/ui/test_ui_e2e_run_view.py``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from ui_support import (
    HELLO,
    UiServer,
    by_testid,
    fit,
    open_listed,
    select_node,
    start_run,
    wait_for_run_status,
)

from daytonaflow.runner import load_canvas

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]
DOCS_ENV = "DAYTONAFLOW_UI_DOCS"


_PREVIEWS_SETTLED_JS = """() => {
    const previews = [...document.querySelectorAll('[data-testid^="expr-preview-"]')];
    return previews.length > 0 && previews.every((element) => !/evaluating/i.test(element.textContent));
}"""


def _publish(shots: dict[str, Path]) -> None:
    target = os.environ.get(DOCS_ENV)
    if not target:
        return
    for name, path in shots.items():
        shutil.copyfile(path, Path(target) / f"ui-{name}.png")


def test_each_node_of_a_finished_hello_run_shows_its_event_payload(
    page: Any, ui_server: UiServer, shot: Any
) -> None:
    open_listed(page, "hello")
    by_testid(page, "node-say-hello").wait_for()
    run_id = start_run(page)
    assert wait_for_run_status(page, ["succeeded", "failed", "cancelled"]) == "succeeded"
    with ui_server.client() as api:
        executions = api.get(f"/api/runs/{run_id}").json()["executions"]
        stored = {
            execution["node"]: api.get(f"/api/runs/{run_id}/events/{execution['outputEventId']}").json()
            for execution in executions
        }
    for node in load_canvas(HELLO).spec.nodes:
        select_node(page, node.id)
        shown = json.loads(by_testid(page, "event-payload").inner_text())
        assert shown == stored[node.id]["event"], node.id
    select_node(page, "say-hello")
    assert "Hello, World!" in by_testid(page, "event-payload").inner_text()
    run = shot(page, "run")  # the run view fits the graph itself (the editor's Fit is the editor's)

    # The editor's shot once the run is there: its expression previews show the run's values.
    by_testid(page, "tab-editor").click()
    by_testid(page, "node-say-hello").wait_for()
    fit(page)
    select_node(page, "say-hello")
    page.wait_for_function(_PREVIEWS_SETTLED_JS)
    _publish({"editor": shot(page, "editor"), "run": run})
