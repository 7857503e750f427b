"""daytonaflow.components: the six Daytona components and the Daytona API client they share.

Hosts discover the components through the ``daytonaflow.components`` entry-point group; the
runner hands them a :class:`DaytonaIntegration` as ``ctx.integration``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daytonaflow.components.client import DEFAULT_API_URL, IDEMPOTENCY_LABEL, DaytonaClient
    from daytonaflow.components.create_repository_sandbox import CreateRepositorySandbox
    from daytonaflow.components.create_sandbox import CreateSandbox
    from daytonaflow.components.delete_sandbox import DeleteSandbox
    from daytonaflow.components.errors import (
        DaytonaApiError,
        DaytonaAuthError,
        DaytonaBadRequestError,
        DaytonaConflictError,
        DaytonaConnectionError,
        DaytonaError,
        DaytonaNotConfiguredError,
        DaytonaNotFoundError,
        DaytonaProtocolError,
        DaytonaRateLimitError,
        DaytonaServerError,
        DaytonaTimeoutError,
    )
    from daytonaflow.components.execute_code import ExecuteCode
    from daytonaflow.components.execute_command import ExecuteCommand
    from daytonaflow.components.get_preview_url import GetPreviewUrl
    from daytonaflow.components.integration import DaytonaIntegration
    from daytonaflow.components.payloads import (
        PAYLOAD_TYPES,
        CodeExecutionPayload,
        CommandExecutionPayload,
        DeletePayload,
        PreviewUrlPayload,
        RepositorySandboxPayload,
        SandboxPayload,
    )
    from daytonaflow.components.retry import RetryPolicy
    from daytonaflow.components.sandbox_lifecycle import SANDBOX_RESOURCE

#: Where each public name lives. Names are imported on first use: an entry point loads its one
#: component's module, and the CLI importing the integration does not import all six components.
_EXPORTS = {
    "DEFAULT_API_URL": "daytonaflow.components.client",
    "IDEMPOTENCY_LABEL": "daytonaflow.components.client",
    "DaytonaClient": "daytonaflow.components.client",
    "CreateRepositorySandbox": "daytonaflow.components.create_repository_sandbox",
    "CreateSandbox": "daytonaflow.components.create_sandbox",
    "DeleteSandbox": "daytonaflow.components.delete_sandbox",
    "DaytonaApiError": "daytonaflow.components.errors",
    "DaytonaAuthError": "daytonaflow.components.errors",
    "DaytonaBadRequestError": "daytonaflow.components.errors",
    "DaytonaConflictError": "daytonaflow.components.errors",
    "DaytonaConnectionError": "daytonaflow.components.errors",
    "DaytonaError": "daytonaflow.components.errors",
    "DaytonaNotConfiguredError": "daytonaflow.components.errors",
    "DaytonaNotFoundError": "daytonaflow.components.errors",
    "DaytonaProtocolError": "daytonaflow.components.errors",
    "DaytonaRateLimitError": "daytonaflow.components.errors",
    "DaytonaServerError": "daytonaflow.components.errors",
    "DaytonaTimeoutError": "daytonaflow.components.errors",
    "ExecuteCode": "daytonaflow.components.execute_code",
    "ExecuteCommand": "daytonaflow.components.execute_command",
    "GetPreviewUrl": "daytonaflow.components.get_preview_url",
    "DaytonaIntegration": "daytonaflow.components.integration",
    "PAYLOAD_TYPES": "daytonaflow.components.payloads",
    "CodeExecutionPayload": "daytonaflow.components.payloads",
    "CommandExecutionPayload": "daytonaflow.components.payloads",
    "DeletePayload": "daytonaflow.components.payloads",
    "PreviewUrlPayload": "daytonaflow.components.payloads",
    "RepositorySandboxPayload": "daytonaflow.components.payloads",
    "SandboxPayload": "daytonaflow.components.payloads",
    "RetryPolicy": "daytonaflow.components.retry",
    "SANDBOX_RESOURCE": "daytonaflow.components.sandbox_lifecycle",
}


#: The six components, in the order the docs and the manifest list them (``COMPONENTS``).
_COMPONENT_NAMES = (
    "CreateSandbox",
    "CreateRepositorySandbox",
    "ExecuteCode",
    "ExecuteCommand",
    "GetPreviewUrl",
    "DeleteSandbox",
)

if TYPE_CHECKING:
    from daytonaflow.component import Component

    COMPONENTS: tuple[type[Component], ...]


# Hidden from type checkers: they see the names imported above, and a misspelt one stays an error.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name == "COMPONENTS":
            value: Any = tuple(__getattr__(component) for component in _COMPONENT_NAMES)
        elif name in _EXPORTS:
            value = getattr(importlib.import_module(_EXPORTS[name]), name)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_EXPORTS, "COMPONENTS"})


__all__ = [
    "COMPONENTS",
    "DEFAULT_API_URL",
    "IDEMPOTENCY_LABEL",
    "PAYLOAD_TYPES",
    "SANDBOX_RESOURCE",
    "CodeExecutionPayload",
    "CommandExecutionPayload",
    "CreateRepositorySandbox",
    "CreateSandbox",
    "DaytonaApiError",
    "DaytonaAuthError",
    "DaytonaBadRequestError",
    "DaytonaClient",
    "DaytonaConflictError",
    "DaytonaConnectionError",
    "DaytonaError",
    "DaytonaIntegration",
    "DaytonaNotConfiguredError",
    "DaytonaNotFoundError",
    "DaytonaProtocolError",
    "DaytonaRateLimitError",
    "DaytonaServerError",
    "DaytonaTimeoutError",
    "DeletePayload",
    "DeleteSandbox",
    "ExecuteCode",
    "ExecuteCommand",
    "GetPreviewUrl",
    "PreviewUrlPayload",
    "RepositorySandboxPayload",
    "RetryPolicy",
    "SandboxPayload",
]
