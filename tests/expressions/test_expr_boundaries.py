"""The expression library is pure: it imports nothing from the runner, components or local server,
and never Python's eval/exec/compile."""

import ast
from pathlib import Path

import pytest

import daytonaflow.expressions

PACKAGE = Path(daytonaflow.expressions.__file__).parent
SOURCES = sorted(PACKAGE.glob("*.py"))
FORBIDDEN = ("daytonaflow.runner", "daytonaflow.components", "daytonaflow.localserver")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
def test_module_imports_nothing_from_runner_components_or_localserver(path: Path) -> None:
    offending = {name for name in imported_modules(path) if name.startswith(FORBIDDEN)}
    assert offending == set()


@pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
def test_module_never_calls_eval_exec_or_compile(path: Path) -> None:
    tree = ast.parse(path.read_text())
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert calls.isdisjoint({"eval", "exec", "compile", "getattr", "__import__"})
