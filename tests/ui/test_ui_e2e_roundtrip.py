"""Open then save each example canvas: the file parses to the same canvas, bytes kept when unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ui_support import EXAMPLES, by_testid, new_from_example, node_ids, open_copy, open_listed, save, save_as

from daytonaflow.runner import load_canvas

pytestmark = pytest.mark.browser

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
BY_NAME = pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[path.stem for path in EXAMPLE_FILES])


def _wait_for_canvas(page: Any, path: Path) -> None:
    """Every node of the file's canvas is on the graph, and no other."""
    wanted = sorted(node.id for node in load_canvas(path).spec.nodes)
    for node in wanted:
        by_testid(page, f"node-{node}").wait_for()
    assert sorted(node_ids(page)) == wanted


@BY_NAME
def test_an_example_opened_from_the_list_is_a_copy_saved_where_the_user_says(
    page: Any, example: Path, tmp_path: Path
) -> None:
    original = example.read_bytes()
    open_listed(page, example.stem)
    _wait_for_canvas(page, example)
    saved = tmp_path / example.name
    assert save_as(page, saved)["written"] is True
    assert example.read_bytes() == original
    assert load_canvas(saved).to_document() == load_canvas(example).to_document()


@BY_NAME
def test_an_opened_copy_saved_unchanged_keeps_its_bytes(page: Any, example: Path, tmp_path: Path) -> None:
    copy = open_copy(page, example, tmp_path)
    _wait_for_canvas(page, copy)
    assert save(page)["written"] is False
    assert copy.read_bytes() == example.read_bytes()


@BY_NAME
def test_an_example_saved_to_a_new_file_parses_to_the_same_canvas(
    page: Any, example: Path, tmp_path: Path
) -> None:
    new_from_example(page, example.stem)
    _wait_for_canvas(page, example)
    saved = tmp_path / f"new-{example.name}"
    assert save_as(page, saved)["written"] is True
    assert load_canvas(saved).to_document() == load_canvas(example).to_document()
