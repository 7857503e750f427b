"""docs/local-server.md's compatibility table names every public method of the pinned Python SDK.

A row is ``| `Class.method` | yes/partly/no | why |`` (or ``Class.*`` for a whole class); a new SDK
release's methods fail this test until the table says what the server does with them, and a row
naming a method the SDK no longer has fails it too.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from daytona import (
    AsyncDaytona,
    AsyncSandbox,
    Daytona,
    Sandbox,
)
from daytona._async.filesystem import AsyncFileSystem
from daytona._async.git import AsyncGit
from daytona._async.process import AsyncProcess
from daytona._sync import code_interpreter, computer_use, lsp_server, secret, snapshot, volume, warm_pool
from daytona._sync.filesystem import FileSystem
from daytona._sync.git import Git
from daytona._sync.process import Process

DOC = Path(__file__).resolve().parents[2] / "docs" / "local-server.md"
_ROW = re.compile(
    r"^\|\s*`(?P<name>[A-Za-z]+\.(?:\*|[a-z_]+))`\s*\|\s*(?P<support>yes|partly|no)\s*\|(?P<why>.*)\|\s*$"
)

#: The classes a user reaches from `Daytona`: the table's rows are named after these.
_DOCUMENTED = {
    "Daytona": Daytona,
    "Sandbox": Sandbox,
    "FileSystem": FileSystem,
    "Process": Process,
    "Git": Git,
    "CodeInterpreter": code_interpreter.CodeInterpreter,
    "ComputerUse": computer_use.ComputerUse,
    "LspServer": lsp_server.LspServer,
    "SnapshotService": snapshot.SnapshotService,
    "VolumeService": volume.VolumeService,
    "SecretService": secret.SecretService,
    "WarmPoolService": warm_pool.WarmPoolService,
}
#: The async client mirrors the sync one method for method: its rows are the sync ones.
_ASYNC_TWINS = {
    AsyncDaytona: Daytona,
    AsyncSandbox: Sandbox,
    AsyncFileSystem: FileSystem,
    AsyncProcess: Process,
    AsyncGit: Git,
}


def _public_methods(cls: type) -> set[str]:
    """What the SDK adds: not what the generated API model (or pydantic) it builds on brings."""
    inherited = {
        name
        for base in cls.__mro__[1:]
        if base.__module__.startswith(("pydantic", "daytona_api_client"))
        for name in dir(base)
    }
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_")
        and name not in inherited
        and callable(member)
        and not inspect.isclass(member)
    }


def _rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        found = _ROW.match(line)
        if found:
            rows[found["name"]] = (found["support"], found["why"].strip())
    return rows


def test_every_public_sdk_method_has_a_row() -> None:
    rows = _rows()
    missing = [
        f"{label}.{method}"
        for label, cls in _DOCUMENTED.items()
        for method in sorted(_public_methods(cls))
        if f"{label}.{method}" not in rows and f"{label}.*" not in rows
    ]
    assert not missing, f"docs/local-server.md's compatibility table lacks: {', '.join(missing)}"


def test_every_row_names_a_method_the_sdk_has() -> None:
    stale = []
    for name in _rows():
        label, _, method = name.partition(".")
        cls = _DOCUMENTED.get(label) or next((a for a in _ASYNC_TWINS if a.__name__ == label), None)
        if cls is None or (method != "*" and method not in _public_methods(cls)):
            stale.append(name)
    assert not stale, f"rows naming no method of the pinned SDK: {', '.join(stale)}"


def test_every_row_that_is_not_a_plain_yes_says_why() -> None:
    unexplained = [name for name, (support, why) in _rows().items() if support != "yes" and not why]
    assert not unexplained, f"rows without a reason: {', '.join(unexplained)}"


def test_the_async_clients_methods_beyond_the_sync_ones_have_rows() -> None:
    rows = _rows()
    for async_cls, sync_cls in _ASYNC_TWINS.items():
        extra = _public_methods(async_cls) - _public_methods(sync_cls)
        missing = sorted(
            f"{async_cls.__name__}.{name}" for name in extra if f"{async_cls.__name__}.{name}" not in rows
        )
        assert not missing, f"async-only methods without a row: {missing}"
