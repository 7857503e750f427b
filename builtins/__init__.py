"""daytonaflow.builtins: the components that come with daytonaflow itself, not from a plugin.

The registry adds them to the components discovered through entry points; they speak to no
Daytona API (the Daytona components live in ``daytonaflow.components``).
"""

from daytonaflow.builtins.http import HttpRequest, HttpResponsePayload
from daytonaflow.component import Component

#: Built-in components by name (the start trigger is not one: the engine handles it directly).
BUILTIN_COMPONENTS: dict[str, type[Component]] = {HttpRequest.name: HttpRequest}

__all__ = ["BUILTIN_COMPONENTS", "HttpRequest", "HttpResponsePayload"]
