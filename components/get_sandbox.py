"""daytona.getSandbox: a sandbox's ID and current state."""

from __future__ import annotations

from typing import ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef
from daytonaflow.components._payloads import SandboxPayload
from daytonaflow.components._step import Outcome, Step

DOCS = """
Looks up an existing Daytona sandbox by ID or name.

## Use cases

- **Resolve a name**: turn a sandbox's name into its ID for later nodes
- **Check the state**: route on whether a sandbox is `started`, `stopped` or `archived` with an
  `if` node before running commands in it
- **Existence checks**: fail early when a sandbox a workflow expects is gone

## Configuration

- **Sandbox**: the ID or name of the sandbox

## Output

Emits `daytona.sandbox` on the default channel:

- `id`: the sandbox ID
- `state`: its current state (`started`, `stopped`, `archived`, `error`, ...)

## Notes

- A sandbox that does not exist fails the node, naming the sandbox.
"""


class GetSandboxConfig(ComponentConfig):
    sandbox: SandboxRef


class GetSandbox(DaytonaComponent[GetSandboxConfig]):
    name: ClassVar[str] = "daytona.getSandbox"
    label: ClassVar[str] = "Get Sandbox"
    description: ClassVar[str] = "Look up a sandbox by ID or name: its ID and current state."
    icon: ClassVar[str] = "search"
    channels = (DEFAULT_CHANNEL,)
    payload_type = SandboxPayload
    config_model = GetSandboxConfig
    docs = DOCS

    async def run(self, step: Step, config: GetSandboxConfig) -> Outcome:
        sandbox = await step.find_sandbox(config.sandbox)
        return Outcome(DEFAULT_CHANNEL.name, SandboxPayload(id=sandbox.id, state=sandbox.state or "unknown"))
