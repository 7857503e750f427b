"""Which fields an event can hold, read from the emitting component's payload model, so that
``$["Create Sandbox"].data.idd`` is caught when the canvas loads rather than when it runs.

Only what is certain is reported: a path is followed while each step names a field of a pydantic
model (by its wire name), an index of a list or a key of a dict; it stops, reporting nothing, at
``Any``, at a union of several types, at a scalar, and at a model that keeps unknown fields or
serializes itself its own way.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel


@dataclass(frozen=True)
class MissingField:
    """Step ``index`` of a path names no field; ``fields`` are the names there are."""

    index: int
    fields: tuple[str, ...]


def missing_field(model: type[BaseModel], steps: Sequence[str | int]) -> MissingField | None:
    """The first step of ``steps`` (read from a dump of ``model``) that cannot be there, if any."""
    current: Any = model
    for index, step in enumerate(steps):
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = _wire_fields(current)
            if fields is None or not isinstance(step, str):
                return None
            if step not in fields:
                return MissingField(index, tuple(fields))
            current = fields[step]
            continue
        origin = get_origin(current)
        arguments = get_args(current)
        if origin in (list, tuple, Sequence) and isinstance(step, int) and len(arguments) == 1:
            current = arguments[0]
        elif origin in (dict, Mapping) and isinstance(step, str) and len(arguments) == 2:
            current = arguments[1]
        else:
            return None
    return None


def _unwrap(annotation: Any) -> Any:
    """``X`` for ``X | None`` and ``Annotated[X, ...]``; a real union stays as it is."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [member for member in get_args(annotation) if member is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _wire_fields(model: type[BaseModel]) -> dict[str, Any] | None:
    """The dumped field names of ``model`` with their types, or None when the dump may hold others."""
    decorators = model.__pydantic_decorators__
    if model.model_config.get("extra") == "allow" or decorators.model_serializers:
        return None
    # A field with its own serializer may dump as anything: its type says nothing of its fields.
    serialized = {
        name for decorator in decorators.field_serializers.values() for name in decorator.info.fields
    }
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        wire = info.serialization_alias or info.alias or name
        fields[wire] = Any if name in serialized else info.annotation
    for name, computed in model.model_computed_fields.items():
        fields[computed.alias or name] = computed.return_type
    return fields
