"""Dates: Go-style layouts (``2006-01-02T15:04:05Z07:00``) for formatting and parsing, as expr-lang uses."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from daytonaflow.expressions.errors import ExpressionLimitError, ExpressionTypeError
from daytonaflow.expressions.lexer import INT64_MAX
from daytonaflow.expressions.values import Date, Duration, Zone, type_name

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


def parse_date(text: str, layout: str | None = None, zone: tzinfo = UTC) -> datetime:
    """The moment ``text`` names; without a layout RFC 3339 / ISO 8601 and expr-lang's defaults are tried.

    A moment without a zone is taken in ``zone`` (UTC unless told). Raises ValueError when
    ``text`` does not match.
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
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


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


_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
_NANOSECOND_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([a-z\u00b5\u03bc]+)")


def parse_duration(text: str) -> int:
    """The nanoseconds of a Go duration string (``1h30m``, ``-1.5s``, ``250ms``); else ValueError."""
    body = text
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    position = 0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if match is None or match.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")
        number, unit = match.groups()
        if unit not in _NANOSECOND_UNITS:
            known = ", ".join(name for name in _NANOSECOND_UNITS if name.isascii())
            raise ValueError(f"unknown unit {unit!r} in duration {text!r} (units: {known})")
        whole, _, fraction = number.partition(".")
        size = _NANOSECOND_UNITS[unit]
        total += int(whole or "0") * size
        if fraction:
            total += int(fraction) * size // 10 ** len(fraction)
        if total > INT64_MAX:
            raise ValueError(f"duration {text!r} is out of range (about 292 years at most)")
        position = match.end()
    return sign * total


def checked_duration(nanoseconds: int, operation: str) -> Duration:
    """A duration, refused when it leaves Go's 64-bit range (about 292 years)."""
    if not -INT64_MAX - 1 <= nanoseconds <= INT64_MAX:
        raise ExpressionLimitError(
            f"{operation}: the duration overflows 64-bit nanoseconds (about 292 years)"
        )
    return Duration(nanoseconds)


def load_zone(name: str) -> Zone:
    """The time zone ``name`` (``UTC``, ``Europe/Zurich``...); ValueError naming the problem when unknown."""
    cleaned = name.strip()
    if cleaned in ("", "UTC"):
        return Zone("UTC", UTC)
    if cleaned == "Local":
        # A run's output must not depend on the machine running it.
        raise ValueError('the "Local" zone is not supported: name the zone, e.g. "Europe/Zurich"')
    try:
        return Zone(cleaned, zoneinfo.ZoneInfo(cleaned))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f'unknown time zone {cleaned!r} (names come from the IANA database, e.g. "America/New_York")'
        ) from None


def from_unix(value: int | float, zone: tzinfo = UTC) -> datetime:
    """The moment of a Unix timestamp in seconds, milliseconds, microseconds or nanoseconds (by its size).

    SuperPlane's rule: from 10^12 it is milliseconds, from 10^15 microseconds, from 10^18 nanoseconds.
    """
    number = int(value)
    size = abs(number)
    if size >= 10**18:
        micros = number // 1_000
    elif size >= 10**15:
        micros = number
    elif size >= 10**12:
        micros = number * 1_000
    else:
        micros = number * 1_000_000
    try:
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)).astimezone(zone)
    except OverflowError:
        raise ValueError(f"the timestamp {value} is outside the years 1 to 9999") from None


def _nanoseconds_since_zero(moment: datetime) -> int:
    delta = moment - _ZERO_TIME
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


_UNIX_SINCE_ZERO = _nanoseconds_since_zero(datetime(1970, 1, 1, tzinfo=UTC))


def _nanoseconds_since_unix(moment: datetime) -> int:
    return _nanoseconds_since_zero(moment) - _UNIX_SINCE_ZERO


