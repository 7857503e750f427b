"""Dates: Go-style layouts (``2006-01-02T15:04:05Z07:00``) for formatting and parsing, as expr-lang uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from daytonaflow.expressions.errors import ExpressionTypeError
from daytonaflow.expressions.values import Date

# Go layout chunks, longest first where one is a prefix of another.
_CHUNKS = (
    "January", "Monday", "2006", "Z07:00", "-07:00", "Z0700", "-0700", "Jan", "Mon", "MST",
    "002", "Z07", "-07", "01", "02", "03", "04", "05", "06", "15", "_2", "PM", "pm", "1", "2", "3", "4", "5",
)  # fmt: skip
_STRPTIME = {
    "January": "%B", "Monday": "%A", "2006": "%Y", "Z07:00": "%z", "-07:00": "%z", "Z0700": "%z",
    "-0700": "%z", "Jan": "%b", "Mon": "%a", "MST": "%Z", "002": "%j", "01": "%m", "02": "%d",
    "03": "%I", "04": "%M", "05": "%S", "06": "%y", "15": "%H", "PM": "%p", "pm": "%p", "1": "%m",
    "2": "%d", "3": "%I", "4": "%M", "5": "%S", "_2": "%d",
}  # fmt: skip
_DEFAULT_LAYOUTS = ("2006-01-02", "15:04:05", "2006-01-02 15:04:05")


def _chunks(layout: str) -> list[tuple[bool, str]]:
    """The layout as (is_chunk, text) pieces, fractional seconds (``.000``, ``.999``) included."""
    pieces: list[tuple[bool, str]] = []
    position = 0
    while position < len(layout):
        if layout[position] in ".," and layout[position + 1 : position + 2] in ("0", "9"):
            digit = layout[position + 1]
            end = position + 1
            while end < len(layout) and layout[end] == digit:
                end += 1
            if not layout[end : end + 1].isdigit():
                pieces.append((True, layout[position:end]))
                position = end
                continue
        chunk = next((c for c in _CHUNKS if layout.startswith(c, position)), None)
        if chunk is None:
            pieces.append((False, layout[position]))
            position += 1
        else:
            pieces.append((True, chunk))
            position += len(chunk)
    return pieces


def format_date(moment: datetime, layout: str) -> str:
    """``moment`` written with a Go layout string."""
    out: list[str] = []
    for is_chunk, text in _chunks(layout):
        out.append(_format_chunk(moment, text) if is_chunk else text)
    return "".join(out)


def _format_chunk(moment: datetime, chunk: str) -> str:
    hour12 = moment.hour % 12 or 12
    simple = {
        "January": moment.strftime("%B"),
        "Jan": moment.strftime("%b"),
        "Monday": moment.strftime("%A"),
        "Mon": moment.strftime("%a"),
        "2006": f"{moment.year:04d}",
        "06": f"{moment.year % 100:02d}",
        "01": f"{moment.month:02d}",
        "1": str(moment.month),
        "02": f"{moment.day:02d}",
        "2": str(moment.day),
        "_2": f"{moment.day:2d}",
        "002": f"{moment.timetuple().tm_yday:03d}",
        "15": f"{moment.hour:02d}",
        "03": f"{hour12:02d}",
        "3": str(hour12),
        "04": f"{moment.minute:02d}",
        "4": str(moment.minute),
        "05": f"{moment.second:02d}",
        "5": str(moment.second),
        "PM": "PM" if moment.hour >= 12 else "AM",
        "pm": "pm" if moment.hour >= 12 else "am",
        "MST": moment.tzname() or "UTC",
    }
    if chunk in simple:
        return simple[chunk]
    if chunk[0] in ".,":
        digits = f"{moment.microsecond:06d}" + "000"
        width = len(chunk) - 1
        fraction = digits[:width]
        if chunk[1] == "9":
            fraction = fraction.rstrip("0")
            return chunk[0] + fraction if fraction else ""
        return chunk[0] + fraction
    return _format_offset(moment, chunk)


def _format_offset(moment: datetime, chunk: str) -> str:
    offset = moment.utcoffset()
    seconds = int(offset.total_seconds()) if offset is not None else 0
    if seconds == 0 and chunk.startswith("Z"):
        return "Z"
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    body = chunk.lstrip("Z-")
    if body == "07":
        return f"{sign}{hours:02d}"
    if body == "07:00":
        return f"{sign}{hours:02d}:{minutes:02d}"
    return f"{sign}{hours:02d}{minutes:02d}"


def parse_date(text: str, layout: str | None = None) -> datetime:
    """The moment ``text`` names; without a layout RFC 3339 / ISO 8601 and expr-lang's defaults are tried.

    A moment without a zone is taken as UTC. Raises ValueError when ``text`` does not match.
    """
    if layout is None:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is None:
            for candidate in _DEFAULT_LAYOUTS:
                try:
                    moment = datetime.strptime(text, _to_strptime(candidate))
                    break
                except ValueError:
                    continue
            else:
                raise ValueError(f"{text!r} is not a date in RFC 3339, 2006-01-02 or 15:04:05 form")
    else:
        moment = datetime.strptime(text, _to_strptime(layout))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _to_strptime(layout: str) -> str:
    parts: list[str] = []
    for is_chunk, text in _chunks(layout):
        if not is_chunk:
            parts.append(text.replace("%", "%%"))
        elif text[0] in ".,":
            parts.append(text[0] + "%f")
        else:
            parts.append(_STRPTIME[text])
    return "".join(parts)


DATE_METHODS: dict[str, Callable[[Date, list[Any]], Any]] = {
    "Format": lambda date, arguments: _format_method(date, arguments),
    "Unix": lambda date, arguments: int(date.moment.timestamp()),
    "UnixMilli": lambda date, arguments: int(date.moment.timestamp() * 1000),
    "Year": lambda date, arguments: date.moment.year,
    "Month": lambda date, arguments: date.moment.month,
    "Day": lambda date, arguments: date.moment.day,
    "Hour": lambda date, arguments: date.moment.hour,
    "Minute": lambda date, arguments: date.moment.minute,
    "Second": lambda date, arguments: date.moment.second,
    "Weekday": lambda date, arguments: date.moment.strftime("%A"),
    "YearDay": lambda date, arguments: date.moment.timetuple().tm_yday,
    "String": lambda date, arguments: date.iso(),
}


def _format_method(date: Date, arguments: list[Any]) -> str:
    if len(arguments) != 1 or type(arguments[0]) is not str:
        raise ExpressionTypeError('Format() takes one layout string, as in now().Format("2006-01-02")')
    return format_date(date.moment, arguments[0])
