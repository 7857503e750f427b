"""Load-time checks of a canvas: everything that can be known before a run starts, reported at once."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import replace
from typing import Any

from daytonaflow.component import Component
from daytonaflow.expressions import ExpressionError, referenced_keys
from daytonaflow.runner.canvas import (
    ANNOTATION_COLORS,
    ANNOTATION_WIDGET,
    START_TRIGGER,
    Canvas,
    Node,
    NodeType,
)
from daytonaflow.runner.errors import CanvasError, CanvasIssue
from daytonaflow.runner.graph import CanvasGraph

#: Channels of the built-in start trigger.
START_CHANNELS = ("default",)


def validate_canvas(canvas: Canvas, registry: Mapping[str, type[Component]]) -> list[CanvasIssue]:
    """Every problem that would stop ``canvas`` from running, in canvas order (empty when none)."""
    issues: list[CanvasIssue] = []
    seen: set[str] = set()
    for node in canvas.spec.nodes:
        if node.id in seen:
            issues.append(CanvasIssue(node.id, "id", "is used by more than one node"))
        seen.add(node.id)
    graph = CanvasGraph(canvas)
    if not any(_is_start(node) for node in canvas.spec.nodes):
        issues.append(
            CanvasIssue("", "spec.nodes", f'the canvas has no "{START_TRIGGER}" trigger to begin a run')
        )
    for node in canvas.spec.nodes:
        issues.extend(_node_issues(node, registry))
    issues.extend(_edge_issues(canvas, graph, registry))
    # Cycles are allowed, as in SuperPlane: the engine bounds how often a node may run.
    for node in canvas.spec.nodes:
        component = registry.get(node.component)
        if node.type is NodeType.ACTION and component is not None and node.configuration:
            issues.extend(_expression_issues(node, graph, registry, component.literal_fields))
    names = {node.id: node.name for node in canvas.spec.nodes}
    return [replace(issue, node_name=names.get(issue.node, "")) for issue in issues]


def check_canvas(
    canvas: Canvas, registry: Mapping[str, type[Component]], *, source: str | None = None
) -> None:
    """Raise :class:`CanvasError` listing every problem, or return when the canvas can run."""
    issues = validate_canvas(canvas, registry)
    if issues:
        raise CanvasError(issues, source=source)


def channels_of(node: Node, registry: Mapping[str, type[Component]]) -> tuple[str, ...] | None:
    """The channels a node can emit on, or None when its component is unknown."""
    if _is_start(node):
        return START_CHANNELS
    component = registry.get(node.component)
    return component.channel_names() if component is not None else None


def _is_start(node: Node) -> bool:
    return node.type is NodeType.TRIGGER and node.component == START_TRIGGER


def _node_issues(node: Node, registry: Mapping[str, type[Component]]) -> list[CanvasIssue]:
    if node.type is NodeType.WIDGET:
        return _widget_issues(node)
    if node.type is NodeType.TRIGGER:
        if node.component != START_TRIGGER:
            return [
                CanvasIssue(
                    node.id, "component", f'unknown trigger "{node.component}" (known: "{START_TRIGGER}")'
                )
            ]
        return _start_issues(node)
    if node.component == START_TRIGGER:
        return [CanvasIssue(node.id, "type", f'"{START_TRIGGER}" is a trigger: set type TYPE_TRIGGER')]
    if node.paused:
        return [CanvasIssue(node.id, "paused", "paused nodes cannot run here: unpause it or remove it")]
    component = registry.get(node.component)
    if component is None:
        broken = getattr(registry, "broken", {}).get(node.component)
        if broken:
            return [
                CanvasIssue(node.id, "component", f'component "{node.component}" failed to load: {broken}')
            ]
        known = ", ".join(sorted(registry)) or "none installed"
        return [CanvasIssue(node.id, "component", f'unknown component "{node.component}" (known: {known})')]
    return [
        CanvasIssue(node.id, _join("configuration", issue.field), issue.message)
        for issue in component.validate_config(node.configuration, allow_expressions=True)
    ]


def _start_issues(node: Node) -> list[CanvasIssue]:
    issues = [
        CanvasIssue(node.id, f"configuration.{key}", "is not a setting of the start trigger")
        for key in node.configuration
        if key != "templates"
    ]
    templates = node.configuration.get("templates", [])
    if not isinstance(templates, list):
        return [*issues, CanvasIssue(node.id, "configuration.templates", "must be a list of {name, payload}")]
    for index, template in enumerate(templates):
        if not (isinstance(template, dict) and isinstance(template.get("payload", {}), dict)):
            issues.append(
                CanvasIssue(node.id, f"configuration.templates.{index}", "must be {name, payload: {...}}")
            )
    return issues


def _widget_issues(node: Node) -> list[CanvasIssue]:
    if node.component != ANNOTATION_WIDGET:
        return [
            CanvasIssue(
                node.id, "component", f'unknown widget "{node.component}" (known: "{ANNOTATION_WIDGET}")'
            )
        ]
    issues = [
        CanvasIssue(node.id, f"configuration.{key}", "is not a setting of an annotation")
        for key in node.configuration
        if key not in ("text", "color")
    ]
    if not isinstance(node.configuration.get("text", ""), str):
        issues.append(CanvasIssue(node.id, "configuration.text", "must be a string"))
    color = node.configuration.get("color")
    if color is not None and color not in ANNOTATION_COLORS:
        issues.append(
            CanvasIssue(node.id, "configuration.color", f"must be one of {', '.join(ANNOTATION_COLORS)}")
        )
    return issues


def _edge_issues(
    canvas: Canvas, graph: CanvasGraph, registry: Mapping[str, type[Component]]
) -> list[CanvasIssue]:
    issues = []
    # Many edges share a source, many sources a component: look channels up once per component.
    channels_by_kind: dict[tuple[NodeType, str], tuple[str, ...] | None] = {}
    for index, edge in enumerate(canvas.spec.edges):
        where = f"edges.{index}"
        source = graph.nodes.get(edge.source_id)
        target = graph.nodes.get(edge.target_id)
        if source is None:
            issues.append(
                CanvasIssue(edge.target_id, f"{where}.sourceId", f'names no node "{edge.source_id}"')
            )
        if target is None:
            issues.append(
                CanvasIssue(edge.source_id, f"{where}.targetId", f'names no node "{edge.target_id}"')
            )
        elif target.type is NodeType.TRIGGER:
            issues.append(
                CanvasIssue(target.id, f"{where}.targetId", "is a trigger: nothing can flow into it")
            )
        elif target.type is NodeType.WIDGET:
            issues.append(
                CanvasIssue(target.id, f"{where}.targetId", "is an annotation: nothing can flow into it")
            )
        if source is not None and source.type is NodeType.WIDGET:
            issues.append(CanvasIssue(source.id, f"{where}.sourceId", "is an annotation: it emits nothing"))
        elif source is not None:
            kind = (source.type, source.component)
            if kind not in channels_by_kind:
                channels_by_kind[kind] = channels_of(source, registry)
            channels = channels_by_kind[kind]
            if channels is not None and edge.channel not in channels:
                issues.append(
                    CanvasIssue(
                        source.id,
                        f"{where}.channel",
                        f'"{edge.channel}" is not a channel of {source.component}'
                        f" (channels: {', '.join(channels)})",
                    )
                )
    return issues


def _expression_issues(
    node: Node,
    graph: CanvasGraph,
    registry: Mapping[str, type[Component]],
    literal_fields: Collection[str],
) -> list[CanvasIssue]:
    issues = []
    for path, value in _string_leaves(node.configuration, "configuration"):
        if _is_literal(path.removeprefix("configuration."), literal_fields):
            continue
        try:
            keys = referenced_keys(value)
        except ExpressionError as error:
            issues.append(CanvasIssue(node.id, path, _bare_message(error)))
            continue
        for key in sorted(keys):
            if graph.has_upstream(node.id, key):
                continue
            # Only for a key that names no upstream node: listing them all walks up the canvas.
            upstream = (graph.nodes[node_id] for node_id in graph.ancestors(node.id))
            names = ", ".join(sorted(other.name for other in upstream)) or "none"
            issues.append(
                CanvasIssue(node.id, path, f'$["{key}"] is not an upstream node (upstream: {names})')
            )
    return issues


def _string_leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _string_leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_leaves(item, f"{path}.{index}")


def _is_literal(path: str, literal_fields: Collection[str]) -> bool:
    return any(path == literal or path.startswith(literal + ".") for literal in literal_fields)


def _bare_message(error: ExpressionError) -> str:
    """The error without the ``node "x" field "y": `` prefix the issue already carries."""
    return str(error.detail)


def _join(prefix: str, field: str) -> str:
    return f"{prefix}.{field}" if field else prefix
