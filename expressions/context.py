"""What a template can see: the chain of events that led to the node being resolved."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, overload

from daytonaflow.expressions.errors import AmbiguousReferenceError, ReferenceNotFoundError


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One node that ran earlier in this run, and the event ``{type, data, timestamp}`` it emitted.

    ``config`` is the resolved configuration of the execution that emitted the event; templates
    see it as the ``config`` key of the node's event (``$["Node"].config.url``), as in SuperPlane.
    """

    node_id: str
    node_name: str
    component: str
    event: dict[str, Any]
    config: dict[str, Any] | None = None
    #: What a template reads for this node: the event, with ``config`` beside its other keys.
    seen: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seen = self.event
        # An event's own "config" key wins, as SuperPlane leaves such a payload as it is.
        if self.config is not None and "config" not in seen:
            seen = {**seen, "config": self.config}
        object.__setattr__(self, "seen", seen)


#: The entry field a chain lookup matches a key against.
_Field = Literal["node_name", "node_id", "component"]


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a chain holds for one key: its latest matching entry and up to two distinct node names."""

    latest: ChainEntry | None
    names: tuple[str, ...]


class EventChain(Sequence[ChainEntry]):
    """A chain of events (oldest first) as a persistent linked list: each link knows its parent.

    Extending a chain costs O(1) and shares the chain it extends, so a run keeps one link per
    event however many chains pass through it, instead of a copy of the chain per event. Indexing
    follows jump pointers (O(log n) steps); a lookup by name, id or component walks up only to the
    nearest link that answered the same question before, and the link it started from keeps the
    answer, so the nodes of a long chain asking the same question pay O(1) each.
    """

    __slots__ = ("_answers", "_jump", "depth", "entry", "parent", "root")

    def __init__(self, entry: ChainEntry, parent: EventChain | None = None) -> None:
        self.entry = entry
        self.parent = parent
        self.depth: int = 1 if parent is None else parent.depth + 1
        self.root: EventChain = self if parent is None else parent.root
        self._jump: EventChain = self if parent is None else _jump_from(parent)
        self._answers: dict[tuple[_Field, str], _Answer] | None = None

    @classmethod
    def of(cls, entries: Iterable[ChainEntry]) -> EventChain | None:
        """The chain of ``entries`` (oldest first), or None when there are none."""
        chain: EventChain | None = None
        for entry in entries:
            chain = cls(entry, chain)
        return chain

    def __len__(self) -> int:
        return self.depth

    @overload
    def __getitem__(self, index: int) -> ChainEntry: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ChainEntry]: ...

    def __getitem__(self, index: int | slice) -> ChainEntry | Sequence[ChainEntry]:
        if isinstance(index, slice):
            return tuple(self)[index]
        position = index + self.depth if index < 0 else index
        if not 0 <= position < self.depth:
            raise IndexError("chain index out of range")
        return self._at_depth(position + 1).entry

    def __iter__(self) -> Iterator[ChainEntry]:
        return iter([link.entry for link in self._links_newest_first()][::-1])

    def __reversed__(self) -> Iterator[ChainEntry]:
        return (link.entry for link in self._links_newest_first())

    def latest(self, field: Literal["node_name", "node_id"], key: str) -> ChainEntry | None:
        """The latest entry whose ``field`` is ``key`` (a node that ran twice: its last run)."""
        return self._answer(field, key).latest

    def of_component(self, component: str) -> tuple[ChainEntry | None, bool]:
        """The latest entry of ``component``, and whether entries of it carry more than one node name."""
        answer = self._answer("component", component)
        return answer.latest, len(answer.names) > 1

    def _answer(self, field: _Field, key: str) -> _Answer:
        question = (field, key)
        if self._answers is not None and question in self._answers:
            return self._answers[question]
        latest: ChainEntry | None = None
        names: tuple[str, ...] = ()
        link: EventChain | None = self
        while link is not None:
            known = link._answers.get(question) if link._answers is not None else None
            if known is not None:
                # That link answered for the whole chain above it: merge and stop walking.
                latest = latest if latest is not None else known.latest
                names = _distinct_names(names, known.names)
                break
            entry = link.entry
            if _field_of(entry, field) == key:
                latest = latest if latest is not None else entry
                names = _distinct_names(names, (entry.node_name,))
                # A name or id is settled by its latest entry; a component once it is ambiguous.
                if field != "component" or len(names) > 1:
                    break
            link = link.parent
        answer = _Answer(latest, names)
        if self._answers is None:
            self._answers = {}
        self._answers[question] = answer
        return answer

    def _at_depth(self, depth: int) -> EventChain:
        link = self
        while link.depth != depth:
            parent = link.parent
            assert parent is not None  # the depth asked for is above this link's: it has a parent
            link = link._jump if link._jump.depth >= depth else parent
        return link

    def _links_newest_first(self) -> Iterator[EventChain]:
        link: EventChain | None = self
        while link is not None:
            yield link
            link = link.parent


def _jump_from(parent: EventChain) -> EventChain:
    """The jump pointer of a new child of ``parent``: skew-binary, so any ancestor is O(log n) jumps."""
    jump = parent._jump
    if parent.depth - jump.depth == jump.depth - jump._jump.depth:
        return jump._jump
    return parent


def _field_of(entry: ChainEntry, field: _Field) -> str:
    if field == "node_name":
        return entry.node_name
    return entry.node_id if field == "node_id" else entry.component


def _distinct_names(names: tuple[str, ...], more: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` followed by the new names of ``more``, at most two (two already make it ambiguous)."""
    for name in more:
        if len(names) > 1:
            break
        if name not in names:
            names = (*names, name)
    return names


