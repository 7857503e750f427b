"""daytona.gitPull: bring the remote's commits into the current branch of a repository in a sandbox."""

from __future__ import annotations

from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._git import Credentials, RepositoryPath, transfer_branch
from daytonaflow.components._payloads import GitPulledPayload
from daytonaflow.components._step import Outcome, Step

DEFAULT_TIMEOUT_SECONDS = 300

DOCS = """
Pulls the remote's commits into the current branch of a git repository in an existing Daytona
sandbox (a fetch, then a merge).

## Use cases

- **Long-lived sandboxes**: bring a workspace up to date before the next task
- **Collaboration**: pick up commits pushed by people or other pipelines
- **Retry loops**: refresh the code before running the tests again

## Configuration

- **Sandbox**: the sandbox ID or name
- **Repository Path**: the repository's directory, absolute or relative to the sandbox user's home
- **Credentials**: optional; a **Username** and a **Password or Token** from a secret, for
  HTTPS remotes that need them
- **Timeout**: seconds the pull may take (default 300)

## Output

Emits `daytona.git.pulled` on the default channel with `sandboxId`, `path` and `branch` (the
branch pulled into).

## Notes

- A merge conflict fails the node with git's message; the repository is left as git left it.
- **Credentials go to git inside the sandbox.** Daytona's git API hands them to git in the
  sandbox, so the repository's remote, hooks and git config there decide where they go. Pull with credentials
  only from a sandbox where no untrusted code ran: code that ran there (a test suite, a bootstrap,
  an agent) can change the remote, or write a hook or a credential config that sees or redirects
  them. To publish the result of untrusted code, clone the repository again into a fresh sandbox
  and pull from there (as examples/webhook-report.yaml does).
- The credentials are never shown in payloads, logs or errors (a failure's message has them masked).
- Pulling again finds the branch up to date, so an engine restart may repeat it.
"""


class GitPullConfig(ComponentConfig):
    sandbox: SandboxRef
    path: RepositoryPath
    credentials: Credentials = None
    timeout: Annotated[
        int, Spec("Timeout (seconds)", "Seconds the pull may take.", minimum=1, maximum=86400)
    ] = DEFAULT_TIMEOUT_SECONDS


class GitPull(DaytonaComponent[GitPullConfig]):
    name: ClassVar[str] = "daytona.gitPull"
    label: ClassVar[str] = "Git Pull"
    description: ClassVar[str] = "Pull the remote's commits into the current branch of a repository."
    icon: ClassVar[str] = "git-branch"
    channels = (DEFAULT_CHANNEL,)
    payload_type = GitPulledPayload
    config_model = GitPullConfig
    docs = DOCS

    async def run(self, step: Step, config: GitPullConfig) -> Outcome:
        sandbox_id, branch = await transfer_branch(step, config, "git pull", step.client.git_pull)
        payload = GitPulledPayload(sandbox_id=sandbox_id, path=config.path, branch=branch)
        return Outcome(DEFAULT_CHANNEL.name, payload)
