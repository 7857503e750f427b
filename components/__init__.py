"""daytonaflow.components: the six Daytona components and the Daytona API client they share.

Hosts discover the components through the ``daytonaflow.components`` entry-point group; the
runner hands them a :class:`DaytonaIntegration` as ``ctx.integration``.
"""

from daytonaflow.components._errors import (
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
from daytonaflow.components._integration import DaytonaIntegration
from daytonaflow.components._payloads import (
    PAYLOAD_TYPES,
    CodeExecutionPayload,
    CommandExecutionPayload,
    DeletePayload,
    PreviewUrlPayload,
    RepositorySandboxPayload,
    SandboxPayload,
)
from daytonaflow.components._retry import RetryPolicy
from daytonaflow.components._step import (
    LOST_CREATION_RESOURCE,
    SANDBOX_RESOURCE,
    InterruptedCommandError,
    SandboxRestartError,
)
from daytonaflow.components.client import DEFAULT_API_URL, IDEMPOTENCY_LABEL, DaytonaClient
from daytonaflow.components.create_repository_sandbox import CreateRepositorySandbox
from daytonaflow.components.create_sandbox import CreateSandbox
from daytonaflow.components.delete_sandbox import DeleteSandbox
from daytonaflow.components.execute_code import ExecuteCode
from daytonaflow.components.execute_command import ExecuteCommand
from daytonaflow.components.get_preview_url import GetPreviewUrl

#: The six components, in the order the docs and the manifest list them.
COMPONENTS = (
    CreateSandbox,
    CreateRepositorySandbox,
    ExecuteCode,
    ExecuteCommand,
    GetPreviewUrl,
    DeleteSandbox,
)

__all__ = [
    "COMPONENTS",
    "DEFAULT_API_URL",
    "IDEMPOTENCY_LABEL",
    "LOST_CREATION_RESOURCE",
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
    "InterruptedCommandError",
    "PreviewUrlPayload",
    "RepositorySandboxPayload",
    "RetryPolicy",
    "SandboxPayload",
    "SandboxRestartError",
]
