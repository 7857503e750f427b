"""What every engine does the same way around a run and its component hooks, whatever drives them.

The embedded engine and the Temporal adapter both call these, so a run starts from the same trigger
event, a node fails with the same words, an emitted payload passes the same checks, and a template
finds the same upstream node on either.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from daytonaflow import documents
from daytonaflow.component import Component
from daytonaflow.errors import ComponentError, DaytonaflowError
from daytonaflow.events import Event, Payload
from daytonaflow.expressions import ChainEntry, ExpressionContext, resolve
from daytonaflow.runner.canvas import START_TRIGGER, Canvas, Node, NodeType
from daytonaflow.runner.errors import RunInputError
from daytonaflow.runner.parameters import apply_parameters

#: Which hook of a component runs: ``execute`` for an input, ``check`` when a scheduled check is due.
Phase = Literal["execute", "check"]
#: The event type the start trigger emits; its ``data`` is the run input.
MANUAL_RUN_EVENT = "manual.run"


def manual_trigger_event(canvas: Canvas, run_input: Any) -> dict[str, Any]:
    """The start trigger's event ``{type, data, timestamp}`` for a run of ``canvas`` given ``run_input``.

    ``run_input`` (a JSON object) is the event's ``data``; without it, the payload of the start
    trigger's first template (``configuration.templates[0].payload``), else ``{}``. The first
    template's typed ``parameters`` check it and fill in their defaults (see ``runner.parameters``).
    """
    data = run_input
    templates = canvas.start_templates()
    if data is None:
        # Like SuperPlane's manual run: without input, the first payload template of the trigger.
        data = dict(templates[0].get("payload") or {}) if templates else {}
    if not isinstance(data, dict):
        raise RunInputError(f"the run input must be a JSON object, not {type(data).__name__}")
    # The run starts from the first template: its typed parameters check the input.
    data = apply_parameters(templates[0] if templates else None, data)
    try:
        # Within the limits, the input is sure to serialize into the run's record and its event.
        documents.check_value(data, source="the run input", max_depth=documents.MAX_DEPTH)
    except documents.DocumentError as error:
        raise RunInputError(str(error)) from None
    return Event(type=MANUAL_RUN_EVENT, data=data, timestamp=datetime.now(UTC)).model_dump(mode="json")


def manual_start_nodes(canvas: Canvas) -> list[Node]:
    """The trigger nodes a manual run fires: its start triggers; a canvas with none (started by a
    schedule or a webhook) fires those instead, the run input standing for their event's data, so
    that it can be tried with ``daytonaflow run`` as well as kept armed by ``daytonaflow up``."""
    triggers = [node for node in canvas.spec.nodes if node.type is NodeType.TRIGGER]
    starts = [node for node in triggers if node.component == START_TRIGGER]
    return starts or triggers


def describe_error(error: BaseException) -> str:
    """An error as one line: our own errors by message, anything else with its type name."""
    if isinstance(error, DaytonaflowError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def mentions_delimiters(value: Any) -> bool:
    """Whether a configuration value holds anything a template could resolve (else it is copied)."""
    if isinstance(value, str):
        return "{{" in value or "<<" in value
    if isinstance(value, dict):
        return any(mentions_delimiters(item) for item in value.values())
    if isinstance(value, list):
        return any(mentions_delimiters(item) for item in value)
    return False


def pick_upstream(emitted: Sequence[tuple[int, ChainEntry]], key: str) -> ChainEntry | None:
    """Among upstream nodes' latest events ``(emit order, entry)``, the one ``key`` names.

    By name, then id, then component (unless nodes of different names share it); the latest wins.
    """
    for attribute in ("node_name", "node_id", "component"):
        found = [pair for pair in emitted if getattr(pair[1], attribute) == key]
        if attribute == "component" and len({entry.node_name for _, entry in found}) > 1:
            return None  # ambiguous: the template must name the node
        if found:
            return max(found, key=_emit_order)[1]
    return None


def _emit_order(pair: tuple[int, ChainEntry]) -> int:
    return pair[0]


def emitted_event(
    component: type[Component], payload: Payload, timestamp: datetime | None = None
) -> dict[str, Any]:
    """The event ``{type, data, timestamp}`` a hook's emitted ``payload`` becomes, checked so that it
    is sure to serialize into the run's record and into the next nodes' context (``timestamp``:
    when it happened, if not now, e.g. a schedule's fire time)."""
    limit = documents.MAX_PAYLOAD_DEPTH
    try:
        event = Event.of(payload, timestamp)
    except ValueError as error:
        raise ComponentError(f"{component.name} emitted a payload that cannot be stored: {error}") from None
    if documents.nesting_depth(event.data, stop_above=limit) > limit:
        raise ComponentError(f"{component.name} emitted a payload nested deeper than {limit} levels")
    try:
        # Round-trip the data through the model: what moves on is exactly what the type allows.
        component.payload_type.model_validate(event.data)
    except ValidationError as error:
        raise ComponentError(
            f"{component.name} emitted a payload that does not match"
            f" {component.payload_type.__name__}: {error}"
        ) from None
    return event.model_dump(mode="json")


def hook_input(
    trigger_event_id: str | None, inputs: Sequence[str], inputs_seen: int, *, joins: bool, phase: Phase
) -> str | None:
    """The event the hook about to run answers: a joining node's next input (its latest on a check)."""
    if not joins:
        return trigger_event_id
    position = inputs_seen if phase == "execute" else inputs_seen - 1
    return inputs[min(max(position, 0), len(inputs) - 1)] if inputs else None


def resolved_configuration(
    node_id: str,
    configuration: dict[str, Any],
    literal_fields: Collection[str],
    context: Callable[[], ExpressionContext],
) -> dict[str, Any]:
    """A node's configuration with its expressions resolved; ``context`` is asked for only when
    something could resolve (building a long chain's context is not free)."""
    if mentions_delimiters(configuration):
        resolved = resolve(configuration, context(), node=node_id, literal_paths=frozenset(literal_fields))
    else:
        # Nothing to resolve (not even an escaped delimiter): skip building the chain's context.
        resolved = copy.deepcopy(configuration)
    if not isinstance(resolved, dict):
        raise ComponentError(f'node "{node_id}": the configuration did not resolve to a mapping')
    return resolved


def inputs_given(inputs: Sequence[str], inputs_seen: int, *, joins: bool, phase: Phase) -> Sequence[str]:
    """The inputs a hook is given: all of an ordinary node's; a joining node's so far, the one it
    is about to take included."""
    if not joins:
        return inputs
    seen = inputs_seen + 1 if phase == "execute" else inputs_seen
    return inputs[:seen]
