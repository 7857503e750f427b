"""Typed ``data`` of every event the Daytona components emit (wire names, as in the seed)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import ComputedFieldInfo, FieldInfo

from daytonaflow.events import Payload


def _wire_title(name: str, field: FieldInfo | ComputedFieldInfo) -> str:
    """Schema titles read as the wire names (``sandboxId``), not as mangled Python names."""
    return field.alias or name


class _DaytonaPayload(Payload):
    model_config = ConfigDict(field_title_generator=_wire_title)


class SandboxPayload(_DaytonaPayload):
    """`daytona.sandbox`: a sandbox that reached `started`."""

    event_type: ClassVar[str] = "daytona.sandbox"

    id: str = Field(description="The sandbox ID; pass it to the execute and delete components.")
    state: str = Field(description='The sandbox state, "started".')


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, field_title_generator=_wire_title)


class SecretValueReference(_Part):
    secret: str = Field(description="Name of the secret in the secrets provider.")
    key: str = Field(description="Key inside that secret.")


class SecretInjection(_Part):
    """A secret reference as configured (never its value)."""

    type: str = Field(description='"env" (or "env-var") or "file".')
    name: str | None = Field(default=None, description="Environment variable name (type env).")
    path: str | None = Field(default=None, description="File path (type file).")
    value: SecretValueReference


class BootstrapOutcome(_Part):
    from_: str = Field(alias="from", description='"inline" or "file".')
    path: str | None = Field(default=None, description="Script path inside the repository (from file).")
    script: str | None = Field(default=None, description="The inline script (from inline).")
    exit_code: int | None = Field(default=None, alias="exitCode", description="The bootstrap's exit code.")
    log: str | None = Field(default=None, description="The tail of the bootstrap's output.")


class RepositorySandboxPayload(_DaytonaPayload):
    """`daytona.repository.sandbox`: a started sandbox with the repository cloned and bootstrapped."""

    event_type: ClassVar[str] = "daytona.repository.sandbox"

    sandbox_id: str = Field(alias="sandboxId")
    sandbox_started_at: str = Field(alias="sandboxStartedAt", description="When the sandbox reached started.")
    repository: str
    directory: str = Field(description="Where the repository was cloned: /home/daytona/<name>.")
    bootstrap: BootstrapOutcome | None = None
    secrets: list[SecretInjection] = Field(default_factory=list)
    timeout: int = Field(description="The overall timeout in seconds.")


class CodeExecutionPayload(_DaytonaPayload):
    """`daytona.execute.response`: the outcome of executeCode."""

    event_type: ClassVar[str] = "daytona.execute.response"

    exit_code: int = Field(alias="exitCode", description="The process exit code (0 for success).")
    result: str = Field(description="The output of the run (bounded).")
    timeout: bool | None = Field(default=None, description="Present and true when the run timed out.")
    truncated: bool | None = Field(default=None, description="Present and true when output was cut.")


class CommandExecutionPayload(_DaytonaPayload):
    """`daytona.command.response`: the outcome of executeCommand."""

    event_type: ClassVar[str] = "daytona.command.response"

    exit_code: int | None = Field(
        default=None,
        alias="exitCode",
        description="The exit code; absent for a background command that is still running.",
    )
    result: str = Field(description="The output of the command (bounded).")
    timeout: bool = Field(description="Whether the command timed out.")
    truncated: bool | None = Field(default=None, description="Present and true when output was cut.")
    background: bool | None = Field(default=None, description="Present and true for a background start.")
    session_id: str | None = Field(
        default=None, alias="sessionId", description="Session of a background command."
    )
    command_id: str | None = Field(default=None, alias="commandId", description="ID of a background command.")
    port: int | None = Field(default=None, description="The port a background start waited for.")


class PreviewUrlPayload(_DaytonaPayload):
    """`daytona.preview.response`: a preview URL for a sandbox port."""

    event_type: ClassVar[str] = "daytona.preview.response"

    sandbox: str
    port: int
    signed: bool
    url: str
    token: str
    expires_in_seconds: int | None = Field(default=None, alias="expiresInSeconds")


class DeletePayload(_DaytonaPayload):
    """`daytona.delete.response`: the outcome of deleteSandbox."""

    event_type: ClassVar[str] = "daytona.delete.response"

    deleted: bool = Field(description="Whether this call deleted the sandbox.")
    id: str
    already_deleted: bool | None = Field(
        default=None,
        alias="alreadyDeleted",
        description="Present and true when it was already gone.",
    )


PAYLOAD_TYPES: tuple[type[Payload], ...] = (
    SandboxPayload,
    RepositorySandboxPayload,
    CodeExecutionPayload,
    CommandExecutionPayload,
    PreviewUrlPayload,
    DeletePayload,
)
