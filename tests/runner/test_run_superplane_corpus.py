"""Every canvas SuperPlane publishes, in every version its repositories hold, loads here.

The canvases are read from local git copies of superplanehq/superplane and superplanehq/docs
(``SUPERPLANE_REPO`` and ``SUPERPLANE_DOCS_REPO``, bare or not; skipped when absent): the canvas
YAML files of the app (templates, factory canvases, CLI templates, fixtures) and the canvas
examples of the docs' YAML code blocks. They are not copied here: their words are SuperPlane's.
Validation may refuse them only for what this project does not have (components, triggers).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from daytonaflow.runner import CanvasIssue, ComponentRegistry, load_canvas, validate_canvas
from daytonaflow.runner.canvas import START_TRIGGER, Canvas, NodeType

SUPERPLANE_REPO = Path(os.environ.get("SUPERPLANE_REPO", "/work/.mirror/superplanehq+superplane/repo"))
SUPERPLANE_DOCS_REPO = Path(os.environ.get("SUPERPLANE_DOCS_REPO", "/work/.mirror/superplanehq+docs/repo"))

#: Paths of the app repository's canvas documents (its console, chart and CI YAML are not canvases).
_CANVAS_PATH = re.compile(
    r"(canvas[^/]*\.ya?ml|templates/canvases/.+\.ya?ml|canvas/templates/.+\.ya?ml|Canvas\.ya?ml)$"
)
_YAML_BLOCK = re.compile(r"```ya?ml[^\n]*\n(.*?)```", re.S)


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return result.stdout


def _blobs(repo: Path, wanted: re.Pattern[str]) -> list[tuple[str, str]]:
    """(blob id, path) of every version of every file whose path matches, over all history."""
    found: dict[str, str] = {}
    # A partial clone lacks some objects: list what it holds.
    for line in _git(repo, "rev-list", "--all", "--objects", "--missing=allow-any").splitlines():
        blob, _, path = line.partition(" ")
        if path and wanted.search(path):
            found.setdefault(blob, path)
    return sorted(found.items(), key=lambda item: (item[1], item[0]))


def _superplane_canvases() -> list[tuple[str, str]]:
    """(name, YAML text) of every canvas version in the two repositories."""
    canvases: list[tuple[str, str]] = []
    for blob, path in _blobs(SUPERPLANE_REPO, _CANVAS_PATH):
        text = _git(SUPERPLANE_REPO, "cat-file", "blob", blob)
        if "nodes:" in text:
            canvases.append((f"superplane/{path}@{blob[:8]}", text))
    for blob, path in _blobs(SUPERPLANE_DOCS_REPO, re.compile(r"\.mdx?$")):
        text = _git(SUPERPLANE_DOCS_REPO, "cat-file", "blob", blob)
        for index, block in enumerate(_YAML_BLOCK.findall(text)):
            # A canvas document, not a fragment of one (the concept pages show bare node lists).
            if re.search(r"^spec:", block, re.M) and re.search(r"^\s+nodes:", block, re.M):
                canvases.append((f"docs/{path}@{blob[:8]}#{index}", block))
    return canvases


needs_mirrors = pytest.mark.skipif(
    not (SUPERPLANE_REPO.exists() and SUPERPLANE_DOCS_REPO.exists()),
    reason="no local copy of superplanehq/superplane and superplanehq/docs",
)


@pytest.fixture(scope="module")
def canvases() -> list[tuple[str, str]]:
    return _superplane_canvases()


@pytest.fixture(scope="module")
def registry() -> ComponentRegistry:
    return ComponentRegistry.discover()


def _not_ours(issue: CanvasIssue, canvas: Canvas, registry: ComponentRegistry) -> bool:
    """Whether ``issue`` only says the canvas uses something this project does not have."""
    if issue.message.startswith(("unknown component ", "unknown trigger ")):
        return issue.node in {node.id for node in canvas.spec.nodes if node.component not in registry}
    if issue.field == "configuration.secret" and canvas.node(issue.node).component == "webhook":
        # SuperPlane generates each webhook's secret; here the canvas names one (a secret reference).
        return True
    if issue.field == "spec.nodes":
        # Canvases started by a schedule or a webhook have no manual start trigger.
        return any(
            node.type is NodeType.TRIGGER and node.component != START_TRIGGER for node in canvas.spec.nodes
        )
    return False


@needs_mirrors
def test_the_mirrors_hold_superplanes_canvases(canvases: list[tuple[str, str]]) -> None:
    names = " ".join(name for name, _ in canvases)
    # The CLI template, the shipped templates, the factory canvases (with loops) and the docs' example.
    for expected in ("health-check-monitor", "templates/canvases/", "software-factory/canvas.yaml", "docs/"):
        assert expected in names
    assert len(canvases) >= 40


@needs_mirrors
def test_every_superplane_canvas_loads(canvases: list[tuple[str, str]], tmp_path: Path) -> None:
    failures = []
    for index, (name, text) in enumerate(canvases):
        path = tmp_path / f"{index}.yaml"
        path.write_text(text)
        try:
            load_canvas(path)
        except Exception as error:  # every refusal is collected, not only the first
            failures.append(f"{name}: {error}")
    assert failures == []


@needs_mirrors
def test_superplane_canvases_are_refused_only_for_what_is_not_installed(
    canvases: list[tuple[str, str]], registry: ComponentRegistry, tmp_path: Path
) -> None:
    unexpected = []
    for index, (name, text) in enumerate(canvases):
        path = tmp_path / f"{index}.yaml"
        path.write_text(text)
        canvas = load_canvas(path)
        for issue in validate_canvas(canvas, registry):
            if not _not_ours(issue, canvas, registry):
                unexpected.append(f"{name}: {issue}")
    assert [line for line in unexpected if not _known_slip(line)] == []


#: Problems in SuperPlane's own files, by file and field, each refused by SuperPlane too or
#: standing for something this project does differently on purpose.
_KNOWN_SLIPS = (
    # An old version's trigger node names no component (SuperPlane: "component name is required").
    ("templates/canvases/blue-green.yaml", 'field "component": is required'),
    # An old version repeats node ids (SuperPlane: "duplicate node id").
    ("templates/canvases/incident-router.yaml", 'field "id": is used by more than one node'),
    # An old http shape (headers as a map) reading `$secret.X`, a name SuperPlane no longer defines.
    ("templates/canvases/incident-copilot.yaml", 'field "configuration.headers'),
    # The template leaves the URL empty for its user to fill in (SuperPlane reports it as required).
    ("health-check-monitor.yaml", 'field "configuration.url"'),
    # An edge on a start template's name: SuperPlane's docs call it the template's channel; here a
    # manual run emits on "default" only, so the edge is refused rather than left never firing.
    ("board-testing/foo-bar-board-canvas.yaml", "is not a channel of start (channels: default)"),
)


def _known_slip(line: str) -> bool:
    name = line.split("@", 1)[0]
    return any(name.endswith(path) and slip in line for path, slip in _KNOWN_SLIPS)
