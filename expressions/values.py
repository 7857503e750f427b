"""The values an expression computes with: JSON values plus dates, and how they print."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from daytonaflow.expressions.errors import ExpressionLimitError
from daytonaflow.expressions.limits import DEFAULT_LIMITS


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


@dataclass(frozen=True, slots=True)
class Duration:
    """A span of time in nanoseconds, as Go's ``time.Duration``; leaves an expression as ``1h30m0s``."""

    nanoseconds: int

    def go_string(self) -> str:
        return format_duration(self.nanoseconds)


@dataclass(frozen=True, slots=True)
class Zone:
    """A time zone (from ``timezone(...)``); leaves an expression as its name."""

    name: str
    info: tzinfo


def format_duration(nanoseconds: int) -> str:
    """``nanoseconds`` in Go's ``Duration.String`` form: ``1h30m0s``, ``1.5s``, ``250ms``, ``0s``."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    rest = abs(nanoseconds)
    if rest < 1_000_000_000:
        # Under a second Go picks the largest unit that keeps the number at least 1.
        for unit, size in (("ms", 1_000_000), ("\u00b5s", 1_000), ("ns", 1)):
            if rest >= size:
                return sign + _decimal(rest, size) + unit
    hours, rest = divmod(rest, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _decimal(rest, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    if not fraction:
        return str(whole)
    digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


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
    if kind is Duration:
        return "duration"
    if kind is Zone:
        return "timezone"
    return kind.__name__


def is_number(value: object) -> bool:
    return type(value) is int or type(value) is float


def to_json_value(value: Any, max_items: int = DEFAULT_LIMITS.max_value_items) -> Any:
    """``value`` with every date turned into its RFC 3339 string, ready to leave the language.

    A value built with ``let`` or ``reduce`` can hold one array many times over (``[x, x]``), so
    its JSON form may be exponentially larger than the value: past ``max_items`` elements (all
    arrays and maps, nested ones included) it is refused with ExpressionLimitError, counted
    before anything is copied.
    """
    kind = type(value)
    if kind is list or kind is dict:
        _count_items(value, max_items)
        return _converted(value)
    return _scalar(value)


def _count_items(value: Any, max_items: int) -> None:
    left = max_items
    pending = [value]
    while pending:
        current = pending.pop()
        left -= len(current)
        if left < 0:
            raise ExpressionLimitError(
                f"the value holds more than {max_items} items in its arrays and maps (limit {max_items})"
            )
        items = current.values() if type(current) is dict else current
        pending.extend(item for item in items if type(item) is list or type(item) is dict)


def _scalar(value: Any) -> Any:
    kind = type(value)
    if kind is Date:
        return value.iso()
    if kind is Duration:
        return value.go_string()
    if kind is Zone:
        return value.name
    return value


def _converted(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [_converted(item) for item in value]
    if kind is dict:
        return {key: _converted(item) for key, item in value.items()}
    return _scalar(value)


def to_json_text(
    value: Any, *, indent: int | None = None, max_items: int = DEFAULT_LIMITS.max_value_items
) -> str:
    return json.dumps(
        to_json_value(value, max_items),
        ensure_ascii=False,
        indent=indent,
        separators=None if indent else (",", ":"),
    )


def render(value: Any, max_items: int = DEFAULT_LIMITS.max_value_items) -> str:
    """How ``value`` appears inside mixed text: strings as they are, everything else as JSON."""
    if type(value) is str:
        return value
    if type(value) is Date or type(value) is Duration or type(value) is Zone:
        return str(to_json_value(value))
    if type(value) is float and math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return to_json_text(value, max_items=max_items)


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
