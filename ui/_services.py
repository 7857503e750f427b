"""What the UI is handed by its host (the CLI): the store, the engine, and the sandbox backend."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from daytonaflow.runner import Canvas, Engine, RunStore


class SandboxDirectory(Protocol):
    """The sandboxes the backend holds (local or cloud), as JSON-able rows."""

    async def list(self) -> list[dict[str, Any]]:
        """Each sandbox as ``{id, name, state, labels}``."""
        ...

    async def delete(self, sandbox_id: str) -> None: ...


@dataclass
class UIServices:
    store: RunStore
    engine: Engine
    #: Makes the engine ready to run ``canvas`` (starts the sandbox backend when it needs one).
    prepare_run: Callable[[Canvas], Awaitable[None]]
    sandboxes: SandboxDirectory
    #: ``local`` (the embedded server) or ``daytona`` (the cloud).
    backend: str
    #: The canvas files named on the command line, then the bundled examples.
    canvases: Sequence[Path] = ()
    examples: Sequence[Path] = ()
    version: str = ""
