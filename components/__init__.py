"""daytonaflow.components: the Daytona components and the Daytona API client they share.

Hosts discover the components through the ``daytonaflow.components`` entry-point group; the
runner hands them a :class:`DaytonaIntegration` as ``ctx.integration``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daytonaflow import _lazy_exports

if TYPE_CHECKING:
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
        FileDownloadedPayload,
        FilesListedPayload,
        FileUploadedPayload,
        GitCheckedOutPayload,
        GitClonedPayload,
        GitCommittedPayload,
        GitPulledPayload,
        GitPushedPayload,
        GitStatusPayload,
        PreviewUrlPayload,
        RepositorySandboxPayload,
        SandboxesListedPayload,
        SandboxPayload,
        SnapshotsListedPayload,
        VolumeDeletedPayload,
        VolumePayload,
    )
    from daytonaflow.components._retry import RetryPolicy
    from daytonaflow.components._step import (
        LOST_CREATION_RESOURCE,
        SANDBOX_RESOURCE,
        InterruptedCommandError,
        SandboxRestartError,
    )
    from daytonaflow.components.archive_sandbox import ArchiveSandbox
    from daytonaflow.components.client import DEFAULT_API_URL, IDEMPOTENCY_LABEL, DaytonaClient
    from daytonaflow.components.create_repository_sandbox import CreateRepositorySandbox
    from daytonaflow.components.create_sandbox import CreateSandbox
    from daytonaflow.components.create_volume import CreateVolume
    from daytonaflow.components.delete_sandbox import DeleteSandbox
    from daytonaflow.components.delete_volume import DeleteVolume
    from daytonaflow.components.download_file import DownloadFile
    from daytonaflow.components.execute_code import ExecuteCode
    from daytonaflow.components.execute_command import ExecuteCommand
    from daytonaflow.components.get_preview_url import GetPreviewUrl
    from daytonaflow.components.get_sandbox import GetSandbox
    from daytonaflow.components.git_checkout import GitCheckout
    from daytonaflow.components.git_clone import GitClone
    from daytonaflow.components.git_commit import GitCommit
    from daytonaflow.components.git_pull import GitPull
    from daytonaflow.components.git_push import GitPush
    from daytonaflow.components.git_status import GitStatus
    from daytonaflow.components.list_files import ListFiles
    from daytonaflow.components.list_sandboxes import ListSandboxes
    from daytonaflow.components.list_snapshots import ListSnapshots
    from daytonaflow.components.start_sandbox import StartSandbox
    from daytonaflow.components.stop_sandbox import StopSandbox
    from daytonaflow.components.upload_file import UploadFile

#: Where each public name lives. Names are imported on first use: an entry point loads its one
#: component's module, and the CLI importing the integration does not import every component.
_EXPORTS = {
    "DEFAULT_API_URL": "daytonaflow.components.client",
    "IDEMPOTENCY_LABEL": "daytonaflow.components.client",
    "DaytonaClient": "daytonaflow.components.client",
    "CreateRepositorySandbox": "daytonaflow.components.create_repository_sandbox",
    "CreateSandbox": "daytonaflow.components.create_sandbox",
    "DeleteSandbox": "daytonaflow.components.delete_sandbox",
    "DaytonaApiError": "daytonaflow.components._errors",
    "DaytonaAuthError": "daytonaflow.components._errors",
    "DaytonaBadRequestError": "daytonaflow.components._errors",
    "DaytonaConflictError": "daytonaflow.components._errors",
    "DaytonaConnectionError": "daytonaflow.components._errors",
    "DaytonaError": "daytonaflow.components._errors",
    "DaytonaNotConfiguredError": "daytonaflow.components._errors",
    "DaytonaNotFoundError": "daytonaflow.components._errors",
    "DaytonaProtocolError": "daytonaflow.components._errors",
    "DaytonaRateLimitError": "daytonaflow.components._errors",
    "DaytonaServerError": "daytonaflow.components._errors",
    "DaytonaTimeoutError": "daytonaflow.components._errors",
    "ExecuteCode": "daytonaflow.components.execute_code",
    "ExecuteCommand": "daytonaflow.components.execute_command",
    "GetPreviewUrl": "daytonaflow.components.get_preview_url",
    "GitCheckout": "daytonaflow.components.git_checkout",
    "GitClone": "daytonaflow.components.git_clone",
    "GitCommit": "daytonaflow.components.git_commit",
    "GitPull": "daytonaflow.components.git_pull",
    "GitPush": "daytonaflow.components.git_push",
    "GitStatus": "daytonaflow.components.git_status",
    "ArchiveSandbox": "daytonaflow.components.archive_sandbox",
    "DownloadFile": "daytonaflow.components.download_file",
    "GetSandbox": "daytonaflow.components.get_sandbox",
    "ListFiles": "daytonaflow.components.list_files",
    "ListSandboxes": "daytonaflow.components.list_sandboxes",
    "StartSandbox": "daytonaflow.components.start_sandbox",
    "StopSandbox": "daytonaflow.components.stop_sandbox",
    "UploadFile": "daytonaflow.components.upload_file",
    "DaytonaIntegration": "daytonaflow.components._integration",
    "PAYLOAD_TYPES": "daytonaflow.components._payloads",
    "CodeExecutionPayload": "daytonaflow.components._payloads",
    "CommandExecutionPayload": "daytonaflow.components._payloads",
    "DeletePayload": "daytonaflow.components._payloads",
    "GitCheckedOutPayload": "daytonaflow.components._payloads",
    "GitClonedPayload": "daytonaflow.components._payloads",
    "GitCommittedPayload": "daytonaflow.components._payloads",
    "GitPulledPayload": "daytonaflow.components._payloads",
    "GitPushedPayload": "daytonaflow.components._payloads",
    "GitStatusPayload": "daytonaflow.components._payloads",
    "FileDownloadedPayload": "daytonaflow.components._payloads",
    "FileUploadedPayload": "daytonaflow.components._payloads",
    "FilesListedPayload": "daytonaflow.components._payloads",
    "SandboxesListedPayload": "daytonaflow.components._payloads",
    "PreviewUrlPayload": "daytonaflow.components._payloads",
    "RepositorySandboxPayload": "daytonaflow.components._payloads",
    "SandboxPayload": "daytonaflow.components._payloads",
    "SnapshotsListedPayload": "daytonaflow.components._payloads",
    "VolumeDeletedPayload": "daytonaflow.components._payloads",
    "VolumePayload": "daytonaflow.components._payloads",
    "ListSnapshots": "daytonaflow.components.list_snapshots",
    "CreateVolume": "daytonaflow.components.create_volume",
    "DeleteVolume": "daytonaflow.components.delete_volume",
    "RetryPolicy": "daytonaflow.components._retry",
    "SANDBOX_RESOURCE": "daytonaflow.components._step",
    "LOST_CREATION_RESOURCE": "daytonaflow.components._step",
    "InterruptedCommandError": "daytonaflow.components._step",
    "SandboxRestartError": "daytonaflow.components._step",
}


#: The components, in the order the docs and the manifest list them (``COMPONENTS``).
_COMPONENT_NAMES = (
    "CreateSandbox",
    "CreateRepositorySandbox",
    "ExecuteCode",
    "ExecuteCommand",
    "GetPreviewUrl",
    "DeleteSandbox",
    "GitClone",
    "GitStatus",
    "GitCheckout",
    "GitCommit",
    "GitPush",
    "GitPull",
    "UploadFile",
    "DownloadFile",
    "ListFiles",
    "GetSandbox",
    "ListSandboxes",
    "StartSandbox",
    "StopSandbox",
    "ArchiveSandbox",
    "ListSnapshots",
    "CreateVolume",
    "DeleteVolume",
)

if TYPE_CHECKING:
    from daytonaflow.component import Component

    COMPONENTS: tuple[type[Component], ...]


# Hidden from type checkers: they see the names imported above, and a misspelt one stays an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy_exports(
        globals(),
        _EXPORTS,
        {"COMPONENTS": lambda: tuple(__getattr__(component) for component in _COMPONENT_NAMES)},
    )

__all__ = [
    "COMPONENTS",
    "DEFAULT_API_URL",
    "IDEMPOTENCY_LABEL",
    "LOST_CREATION_RESOURCE",
    "PAYLOAD_TYPES",
    "SANDBOX_RESOURCE",
    "ArchiveSandbox",
    "CodeExecutionPayload",
    "CommandExecutionPayload",
    "CreateRepositorySandbox",
    "CreateSandbox",
    "CreateVolume",
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
    "DeleteVolume",
    "DownloadFile",
    "ExecuteCode",
    "ExecuteCommand",
    "FileDownloadedPayload",
    "FileUploadedPayload",
    "FilesListedPayload",
    "GetPreviewUrl",
    "GetSandbox",
    "GitCheckedOutPayload",
    "GitCheckout",
    "GitClone",
    "GitClonedPayload",
    "GitCommit",
    "GitCommittedPayload",
    "GitPull",
    "GitPulledPayload",
    "GitPush",
    "GitPushedPayload",
    "GitStatus",
    "GitStatusPayload",
    "InterruptedCommandError",
    "ListFiles",
    "ListSandboxes",
    "ListSnapshots",
    "PreviewUrlPayload",
    "RepositorySandboxPayload",
    "RetryPolicy",
    "SandboxPayload",
    "SandboxRestartError",
    "SandboxesListedPayload",
    "SnapshotsListedPayload",
    "StartSandbox",
    "StopSandbox",
    "UploadFile",
    "VolumeDeletedPayload",
    "VolumePayload",
]
