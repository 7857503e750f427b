"""The built-in ``filter`` component: the run goes on only when a bare boolean expression holds."""

from __future__ import annotations

from typing import ClassVar

from daytonaflow.builtins._base import BuiltinComponent, evaluate_condition, expression_field
from daytonaflow.component import DEFAULT_CHANNEL, Channel, ExecutionContext
from daytonaflow.events import Payload

FILTER_CHANNEL = Channel(DEFAULT_CHANNEL.name, "Default", "The expression evaluated to true.")


class FilterPayload(Payload):
    event_type: ClassVar[str] = "filter.executed"


_DOCS = """\
The Filter component lets the run continue only when a boolean expression holds.

## Configuration
- **Filter Expression** (`expression`): a bare expression, written without `{{ }}` or `<< >>`,
  e.g. `$["Checkout"].data.branch == "main"`.

## Behaviour
- `true`: emits an empty payload (`filter.executed`) on `default`.
- `false`: the node completes without output, so nothing after it runs on this branch (the run
  itself does not fail).
- Any other result fails the node, naming the node, the field and the value.
"""


class Filter(BuiltinComponent):
    name: ClassVar[str] = "filter"
    label: ClassVar[str] = "Filter"
    description: ClassVar[str] = "Continue the run only when a boolean expression is true."
    icon: ClassVar[str] = "funnel"
    color: ClassVar[str] = "red"
    channels = (FILTER_CHANNEL,)
    payload_type: ClassVar[type[Payload]] = FilterPayload
    literal_fields: ClassVar[frozenset[str]] = frozenset({"expression"})
    fields = (expression_field("expression", "Filter Expression", "Boolean expression to filter on."),)
    docs: ClassVar[str] = _DOCS

    async def execute(self, ctx: ExecutionContext) -> None:
        settings = self.settings(ctx)
        if evaluate_condition(ctx, settings["expression"], "expression"):
            ctx.emit(FILTER_CHANNEL.name, FilterPayload())
        # False: return without output; the execution completes and nothing downstream starts.
