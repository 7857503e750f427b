"""daytona.gitCheckout: switch a repository in a sandbox to a branch, creating it when asked."""

from __future__ import annotations

from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._git import RepositoryPath, git_failure, sandbox_id_of
from daytonaflow.components._payloads import GitCheckedOutPayload
from daytonaflow.components._step import Outcome, Step
from daytonaflow.errors import ComponentError

DOCS = """
Switches a git repository in an existing Daytona sandbox to a branch, or creates the branch
from the current commit and switches to it.

## Use cases

- **Work branches**: give an agent's changes a branch of their own before committing
- **Reports**: put a failure report on a branch named after the run
- **Reviews**: check out the branch of a pull request to test it

## Configuration

- **Sandbox**: the sandbox ID or name
- **Repository Path**: the repository's directory, absolute or relative to the sandbox user's home
- **Branch**: the branch to switch to (or a commit, which detaches HEAD)
- **Create**: create the branch from the current commit first (it must not exist yet)

## Output

Emits `daytona.git.checkedOut` on the default channel with `sandboxId`, `path`, `branch` and
`created` (whether this node created the branch).

## Notes

- Uncommitted changes are carried over to the branch when git can; otherwise the node fails
  with git's message.
- With **Create**, a branch that already exists fails the node (turn Create off to switch to
  it); a branch this node created before an engine restart is switched to, not created twice.
"""


class GitCheckoutConfig(ComponentConfig):
    sandbox: SandboxRef
    path: RepositoryPath
    branch: Annotated[str, Spec("Branch", "The branch to switch to.", placeholder="feature/report")]
    create: Annotated[bool, Spec("Create", "Create the branch from the current commit first.")] = False


class GitCheckout(DaytonaComponent[GitCheckoutConfig]):
    name: ClassVar[str] = "daytona.gitCheckout"
    label: ClassVar[str] = "Git Checkout"
    description: ClassVar[str] = "Switch a git repository in a sandbox to a branch, or create it."
    icon: ClassVar[str] = "git-branch"
    channels = (DEFAULT_CHANNEL,)
    payload_type = GitCheckedOutPayload
    config_model = GitCheckoutConfig
    docs = DOCS

    async def run(self, step: Step, config: GitCheckoutConfig) -> Outcome:
        sandbox_id = await sandbox_id_of(step, config.sandbox)
        where, branch = config.path, config.branch
        if config.create:
            with git_failure(f"listing the branches of {where}"):
                exists = branch in await step.client.git_branches(sandbox_id, where)
            # A create an earlier attempt sent (its answer lost to a restart) made the branch.
            if exists and not step.get("creating"):
                raise ComponentError(
                    f"branch {branch!r} already exists in {where}: turn create off to switch to it"
                )
            if not exists:
                step.save(creating=True)
                with git_failure(f"creating branch {branch!r} in {where}"):
                    await step.client.git_create_branch(sandbox_id, where, branch)
        # Daytona's create also switches; switching again makes it so on every toolbox.
        with git_failure(f"git checkout of {branch!r} in {where}"):
            await step.client.git_checkout(sandbox_id, where, branch)
        payload = GitCheckedOutPayload(
            sandbox_id=sandbox_id, path=where, branch=branch, created=config.create
        )
        return Outcome(DEFAULT_CHANNEL.name, payload)
