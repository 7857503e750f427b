"""daytona.archiveSandbox: archive a stopped sandbox and wait until it is archived."""

from __future__ import annotations

from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._payloads import SandboxPayload
from daytonaflow.components._step import Outcome, Step

ARCHIVED = "archived"

DOCS = """
Archives a stopped Daytona sandbox and waits until it is archived.

## Use cases

- **Long-term storage**: keep a sandbox's filesystem for later without holding its disk
- **Cost management**: archive sandboxes a workflow may need again weeks later
- **Clean-up with a way back**: startSandbox restores an archived sandbox

## Configuration

- **Sandbox**: the ID or name of the sandbox to archive (stop it first with stopSandbox)
- **Timeout**: seconds to wait for the sandbox to reach `archived` (default 600)

## Output

Emits `daytona.sandbox` on the default channel:

- `id`: the sandbox ID
- `state`: `archived`

## Notes

- Only a stopped sandbox can be archived; Daytona refuses others, and the node fails saying so.
- A backend that cannot archive (the local server, `daytonaflow serve`) answers so, and the node
  fails with that answer, naming the node and the sandbox.
- A sandbox that is already archived is reported as it is; nothing is asked of Daytona.
"""


class ArchiveSandboxConfig(ComponentConfig):
    sandbox: SandboxRef
    timeout: Annotated[
        int,
        Spec(
            "Timeout (seconds)",
            "How long to wait for the sandbox to reach archived.",
            minimum=1,
            maximum=86400,
        ),
    ] = 600


class ArchiveSandbox(DaytonaComponent[ArchiveSandboxConfig]):
    name: ClassVar[str] = "daytona.archiveSandbox"
    label: ClassVar[str] = "Archive Sandbox"
    description: ClassVar[str] = "Archive a stopped sandbox and wait until it is archived."
    icon: ClassVar[str] = "archive"
    channels = (DEFAULT_CHANNEL,)
    payload_type = SandboxPayload
    config_model = ArchiveSandboxConfig
    docs = DOCS

    async def run(self, step: Step, config: ArchiveSandboxConfig) -> Outcome:
        sandbox = await step.bring_sandbox_to(
            config.sandbox, ARCHIVED, step.client.archive_sandbox, timeout=config.timeout, verb="archive"
        )
        return Outcome(DEFAULT_CHANNEL.name, SandboxPayload(id=sandbox.id, state=ARCHIVED))
