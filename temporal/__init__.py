"""daytonaflow.temporal: the same canvases and components on Temporal.

Installed by ``pip install 'daytonaflow[temporal]'``.

The only package that imports ``temporalio``. Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daytonaflow import _lazy_exports

if TYPE_CHECKING:
    from daytonaflow.temporal._client import TemporalRuns, build_plan
    from daytonaflow.temporal._errors import TemporalConnectionError, TemporalError, TemporalRunNotFoundError
    from daytonaflow.temporal._records import RunOptions, RunSnapshot
    from daytonaflow.temporal._settings import (
        DEFAULT_NAMESPACE,
        DEFAULT_TASK_QUEUE,
        TemporalSettings,
        connect,
    )
    from daytonaflow.temporal._shared import WORKFLOW_NAME
    from daytonaflow.temporal._worker import build_worker, run_worker
    from daytonaflow.temporal._workflow import CanvasWorkflow

_EXPORTS = {
    "TemporalRuns": "daytonaflow.temporal._client",
    "build_plan": "daytonaflow.temporal._client",
    "TemporalConnectionError": "daytonaflow.temporal._errors",
    "TemporalError": "daytonaflow.temporal._errors",
    "TemporalRunNotFoundError": "daytonaflow.temporal._errors",
    "RunOptions": "daytonaflow.temporal._records",
    "RunSnapshot": "daytonaflow.temporal._records",
    "DEFAULT_NAMESPACE": "daytonaflow.temporal._settings",
    "DEFAULT_TASK_QUEUE": "daytonaflow.temporal._settings",
    "TemporalSettings": "daytonaflow.temporal._settings",
    "connect": "daytonaflow.temporal._settings",
    "WORKFLOW_NAME": "daytonaflow.temporal._shared",
    "build_worker": "daytonaflow.temporal._worker",
    "run_worker": "daytonaflow.temporal._worker",
    "CanvasWorkflow": "daytonaflow.temporal._workflow",
}

if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy_exports(globals(), _EXPORTS)

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_TASK_QUEUE",
    "WORKFLOW_NAME",
    "CanvasWorkflow",
    "RunOptions",
    "RunSnapshot",
    "TemporalConnectionError",
    "TemporalError",
    "TemporalRunNotFoundError",
    "TemporalRuns",
    "TemporalSettings",
    "build_plan",
    "build_worker",
    "connect",
    "run_worker",
]
