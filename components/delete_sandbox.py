"""daytona.deleteSandbox: delete a sandbox; one that is already gone is reported, not raised."""

from __future__ import annotations

from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._errors import DaytonaNotFoundError
from daytonaflow.components._payloads import DeletePayload
from daytonaflow.components._step import SANDBOX_RESOURCE, Outcome, Step

DOCS = """
Deletes an existing Daytona sandbox.

## Use cases

- **Resource cleanup**: delete sandboxes once code execution is complete
- **Cost management**: remove unused sandboxes to free resources
- **Workflow cleanup**: clean up sandboxes at the end of automation workflows

## Configuration

- **Sandbox**: the ID or name of the sandbox to delete (from createSandbox output)
- **Force**: delete even if the sandbox is running or busy

## Output

Emits `daytona.delete.response` on the default channel:

- `deleted`: whether this call deleted the sandbox
- `id`: the ID of the sandbox
- `alreadyDeleted`: present and `true` when the sandbox did not exist anymore (then `deleted`
  is `false`; the node still succeeds)

## Notes

- Always delete sandboxes that are no longer needed: auto-stop stops them after the configured
  interval, but only deletion frees their resources at once.
- Deleting a sandbox releases it from the run's resources, so the engine does not reclaim it again.
"""


class DeleteSandboxConfig(ComponentConfig):
    sandbox: SandboxRef
    force: Annotated[bool, Spec("Force", "Delete even if the sandbox is running or busy.")] = False


class DeleteSandbox(DaytonaComponent[DeleteSandboxConfig]):
    name: ClassVar[str] = "daytona.deleteSandbox"
    label: ClassVar[str] = "Delete Sandbox"
    description: ClassVar[str] = "Delete a Daytona sandbox; one already gone is reported, not an error."
    icon: ClassVar[str] = "trash"
    channels = (DEFAULT_CHANNEL,)
    payload_type = DeletePayload
    config_model = DeleteSandboxConfig
    docs = DOCS

    async def run(self, step: Step, config: DeleteSandboxConfig) -> Outcome:
        sandbox_id = config.sandbox
        # A re-run after the engine died mid-call must not report its own deletion as someone else's.
        earlier_attempt = bool(step.get("deleting"))
        step.save(deleting=True)
        try:
            answer = await step.client.delete_sandbox(config.sandbox, force=config.force)
        except DaytonaNotFoundError:
            deleted = earlier_attempt
        else:
            deleted = True
            # The configuration may name the sandbox; resources and the payload use its ID.
            if answer is not None:
                sandbox_id = answer.id
        step.ctx.resources.release(SANDBOX_RESOURCE, sandbox_id)
        payload = DeletePayload(deleted=deleted, id=sandbox_id, already_deleted=None if deleted else True)
        return Outcome(DEFAULT_CHANNEL.name, payload)
