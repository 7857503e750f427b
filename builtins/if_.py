"""The built-in ``if`` component: a bare boolean expression routes the run to ``true`` or ``false``."""

from __future__ import annotations

from typing import ClassVar

from daytonaflow.builtins._base import BuiltinComponent, evaluate_condition, expression_field
from daytonaflow.component import Channel, ExecutionContext
from daytonaflow.events import Payload

TRUE_CHANNEL = Channel("true", "True", "The expression evaluated to true.")
FALSE_CHANNEL = Channel("false", "False", "The expression evaluated to false.")


class IfPayload(Payload):
    event_type: ClassVar[str] = "if.executed"


_DOCS = """\
The If component evaluates a boolean expression and continues the run on `true` or on `false`.

## Configuration
- **Condition** (`expression`): a bare expression, written without `{{ }}` or `<< >>`, e.g.
  `$["Run Tests"].data.exitCode == 0`. It sees what templates see: `$["Node Name"]`, `root()`,
  `previous()`.

## Behaviour
- The result `true` emits on `true`, `false` on `false`; the payload (`if.executed`) is empty.
- Any other result (a string, a number, null) fails the node, naming the node, the field and the
  value: SuperPlane does the same (no truthiness: write `len(x) > 0`, not `x`).
"""


class If(BuiltinComponent):
    name: ClassVar[str] = "if"
    label: ClassVar[str] = "If"
    description: ClassVar[str] = "Route the run on a boolean expression: true or false."
    icon: ClassVar[str] = "split"
    color: ClassVar[str] = "red"
    channels = (TRUE_CHANNEL, FALSE_CHANNEL)
    payload_type: ClassVar[type[Payload]] = IfPayload
    literal_fields: ClassVar[frozenset[str]] = frozenset({"expression"})
    fields = (expression_field("expression", "Condition", "Boolean expression to evaluate."),)
    docs: ClassVar[str] = _DOCS

    async def execute(self, ctx: ExecutionContext) -> None:
        settings = self.settings(ctx)
        matched = evaluate_condition(ctx, settings["expression"], "expression")
        ctx.emit(TRUE_CHANNEL.name if matched else FALSE_CHANNEL.name, IfPayload())
