"""daytona.listSnapshots: the snapshots new sandboxes can start from."""

from __future__ import annotations

from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, Spec
from daytonaflow.components._payloads import SnapshotsListedPayload, SnapshotSummary
from daytonaflow.components._step import Outcome, Step

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

DOCS = """
Lists the Daytona snapshots sandboxes can be created from.

## Use cases

- **Pick a base environment**: find the snapshot a createSandbox node should start from
- **Check before creating**: branch on whether a snapshot exists (an `if` on `count`)
- **Housekeeping**: report which snapshots an organization holds

## Configuration

- **Name**: optional; only snapshots whose name contains it
- **Limit**: the most snapshots to list (default 100, at most 1000)

## Output

Emits `daytona.snapshots.listed` on the default channel:

- `snapshots`: one entry per snapshot with `id`, `name` (what a create's Snapshot field takes),
  `state` (`active` when sandboxes can start from it), `imageName`, `size` (GB, when known) and
  `createdAt`
- `count`: how many snapshots the list holds

## Notes

- Snapshots come in Daytona's order, the last used first; pages are read until the limit.
- Finding none is not an error: `snapshots` is empty and `count` is 0.
"""


class ListSnapshotsConfig(ComponentConfig):
    name: Annotated[
        str | None,
        Spec("Name", "Only snapshots whose name contains this (all when empty).", placeholder="python"),
    ] = None
    limit: Annotated[int, Spec("Limit", "The most snapshots to list.", minimum=1, maximum=MAX_LIMIT)] = (
        DEFAULT_LIMIT
    )


class ListSnapshots(DaytonaComponent[ListSnapshotsConfig]):
    name: ClassVar[str] = "daytona.listSnapshots"
    label: ClassVar[str] = "List Snapshots"
    description: ClassVar[str] = "List the Daytona snapshots sandboxes can be created from."
    icon: ClassVar[str] = "layers"
    channels = (DEFAULT_CHANNEL,)
    payload_type = SnapshotsListedPayload
    config_model = ListSnapshotsConfig
    docs = DOCS

    async def run(self, step: Step, config: ListSnapshotsConfig) -> Outcome:
        found = await step.client.list_snapshots(name=config.name, limit=config.limit)
        snapshots = [
            SnapshotSummary(
                id=snapshot.id,
                name=snapshot.name,
                state=snapshot.state,
                image_name=snapshot.image_name,
                size=snapshot.size,
                created_at=snapshot.created_at,
            )
            for snapshot in found
        ]
        return Outcome(
            DEFAULT_CHANNEL.name, SnapshotsListedPayload(snapshots=snapshots, count=len(snapshots))
        )