def utc_now() -> datetime:
    """The current moment, in UTC: what ``now()`` returns unless a context brings its own clock."""
    return datetime.now(UTC)


@dataclass(slots=True)
class ExpressionContext:
    """The chain (oldest first; the last entry is the immediate predecessor) and the run's root event.

    ``chain`` is any sequence of entries; an :class:`EventChain` is used as it is (the engine's,
    shared with the run's other chains), anything else is linked into one once. ``clock`` is what
    ``now()`` reads; tests pass a fixed one.

    ``upstream`` answers for a key the chain has no entry for (by name, then id, then component):
    the engine passes one returning the latest event in this run of a node upstream of the one
    being resolved but off its linear chain (after a merge, the other branches' nodes).
    """

    chain: Sequence[ChainEntry]
    root: dict[str, Any] | None = None
    clock: Callable[[], datetime] = utc_now
    upstream: Callable[[str], ChainEntry | None] | None = None
    _links: EventChain | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._links = self.chain if isinstance(self.chain, EventChain) else EventChain.of(self.chain)

    def lookup(self, key: str) -> dict[str, Any]:
        """The event of the node ``key`` names: by node name, then node id, then component name.

        Later entries win: a node that ran twice (a loop) is seen with its latest event.
        """
        links = self._links
        if links is None:
            return self._from_upstream(key)
        entry = links.latest("node_name", key)
        if entry is None:
            entry = links.latest("node_id", key)
        if entry is not None:
            return entry.seen
        latest, ambiguous = links.of_component(key)
        if latest is not None and not ambiguous:
            return latest.seen
        if latest is not None:
            names = sorted({entry.node_name for entry in links if entry.component == key})
            listed = ", ".join(f'$["{name}"]' for name in names)
            raise AmbiguousReferenceError(
                f'$["{key}"] is ambiguous: {len(names)} earlier nodes are {key} components; '
                f"name the one you mean: {listed}"
            )
        return self._from_upstream(key)

    def _from_upstream(self, key: str) -> dict[str, Any]:
        entry = self.upstream(key) if self.upstream is not None else None
        if entry is None:
            raise ReferenceNotFoundError(self._unknown_message(key))
        return entry.seen

    def has(self, key: str) -> bool:
        links = self._links
        if links is not None and (
            links.latest("node_name", key) is not None
            or links.latest("node_id", key) is not None
            or links.of_component(key)[0] is not None
        ):
            return True
        return self.upstream is not None and self.upstream(key) is not None

    def _unknown_message(self, key: str) -> str:
        # Only on the way to an error: walking the whole chain here costs nothing a run repeats.
        entries = list(self._links or ())
        names = list(dict.fromkeys(entry.node_name for entry in entries))
        ids = dict.fromkeys(entry.node_id for entry in entries)
        components = dict.fromkeys(entry.component for entry in entries)
        message = f'$["{key}"]: no earlier node in this run is named "{key}"'
        candidates = dict.fromkeys([*names, *ids, *components])  # a name may also be an id
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
        return self.chain[-steps].seen

    def root_event(self) -> dict[str, Any]:
        if self.root is None:
            raise ReferenceNotFoundError("root(): this run has no root event")
        return self.root
