"""The exception hierarchy every part of daytonaflow raises from."""

from __future__ import annotations

from dataclasses import dataclass


class DaytonaflowError(Exception):
    """Base class of every error daytonaflow raises on purpose."""


@dataclass(frozen=True)
class ConfigIssue:
    """One broken rule in a node's configuration (or, with ``warning``, a doubtful value).

    ``field`` is the dotted path of the offending value (``bootstrap.path``, ``env.0.name``),
    empty when the rule concerns the configuration as a whole; ``message`` says the rule,
    phrased to follow the path: ``is required when bootstrap.from is "file"``.
    """

    field: str
    message: str
    #: A warning is worth saying but does not stop the canvas: reported when the canvas is
    #: checked (``validate_config(..., allow_expressions=True)``), never raised at run time.
    warning: bool = False

    def __str__(self) -> str:
        text = f"{self.field} {self.message}" if self.field else self.message
        return f"warning: {text}" if self.warning else text


class ConfigError(DaytonaflowError):
    """A configuration broke one or more rules; every issue is listed, not only the first."""

    def __init__(self, issues: list[ConfigIssue], *, node: str | None = None) -> None:
        self.issues = list(issues)
        self.node = node
        where = f'node "{node}": ' if node else ""
        super().__init__(where + "; ".join(str(issue) for issue in self.issues))


class ComponentError(DaytonaflowError):
    """A component could not do its work; the node fails with this message."""


class SecretNotFoundError(DaytonaflowError):
    """A configuration referenced a secret (or a key of it) that the provider does not hold."""
