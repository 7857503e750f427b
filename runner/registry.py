"""Which components a canvas may use: discovered through the ``daytonaflow.components`` entry points."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Iterator, Mapping

from daytonaflow.component import Component

ENTRY_POINT_GROUP = "daytonaflow.components"


class ComponentRegistry(Mapping[str, type[Component]]):
    """Component classes by registered name, plus the entries that failed to load and why.

    A broken plugin must not hide the others: its error is kept in :attr:`broken` and reported
    only by canvases that use it. Discovered components are imported when first looked up, so a
    canvas pays for the components it uses, not for every one installed.
    """

    def __init__(
        self,
        components: Mapping[str, type[Component]] | None = None,
        broken: Mapping[str, str] | None = None,
        *,
        entry_points: Iterable[importlib.metadata.EntryPoint] = (),
    ) -> None:
        self._components = dict(components or {})
        self._broken: dict[str, str] = dict(broken or {})
        #: Entries not imported yet; an entry point overrides a component of the same name.
        self._unloaded = {entry_point.name: entry_point for entry_point in entry_points}

    @classmethod
    def discover(cls, group: str = ENTRY_POINT_GROUP) -> ComponentRegistry:
        """Every component of the entry-point ``group``: the Daytona ones, the core ones
        (``daytonaflow.builtins``) and any plugin's."""
        return cls(entry_points=importlib.metadata.entry_points(group=group))

    @property
    def broken(self) -> dict[str, str]:
        """Entries that failed to load, with why (every entry is tried to answer)."""
        self._load_all()
        return self._broken

    def __getitem__(self, name: str) -> type[Component]:
        entry_point = self._unloaded.pop(name, None)
        if entry_point is not None:
            self._load(entry_point)
        return self._components[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str) and name in self._unloaded:
            self._load(self._unloaded.pop(name))
        return name in self._components

    def __iter__(self) -> Iterator[str]:
        self._load_all()
        return iter(self._components)

    def __len__(self) -> int:
        self._load_all()
        return len(self._components)

    def _load_all(self) -> None:
        while self._unloaded:
            self._load(self._unloaded.pop(next(iter(self._unloaded))))

    def _load(self, entry_point: importlib.metadata.EntryPoint) -> None:
        try:
            loaded = entry_point.load()
        except Exception as error:  # any import-time failure of a plugin: report, do not crash
            self._broken[entry_point.name] = f"{type(error).__name__}: {error}"
            return
        if not (isinstance(loaded, type) and issubclass(loaded, Component)):
            self._broken[entry_point.name] = f"{entry_point.value} is not a Component subclass"
            return
        self._components[entry_point.name] = loaded
