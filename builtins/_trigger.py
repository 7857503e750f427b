"""What the trigger components share: they start runs and never run inside one."""

from __future__ import annotations

from typing import ClassVar

from daytonaflow.builtins._base import BuiltinComponent
from daytonaflow.component import ExecutionContext
from daytonaflow.errors import ComponentError


class TriggerComponent(BuiltinComponent):
    """A trigger: the process that keeps it armed (``daytonaflow up``) turns what it receives into
    the event a run starts from; the engine emits that event for the node, it never executes it."""

    trigger: ClassVar[bool] = True

    async def execute(self, ctx: ExecutionContext) -> None:
        # Validation refuses a trigger set as an action node, so only a caller bypassing it gets here.
        raise ComponentError(
            f'node "{ctx.node_id}": {self.name} is a trigger, it starts runs and runs in none'
        )
