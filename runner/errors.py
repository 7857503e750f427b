"""Errors the runner raises: a bad canvas, a bad database, an unknown run."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field

from daytonaflow.errors import DaytonaflowError


class RunnerError(DaytonaflowError):
    """Base class of every error the runner raises on purpose."""


@dataclass(frozen=True)
class CanvasIssue:
    """One problem found in a canvas; ``node`` and ``field`` say where (empty when global)."""

    node: str
    field: str
    message: str
    #: The node's display name, shown beside its id when the two differ.
    node_name: str = dataclass_field(default="", compare=False)
    #: Worth saying, but the canvas can run (see :attr:`daytonaflow.errors.ConfigIssue.warning`).
    warning: bool = False

    def __str__(self) -> str:
        where = []
        if self.node_name and self.node_name != self.node:
            where.append(f'node "{self.node_name}" (id {self.node})')
        elif self.node:
            where.append(f'node "{self.node}"')
        if self.field:
            where.append(f'field "{self.field}"')
        text = (" ".join(where) + ": " if where else "") + self.message
        return f"warning: {text}" if self.warning else text


class CanvasError(RunnerError):
    """The canvas cannot run; every problem is listed, not only the first."""

    def __init__(self, issues: list[CanvasIssue], *, source: str | None = None) -> None:
        self.issues = list(issues)
        self.source = source
        head = f"{source}: " if source else ""
        count = len(self.issues)
        lines = "\n".join("  - " + str(issue).replace("\n", "\n    ") for issue in self.issues)
        super().__init__(f"{head}{count} problem{'s' if count != 1 else ''} in canvas\n{lines}")


class RunStoreError(RunnerError):
    """The run database cannot be used (corrupt, foreign, or from a newer daytonaflow)."""


class RunNotFoundError(RunnerError):
    """No run with that id is stored."""


class RunInputError(RunnerError):
    """The run input is not a JSON object."""
