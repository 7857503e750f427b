"""daytona.gitClone: clone a repository into an existing sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._errors import DaytonaError
from daytonaflow.components._git import (
    Credentials,
    Repository,
    git_failure,
    repository_name,
    repository_name_issues,
    resolve_credentials,
    sandbox_id_of,
)
from daytonaflow.components._payloads import GitClonedPayload
from daytonaflow.components._sandbox_env import HOME
from daytonaflow.components._step import Outcome, Step
from daytonaflow.errors import ConfigIssue

DEFAULT_TIMEOUT_SECONDS = 300

DOCS = """
Clones a git repository into an existing Daytona sandbox.

## Use cases

- **Several repositories in one sandbox**: clone a second repository beside the first
- **Agent workspaces**: give an agent's sandbox the code it works on, at a branch or a commit
- **Private code**: clone over HTTPS with a token kept in a secret

## Configuration

- **Sandbox**: the sandbox ID or name (from createSandbox)
- **Repository**: a URL (`https://github.com/org/repo.git`) or an SCP-style address; a URL
  carrying a user or password (`https://user:token@host/...`) is refused: use **Credentials**
- **Path**: where to clone, absolute or relative to the sandbox user's home (default
  `/home/daytona/<repository name>`)
- **Branch**: optional branch or tag to clone
- **Commit**: optional commit to check out after the clone (HEAD is then detached)
- **Credentials**: optional; a **Username** and a **Password or Token** from a secret, for
  HTTPS remotes that need them
- **Timeout**: seconds the clone may take (default 300)

## Output

Emits `daytona.git.cloned` on the default channel with `sandboxId`, `repository`, `path`,
`branch` (the branch checked out; absent when HEAD is detached) and `commit` (when configured).

## Notes

- The clone runs through Daytona's git API: it works in sandboxes without a shell network, and
  the credentials are sent to that API only, never written into a command, a payload or a log.
  A failure's message has them masked.
- Later git nodes take the same **Path** (or `{{ $["daytona.gitClone"].data.path }}`).
- A clone cut short by an engine restart is not repeated over a clone that completed.
"""


class GitCloneConfig(ComponentConfig):
    sandbox: SandboxRef
    repository: Repository
    path: Annotated[
        str | None,
        Spec(
            "Path",
            "Directory to clone into, absolute or relative to the sandbox user's home; "
            "the repository's name under the home when empty.",
            placeholder="/home/daytona/example-app",
        ),
    ] = None
    branch: Annotated[
        str | None,
        Spec("Branch", "Branch or tag to clone (the default branch when empty).", placeholder="main"),
    ] = None
    commit: Annotated[
        str | None,
        Spec("Commit", "Commit to check out after the clone (HEAD is then detached).", placeholder="a1b2c3d"),
    ] = None
    credentials: Credentials = None
    timeout: Annotated[
        int, Spec("Timeout (seconds)", "Seconds the clone may take.", minimum=1, maximum=86400)
    ] = DEFAULT_TIMEOUT_SECONDS

    @property
    def directory(self) -> str:
        return self.path or f"{HOME}/{repository_name(self.repository)}"


class GitClone(DaytonaComponent[GitCloneConfig]):
    name: ClassVar[str] = "daytona.gitClone"
    label: ClassVar[str] = "Git Clone"
    description: ClassVar[str] = "Clone a git repository into an existing Daytona sandbox."
    icon: ClassVar[str] = "git-branch"
    channels = (DEFAULT_CHANNEL,)
    payload_type = GitClonedPayload
    config_model = GitCloneConfig
    docs = DOCS

    @classmethod
    def extra_rules(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        return repository_name_issues(
            config.get("repository"),
            allow_expressions=allow_expressions,
            credentials_instead="give them in credentials (from a secret) instead",
            name_needed=not config.get("path"),
            hint=", or set path",
        )

    async def run(self, step: Step, config: GitCloneConfig) -> Outcome:
        sandbox_id = await sandbox_id_of(step, config.sandbox)
        directory = config.directory
        credentials = resolve_credentials(step, config.credentials)
        # A clone whose answer an engine restart lost may have completed: a repository there is it.
        if not (step.get("cloning") and await _is_repository(step, sandbox_id, directory)):
            step.save(cloning=True)
            with git_failure(f"git clone of {config.repository} into {directory}", credentials):
                await step.client.git_clone(
                    sandbox_id,
                    config.repository,
                    directory,
                    branch=config.branch,
                    commit=config.commit,
                    username=credentials.username,
                    password=credentials.password,
                    timeout_seconds=config.timeout,
                )
        with git_failure(f"git status of {directory}"):
            status = await step.client.git_status(sandbox_id, directory)
        payload = GitClonedPayload(
            sandbox_id=sandbox_id,
            repository=config.repository,
            path=directory,
            branch=status.current_branch or None,
            commit=config.commit,
        )
        return Outcome(DEFAULT_CHANNEL.name, payload)


async def _is_repository(step: Step, sandbox_id: str, directory: str) -> bool:
    try:
        await step.client.git_status(sandbox_id, directory)
    except DaytonaError:
        return False
    return True
