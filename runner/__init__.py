"""daytonaflow.runner: load canvases, validate them, run them event by event, keep every run on disk."""

from daytonaflow.runner.canvas import (
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
from daytonaflow.runner.console import JsonLines, RunView, run_details, run_document, runs_table, summary
from daytonaflow.runner.engine import (
    DEFAULT_MAX_ACTIVE_HOOKS,
    DEFAULT_MAX_RESUME_ATTEMPTS,
    MANUAL_RUN_EVENT,
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

__all__ = [
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
    "JsonLines",
    "Node",
    "NodeType",
    "Observer",
    "Position",
    "ResourceRecord",
    "RunInputError",
    "RunNotFoundError",
    "RunRecord",
    "RunStore",
    "RunStoreError",
    "RunUpdate",
    "RunView",
    "RunnerError",
    "check_canvas",
    "default_db_path",
    "load_canvas",
    "parse_canvas",
    "run_details",
    "run_document",
    "runs_table",
    "summary",
    "validate_canvas",
]
