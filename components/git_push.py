"""daytona.gitPush: push the current branch of a repository in a sandbox to its remote."""

from __future__ import annotations

from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._git import Credentials, RepositoryPath, transfer_branch
from daytonaflow.components._payloads import GitPushedPayload
from daytonaflow.components._step import Outcome, Step

DEFAULT_TIMEOUT_SECONDS = 300

DOCS = """
Pushes the current branch of a git repository in an existing Daytona sandbox to its remote.

## Use cases

- **Publish agent work**: push the branch a coding agent committed to, for a pull request
- **Reports**: push a committed report to a branch of its own
- **Mirrors**: publish a build's generated files

## Configuration

- **Sandbox**: the sandbox ID or name
- **Repository Path**: the repository's directory, absolute or relative to the sandbox user's home
- **Credentials**: optional; a **Username** and a **Password or Token** from a secret, for
  HTTPS remotes that need them
- **Timeout**: seconds the push may take (default 300)

## Output

Emits `daytona.git.pushed` on the default channel with `sandboxId`, `path` and `branch` (the
branch pushed, to the branch of the same name on the remote the repository was cloned from).

## Notes

- To push to a new branch, create it first with gitCheckout (**Create**), then commit.
- **Credentials go to git inside the sandbox.** Daytona's git API hands them to git in the
  sandbox, so the repository's remote, hooks and git config there decide where they go. Push
  only from a sandbox where no untrusted code ran: code that ran there (a test suite, a bootstrap,
  an agent) can change the remote, or write a hook or a credential config that sees or redirects
  them. To publish the result of untrusted code, clone the repository again into a fresh sandbox
  and push from there (as examples/webhook-report.yaml does).
- The credentials are never written into the repository, a payload, a log or an error (a
  failure's message has them masked). A rejected push (wrong credentials, a non-fast-forward)
  fails the node with git's reason.
- Pushing again what the remote already has changes nothing, so an engine restart may repeat it.
"""


class GitPushConfig(ComponentConfig):
    sandbox: SandboxRef
    path: RepositoryPath
    credentials: Credentials = None
    timeout: Annotated[
        int, Spec("Timeout (seconds)", "Seconds the push may take.", minimum=1, maximum=86400)
    ] = DEFAULT_TIMEOUT_SECONDS


class GitPush(DaytonaComponent[GitPushConfig]):
    name: ClassVar[str] = "daytona.gitPush"
    label: ClassVar[str] = "Git Push"
    description: ClassVar[str] = "Push the current branch of a git repository in a sandbox to its remote."
    icon: ClassVar[str] = "git-branch"
    channels = (DEFAULT_CHANNEL,)
    payload_type = GitPushedPayload
    config_model = GitPushConfig
    docs = DOCS

    async def run(self, step: Step, config: GitPushConfig) -> Outcome:
        sandbox_id, branch = await transfer_branch(step, config, "git push", step.client.git_push)
        payload = GitPushedPayload(sandbox_id=sandbox_id, path=config.path, branch=branch)
        return Outcome(DEFAULT_CHANNEL.name, payload)
