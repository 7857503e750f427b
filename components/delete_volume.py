"""daytona.deleteVolume: delete a volume by ID or name; one that is already gone is reported, not raised."""

from __future__ import annotations

from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, Spec
from daytonaflow.components._errors import DaytonaConflictError, DaytonaNotFoundError
from daytonaflow.components._payloads import VolumeDeletedPayload
from daytonaflow.components._step import Outcome, Step
from daytonaflow.errors import ComponentError

#: States of a volume whose deletion is under way or done: deleting it again does nothing more.
_DELETED_STATES = frozenset({"pending_delete", "deleting", "deleted"})

DOCS = """
Deletes a Daytona volume and the data in it.

## Use cases

- **Drop a cache**: start the next runs from an empty cache volume
- **Clean up shared data**: remove a volume once the sandboxes that shared it are done
- **Workflow cleanup**: delete the volumes a workflow made, at its end

## Configuration

- **Volume**: the ID or name of the volume to delete (from createVolume output)

## Output

Emits `daytona.volume.deleted` on the default channel:

- `deleted`: whether this call deleted the volume
- `id`: the ID of the volume (the configured name or ID when no such volume exists)
- `alreadyDeleted`: present and `true` when the volume did not exist anymore (then `deleted` is
  `false`; the node still succeeds)

## Notes

- A volume that a sandbox still mounts cannot be deleted: Daytona answers 409 and the node fails,
  naming the volume; delete the sandboxes that mount it first.
- Daytona deletes a volume in the background: right after this node it may still be listed, in
  state `pending_delete` or `deleting`.
"""


class DeleteVolumeConfig(ComponentConfig):
    volume: Annotated[
        str,
        Spec(
            "Volume",
            "The volume ID or name, usually from a createVolume node: "
            '{{ $["daytona.createVolume"].data.id }}',
            placeholder='{{ $["daytona.createVolume"].data.id }}',
        ),
    ]


class DeleteVolume(DaytonaComponent[DeleteVolumeConfig]):
    name: ClassVar[str] = "daytona.deleteVolume"
    label: ClassVar[str] = "Delete Volume"
    description: ClassVar[str] = "Delete a Daytona volume; one already gone is reported, not an error."
    icon: ClassVar[str] = "trash"
    channels = (DEFAULT_CHANNEL,)
    payload_type = VolumeDeletedPayload
    config_model = DeleteVolumeConfig
    docs = DOCS

    async def run(self, step: Step, config: DeleteVolumeConfig) -> Outcome:
        # A re-run after the engine died mid-call must not report its own deletion as someone else's.
        earlier_attempt = bool(step.get("deleting"))
        step.save(deleting=True)
        volume = await step.client.find_volume(config.volume)
        deleted = False
        if volume is not None and volume.state not in _DELETED_STATES:
            try:
                await step.client.delete_volume(volume.id)
            except DaytonaNotFoundError:
                pass
            except DaytonaConflictError as error:
                raise ComponentError(
                    f'volume "{volume.name}" ({volume.id}) is in use and cannot be deleted: {error.message}.'
                    " Delete the sandboxes that mount it first"
                ) from None
            else:
                deleted = True
        deleted = deleted or earlier_attempt
        payload = VolumeDeletedPayload(
            deleted=deleted,
            id=config.volume if volume is None else volume.id,
            already_deleted=None if deleted else True,
        )
        return Outcome(DEFAULT_CHANNEL.name, payload)
