"""daytona.stopSandbox: stop a started sandbox and wait until it is stopped."""

from __future__ import annotations

import functools
from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._payloads import SandboxPayload
from daytonaflow.components._step import Outcome, Step

STOPPED = "stopped"

DOCS = """
Stops a started Daytona sandbox and waits until it is stopped.

## Use cases

- **Save costs**: stop a sandbox between the steps of a long workflow, keeping its files
- **Pause work**: stop a sandbox a later run starts again with startSandbox
- **Before archiving**: a sandbox is archived once stopped (archiveSandbox)

## Configuration

- **Sandbox**: the ID or name of the sandbox to stop
- **Force**: kill its processes at once (SIGKILL) instead of asking them to end (SIGTERM)
- **Timeout**: seconds to wait for the sandbox to reach `stopped` (default 300)

## Output

Emits `daytona.sandbox` on the default channel:

- `id`: the sandbox ID
- `state`: `stopped`

## Notes

- A sandbox that is already stopped is reported as it is; nothing is asked of Daytona.
- The wait is the one createSandbox uses (milliseconds first, backing off to seconds); a sandbox
  not stopped by the timeout fails the node.
- Its files are kept; its processes (servers, background commands) end.
"""


class StopSandboxConfig(ComponentConfig):
    sandbox: SandboxRef
    force: Annotated[
        bool, Spec("Force", "Kill the sandbox's processes at once (SIGKILL) instead of SIGTERM.")
    ] = False
    timeout: Annotated[
        int,
        Spec(
            "Timeout (seconds)",
            "How long to wait for the sandbox to reach stopped.",
            minimum=1,
            maximum=86400,
        ),
    ] = 300


class StopSandbox(DaytonaComponent[StopSandboxConfig]):
    name: ClassVar[str] = "daytona.stopSandbox"
    label: ClassVar[str] = "Stop Sandbox"
    description: ClassVar[str] = "Stop a started sandbox (its files are kept) and wait until it is stopped."
    icon: ClassVar[str] = "square"
    channels = (DEFAULT_CHANNEL,)
    payload_type = SandboxPayload
    config_model = StopSandboxConfig
    docs = DOCS

    async def run(self, step: Step, config: StopSandboxConfig) -> Outcome:
        stop = functools.partial(step.client.stop_sandbox, force=config.force)
        sandbox = await step.bring_sandbox_to(
            config.sandbox, STOPPED, stop, timeout=config.timeout, verb="stop"
        )
        return Outcome(DEFAULT_CHANNEL.name, SandboxPayload(id=sandbox.id, state=STOPPED))
