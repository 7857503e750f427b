"""Expressions against a stored run: what a template in a node's configuration resolves to, given the
events the node saw (or would see) in that run. Canvas editors show it beside the field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from daytonaflow.component import Component
from daytonaflow.expressions import ChainEntry, EventChain, ExpressionContext, resolve
from daytonaflow.expressions.builtins import BUILTINS
from daytonaflow.runner.canvas import Canvas
from daytonaflow.runner.errors import RunnerError
from daytonaflow.runner.graph import CanvasGraph
from daytonaflow.runner.store import EventRecord, RunStore


class PreviewError(RunnerError):
    """There is nothing to resolve the template against (no run, or no event reaches the node)."""


@dataclass(frozen=True)
class ExpressionFunction:
    name: str
    signature: str


def expression_functions() -> list[ExpressionFunction]:
    """The functions templates may call, for autocompletion."""
    return [ExpressionFunction(b.name, b.signature) for b in sorted(BUILTINS.values(), key=lambda b: b.name)]


def preview_template(
    text: str,
    *,
    canvas: Canvas,
    node_id: str,
    field: str,
    store: RunStore,
    run_id: str,
    registry: Mapping[str, type[Component]],
) -> Any:
    """``text`` (a configuration value of ``node_id`` at ``field``) resolved against run ``run_id``.

    The chain is the one the node's latest execution in that run saw; a node that did not run
    there (added since) sees the chain of its nearest upstream node that emitted. Names are the
    canvas's own, so a renamed node is found under its new name. Raises the expression's own
    errors, or :class:`PreviewError` when no event of the run reaches the node.
    """
    component = registry.get(canvas.node(node_id).component)
    relative = field.removeprefix("configuration.")
    if component is not None and relative in component.literal_fields:
        return text
    events = {event.id: event for event in store.events(run_id)}
    start = _trigger_event(node_id, canvas, store, run_id, events)
    if start is None:
        raise PreviewError(f'no event of run {run_id} reaches node "{node_id}": run the canvas first')
    chain = EventChain.of(_entries(start, events, canvas))
    assert chain is not None
    return resolve(text, ExpressionContext(chain, chain.root.entry.event), node=node_id, field=field)


def _trigger_event(
    node_id: str, canvas: Canvas, store: RunStore, run_id: str, events: Mapping[str, EventRecord]
) -> EventRecord | None:
    executions = [e for e in store.executions(run_id) if e.node_id == node_id]
    for execution in reversed(executions):
        event = events.get(execution.trigger_event_id or "")
        if event is not None:
            return event
    # Breadth-first up the current graph: the nearest ancestors' latest event in the run.
    graph = CanvasGraph(canvas)
    level, seen = {node_id}, {node_id}
    while level:
        level = {parent for node in level for parent in graph.parents(node)} - seen
        seen |= level
        latest = [event for event in events.values() if event.node_id in level]
        if latest:
            return latest[-1]
    return None


def _entries(event: EventRecord, events: Mapping[str, EventRecord], canvas: Canvas) -> list[ChainEntry]:
    names = {node.id: (node.name, node.component) for node in canvas.spec.nodes}
    entries = []
    current: EventRecord | None = event
    while current is not None:
        name, component = names.get(current.node_id, (current.node_id, ""))
        entries.append(ChainEntry(current.node_id, name, component, current.event))
        current = events.get(current.parent_event_id) if current.parent_event_id else None
    return entries[::-1]
