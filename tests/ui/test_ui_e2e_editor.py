"""Editor behaviours: palette drag, undo/redo, visibility conditions, expression autocomplete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ui_support import (
    NODE_IDS_JS,
    add_from_palette,
    by_testid,
    connect,
    fit,
    node_ids,
    save_as,
    select_node,
    set_field,
)

from daytonaflow.runner import load_canvas

pytestmark = pytest.mark.browser


def _wait_for_node_count(page: Any, count: int) -> None:
    page.wait_for_function(f"() => ({NODE_IDS_JS})().length === {count}")


def test_a_palette_item_dragged_onto_the_canvas_adds_that_component(page: Any, tmp_path: Path) -> None:
    by_testid(page, "canvas").wait_for()
    before = set(node_ids(page))
    by_testid(page, "palette-item-daytona.executeCommand").drag_to(by_testid(page, "canvas"))
    _wait_for_node_count(page, len(before) + 1)
    (added,) = set(node_ids(page)) - before
    saved = tmp_path / "dragged.yaml"
    assert save_as(page, saved)["written"] is True
    assert load_canvas(saved).node(added).component == "daytona.executeCommand"


def test_undo_removes_an_added_node_and_redo_brings_it_back(page: Any) -> None:
    by_testid(page, "canvas").wait_for()
    before = set(node_ids(page))
    added = add_from_palette(page, "daytona.createSandbox")
    by_testid(page, "btn-undo").click()
    _wait_for_node_count(page, len(before))
    assert set(node_ids(page)) == before
    by_testid(page, "btn-redo").click()
    by_testid(page, f"node-{added}").wait_for()
    assert set(node_ids(page)) == before | {added}


def test_a_select_shows_only_the_fields_its_value_makes_visible(page: Any) -> None:
    # createRepositorySandbox: bootstrap.from "inline" shows the script, "file" the path.
    by_testid(page, "canvas").wait_for()
    node = add_from_palette(page, "daytona.createRepositorySandbox")
    select_node(page, node)
    set_field(page, "bootstrap", True)  # a togglable object: switched on first
    set_field(page, "bootstrap.from", "inline")
    by_testid(page, "field-bootstrap.script").wait_for()
    assert by_testid(page, "field-bootstrap.path").count() == 0
    set_field(page, "bootstrap.from", "file")
    by_testid(page, "field-bootstrap.path").wait_for()
    assert by_testid(page, "field-bootstrap.script").count() == 0


def test_typing_an_upstream_reference_suggests_the_upstream_nodes_name(page: Any) -> None:
    by_testid(page, "canvas").wait_for()
    create = add_from_palette(page, "daytona.createSandbox")
    command = add_from_palette(page, "daytona.executeCommand")
    fit(page)
    connect(page, create, "default", command)
    select_node(page, command)
    field = by_testid(page, "field-sandbox")
    field.click()
    field.press_sequentially('{{ $["')
    suggestions = by_testid(page, "expr-suggestions")
    suggestions.wait_for()
    assert "Create Sandbox" in suggestions.inner_text()
