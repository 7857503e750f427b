"""The values an expression computes with: JSON values plus dates, and how they print."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Date:
    """A point in time (from ``now()`` or ``date(...)``); leaves an expression as an RFC 3339 string."""

    moment: datetime

    def iso(self) -> str:
        moment = self.moment
        if moment.tzinfo is not None and moment.utcoffset() == UTC.utcoffset(None):
            text = moment.replace(tzinfo=None).isoformat()
            return text + "Z"
        return moment.isoformat()


def type_name(value: object) -> str:
    """expr-lang's name for the type of ``value``."""
    if value is None:
        return "nil"
    kind = type(value)
    if kind is bool:
        return "bool"
    if kind is int:
        return "int"
    if kind is float:
        return "float"
    if kind is str:
        return "string"
    if kind is list:
        return "array"
    if kind is dict:
        return "map"
    if kind is Date:
        return "date"
    return kind.__name__


def is_number(value: object) -> bool:
    return type(value) is int or type(value) is float


def to_json_value(value: Any) -> Any:
    """``value`` with every date turned into its RFC 3339 string, ready to leave the language."""
    kind = type(value)
    if kind is Date:
        return value.iso()
    if kind is list:
        return [to_json_value(item) for item in value]
    if kind is dict:
        return {key: to_json_value(item) for key, item in value.items()}
    return value


def to_json_text(value: Any, *, indent: int | None = None) -> str:
    return json.dumps(
        to_json_value(value), ensure_ascii=False, indent=indent, separators=None if indent else (",", ":")
    )


def render(value: Any) -> str:
    """How ``value`` appears inside mixed text: strings as they are, everything else as JSON."""
    if type(value) is str:
        return value
    if type(value) is Date:
        return str(value.iso())
    if type(value) is float and math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return to_json_text(value)


def equal(left: Any, right: Any) -> bool:
    """expr-lang equality: numbers compare by value across int and float, bools never equal numbers."""
    if is_number(left) and is_number(right):
        return bool(left == right)
    if type(left) is not type(right):
        return False
    if type(left) is list:
        return len(left) == len(right) and all(equal(a, b) for a, b in zip(left, right, strict=True))
    if type(left) is dict:
        return left.keys() == right.keys() and all(equal(left[key], right[key]) for key in left)
    return bool(left == right)
