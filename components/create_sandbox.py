"""daytona.createSandbox: create a sandbox and wait, without blocking, until it is started."""

from __future__ import annotations

from typing import ClassVar

from daytonaflow.component import DEFAULT_CHANNEL, ExecutionContext
from daytonaflow.components import sandbox_lifecycle
from daytonaflow.components.common_fields import SANDBOX_CREATION_FIELDS
from daytonaflow.components.config_parts import SandboxCreationConfig
from daytonaflow.components.fields import Field
from daytonaflow.components.payloads import SandboxPayload
from daytonaflow.components.sandbox_env import inject_secrets, resolve_secrets
from daytonaflow.components.sandbox_lifecycle import SandboxCreatingComponent, StartState
from daytonaflow.components.wire import STARTED
from daytonaflow.errors import ComponentError

START_TIMEOUT = Field(
    "timeout",
    "number",
    "Start Timeout (seconds)",
    "How long to wait for the sandbox to reach started before failing (and deleting it).",
    default=300,
    minimum=1,
    maximum=86400,
)

DOCS = """
Creates an isolated Daytona sandbox for running code safely.

## Use cases

- **AI code execution**: run AI-generated code in a secure sandbox
- **Code testing**: test untrusted code without affecting your infrastructure
- **Development environments**: create ephemeral development environments

## Configuration

- **Snapshot**: base environment snapshot (optional; Daytona's default when empty)
- **Target**: target region for the sandbox (optional)
- **Auto Stop Interval**: minutes of inactivity before the sandbox stops (0 disables)
- **Environment Variables**: name/value pairs set in the sandbox
- **Secrets**: secret references written into the sandbox after it starts, as files (mode 600)
  or as environment variables that later execute steps see (see *Secrets* below)
- **Public Previews**, **Labels**: optional sandbox settings
- **Start Timeout**: seconds to wait for the sandbox to start (default 300)

## Output

Emits `daytona.sandbox` on the default channel:

- `id`: the sandbox ID; use it in executeCode, executeCommand, getPreviewUrl and deleteSandbox
- `state`: the sandbox state, `started`

## Notes

- The component checks the sandbox state first after a few milliseconds, then backs off
  to a couple of seconds between checks; the engine is never blocked while it waits.
- A sandbox that ends in `error` or `build_failed`, or does not start before the timeout, fails
  the node and is deleted.
- Secrets: a `file` secret is written to its path with mode 600; an `env` secret is appended to
  `/home/daytona/.daytonaflow/env` (mode 600), which executeCommand, executeCode and repository
  bootstraps source before running. Secret values never appear in payloads, logs or errors;
  the sandbox's `daytonaflow.io/secret-refs` label lists the references (not the values) so that
  later steps can mask the values in the output they report.
- Secret references resolve through the host's secrets provider. Locally that is the
  environment (`DAYTONAFLOW_SECRET_<SECRET>_<KEY>`, upper-cased, other characters as `_`), then
  the JSON file `~/.config/daytonaflow/secrets.json` (`{"secretName": {"key": "value"}}`, path
  overridable with `DAYTONAFLOW_SECRETS_FILE`).
- Delete sandboxes when done (deleteSandbox); sandboxes still held at the end of a run are
  reclaimed by the engine unless the run asks to keep them.
"""


class CreateSandboxConfig(SandboxCreationConfig):
    pass


class CreateSandbox(SandboxCreatingComponent[CreateSandboxConfig]):
    name: ClassVar[str] = "daytona.createSandbox"
    label: ClassVar[str] = "Create Sandbox"
    description: ClassVar[str] = "Create an isolated Daytona sandbox and wait until it is started."
    icon: ClassVar[str] = "box"
    channels = (DEFAULT_CHANNEL,)
    payload_type = SandboxPayload
    config_model = CreateSandboxConfig
    docs = DOCS
    fields = (*SANDBOX_CREATION_FIELDS, START_TIMEOUT)

    async def execute(self, ctx: ExecutionContext) -> None:
        config = self.parse_config(ctx)
        if ctx.metadata.get().get("start"):
            await self.check(ctx)  # resumed after an engine restart
            return
        integration = self.integration(ctx)
        state, sandbox = await sandbox_lifecycle.create(ctx, integration.client, config, integration.target)
        ctx.metadata.set({"start": state.to_json()})
        if await sandbox_lifecycle.wait_started(ctx, integration.client, sandbox):
            await self._finish(ctx, config, state.sandbox_id)

    async def check(self, ctx: ExecutionContext) -> None:
        config = self.parse_config(ctx)
        client = self.client(ctx)
        sandbox_id = StartState.from_json(ctx.metadata.get()["start"]).sandbox_id
        await sandbox_lifecycle.replay_failure(ctx, client, sandbox_id)
        if await sandbox_lifecycle.wait_started(ctx, client):
            await self._finish(ctx, config, sandbox_id)

    async def _finish(self, ctx: ExecutionContext, config: CreateSandboxConfig, sandbox_id: str) -> None:
        client = self.client(ctx)
        try:
            await inject_secrets(client, sandbox_id, resolve_secrets(config.secret_specs(), ctx.secrets))
        except ComponentError as error:
            message = f"could not write secrets into sandbox {sandbox_id}: {error}"
            await sandbox_lifecycle.fail(ctx, client, sandbox_id, message)
        ctx.emit(DEFAULT_CHANNEL.name, SandboxPayload(id=sandbox_id, state=STARTED))
