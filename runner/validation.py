"""Load-time checks of a canvas: everything that can be known before a run starts, reported at once."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import replace
from typing import Any

from daytonaflow._suggest import did_you_mean
from daytonaflow.component import Component
from daytonaflow.expressions import ExpressionError, referenced_keys
from daytonaflow.expressions._paths import FieldPath, template_field_paths
from daytonaflow.runner._payload_fields import missing_field
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
from daytonaflow.runner.parameters import parameter_issues

#: Channels of the built-in start trigger.
START_CHANNELS = ("default",)
#: SuperPlane's UI keeps a note's size beside its text and colour.
_ANNOTATION_SETTINGS = ("text", "color", "width", "height")


def validate_canvas(canvas: Canvas, registry: Mapping[str, type[Component]]) -> list[CanvasIssue]:
    """Every problem that would stop ``canvas`` from running, in canvas order (empty when none)."""
    issues: list[CanvasIssue] = []
    seen: set[str] = set()
    for node in canvas.spec.nodes:
        if node.id in seen:
            issues.append(CanvasIssue(node.id, "id", "is used by more than one node"))
        seen.add(node.id)
    graph = CanvasGraph(canvas)
    if not any(_is_start(node) or _trigger_component(node, registry) for node in canvas.spec.nodes):
        issues.append(
            CanvasIssue(
                "",
                "spec.nodes",
                f'the canvas has no "{START_TRIGGER}" trigger (nor a schedule or webhook) to begin a run',
            )
        )
    for node in canvas.spec.nodes:
        issues.extend(_node_issues(node, registry))
    issues.extend(_edge_issues(canvas, graph, registry))
    # Cycles are allowed, as in SuperPlane: the engine bounds how often a node may run.
    emitters = _Emitters(canvas, registry)
    for node in canvas.spec.nodes:
        component = registry.get(node.component)
        if node.type is NodeType.ACTION and component is not None and node.configuration:
            issues.extend(_expression_issues(node, graph, emitters, component.literal_fields))
    names = {node.id: node.name for node in canvas.spec.nodes}
    return [replace(issue, node_name=names.get(issue.node, "")) for issue in issues]


def check_canvas(
    canvas: Canvas, registry: Mapping[str, type[Component]], *, source: str | None = None
) -> list[CanvasIssue]:
    """Raise :class:`CanvasError` listing every problem, or return the warnings when the canvas can run."""
    issues = validate_canvas(canvas, registry)
    if any(not issue.warning for issue in issues):
        raise CanvasError(issues, source=source)
    return issues


def channels_of(node: Node, registry: Mapping[str, type[Component]]) -> tuple[str, ...] | None:
    """The channels a node can emit on, or None when its component is unknown."""
    if _is_start(node):
        return START_CHANNELS
    if node.type is NodeType.TRIGGER and _trigger_component(node, registry) is None:
        return None
    component = registry.get(node.component)
    if component is None:
        return None
    return (*component.channel_names(), *component.channel_aliases)


def _is_start(node: Node) -> bool:
    return node.type is NodeType.TRIGGER and node.component == START_TRIGGER


def _trigger_component(node: Node, registry: Mapping[str, type[Component]]) -> type[Component] | None:
    """The trigger component (schedule, webhook, ...) a trigger node uses, if it is one."""
    if node.type is not NodeType.TRIGGER or node.component == START_TRIGGER:
        return None
    component = registry.get(node.component)
    return component if component is not None and component.trigger else None


def _known_triggers(registry: Mapping[str, type[Component]]) -> list[str]:
    return [START_TRIGGER, *sorted(name for name, component in registry.items() if component.trigger)]


def _node_issues(node: Node, registry: Mapping[str, type[Component]]) -> list[CanvasIssue]:
    if not node.component:
        return [CanvasIssue(node.id, "component", "is required")]
    if node.type is NodeType.WIDGET:
        return _widget_issues(node)
    if node.type is NodeType.TRIGGER:
        if node.component == START_TRIGGER:
            return _start_issues(node)
        trigger = _trigger_component(node, registry)
        if trigger is None:
            return [
                CanvasIssue(
                    node.id, "component", _unknown("trigger", node.component, _known_triggers(registry))
                )
            ]
        return _config_issues(node, trigger)
    if node.component == START_TRIGGER or (node.component in registry and registry[node.component].trigger):
        return [CanvasIssue(node.id, "type", f'"{node.component}" is a trigger: set type TYPE_TRIGGER')]
    if node.paused:
        return [CanvasIssue(node.id, "paused", "paused nodes cannot run here: unpause it or remove it")]
    component = registry.get(node.component)
    if component is None:
        broken = getattr(registry, "broken", {}).get(node.component)
        if broken:
            return [
                CanvasIssue(node.id, "component", f'component "{node.component}" failed to load: {broken}')
            ]
        return [CanvasIssue(node.id, "component", _unknown("component", node.component, sorted(registry)))]
    return _config_issues(node, component)


def _config_issues(node: Node, component: type[Component]) -> list[CanvasIssue]:
    return [
        CanvasIssue(node.id, _join("configuration", issue.field), issue.message, warning=issue.warning)
        for issue in component.validate_config(node.configuration, allow_expressions=True)
    ]


def _unknown(kind: str, name: str, known: list[str]) -> str:
    """``unknown component "x"``, then the close names, or every name when none is close."""
    hint = did_you_mean(name, known)
    if hint:
        return f'unknown {kind} "{name}"; {hint}'
    shown = ", ".join(f'"{item}"' if kind != "component" else item for item in known)
    return f'unknown {kind} "{name}" (known: {shown or "none installed"})'


def _not_a_setting(node: Node, key: str, of: str, settings: tuple[str, ...]) -> CanvasIssue:
    hint = did_you_mean(key, settings)
    return CanvasIssue(
        node.id, f"configuration.{key}", f"is not a setting of {of}" + (f"; {hint}" if hint else "")
    )


def _start_issues(node: Node) -> list[CanvasIssue]:
    issues = [
        _not_a_setting(node, key, "the start trigger", ("templates",))
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
            continue
        where = f"configuration.templates.{index}.parameters"
        issues.extend(
            CanvasIssue(node.id, where + path, problem) for path, problem in parameter_issues(template)
        )
    return issues


def _widget_issues(node: Node) -> list[CanvasIssue]:
    if node.component != ANNOTATION_WIDGET:
        return [CanvasIssue(node.id, "component", _unknown("widget", node.component, [ANNOTATION_WIDGET]))]
    issues = [
        _not_a_setting(node, key, "an annotation", _ANNOTATION_SETTINGS)
        for key in node.configuration
        if key not in _ANNOTATION_SETTINGS
    ]
    if not isinstance(node.configuration.get("text", ""), str):
        issues.append(CanvasIssue(node.id, "configuration.text", "must be a string"))
    for size in ("width", "height"):
        value = node.configuration.get(size)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            issues.append(CanvasIssue(node.id, f"configuration.{size}", "must be a number"))
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
    emitters: _Emitters,
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
        unknown = set()
        for key in sorted(keys):
            if graph.has_upstream(node.id, key):
                continue
            unknown.add(key)
            # Only for a key that names no upstream node: listing them all walks up the canvas.
            upstream = (graph.nodes[node_id] for node_id in graph.ancestors(node.id))
            names = ", ".join(sorted(other.name for other in upstream)) or "none"
            issues.append(
                CanvasIssue(node.id, path, f'$["{key}"] is not an upstream node (upstream: {names})')
            )
        # Parsed again for its field paths only when some key names nodes whose payload is known.
        if any(emitters.component(key) is not None for key in keys - unknown):
            issues.extend(
                CanvasIssue(node.id, path, message)
                for field_path in template_field_paths(value)
                if field_path.key not in unknown
                for message in [emitters.missing_field_message(field_path)]
                if message is not None
            )
    return issues


class _Emitters:
    """What the nodes a reference key may name emit, when that is one component's payload.

    ``$["key"]`` reads the latest event of an upstream node with that name, id or component. The
    check takes every node of the canvas the key could name, upstream or not: when they are not
    all of one known component, which fields the event has is not certain, and nothing is said.
    """

    def __init__(self, canvas: Canvas, registry: Mapping[str, type[Component]]) -> None:
        self._registry = registry
        self._by_key: dict[str, list[Node]] = {}
        for node in canvas.spec.nodes:
            for key in dict.fromkeys((node.name, node.id, node.component)):
                self._by_key.setdefault(key, []).append(node)
        self._components: dict[str, type[Component] | None] = {}

    def component(self, key: str) -> type[Component] | None:
        """The component behind every node ``key`` can name, or None when not exactly one is."""
        if key not in self._components:
            nodes = self._by_key.get(key, [])
            names = {node.component for node in nodes}
            single = len(names) == 1 and all(node.type is NodeType.ACTION for node in nodes)
            self._components[key] = self._registry.get(names.pop()) if single else None
        return self._components[key]

    def missing_field_message(self, path: FieldPath) -> str | None:
        """Why ``path`` reads a field the event cannot hold, or None when it may hold it."""
        component = self.component(path.key)
        if component is None or len(path.steps) < 2:
            return None
        section, *rest = path.steps
        if section == "data":
            missing = missing_field(component.payload_type, rest)
            if missing is None:
                return None
            step = 1 + missing.index
            inside = ".".join(str(part) for part in path.steps[1:step])
            of = component.payload_type.event_type + (f" {inside}" if inside else "")
            return _missing_message(path, step, missing.fields, f"a field of {of}")
        if section == "config":
            return self._missing_setting(path, component)
        return None

    def _missing_setting(self, path: FieldPath, component: type[Component]) -> str | None:
        schema = component.config_schema()
        properties = schema.get("properties")
        setting = path.steps[1]
        if not isinstance(properties, Mapping) or schema.get("additionalProperties", False) is not False:
            return None
        if not isinstance(setting, str) or setting in properties:
            return None
        if any(setting in node.configuration for node in self._by_key.get(path.key, [])):
            return None
        return _missing_message(path, 1, tuple(properties), f"a setting of {component.name}")


def _missing_message(path: FieldPath, step: int, fields: tuple[str, ...], what: str) -> str:
    name = path.steps[step]
    hint = did_you_mean(str(name), fields)
    if hint:
        detail = f" ({hint})"
    else:
        detail = f" (its fields: {', '.join(fields)})" if fields else " (it has no fields)"
    return f'{path.texts[step]}: "{name}" is not {what}{detail}'


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
