"""Which components a canvas may use: discovered through the ``daytonaflow.components`` entry points."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator, Mapping

from daytonaflow.component import Component

ENTRY_POINT_GROUP = "daytonaflow.components"


class ComponentRegistry(Mapping[str, type[Component]]):
    """Component classes by registered name, plus the entries that failed to load and why.

    A broken plugin must not hide the others: its error is kept in :attr:`broken` and reported
    only by canvases that use it.
    """

    def __init__(
        self,
        components: Mapping[str, type[Component]] | None = None,
        broken: Mapping[str, str] | None = None,
    ) -> None:
        self._components = dict(components or {})
        self.broken: dict[str, str] = dict(broken or {})

    @classmethod
    def discover(cls, group: str = ENTRY_POINT_GROUP, *, builtins: bool = True) -> ComponentRegistry:
        """Every component of the entry-point ``group``, plus the built-in ones (``daytonaflow.builtins``)."""
        from daytonaflow.builtins import BUILTIN_COMPONENTS

        components: dict[str, type[Component]] = dict(BUILTIN_COMPONENTS) if builtins else {}
        broken: dict[str, str] = {}
        for entry_point in importlib.metadata.entry_points(group=group):
            try:
                loaded = entry_point.load()
            except Exception as error:  # any import-time failure of a plugin: report, do not crash
                broken[entry_point.name] = f"{type(error).__name__}: {error}"
                continue
            if not (isinstance(loaded, type) and issubclass(loaded, Component)):
                broken[entry_point.name] = f"{entry_point.value} is not a Component subclass"
                continue
            components[entry_point.name] = loaded
        return cls(components, broken)

    def __getitem__(self, name: str) -> type[Component]:
        return self._components[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._components)

    def __len__(self) -> int:
        return len(self._components)
