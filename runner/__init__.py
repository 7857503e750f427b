"""daytonaflow.runner: load canvases, validate them, run them event by event, keep every run on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daytonaflow import _lazy_exports

if TYPE_CHECKING:
    from daytonaflow.runner.canvas import (
        ANNOTATION_COLORS,
        ANNOTATION_WIDGET,
        START_TRIGGER,
        Canvas,
        CanvasMetadata,
        CanvasSpec,
        Edge,
        Node,
        NodeType,
        Position,
        load_canvas,
        parse_canvas,
    )
    from daytonaflow.runner.engine import (
        DEFAULT_MAX_ACTIVE_HOOKS,
        DEFAULT_MAX_RESUME_ATTEMPTS,
        Engine,
    )
    from daytonaflow.runner.errors import (
        CanvasError,
        CanvasIssue,
        RunInputError,
        RunnerError,
        RunNotFoundError,
        RunStoreError,
    )
    from daytonaflow.runner.graph import CanvasGraph
    from daytonaflow.runner.hooks import MANUAL_RUN_EVENT
    from daytonaflow.runner.preview import (
        ExpressionFunction,
        PreviewError,
        expression_functions,
        preview_template,
    )
    from daytonaflow.runner.progress import Observer, RunUpdate
    from daytonaflow.runner.registry import ENTRY_POINT_GROUP, ComponentRegistry
    from daytonaflow.runner.store import (
        DB_ENV,
        EventRecord,
        ExecutionRecord,
        ResourceRecord,
        RunRecord,
        RunStore,
        default_db_path,
    )
    from daytonaflow.runner.validation import check_canvas, validate_canvas

#: Where each public name lives. Names are imported on first use, so importing this package (as
#: the CLI does for ``--help``) does not import pydantic, httpx or rich behind them.
_EXPORTS = {
    "ANNOTATION_COLORS": "daytonaflow.runner.canvas",
    "ANNOTATION_WIDGET": "daytonaflow.runner.canvas",
    "START_TRIGGER": "daytonaflow.runner.canvas",
    "Canvas": "daytonaflow.runner.canvas",
    "CanvasMetadata": "daytonaflow.runner.canvas",
    "CanvasSpec": "daytonaflow.runner.canvas",
    "Edge": "daytonaflow.runner.canvas",
    "Node": "daytonaflow.runner.canvas",
    "NodeType": "daytonaflow.runner.canvas",
    "Position": "daytonaflow.runner.canvas",
    "load_canvas": "daytonaflow.runner.canvas",
    "parse_canvas": "daytonaflow.runner.canvas",
    "DEFAULT_MAX_ACTIVE_HOOKS": "daytonaflow.runner.engine",
    "DEFAULT_MAX_RESUME_ATTEMPTS": "daytonaflow.runner.engine",
    "MANUAL_RUN_EVENT": "daytonaflow.runner.hooks",
    "Engine": "daytonaflow.runner.engine",
    "CanvasError": "daytonaflow.runner.errors",
    "CanvasIssue": "daytonaflow.runner.errors",
    "RunInputError": "daytonaflow.runner.errors",
    "RunNotFoundError": "daytonaflow.runner.errors",
    "RunStoreError": "daytonaflow.runner.errors",
    "RunnerError": "daytonaflow.runner.errors",
    "CanvasGraph": "daytonaflow.runner.graph",
    "ExpressionFunction": "daytonaflow.runner.preview",
    "PreviewError": "daytonaflow.runner.preview",
    "expression_functions": "daytonaflow.runner.preview",
    "preview_template": "daytonaflow.runner.preview",
    "Observer": "daytonaflow.runner.progress",
    "RunUpdate": "daytonaflow.runner.progress",
    "ENTRY_POINT_GROUP": "daytonaflow.runner.registry",
    "ComponentRegistry": "daytonaflow.runner.registry",
    "DB_ENV": "daytonaflow.runner.store",
    "EventRecord": "daytonaflow.runner.store",
    "ExecutionRecord": "daytonaflow.runner.store",
    "ResourceRecord": "daytonaflow.runner.store",
    "RunRecord": "daytonaflow.runner.store",
    "RunStore": "daytonaflow.runner.store",
    "default_db_path": "daytonaflow.runner.store",
    "check_canvas": "daytonaflow.runner.validation",
    "validate_canvas": "daytonaflow.runner.validation",
}


# Hidden from type checkers: they see the names imported above, and a misspelt one stays an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy_exports(globals(), _EXPORTS)

__all__ = [
    "ANNOTATION_COLORS",
    "ANNOTATION_WIDGET",
    "DB_ENV",
    "DEFAULT_MAX_ACTIVE_HOOKS",
    "DEFAULT_MAX_RESUME_ATTEMPTS",
    "ENTRY_POINT_GROUP",
    "MANUAL_RUN_EVENT",
    "START_TRIGGER",
    "Canvas",
    "CanvasError",
    "CanvasGraph",
    "CanvasIssue",
    "CanvasMetadata",
    "CanvasSpec",
    "ComponentRegistry",
    "Edge",
    "Engine",
    "EventRecord",
    "ExecutionRecord",
    "ExpressionFunction",
    "Node",
    "NodeType",
    "Observer",
    "Position",
    "PreviewError",
    "ResourceRecord",
    "RunInputError",
    "RunNotFoundError",
    "RunRecord",
    "RunStore",
    "RunStoreError",
    "RunUpdate",
    "RunnerError",
    "check_canvas",
    "default_db_path",
    "expression_functions",
    "load_canvas",
    "parse_canvas",
    "preview_template",
    "validate_canvas",
]
