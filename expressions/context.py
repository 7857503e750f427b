"""What a template can see: the chain of events that led to the node being resolved."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from daytonaflow.expressions.errors import AmbiguousReferenceError, ReferenceNotFoundError


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One node that ran earlier in this run, and the event ``{type, data, timestamp}`` it emitted."""

    node_id: str
    node_name: str
    component: str
    event: dict[str, Any]


def utc_now() -> datetime:
    """The current moment, in UTC: what ``now()`` returns unless a context brings its own clock."""
    return datetime.now(UTC)


@dataclass(slots=True)
class ExpressionContext:
    """The chain (oldest first; the last entry is the immediate predecessor) and the run's root event.

    ``clock`` is what ``now()`` reads; tests pass a fixed one.
    """

    chain: Sequence[ChainEntry]
    root: dict[str, Any] | None = None
    clock: Callable[[], datetime] = utc_now
    _by_name: dict[str, ChainEntry] = field(init=False, repr=False)
    _by_id: dict[str, ChainEntry] = field(init=False, repr=False)
    _by_component: dict[str, list[ChainEntry]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {}
        self._by_id = {}
        self._by_component = {}
        # Later entries win: a node that ran twice (a loop) is seen with its latest event.
        for entry in self.chain:
            self._by_name[entry.node_name] = entry
            self._by_id[entry.node_id] = entry
            self._by_component.setdefault(entry.component, []).append(entry)

    def lookup(self, key: str) -> dict[str, Any]:
        """The event of the node ``key`` names: by node name, then node id, then component name."""
        entry = self._by_name.get(key) or self._by_id.get(key)
        if entry is not None:
            return entry.event
        matches = self._by_component.get(key)
        if matches:
            names = sorted({match.node_name for match in matches})
            if len(names) == 1:
                return matches[-1].event
            listed = ", ".join(f'$["{name}"]' for name in names)
            raise AmbiguousReferenceError(
                f'$["{key}"] is ambiguous: {len(names)} earlier nodes are {key} components; '
                f"name the one you mean: {listed}"
            )
        raise ReferenceNotFoundError(self._unknown_message(key))

    def has(self, key: str) -> bool:
        return key in self._by_name or key in self._by_id or key in self._by_component

    def _unknown_message(self, key: str) -> str:
        names = list(self._by_name)
        message = f'$["{key}"]: no earlier node in this run is named "{key}"'
        candidates = dict.fromkeys([*names, *self._by_id, *self._by_component])  # a name may also be an id
        close = difflib.get_close_matches(key, list(candidates), n=3)
        if close:
            return message + "; did you mean " + " or ".join(f'"{match}"' for match in close) + "?"
        if names:
            return message + "; earlier nodes: " + ", ".join(f'"{name}"' for name in names)
        return message + " (no node ran before this one)"

    def previous(self, steps: int) -> dict[str, Any]:
        if steps < 1:
            raise ReferenceNotFoundError(f"previous({steps}): the count starts at 1 (the node just before)")
        if steps > len(self.chain):
            raise ReferenceNotFoundError(
                f"previous({steps}): only {len(self.chain)} node{'s' if len(self.chain) != 1 else ''} "
                "ran before this one"
            )
        return self.chain[-steps].event

    def root_event(self) -> dict[str, Any]:
        if self.root is None:
            raise ReferenceNotFoundError("root(): this run has no root event")
        return self.root
