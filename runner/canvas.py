"""The canvas file format (SuperPlane's): nodes, edges, and how to read one from YAML or JSON."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from daytonaflow import documents
from daytonaflow.runner.errors import CanvasError, CanvasIssue

#: The component name of the built-in "Manual Run" trigger.
START_TRIGGER = "start"
#: The widget SuperPlane's canvases use for sticky notes (``TYPE_WIDGET``, configuration ``text``, ``color``).
ANNOTATION_WIDGET = "annotation"
#: The colours SuperPlane gives annotations.
ANNOTATION_COLORS = ("yellow", "blue", "green", "red", "purple", "gray")


#: Where older SuperPlane exports name a node's component, one key per kind of node.
_NODE_REFERENCE_KEYS = ("trigger", "widget", "action", "blueprint")
#: Older names of TYPE_ACTION (a blueprint node runs a blueprint, a component here).
_ACTION_TYPE_ALIASES = ("TYPE_COMPONENT", "TYPE_BLUEPRINT")


class NodeType(StrEnum):
    TRIGGER = "TYPE_TRIGGER"
    ACTION = "TYPE_ACTION"
    #: Shown on the canvas, never run (annotations).
    WIDGET = "TYPE_WIDGET"


class Position(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: float = 0
    y: float = 0


class Node(BaseModel):
    """One step of the canvas: a trigger or an action backed by a component."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1)
    name: str = ""
    type: NodeType = NodeType.ACTION
    #: Empty when the document names none: validation reports it (SuperPlane keeps such a node, in error).
    component: str = ""
    configuration: dict[str, Any] = Field(default_factory=dict)
    position: Position | None = None
    #: Keep what this node acquires (sandboxes) when the run ends instead of reclaiming it.
    keep_resources: bool = Field(default=False, alias="keepResources")
    #: SuperPlane pauses a node in its UI; the runner cannot, so validation refuses ``paused: true``.
    paused: bool = False
    # Fields a SuperPlane export carries for its UI and server; accepted and not used here.
    integration: dict[str, Any] | None = None
    #: Older exports' name for ``integration``.
    app_installation: dict[str, Any] | None = Field(default=None, alias="appInstallation")
    #: SuperPlane's per-node queueing (``{key, max}``); nodes here run as their inputs arrive.
    concurrency: dict[str, Any] | None = None
    is_collapsed: bool = Field(default=False, alias="isCollapsed")
    error_message: str | None = Field(default=None, alias="errorMessage")
    warning_message: str | None = Field(default=None, alias="warningMessage")
    metadata: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_superplane_shapes(cls, value: Any) -> Any:
        # Today's SuperPlane writes `component: "http"` for every kind of node. Older exports
        # named it in one reference per kind, the others null: `component: {name}` (or
        # `action: {name}`) for actions, `trigger: {name}`, `widget: {name}`, `blueprint: {id}`,
        # and spelt actions `TYPE_COMPONENT`. Every spelling comes down to `component: "name"`.
        if not isinstance(value, Mapping):
            return value
        data = dict(value)
        references = [data.pop(key, None) for key in _NODE_REFERENCE_KEYS]
        if data.get("component") is None:
            data.pop("component", None)
            named = next((_reference_name(ref) for ref in references if _reference_name(ref)), None)
            if named is not None:
                data["component"] = named
        component = data.get("component")
        if isinstance(component, Mapping):
            data["component"] = _reference_name(component)
        if data.get("type") in _ACTION_TYPE_ALIASES:
            data["type"] = NodeType.ACTION.value
        return data

    @model_validator(mode="after")
    def _default_name(self) -> Node:
        if not self.name:
            self.name = self.id
        return self

    @field_validator("configuration", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, Mapping) and "customName" in value:
            # SuperPlane keeps the node's display title in its configuration; it is no setting.
            return {key: item for key, item in value.items() if key != "customName"}
        return value


def _reference_name(reference: Any) -> Any:
    """The component a ``{name: ...}`` reference names (a blueprint reference names it by id)."""
    if isinstance(reference, Mapping):
        return reference.get("name") or reference.get("id")
    return None