def _moved(date: Date, nanoseconds: int, method: str) -> Date:
    try:
        return Date(date.moment + timedelta(microseconds=nanoseconds // 1_000))
    except OverflowError:
        raise ExpressionLimitError(f"{method}: the date leaves the years 1 to 9999") from None


def add_duration(date: Date, duration: Duration, operation: str) -> Date:
    return _moved(date, duration.nanoseconds, operation)


def between(later: Date, earlier: Date) -> Duration:
    """``later - earlier`` as a duration, clamped to Go's range as ``Time.Sub`` does."""
    nanoseconds = _nanoseconds_since_zero(later.moment) - _nanoseconds_since_zero(earlier.moment)
    return Duration(max(-INT64_MAX - 1, min(INT64_MAX, nanoseconds)))


def _argument(method: str, arguments: list[Any], kind: type, usage: str) -> Any:
    if len(arguments) != 1 or type(arguments[0]) is not kind:
        got = ", ".join(type_name(argument) for argument in arguments) or "nothing"
        raise ExpressionTypeError(f"{method}() takes {usage}, got {got}")
    return arguments[0]


def _no_arguments(method: str, arguments: list[Any]) -> None:
    if arguments:
        raise ExpressionTypeError(f"{method}() takes no arguments, got {len(arguments)}")


def _rounded(date: Date, arguments: list[Any], method: str) -> Date:
    step = _argument(method, arguments, Duration, 'a duration, as in Round(duration("1h"))').nanoseconds
    if step <= 0:
        return date
    # Go rounds the time since its zero time (0001-01-01 UTC), whatever the date's zone.
    since = _nanoseconds_since_zero(date.moment)
    remainder = since % step
    shift = -remainder
    if method == "Round" and remainder * 2 >= step:
        shift = step - remainder
    return _moved(date, shift, method)


def _date_add(date: Date, arguments: list[Any]) -> Date:
    duration = _argument("Add", arguments, Duration, 'a duration, as in Add(duration("1h"))')
    return add_duration(date, duration, "Add()")


def _date_sub(date: Date, arguments: list[Any]) -> Duration:
    return between(date, _argument("Sub", arguments, Date, 'a date, as in Sub(date("2024-01-01"))'))


def _date_in(date: Date, arguments: list[Any]) -> Date:
    zone = arguments[0] if len(arguments) == 1 else None
    if type(zone) is str:
        try:
            zone = load_zone(zone)
        except ValueError as error:
            raise ExpressionTypeError(f"In(): {error}") from None
    zone = _argument("In", [zone], Zone, 'a time zone, as in In(timezone("Europe/Zurich"))')
    return Date(date.moment.astimezone(zone.info))


def _compare_dates(method: str) -> Callable[[Date, list[Any]], bool]:
    def compare(date: Date, arguments: list[Any]) -> bool:
        other: datetime = _argument(method, arguments, Date, "a date").moment
        if method == "Before":
            return date.moment < other
        return date.moment > other if method == "After" else date.moment == other

    return compare


def _simple(method: str, read: Callable[[datetime], Any]) -> Callable[[Date, list[Any]], Any]:
    def call(date: Date, arguments: list[Any]) -> Any:
        _no_arguments(method, arguments)
        return read(date.moment)

    return call


DATE_METHODS: dict[str, Callable[[Date, list[Any]], Any]] = {
    "Format": lambda date, arguments: _format_method(date, arguments),
    "Unix": _simple("Unix", lambda moment: _nanoseconds_since_unix(moment) // 1_000_000_000),
    "UnixMilli": _simple("UnixMilli", lambda moment: _nanoseconds_since_unix(moment) // 1_000_000),
    "UnixMicro": _simple("UnixMicro", lambda moment: _nanoseconds_since_unix(moment) // 1_000),
    "UnixNano": _simple("UnixNano", _nanoseconds_since_unix),
    "Year": _simple("Year", lambda moment: moment.year),
    "Month": _simple("Month", lambda moment: moment.month),
    "Day": _simple("Day", lambda moment: moment.day),
    "Hour": _simple("Hour", lambda moment: moment.hour),
    "Minute": _simple("Minute", lambda moment: moment.minute),
    "Second": _simple("Second", lambda moment: moment.second),
    "Nanosecond": _simple("Nanosecond", lambda moment: moment.microsecond * 1_000),
    "Weekday": _simple("Weekday", lambda moment: moment.strftime("%A")),
    "YearDay": _simple("YearDay", lambda moment: moment.timetuple().tm_yday),
    "String": _simple("String", lambda moment: Date(moment).iso()),
    "Add": _date_add,
    "Sub": _date_sub,
    "Before": _compare_dates("Before"),
    "After": _compare_dates("After"),
    "Equal": _compare_dates("Equal"),
    "In": _date_in,
    "UTC": _simple("UTC", lambda moment: Date(moment.astimezone(UTC))),
    "Round": lambda date, arguments: _rounded(date, arguments, "Round"),
    "Truncate": lambda date, arguments: _rounded(date, arguments, "Truncate"),
    "IsZero": _simple("IsZero", lambda moment: moment == _ZERO_TIME),
    "Location": _simple("Location", lambda moment: _zone_of(moment)),
}


def _zone_of(moment: datetime) -> Zone:
    info = moment.tzinfo or UTC
    name = info.key if isinstance(info, zoneinfo.ZoneInfo) else moment.tzname()
    return Zone(name or "UTC", info)


def _duration_in(unit: int, method: str, whole: bool) -> Callable[[Duration, list[Any]], Any]:
    def call(duration: Duration, arguments: list[Any]) -> Any:
        _no_arguments(method, arguments)
        if whole:
            # Go's integer conversions truncate toward zero.
            value = duration.nanoseconds
            return -(-value // unit) if value < 0 else value // unit
        return duration.nanoseconds / unit

    return call


def _duration_rounded(method: str) -> Callable[[Duration, list[Any]], Duration]:
    def call(duration: Duration, arguments: list[Any]) -> Duration:
        step = _argument(method, arguments, Duration, 'a duration, as in Round(duration("1m"))').nanoseconds
        value = duration.nanoseconds
        if step <= 0:
            return duration
        remainder = abs(value) % step
        magnitude = abs(value) - remainder
        if method == "Round" and remainder * 2 >= step:
            magnitude += step
        return checked_duration(magnitude if value >= 0 else -magnitude, f"{method}()")

    return call


DURATION_METHODS: dict[str, Callable[[Duration, list[Any]], Any]] = {
    "Hours": _duration_in(3_600_000_000_000, "Hours", whole=False),
    "Minutes": _duration_in(60_000_000_000, "Minutes", whole=False),
    "Seconds": _duration_in(1_000_000_000, "Seconds", whole=False),
    "Milliseconds": _duration_in(1_000_000, "Milliseconds", whole=True),
    "Microseconds": _duration_in(1_000, "Microseconds", whole=True),
    "Nanoseconds": _duration_in(1, "Nanoseconds", whole=True),
    "String": lambda duration, arguments: duration.go_string(),
    "Abs": lambda duration, arguments: checked_duration(abs(duration.nanoseconds), "Abs()"),
    "Round": _duration_rounded("Round"),
    "Truncate": _duration_rounded("Truncate"),
}

ZONE_METHODS: dict[str, Callable[[Zone, list[Any]], Any]] = {
    "String": lambda zone, arguments: zone.name,
}


def _format_method(date: Date, arguments: list[Any]) -> str:
    if len(arguments) != 1 or type(arguments[0]) is not str:
        raise ExpressionTypeError('Format() takes one layout string, as in now().Format("2006-01-02")')
    return format_date(date.moment, arguments[0])
