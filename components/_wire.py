"""The parts of Daytona's REST and toolbox answers the components read (field names as on the wire).

Every model ignores unknown fields: Daytona adds fields over time and the client must keep
working against newer servers.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: States after which a sandbox will never become ``started`` by itself.
FAILED_STATES = frozenset({"error", "build_failed"})
GONE_STATES = frozenset({"destroyed", "destroying"})
STARTED = "started"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SandboxInfo(_Wire):
    id: str
    name: str = ""
    state: str | None = None
    error_reason: str | None = Field(default=None, alias="errorReason")
    labels: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    toolbox_proxy_url: str | None = Field(default=None, alias="toolboxProxyUrl")


class SandboxPage(_Wire):
    items: list[SandboxInfo]
    next_cursor: str | None = Field(default=None, alias="nextCursor")


class PreviewLink(_Wire):
    sandbox_id: str = Field(alias="sandboxId")
    url: str
    token: str
    port: int | None = None


class ExecuteResult(_Wire):
    exit_code: int = Field(default=0, alias="exitCode")
    result: str = ""


class SessionExecuteResult(_Wire):
    cmd_id: str = Field(alias="cmdId")
    exit_code: int | None = Field(default=None, alias="exitCode")
    output: str | None = None


class SessionCommand(_Wire):
    id: str
    command: str = ""
    exit_code: int | None = Field(default=None, alias="exitCode")


class Session(_Wire):
    session_id: str = Field(alias="sessionId")
    commands: list[SessionCommand] | None = None


class CommandLogs(_Wire):
    output: str = ""
    stdout: str = ""
    stderr: str = ""


# ---- git (gitClone, gitStatus, gitCommit, gitPush, gitPull, gitCheckout) ----


class GitFileStatus(_Wire):
    name: str
    staging: str | None = None
    worktree: str | None = None


class GitStatus(_Wire):
    current_branch: str = Field(default="", alias="currentBranch")
    file_status: list[GitFileStatus] = Field(default_factory=list, alias="fileStatus")
    ahead: int = 0
    behind: int = 0
    branch_published: bool = Field(default=False, alias="branchPublished")


class GitCommitResult(_Wire):
    hash: str


class GitCommitInfo(_Wire):
    hash: str
    message: str = ""


class GitBranches(_Wire):
    branches: list[str] = Field(default_factory=list)


class FileInfo(_Wire):
    """A toolbox ``FileInfo`` (``path`` is the local server's addition; Daytona's has only ``name``)."""

    name: str
    path: str | None = None
    is_dir: bool = Field(default=False, alias="isDir")
    size: int = 0
    mode: str = ""
    permissions: str | None = None
    modified_at: str | None = Field(default=None, alias="modifiedAt")
    mod_time: str | None = Field(default=None, alias="modTime")


class VolumeInfo(_Wire):
    id: str
    name: str
    state: str
    error_reason: str | None = Field(default=None, alias="errorReason")


class SnapshotInfo(_Wire):
    id: str
    name: str
    state: str
    image_name: str | None = Field(default=None, alias="imageName")
    size: float | None = None
    created_at: str | None = Field(default=None, alias="createdAt")


class SnapshotPage(_Wire):
    items: list[SnapshotInfo]
    total_pages: float = Field(default=1, alias="totalPages")
