"""daytonaflow.ui: the canvas web app (``daytonaflow ui``): edit, validate, run and watch canvases.

It serves the built frontend (``static/``, from the sources in ``web/``) and a JSON API over the
runner's own manifest, validation, store and engine. What it needs from below the runner (the
sandbox backend) is handed to it by the CLI, as :class:`UIServices`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daytonaflow import _lazy_exports

if TYPE_CHECKING:
    from daytonaflow.ui._app import create_app
    from daytonaflow.ui._services import SandboxDirectory, UIServices

_EXPORTS = {
    "create_app": "daytonaflow.ui._app",
    "SandboxDirectory": "daytonaflow.ui._services",
    "UIServices": "daytonaflow.ui._services",
}

if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy_exports(globals(), _EXPORTS)

__all__ = ["SandboxDirectory", "UIServices", "create_app"]
