"""daytona.createSandbox: create a sandbox and wait, without blocking, until it is started."""

from __future__ import annotations

from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import SandboxCreationConfig, Spec
from daytonaflow.components._payloads import SandboxPayload
from daytonaflow.components._step import Outcome, Step
from daytonaflow.components._wire import STARTED

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
- **Auto Archive Interval**: minutes a stopped sandbox waits before it is archived (0: the
  longest Daytona allows; Daytona's default, 7 days, when empty)
- **Auto Delete Interval**: minutes a stopped sandbox waits before it is deleted (0: as soon as
  it stops, -1 or empty: never)
- **CPU**, **Memory**, **Disk**: cores, GiB and GiB of the sandbox (optional; the snapshot's
  defaults when empty)
- **Environment Variables**: name/value pairs set in the sandbox
- **Secrets**: secret references written into the sandbox after it starts, as files (mode 600)
  or as environment variables that later execute steps see (see *Secrets* below)
- **Public Previews**, **Labels**: optional sandbox settings
- **Network**: outbound network: the backend's default (Daytona's cloud allows it, the local
  server blocks it), allow (only to the **Network Allow List**'s IPv4 CIDR blocks when one is
  given), or block all; sent as Daytona's `networkBlockAll` and `networkAllowList`
- **Volumes**: volumes mounted read-write, each by its name or ID (from createVolume) at a
  **Mount Path**, optionally only a **Subpath** of it; a volume is shared by every sandbox
  that mounts it and outlives them. Names are looked up before the create: a volume that does
  not exist fails the node, naming the field and the volume, and no sandbox is made
- **Preview Port**: optional; a port whose preview URL the output carries
- **Start Timeout**: seconds to wait for the sandbox to start (default 300)

## Output

Emits `daytona.sandbox` on the default channel:

- `id`: the sandbox ID; use it in executeCode, executeCommand, getPreviewUrl and deleteSandbox
- `state`: the sandbox state, `started`
- `previewUrl`, `previewToken`: only with a **Preview Port**: that port's standard preview URL
  and the `x-daytona-preview-token` header value its requests need (unless the sandbox's
  previews are public); the URL serves once something listens on the port (getPreviewUrl makes
  signed URLs)

## Notes

- The component checks the sandbox state first after a few milliseconds, then backs off
  to a couple of seconds between checks; other nodes run while it waits.
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
    timeout: Annotated[
        int,
        Spec(
            "Start Timeout (seconds)",
            "How long to wait for the sandbox to reach started before failing (and deleting it).",
            minimum=1,
            maximum=86400,
        ),
    ] = 300


class CreateSandbox(DaytonaComponent[CreateSandboxConfig]):
    name: ClassVar[str] = "daytona.createSandbox"
    label: ClassVar[str] = "Create Sandbox"
    description: ClassVar[str] = "Create an isolated Daytona sandbox and wait until it is started."
    icon: ClassVar[str] = "box"
    channels = (DEFAULT_CHANNEL,)
    payload_type = SandboxPayload
    config_model = CreateSandboxConfig
    docs = DOCS
    creates_sandbox = True

    async def run(self, step: Step, config: CreateSandboxConfig) -> Outcome:
        sandbox_id = await step.create_sandbox(config, config.timeout)
        link = None
        if config.preview_port is not None:
            link = await step.client.get_preview_url(sandbox_id, config.preview_port)
        payload = SandboxPayload(
            id=sandbox_id,
            state=STARTED,
            preview_url=None if link is None else link.url,
            preview_token=None if link is None else link.token,
        )
        return Outcome(DEFAULT_CHANNEL.name, payload)
