"""daytona.createVolume: a volume ready to mount, made once; one of that name already there is reused."""

from __future__ import annotations

from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components import _timing
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, Spec
from daytonaflow.components._payloads import VolumePayload
from daytonaflow.components._step import Outcome, Step
from daytonaflow.components._wire import VolumeInfo
from daytonaflow.errors import ComponentError

READY = "ready"
#: States after which a volume will never become ready by itself.
_FAILED_STATES = frozenset({"error"})
_GONE_STATES = frozenset({"pending_delete", "deleting", "deleted"})
DEFAULT_TIMEOUT_SECONDS = 300

DOCS = """
Creates a Daytona volume (persistent storage that sandboxes mount), or reuses the one of that name.

## Use cases

- **Caches between runs**: keep package or build caches that every run's sandboxes mount
- **Sharing between sandboxes**: one sandbox writes results that another reads
- **Data that outlives sandboxes**: inputs and outputs kept when the sandboxes are deleted

## Configuration

- **Name**: the volume's name; mount it with a create component's **Volumes** field by this
  name or by the ID in the output
- **Timeout**: seconds to wait for the volume to become ready (default 300)

## Output

Emits `daytona.volume` on the default channel:

- `id`: the volume ID
- `name`: its name
- `state`: `ready`
- `existing`: present and `true` when a volume of that name existed already (it is reused,
  never created twice); the node still succeeds

## Notes

- The component waits for the volume to become ready, first after a few milliseconds, then
  backing off to a couple of seconds between checks; other nodes run while it waits.
- A volume that enters `error`, is deleted while it is made, or is not ready before the timeout
  fails the node; the volume is left as it is (volumes are never deleted by a run: deleteVolume
  does that).
- A re-run after the engine stopped mid-create finds the volume it made and reports it as made,
  not as existing.
"""


class CreateVolumeConfig(ComponentConfig):
    name: Annotated[
        str, Spec("Name", "The volume's name (unique in the organization).", placeholder="build-cache")
    ]
    timeout: Annotated[
        int,
        Spec(
            "Timeout (seconds)",
            "How long to wait for the volume to become ready before failing.",
            minimum=1,
            maximum=86400,
        ),
    ] = DEFAULT_TIMEOUT_SECONDS


class CreateVolume(DaytonaComponent[CreateVolumeConfig]):
    name: ClassVar[str] = "daytona.createVolume"
    label: ClassVar[str] = "Create Volume"
    description: ClassVar[str] = (
        "Create a Daytona volume (or reuse the one of that name) and wait until it is ready."
    )
    icon: ClassVar[str] = "hard-drive"
    channels = (DEFAULT_CHANNEL,)
    payload_type = VolumePayload
    config_model = CreateVolumeConfig
    docs = DOCS

    async def run(self, step: Step, config: CreateVolumeConfig) -> Outcome:
        known: VolumeInfo | None = None
        if step.get("volume") is None:
            # A re-run after the engine died mid-create must not report its own volume as existing.
            earlier_attempt = bool(step.get("creatingVolume"))
            step.save(creatingVolume=True)
            known, sent = await step.client.create_volume(config.name)
            step.save(
                volume=known.id,
                existing=not (sent or earlier_attempt),
                volumeDeadline=_timing.now() + config.timeout,
            )
        volume = await _until_ready(step, config, str(step.get("volume")), known)
        payload = VolumePayload(
            id=volume.id,
            name=volume.name,
            state=volume.state,
            existing=True if step.get("existing") else None,
        )
        return Outcome(DEFAULT_CHANNEL.name, payload)


async def _until_ready(
    step: Step, config: CreateVolumeConfig, volume_id: str, known: VolumeInfo | None
) -> VolumeInfo:
    """The volume once it is ready (waiting through the step, which may hand the wait to the engine)."""
    deadline = float(step.get("volumeDeadline"))
    described = f'volume "{config.name}" ({volume_id})'

    async def ready() -> VolumeInfo | None:
        nonlocal known
        volume = known or await step.client.get_volume(volume_id)
        known = None
        if volume.state == READY:
            return volume
        if volume.state in _FAILED_STATES:
            reason = f": {volume.error_reason}" if volume.error_reason else ""
            raise ComponentError(f"{described} entered state {volume.state}{reason}")
        if volume.state in _GONE_STATES:
            raise ComponentError(f"{described} was deleted while it was being created (state {volume.state})")
        if _timing.now() >= deadline:
            raise ComponentError(
                f"{described} did not become ready within {config.timeout} s (last state {volume.state})"
            )
        return None

    # The probe fails the node at the deadline; poll() ends without an answer only when the deadline
    # passed between the probe's look at the clock and its own, and the next probe then fails.
    limit = step.wait_limit(f"volume:{volume_id}")
    while (answer := await step.poll(ready, deadline=deadline, limit=limit)) is None:
        continue
    return answer
