"""daytonaflow: workflow-engine components for Daytona sandboxes."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from daytonaflow.component import (
        DEFAULT_CHANNEL,
        FAILED_CHANNEL,
        SUCCESS_CHANNEL,
        Channel,
        Component,
        ExecutionContext,
        MetadataStore,
        NodeInput,
        ResourceTracker,
        SecretsProvider,
    )
    from daytonaflow.errors import (
        ComponentError,
        ConfigError,
        ConfigIssue,
        DaytonaflowError,
        SecretNotFoundError,
    )
    from daytonaflow.events import Event, Payload

#: Where each public name lives. Names are imported on first use, so importing this package (as
#: the CLI does for ``--help``) does not import pydantic, httpx or rich behind them.
_EXPORTS = {
    "DEFAULT_CHANNEL": "daytonaflow.component",
    "FAILED_CHANNEL": "daytonaflow.component",
    "SUCCESS_CHANNEL": "daytonaflow.component",
    "Channel": "daytonaflow.component",
    "Component": "daytonaflow.component",
    "ExecutionContext": "daytonaflow.component",
    "MetadataStore": "daytonaflow.component",
    "NodeInput": "daytonaflow.component",
    "ResourceTracker": "daytonaflow.component",
    "SecretsProvider": "daytonaflow.component",
    "ComponentError": "daytonaflow.errors",
    "ConfigError": "daytonaflow.errors",
    "ConfigIssue": "daytonaflow.errors",
    "DaytonaflowError": "daytonaflow.errors",
    "SecretNotFoundError": "daytonaflow.errors",
    "Event": "daytonaflow.events",
    "Payload": "daytonaflow.events",
}


def _lazy_exports(
    namespace: dict[str, Any],
    exports: Mapping[str, str],
    computed: Mapping[str, Callable[[], Any]] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that import each exported name on first use.

    ``exports`` maps a name to the module defining it; ``computed`` builds a name from others.
    A name once looked up is kept in ``namespace``, so later lookups skip the function.
    """
    built = computed or {}

    def __getattr__(name: str) -> Any:
        if name in built:
            value = built[name]()
        elif name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
        else:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports, *built})

    return __getattr__, __dir__


# Hidden from type checkers: they see the names imported above, and a misspelt one stays an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy_exports(globals(), _EXPORTS)

__all__ = [
    "DEFAULT_CHANNEL",
    "FAILED_CHANNEL",
    "SUCCESS_CHANNEL",
    "Channel",
    "Component",
    "ComponentError",
    "ConfigError",
    "ConfigIssue",
    "DaytonaflowError",
    "Event",
    "ExecutionContext",
    "MetadataStore",
    "NodeInput",
    "Payload",
    "ResourceTracker",
    "SecretNotFoundError",
    "SecretsProvider",
    "__version__",
]
