"""Open then save each example canvas: the file parses to the same canvas, bytes kept when unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from ui_support import EXAMPLES, node_ids, open_listed, open_path, save_as, testid

from daytonaflow.runner import load_canvas

pytestmark = pytest.mark.browser

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def _wait_for_canvas(page: Any, path: Path) -> None:
    """Every node of the file's canvas is on the graph."""
    for node in load_canvas(path).spec.nodes:
        testid(page, f"node-{node.id}").wait_for()


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[path.stem for path in EXAMPLE_FILES])
def test_an_opened_example_saved_to_a_new_file_parses_to_the_same_canvas(
    page: Any, example: Path, tmp_path: Path
) -> None:
    open_listed(page, example.stem)
    _wait_for_canvas(page, example)
    assert sorted(node_ids(page)) == sorted(node.id for node in load_canvas(example).spec.nodes)
    saved = tmp_path / example.name
    assert save_as(page, saved)["written"] is True
    assert load_canvas(saved).to_document() == load_canvas(example).to_document()


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[path.stem for path in EXAMPLE_FILES])
def test_an_unchanged_canvas_saved_over_its_file_keeps_its_bytes(
    page: Any, example: Path, tmp_path: Path
) -> None:
    copy = tmp_path / example.name
    shutil.copyfile(example, copy)
    before = copy.read_bytes()
    open_path(page, copy)
    _wait_for_canvas(page, copy)
    answer = save_as(page, copy)
    assert answer["written"] is False, answer
    assert copy.read_bytes() == before  # comments included
