"""The CLI imports on demand: `--help` pays for no heavy library, each command only for its own parts.

Each check runs a fresh interpreter (outside the checkout, so its folders cannot shadow the installed
package) and looks at ``sys.modules`` after the command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from daytonaflow.runner import RunStore

#: Libraries the run path needs and `--help` must not load.
HEAVY = ("pydantic", "httpx", "starlette", "uvicorn", "rich", "yaml", "websockets", "anyio", "asyncio")

_AFTER_COMMAND = """
import json, sys
from daytonaflow.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""


def modules_after(cwd: Path, *argv: str, code: str = _AFTER_COMMAND) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    marker = result.stderr.rindex("MODULES ")
    return set(json.loads(result.stderr[marker + len("MODULES ") :]))


def loaded_heavy(modules: set[str]) -> set[str]:
    """Which of the heavy libraries were imported (by top-level package)."""
    return {name.split(".")[0] for name in modules} & set(HEAVY)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["run", "--help"],
        ["validate", "--help"],
        ["components", "--help"],
        ["runs", "--help"],
        ["sandboxes", "--help"],
    ],
    ids=" ".join,
)
def test_help_imports_no_heavy_library(tmp_path: Path, argv: list[str]) -> None:
    assert loaded_heavy(modules_after(tmp_path, *argv)) == set()


def test_runs_history_needs_neither_pydantic_nor_http_nor_the_server(tmp_path: Path) -> None:
    modules = modules_after(tmp_path, "runs", "--db", str(tmp_path / "runs.db"))
    assert loaded_heavy(modules) <= {"rich"}
    assert not any(name.startswith(("daytonaflow.components", "daytonaflow.localserver")) for name in modules)


def test_runs_show_json_renders_nothing_for_a_terminal(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with RunStore(db) as store:
        store.insert_run("r1", {"metadata": {"name": "c"}}, {}, keep_resources=False, owner="me")
    modules = modules_after(tmp_path, "runs", "show", "r1", "--json", "--db", str(db))
    assert "daytonaflow._run_json" in modules
    assert loaded_heavy(modules) == set()


def test_importing_the_packages_imports_none_of_their_modules(tmp_path: Path) -> None:
    code = (
        "import json, sys\nimport daytonaflow, daytonaflow.runner, daytonaflow.components\n"
        'sys.stderr.write("MODULES " + json.dumps(sorted(sys.modules)))'
    )
    modules = modules_after(tmp_path, code=code)
    assert loaded_heavy(modules) == set()
    ours = {name for name in modules if name.startswith("daytonaflow.")}
    assert ours == {"daytonaflow.runner", "daytonaflow.components"}


def test_a_registry_imports_only_the_components_looked_up(tmp_path: Path) -> None:
    code = (
        "import json, sys\nfrom daytonaflow.runner import ComponentRegistry\n"
        'ComponentRegistry.discover()["daytona.createSandbox"]\n'
        'sys.stderr.write("MODULES " + json.dumps(sorted(sys.modules)))'
    )
    modules = modules_after(tmp_path, code=code)
    assert "daytonaflow.components.create_sandbox" in modules
    assert "daytonaflow.components.create_repository_sandbox" not in modules
    assert "daytonaflow.components.execute_command" not in modules


def test_lazily_exported_names_are_the_modules_own_objects() -> None:
    import daytonaflow
    import daytonaflow.components
    import daytonaflow.runner
    from daytonaflow.component import Component
    from daytonaflow.components.create_sandbox import CreateSandbox
    from daytonaflow.runner.engine import Engine

    assert (daytonaflow.runner.Engine, daytonaflow.Component) == (Engine, Component)
    assert daytonaflow.components.COMPONENTS[0] is CreateSandbox
    assert {"Engine", "RunStore"} <= set(dir(daytonaflow.runner))


def test_an_unknown_name_of_a_lazy_package_is_an_attribute_error() -> None:
    import daytonaflow.runner

    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        _ = daytonaflow.runner.Nothing  # type: ignore[attr-defined]
