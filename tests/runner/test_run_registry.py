"""Which components a canvas may use: the entry points (the Daytona, core and plugin components)."""

from __future__ import annotations

import ast
from pathlib import Path

import daytonaflow.builtins
import daytonaflow.runner
from daytonaflow.builtins import BUILTIN_COMPONENTS, HttpRequest
from daytonaflow.runner import ComponentRegistry


def test_discovery_finds_the_builtin_components_through_their_entry_points() -> None:
    registry = ComponentRegistry.discover()
    assert registry["http"] is HttpRequest
    assert "daytona.createSandbox" in registry
    assert set(BUILTIN_COMPONENTS) == {"http", "if", "filter", "merge", "wait", "noop", "schedule", "webhook"}
    assert "http" not in ComponentRegistry.discover("daytonaflow.no-such-group")


def defined_components(package: Path) -> dict[str, list[str]]:
    """Classes deriving from ``Component`` (by that base name), by module, across ``package``."""
    found: dict[str, list[str]] = {}
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id == "Component" for base in node.bases
            ):
                found.setdefault(path.name, []).append(node.name)
    return found


def test_the_runner_defines_no_component_the_builtins_do() -> None:
    assert defined_components(Path(daytonaflow.runner.__file__).parent) == {}
    assert defined_components(Path(daytonaflow.builtins.__file__).parent) == {
        "_base.py": ["BuiltinComponent"]
    }


def test_the_builtins_import_nothing_from_the_runner_or_the_daytona_side() -> None:
    forbidden = ("daytonaflow.runner", "daytonaflow.components", "daytonaflow.localserver", "daytonaflow.cli")
    #: The generic field machinery (form, schema, validation) knows nothing of Daytona.
    allowed = ("daytonaflow.components._fields",)
    for path in Path(daytonaflow.builtins.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "daytonaflow.components" and [a.name for a in node.names] == ["_fields"]:
                    continue
                if node.module in allowed:
                    continue
                assert not node.module.startswith(forbidden), f"{path.name} imports {node.module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(forbidden), f"{path.name} imports {alias.name}"
