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
    """`daytona.sandbox`: a sandbox and its state (`started` once created or started)."""

    event_type: ClassVar[str] = "daytona.sandbox"

    id: str = Field(description="The sandbox ID; pass it to the execute and delete components.")
    state: str = Field(
        description='The sandbox state: "started" after a create or a start; as it is for getSandbox '
        '(and "stopped" or "archived" after a stop or an archive).'
    )
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


class _DeletedPayload(_DaytonaPayload):
    """The outcome of a delete, which finds gone what an earlier one deleted."""

    deleted: bool
    id: str
    already_deleted: bool | None = Field(
        default=None, alias="alreadyDeleted", description="Present and true when it was already gone."
    )


class DeletePayload(_DeletedPayload):
    """`daytona.delete.response`: the outcome of deleteSandbox."""

    event_type: ClassVar[str] = "daytona.delete.response"

    deleted: bool = Field(description="Whether this call deleted the sandbox.")


# ---- git (gitClone, gitStatus, gitCommit, gitPush, gitPull, gitCheckout) ----


class GitClonedPayload(_DaytonaPayload):
    """`daytona.git.cloned`: a repository cloned into an existing sandbox."""

    event_type: ClassVar[str] = "daytona.git.cloned"

    sandbox_id: str = Field(alias="sandboxId")
    repository: str = Field(description="The repository cloned, as configured.")
    path: str = Field(description="Where it was cloned in the sandbox.")
    branch: str | None = Field(
        default=None, description="The branch checked out after the clone (absent when HEAD is detached)."
    )
    commit: str | None = Field(default=None, description="The commit checked out, when one was configured.")


class GitFileChange(_Part):
    name: str = Field(description="Path of the file, relative to the repository root.")
    staging: str = Field(description='State in the index: "Unmodified", "Added", "Modified", "Untracked"...')
    worktree: str = Field(description="State in the working tree, with the same names.")


class GitStatusPayload(_DaytonaPayload):
    """`daytona.git.status`: the state of a repository in a sandbox."""

    event_type: ClassVar[str] = "daytona.git.status"

    sandbox_id: str = Field(alias="sandboxId")
    path: str
    current_branch: str = Field(
        alias="currentBranch", description="The branch checked out (empty when HEAD is detached)."
    )
    ahead: int = Field(description="Commits on the branch that its upstream does not have.")
    behind: int = Field(description="Commits on the upstream that the branch does not have.")
    branch_published: bool = Field(alias="branchPublished", description="Whether the branch has an upstream.")
    clean: bool = Field(description="Whether nothing is changed, staged or untracked.")
    files: list[GitFileChange] = Field(default_factory=list, description="Every changed or untracked file.")


class GitCommittedPayload(_DaytonaPayload):
    """`daytona.git.committed`: a commit made (default channel), or nothing to commit (`nothing`)."""

    event_type: ClassVar[str] = "daytona.git.committed"

    sandbox_id: str = Field(alias="sandboxId")
    path: str
    sha: str | None = Field(
        default=None, description="The new commit's SHA; absent when nothing was committed."
    )
    message: str
    files: list[str] = Field(default_factory=list, description="The files the commit records.")


class _GitTransferPayload(_DaytonaPayload):
    sandbox_id: str = Field(alias="sandboxId")
    path: str
    branch: str = Field(description="The branch pushed or pulled.")


class GitPushedPayload(_GitTransferPayload):
    """`daytona.git.pushed`: the current branch pushed to its remote."""

    event_type: ClassVar[str] = "daytona.git.pushed"


class GitPulledPayload(_GitTransferPayload):
    """`daytona.git.pulled`: the current branch updated from its remote."""

    event_type: ClassVar[str] = "daytona.git.pulled"


class GitCheckedOutPayload(_DaytonaPayload):
    """`daytona.git.checkedOut`: a branch switched to (and created first, when asked)."""

    event_type: ClassVar[str] = "daytona.git.checkedOut"

    sandbox_id: str = Field(alias="sandboxId")
    path: str
    branch: str
    created: bool = Field(description="Whether the branch was created by this node.")


# ---- files and lifecycle (uploadFile, downloadFile, listFiles, getSandbox, listSandboxes,
# startSandbox, stopSandbox, archiveSandbox) ----


class FileUploadedPayload(_DaytonaPayload):
    """`daytona.file.uploaded`: a file written into a sandbox."""

    event_type: ClassVar[str] = "daytona.file.uploaded"

    sandbox_id: str = Field(alias="sandboxId")
    path: str = Field(description="The absolute path written.")
    size: int = Field(description="Bytes written.")
    sha256: str = Field(description="SHA-256 (hex) of the bytes written.")
    mode: str | None = Field(default=None, description="The permissions set, when a mode was configured.")


class FileDownloadedPayload(_DaytonaPayload):
    """`daytona.file.downloaded`: a file read from a sandbox, whole."""

    event_type: ClassVar[str] = "daytona.file.downloaded"

    sandbox_id: str = Field(alias="sandboxId")
    path: str = Field(description="The absolute path read.")
    size: int = Field(description="Bytes read (the whole file).")
    sha256: str = Field(description="SHA-256 (hex) of the bytes read.")
    encoding: str = Field(description='How `content` holds the bytes: "text" (UTF-8) or "base64".')
    content: str = Field(description="The file's content, in `encoding`.")


class FileEntry(_Part):
    name: str
    path: str = Field(description="Absolute path of the entry.")
    is_dir: bool = Field(alias="isDir")
    size: int = Field(description="Size in bytes.")
    mode: str = Field(
        description='Permissions in octal, e.g. "0644" (Daytona\'s mode string when it gives none).'
    )
    modified_at: str | None = Field(
        default=None, alias="modifiedAt", description="Last modification (RFC 3339)."
    )


class FilesListedPayload(_DaytonaPayload):
    """`daytona.files.listed`: the entries of a sandbox directory."""

    event_type: ClassVar[str] = "daytona.files.listed"

    sandbox_id: str = Field(alias="sandboxId")
    path: str = Field(description="The absolute path of the directory listed.")
    files: list[FileEntry]
    truncated: bool = Field(description="Whether the directory had more entries than maxEntries.")


class SandboxesListedPayload(_DaytonaPayload):
    """`daytona.sandboxes.listed`: the sandboxes matching a listSandboxes filter."""

    event_type: ClassVar[str] = "daytona.sandboxes.listed"

    sandboxes: list[SandboxPayload]
    count: int = Field(description="How many sandboxes are listed.")


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


class VolumeDeletedPayload(_DeletedPayload):
    """`daytona.volume.deleted`: the outcome of deleteVolume."""

    event_type: ClassVar[str] = "daytona.volume.deleted"

    deleted: bool = Field(description="Whether this call deleted the volume.")


PAYLOAD_TYPES: tuple[type[Payload], ...] = (
    SandboxPayload,
    RepositorySandboxPayload,
    CodeExecutionPayload,
    CommandExecutionPayload,
    PreviewUrlPayload,
    DeletePayload,
    GitClonedPayload,
    GitStatusPayload,
    GitCommittedPayload,
    GitPushedPayload,
    GitPulledPayload,
    GitCheckedOutPayload,
    FileUploadedPayload,
    FileDownloadedPayload,
    FilesListedPayload,
    SandboxesListedPayload,
    SnapshotsListedPayload,
    VolumePayload,
    VolumeDeletedPayload,
)
