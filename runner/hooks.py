"""What every engine does the same way around a component hook, whatever drives it.

The embedded engine and the Temporal adapter both call these, so a node fails with the same words,
an emitted payload passes the same checks, and a template finds the same upstream node on either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from daytonaflow import documents
from daytonaflow.component import Component
from daytonaflow.errors import ComponentError, DaytonaflowError
from daytonaflow.events import Event, Payload
from daytonaflow.expressions import ChainEntry


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


def emitted_event(component: type[Component], payload: Payload) -> dict[str, Any]:
    """The event ``{type, data, timestamp}`` a hook's emitted ``payload`` becomes, checked so that it
    is sure to serialize into the run's record and into the next nodes' context."""
    limit = documents.MAX_PAYLOAD_DEPTH
    try:
        event = Event.of(payload)
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
