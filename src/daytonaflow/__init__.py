"""daytonaflow: workflow-engine components for Daytona sandboxes."""

from __future__ import annotations

import importlib
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


# Hidden from type checkers: they see the names imported above, and a misspelt one stays an error.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_EXPORTS})


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
    "Payload",
    "ResourceTracker",
    "SecretNotFoundError",
    "SecretsProvider",
    "__version__",
]
