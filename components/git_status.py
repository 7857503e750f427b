"""daytona.gitStatus: the branch and the changed files of a repository in a sandbox."""

from __future__ import annotations

from typing import ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef
from daytonaflow.components._git import RepositoryPath, git_failure, sandbox_id_of
from daytonaflow.components._payloads import GitFileChange, GitStatusPayload
from daytonaflow.components._step import Outcome, Step

DOCS = """
Reads the status of a git repository in an existing Daytona sandbox.

## Use cases

- **Change detection**: branch on whether a build or an agent changed any file (`clean`)
- **Review**: list what changed before committing it
- **Sync checks**: see whether the branch is ahead of or behind its upstream

## Configuration

- **Sandbox**: the sandbox ID or name
- **Repository Path**: the repository's directory, absolute or relative to the sandbox user's
  home (e.g. `{{ $["daytona.createRepositorySandbox"].data.directory }}`)

## Output

Emits `daytona.git.status` on the default channel:

- `currentBranch`: the branch checked out (empty when HEAD is detached)
- `ahead` / `behind`: commits the branch has that its upstream lacks, and the reverse
- `branchPublished`: whether the branch has an upstream
- `clean`: true when nothing is changed, staged or untracked
- `files`: each changed or untracked file with its `staging` and `worktree` state
  (`Unmodified`, `Modified`, `Added`, `Deleted`, `Renamed`, `Copied`, `Untracked`...)

## Notes

- Reading the status changes nothing in the repository.
"""


class GitStatusConfig(ComponentConfig):
    sandbox: SandboxRef
    path: RepositoryPath


class GitStatus(DaytonaComponent[GitStatusConfig]):
    name: ClassVar[str] = "daytona.gitStatus"
    label: ClassVar[str] = "Git Status"
    description: ClassVar[str] = "Read the branch and the changed files of a git repository in a sandbox."
    icon: ClassVar[str] = "git-branch"
    channels = (DEFAULT_CHANNEL,)
    payload_type = GitStatusPayload
    config_model = GitStatusConfig
    docs = DOCS

    async def run(self, step: Step, config: GitStatusConfig) -> Outcome:
        sandbox_id = await sandbox_id_of(step, config.sandbox)
        with git_failure(f"git status of {config.path}"):
            status = await step.client.git_status(sandbox_id, config.path)
        files = [
            GitFileChange(
                name=entry.name,
                staging=entry.staging or "Unmodified",
                worktree=entry.worktree or "Unmodified",
            )
            for entry in status.file_status
        ]
        payload = GitStatusPayload(
            sandbox_id=sandbox_id,
            path=config.path,
            current_branch=status.current_branch,
            ahead=status.ahead,
            behind=status.behind,
            branch_published=status.branch_published,
            clean=not files,
            files=files,
        )
        return Outcome(DEFAULT_CHANNEL.name, payload)
