"""Typed ``data`` of every event the Daytona components emit (wire names, as in the seed)."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
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
    preview_url: str | None = Field(
        default=None, alias="previewUrl", description="The preview URL of the configured Preview Port."
    )
    preview_token: str | None = Field(
        default=None,
        alias="previewToken",
        description="The x-daytona-preview-token header its requests need (unless previews are public).",
    )


#: The longest output line a failure summary quotes.
_SUMMARY_LINE_CHARS = 200


class _RunOutcomePayload(_DaytonaPayload):
    """The outcome of something run in a sandbox, under a time limit it may have reached."""

    #: The limit as a failure says it (``30 s``, ``1500 ms``); not part of the wire payload, so
    #: kept beside it (:func:`private_state`) for a replayed outcome to say it too.
    _time_limit: str | None = PrivateAttr(default=None)

    def held_to(self, limit: str | None) -> Self:
        self._time_limit = limit
        return self

    def _summary(self, exit_code: int | None, timed_out: bool, result: str) -> str | None:
        if timed_out:
            return f"timed out after {self._time_limit}" if self._time_limit else "timed out"
        if exit_code is None or exit_code == 0:
            return None
        last = _last_line(result)
        return f"exit code {exit_code}: {last}" if last else f"exit code {exit_code}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return last if len(last) <= _SUMMARY_LINE_CHARS else last[:_SUMMARY_LINE_CHARS] + "..."


def private_state(payload: Payload) -> dict[str, Any]:
    """What a payload holds beside its wire fields (set values only), to persist with it."""
    private = getattr(payload, "__pydantic_private__", None) or {}
    return {name: value for name, value in private.items() if value is not None}


def restore_private_state(payload: Payload, state: Any) -> Payload:
    """Give a payload rebuilt from its wire fields what :func:`private_state` kept of it."""
    known = getattr(type(payload), "__private_attributes__", {})
    if isinstance(state, dict):
        for name, value in state.items():
            if name in known:
                setattr(payload, name, value)
    return payload


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
    preview_url: str | None = Field(
        default=None, alias="previewUrl", description="The preview URL of the configured Preview Port."
    )
    preview_token: str | None = Field(
        default=None,
        alias="previewToken",
        description="The x-daytona-preview-token header its requests need (unless previews are public).",
    )


class CodeExecutionPayload(_RunOutcomePayload):
    """`daytona.execute.response`: the outcome of executeCode."""

    event_type: ClassVar[str] = "daytona.execute.response"

    exit_code: int = Field(alias="exitCode", description="The process exit code (0 for success).")
    result: str = Field(description="The output of the run (bounded).")
    timeout: bool | None = Field(default=None, description="Present and true when the run timed out.")
    truncated: bool | None = Field(default=None, description="Present and true when output was cut.")

    def failure_summary(self) -> str | None:
        return self._summary(self.exit_code, self.timeout is True, self.result)


class CommandExecutionPayload(_RunOutcomePayload):
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

    def failure_summary(self) -> str | None:
        return self._summary(self.exit_code, self.timeout, self.result)


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


# ---- snapshots and volumes (listSnapshots, createVolume, deleteVolume) ----


class SnapshotSummary(_Part):
    id: str
    name: str = Field(description="The name a create's Snapshot field takes.")
    state: str = Field(description='Daytona\'s snapshot state, "active" when sandboxes can start from it.')
    image_name: str | None = Field(default=None, alias="imageName", description="The image it was made from.")
    size: float | None = Field(default=None, description="Its size in GB, when known.")
    created_at: str | None = Field(default=None, alias="createdAt")


class SnapshotsListedPayload(_DaytonaPayload):
    """`daytona.snapshots.listed`: the snapshots listSnapshots found."""

    event_type: ClassVar[str] = "daytona.snapshots.listed"

    snapshots: list[SnapshotSummary]
    count: int = Field(description="How many snapshots the list holds.")


class VolumePayload(_DaytonaPayload):
    """`daytona.volume`: a volume in state `ready`."""

    event_type: ClassVar[str] = "daytona.volume"

    id: str = Field(description="The volume ID; pass it to a create's Volumes or to deleteVolume.")
    name: str
    state: str = Field(description='The volume state, "ready".')
    existing: bool | None = Field(
        default=None, description="Present and true when a volume of that name existed already."
    )


class VolumeDeletedPayload(_DaytonaPayload):
    """`daytona.volume.deleted`: the outcome of deleteVolume."""

    event_type: ClassVar[str] = "daytona.volume.deleted"

    deleted: bool = Field(description="Whether this call deleted the volume.")
    id: str
    already_deleted: bool | None = Field(
        default=None, alias="alreadyDeleted", description="Present and true when it was already gone."
    )


PAYLOAD_TYPES += (SnapshotsListedPayload, VolumePayload, VolumeDeletedPayload)
