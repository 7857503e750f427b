"""An invalid configuration: the validator's own message on the field and the node, and no run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ui_support import HELLO, UiServer, by_testid, open_copy, save, select_node

pytestmark = pytest.mark.browser


def _validator_issue(server: UiServer, path: Path, node: str, field: str) -> dict[str, Any]:
    """The issue ``daytonaflow validate --json`` reports for ``node``'s ``field`` in the file."""
    checked = server.cli("validate", "--json", str(path))
    assert checked.returncode == 1, checked.stdout + checked.stderr
    issues = json.loads(checked.stdout)["issues"]
    matching = [issue for issue in issues if issue["node"] == node and issue["field"] == field]
    assert len(matching) == 1, issues
    issue: dict[str, Any] = matching[0]
    return issue


def test_an_emptied_required_field_shows_the_validators_message_on_field_and_node_and_run_is_refused(
    page: Any, ui_server: UiServer, tmp_path: Path, shot: Any
) -> None:
    copy = open_copy(page, HELLO, tmp_path)
    select_node(page, "say-hello")
    by_testid(page, "field-code").fill("")

    error = by_testid(page, "field-error-code")
    error.wait_for()
    badge = by_testid(page, "node-badge-say-hello")
    badge.wait_for()
    assert badge.inner_text().strip() == "1"
    assert by_testid(page, "node-say-hello").get_attribute("data-invalid") == "true"
    # The same words the CLI prints for the same file: one server-side validator.
    save(page)  # a draft: an invalid canvas may be saved
    issue = _validator_issue(ui_server, copy, "say-hello", "configuration.code")
    assert error.inner_text().strip() == issue["message"]
    shot(page, "invalid-field")

    by_testid(page, "btn-run").click()
    refused = by_testid(page, "run-error")
    start = by_testid(page, "run-start")
    refused.or_(start).first.wait_for()
    if not refused.is_visible():
        start.click()  # the input dialog opened: the refusal comes when the run is asked for
    refused.wait_for()
    assert issue["message"] in refused.inner_text()
    assert by_testid(page, "run-view").count() == 0
    with ui_server.client() as api:
        assert api.get("/api/runs").json()["runs"] == []
    shot(page, "invalid-run-refused")
    # Each refused line leads to its node.
    by_testid(page, "canvas").click(position={"x": 5, "y": 5})
    refused.get_by_role("button", name=issue["message"], exact=False).click()
    assert by_testid(page, "node-name").input_value() == "Say Hello"
