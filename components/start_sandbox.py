"""daytona.startSandbox: start a stopped (or archived) sandbox and wait until it is started."""

from __future__ import annotations

from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._payloads import SandboxPayload
from daytonaflow.components._step import Outcome, Step
from daytonaflow.components._wire import STARTED

DOCS = """
Starts a stopped or archived Daytona sandbox and waits until it is started.

## Use cases

- **Resume work**: bring back a sandbox stopped by auto-stop or by stopSandbox, files intact
- **Scheduled jobs**: start a long-lived sandbox for a nightly run, stop it afterwards
- **Warm pools**: keep sandboxes stopped between runs and start them on demand

## Configuration

- **Sandbox**: the ID or name of the sandbox to start
- **Timeout**: seconds to wait for the sandbox to reach `started` (default 300)

## Output

Emits `daytona.sandbox` on the default channel:

- `id`: the sandbox ID
- `state`: `started`

## Notes

- A sandbox that is already started is reported as it is; nothing is asked of Daytona.
- The wait is the one createSandbox uses: first check after a few milliseconds, backing off to a
  couple of seconds; other nodes run meanwhile. A sandbox that enters `error`, is deleted, or is
  not started by the timeout fails the node (it is not deleted).
- Processes do not survive a stop: start servers again with executeCommand.
"""


class StartSandboxConfig(ComponentConfig):
    sandbox: SandboxRef
    timeout: Annotated[
        int,
        Spec(
            "Timeout (seconds)",
            "How long to wait for the sandbox to reach started.",
            minimum=1,
            maximum=86400,
        ),
    ] = 300


class StartSandbox(DaytonaComponent[StartSandboxConfig]):
    name: ClassVar[str] = "daytona.startSandbox"
    label: ClassVar[str] = "Start Sandbox"
    description: ClassVar[str] = "Start a stopped or archived sandbox and wait until it is started."
    icon: ClassVar[str] = "play"
    channels = (DEFAULT_CHANNEL,)
    payload_type = SandboxPayload
    config_model = StartSandboxConfig
    docs = DOCS

    async def run(self, step: Step, config: StartSandboxConfig) -> Outcome:
        sandbox = await step.bring_sandbox_to(
            config.sandbox, STARTED, step.client.start_sandbox, timeout=config.timeout, verb="start"
        )
        return Outcome(DEFAULT_CHANNEL.name, SandboxPayload(id=sandbox.id, state=STARTED))
