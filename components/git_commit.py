"""daytona.gitCommit: stage files and commit them, as a given author; nothing staged goes to `nothing`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL, Channel
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._git import RepositoryPath, git_failure, sandbox_id_of
from daytonaflow.components._payloads import GitCommittedPayload
from daytonaflow.components._step import Outcome, Step
from daytonaflow.components._wire import GitStatus
from daytonaflow.errors import ConfigIssue

NOTHING_CHANNEL = Channel(
    "nothing", "Nothing To Commit", "Nothing was staged (and Allow Empty is off): no commit was made."
)
#: Index states of a file the commit does not record.
_NOT_STAGED = frozenset({"Unmodified", "Untracked", ""})
#: Where a commit sent but not answered is recorded, with the files it records.
_COMMITTING = "committing"

DOCS = """
Stages files and commits them in a git repository of an existing Daytona sandbox.

## Use cases

- **Agent output**: commit what a coding agent changed, under the agent's name
- **Reports**: commit a generated report before pushing it to a branch
- **Snapshots of work**: record the state of a build directory

## Configuration

- **Sandbox**: the sandbox ID or name
- **Repository Path**: the repository's directory, absolute or relative to the sandbox user's home
- **Files**: paths to stage before committing, relative to the repository (default `.`: every
  change, new files included)
- **Message**: the commit message
- **Author Name** / **Author Email**: the commit's author (and committer)
- **Allow Empty**: commit even when nothing is staged

## Output

Emits `daytona.git.committed` with `sandboxId`, `path`, `message`, `files` (the files the commit
records) and `sha` (the new commit's SHA), on one of two channels:

- `default`: a commit was made
- `nothing`: nothing was staged after adding the files (and Allow Empty is off); no commit was
  made, `sha` is absent and `files` is empty

## Notes

- Files already staged before this node are committed too.
- A commit whose answer an engine restart lost is found again (the repository's newest commit,
  with the same message, and nothing left staged) instead of being made twice.
"""


class GitCommitConfig(ComponentConfig):
    sandbox: SandboxRef
    path: RepositoryPath
    files: Annotated[
        list[str],
        Spec(
            "Files",
            "Paths to stage, relative to the repository; . stages every change.",
            item=("file", "File"),
        ),
    ] = ["."]
    message: Annotated[
        str, Spec("Message", "The commit message.", kind="text", placeholder="Add the test report")
    ]
    author_name: Annotated[str, Spec("Author Name", "The commit's author and committer.", placeholder="Ada")]
    author_email: Annotated[
        str, Spec("Author Email", "The author's email address.", placeholder="ada@example.com")
    ]
    allow_empty: Annotated[bool, Spec("Allow Empty", "Commit even when nothing is staged.")] = False


class GitCommit(DaytonaComponent[GitCommitConfig]):
    name: ClassVar[str] = "daytona.gitCommit"
    label: ClassVar[str] = "Git Commit"
    description: ClassVar[str] = "Stage files and commit them in a git repository of a sandbox."
    icon: ClassVar[str] = "git-branch"
    channels = (DEFAULT_CHANNEL, NOTHING_CHANNEL)
    payload_type = GitCommittedPayload
    config_model = GitCommitConfig
    docs = DOCS

    @classmethod
    def extra_rules(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        if config.get("files") == []:
            return [ConfigIssue("files", "must list at least one path (. stages every change)")]
        return []

    async def run(self, step: Step, config: GitCommitConfig) -> Outcome:
        sandbox_id = await sandbox_id_of(step, config.sandbox)
        where = config.path

        def committed(sha: str | None, files: list[str]) -> GitCommittedPayload:
            return GitCommittedPayload(
                sandbox_id=sandbox_id, path=where, sha=sha, message=config.message, files=files
            )

        pending = step.get(_COMMITTING)
        if isinstance(pending, dict):
            sha = await _landed(step, sandbox_id, config)
            if sha is not None:
                return Outcome(DEFAULT_CHANNEL.name, committed(sha, list(pending["files"])))
        with git_failure(f"git add in {where}"):
            await step.client.git_add(sandbox_id, where, config.files)
            staged = _staged(await step.client.git_status(sandbox_id, where))
        if not staged and not config.allow_empty:
            return Outcome(NOTHING_CHANNEL.name, committed(None, []))
        step.save(**{_COMMITTING: {"files": staged}})
        with git_failure(f"git commit in {where}"):
            sha = await step.client.git_commit(
                sandbox_id,
                where,
                config.message,
                author=config.author_name,
                email=config.author_email,
                allow_empty=config.allow_empty,
            )
        return Outcome(DEFAULT_CHANNEL.name, committed(sha, staged))


def _staged(status: GitStatus) -> list[str]:
    return [entry.name for entry in status.file_status if (entry.staging or "") not in _NOT_STAGED]


async def _landed(step: Step, sandbox_id: str, config: GitCommitConfig) -> str | None:
    """The SHA of the commit an earlier attempt sent, if it was made: nothing is staged any more
    and the newest commit has the message (None: commit again)."""
    with git_failure(f"git status of {config.path}"):
        if _staged(await step.client.git_status(sandbox_id, config.path)):
            return None
        history = await step.client.git_history(sandbox_id, config.path)
    if history and history[0].message.strip() == config.message.strip():
        return history[0].hash
    return None
