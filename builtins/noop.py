"""The built-in ``noop`` component (SuperPlane's "No Operation"): emits an empty payload at once."""

from __future__ import annotations

from typing import ClassVar

from daytonaflow.builtins._base import BuiltinComponent
from daytonaflow.component import ExecutionContext
from daytonaflow.events import Payload


class NoopPayload(Payload):
    event_type: ClassVar[str] = "noop.finished"


_DOCS = """\
The No Operation component passes a run on to the next nodes without doing anything: a placeholder
while a canvas is being built, or a single point several branches continue from.

## Behaviour
It has no configuration. It emits an empty payload (`noop.finished`) on `default` as soon as it
runs; the data of earlier nodes stays reachable downstream through `$["Node Name"]`, `previous()`
and `root()`.
"""


class Noop(BuiltinComponent):
    name: ClassVar[str] = "noop"
    label: ClassVar[str] = "No Operation"
    description: ClassVar[str] = "Pass the run on to the next nodes without doing anything."
    icon: ClassVar[str] = "circle-off"
    color: ClassVar[str] = "blue"
    payload_type: ClassVar[type[Payload]] = NoopPayload
    docs: ClassVar[str] = _DOCS

    async def execute(self, ctx: ExecutionContext) -> None:
        self.settings(ctx)
        ctx.emit("default", NoopPayload())
