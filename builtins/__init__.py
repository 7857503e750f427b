"""daytonaflow.builtins: the core components that come with daytonaflow itself (SuperPlane's names).

They register through the ``daytonaflow.components`` entry points like the Daytona components,
and speak to no Daytona API (the Daytona components live in ``daytonaflow.components``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daytonaflow import _lazy_exports

if TYPE_CHECKING:
    from daytonaflow.builtins.filter import Filter, FilterPayload
    from daytonaflow.builtins.http import HttpFailedPayload, HttpRequest, HttpResponsePayload
    from daytonaflow.builtins.if_ import If, IfPayload
    from daytonaflow.builtins.merge import Merge, MergePayload, MergeStoppedPayload, MergeTimeoutPayload
    from daytonaflow.builtins.noop import Noop, NoopPayload
    from daytonaflow.builtins.schedule import Schedule, SchedulerTickPayload
    from daytonaflow.builtins.wait import Wait, WaitPayload
    from daytonaflow.builtins.webhook import Webhook, WebhookPayload
    from daytonaflow.component import Component

    #: Built-in components by name, the schedule and webhook triggers too (the start trigger is not
    #: one: the engine handles it directly).
    BUILTIN_COMPONENTS: dict[str, type[Component]]

#: Where each public name lives: an entry point imports its one component's module, not all six.
_EXPORTS = {
    "Filter": "daytonaflow.builtins.filter",
    "FilterPayload": "daytonaflow.builtins.filter",
    "HttpFailedPayload": "daytonaflow.builtins.http",
    "HttpRequest": "daytonaflow.builtins.http",
    "HttpResponsePayload": "daytonaflow.builtins.http",
    "If": "daytonaflow.builtins.if_",
    "IfPayload": "daytonaflow.builtins.if_",
    "Merge": "daytonaflow.builtins.merge",
    "MergePayload": "daytonaflow.builtins.merge",
    "MergeStoppedPayload": "daytonaflow.builtins.merge",
    "MergeTimeoutPayload": "daytonaflow.builtins.merge",
    "Noop": "daytonaflow.builtins.noop",
    "NoopPayload": "daytonaflow.builtins.noop",
    "Schedule": "daytonaflow.builtins.schedule",
    "SchedulerTickPayload": "daytonaflow.builtins.schedule",
    "Wait": "daytonaflow.builtins.wait",
    "WaitPayload": "daytonaflow.builtins.wait",
    "Webhook": "daytonaflow.builtins.webhook",
    "WebhookPayload": "daytonaflow.builtins.webhook",
}

#: The components, in the order the docs and the manifest list them.
_COMPONENT_NAMES = ("HttpRequest", "If", "Filter", "Merge", "Wait", "Noop", "Schedule", "Webhook")

# Hidden from type checkers: they see the names imported above, and a misspelt one stays an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy_exports(
        globals(),
        _EXPORTS,
        {
            "BUILTIN_COMPONENTS": lambda: {
                component.name: component for component in map(__getattr__, _COMPONENT_NAMES)
            }
        },
    )

__all__ = [
    "BUILTIN_COMPONENTS",
    "Filter",
    "FilterPayload",
    "HttpFailedPayload",
    "HttpRequest",
    "HttpResponsePayload",
    "If",
    "IfPayload",
    "Merge",
    "MergePayload",
    "MergeStoppedPayload",
    "MergeTimeoutPayload",
    "Noop",
    "NoopPayload",
    "Schedule",
    "SchedulerTickPayload",
    "Wait",
    "WaitPayload",
    "Webhook",
    "WebhookPayload",
]