class Edge(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source_id: str = Field(alias="sourceId", min_length=1)
    target_id: str = Field(alias="targetId", min_length=1)
    channel: str = "default"

    @field_validator("channel", mode="before")
    @classmethod
    def _unnamed_is_default(cls, value: Any) -> Any:
        # SuperPlane reads an empty or absent channel as "default".
        return "default" if value in (None, "") else value


class CanvasMetadata(BaseModel):
    # SuperPlane's server adds ids and timestamps here; they do not change how a canvas runs.
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    description: str = ""
    id: str | None = None


class CanvasSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    # SuperPlane server settings (who may publish changes, ...); accepted and not used here.
    control: dict[str, Any] | None = None
    change_management: dict[str, Any] | None = Field(default=None, alias="changeManagement")

    @field_validator("nodes", "edges", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class Canvas(BaseModel):
    """A whole canvas document (``apiVersion: v1``, ``kind: Canvas``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # SuperPlane's older exports and its templates leave both out.
    api_version: Literal["v1"] = Field(default="v1", alias="apiVersion")
    kind: Literal["Canvas"] = "Canvas"
    metadata: CanvasMetadata
    spec: CanvasSpec
    #: What an export through SuperPlane's API adds: its last executions and events.
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    def node(self, node_id: str) -> Node:
        for node in self.spec.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def start_templates(self) -> list[dict[str, Any]]:
        """The payload templates of the start triggers (SuperPlane's ``templates: [{name, payload}]``)."""
        templates: list[Any] = []
        for node in self.spec.nodes:
            if node.type is NodeType.TRIGGER and node.component == START_TRIGGER:
                templates.extend(node.configuration.get("templates") or [])
        return [t for t in templates if isinstance(t, dict)]

    def to_document(self) -> dict[str, Any]:
        """The canvas as a JSON-able document in the file format (what runs store)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_canvas(document: Any, *, source: str | None = None) -> Canvas:
    """Build a :class:`Canvas` from a parsed document; structural problems raise :class:`CanvasError`."""
    if not isinstance(document, Mapping):
        raise CanvasError(
            [CanvasIssue("", "", "the document must be a mapping (apiVersion, kind, ...)")], source=source
        )
    try:
        return Canvas.model_validate(document)
    except ValidationError as error:
        raise CanvasError(_issues_from(error, document), source=source) from None


def load_canvas(path: str | Path) -> Canvas:
    """Read a canvas from a ``.yaml``/``.yml``/``.json`` file."""
    path = Path(path)
    source = str(path)
    try:
        text = documents.read_text(path, source=source)
        parse = documents.parse_json if path.suffix == ".json" else documents.parse_yaml
        document = parse(text, source=source)
    except FileNotFoundError as error:
        raise CanvasError(
            [CanvasIssue("", "", f"cannot read the file: {error.strerror}")], source=source
        ) from None
    except documents.DocumentError as error:
        # The issue says what is wrong; CanvasError puts the file name in front once.
        problem = str(error).removeprefix(f"{source}: ")
        raise CanvasError([CanvasIssue("", "", problem)], source=source) from None
    return parse_canvas(document, source=source)


def _issues_from(error: ValidationError, document: Mapping[str, Any]) -> list[CanvasIssue]:
    issues = []
    for problem in error.errors():
        location = [str(part) for part in problem["loc"]]
        node, field = _locate(location, document)
        message = problem["msg"]
        if problem["type"] == "missing":
            message = "is required"
        elif problem["type"] == "extra_forbidden":
            message = "is not a known field"
        issues.append(CanvasIssue(node, field, message))
    return issues


def _locate(location: list[str], document: Mapping[str, Any]) -> tuple[str, str]:
    """Turn a pydantic error location into (node, field) as a canvas author names them."""
    if len(location) >= 3 and location[:2] == ["spec", "nodes"] and location[2].isdigit():
        index = int(location[2])
        nodes = document.get("spec", {}).get("nodes", []) if isinstance(document.get("spec"), Mapping) else []
        node = f"#{index}"
        if isinstance(nodes, list) and index < len(nodes) and isinstance(nodes[index], Mapping):
            node = str(nodes[index].get("id") or node)
        return node, ".".join(location[3:])
    if len(location) >= 3 and location[:2] == ["spec", "edges"] and location[2].isdigit():
        return "", f"edges.{location[2]}" + "".join(f".{part}" for part in location[3:])
    return "", ".".join(location)
