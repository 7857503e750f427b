"""Fire times of the schedule trigger: cron expressions, SuperPlane's interval kinds, time zones.

Pure functions of a configuration and an instant (no clock is read here), so a schedule's next
fire time is the same on every machine and a test can walk it across a DST change.

Wall-clock rules (one for every kind): a local time that a DST change skips fires as the clocks
have moved on (02:30 on a spring-forward night fires at 03:30 local time); a local time that
occurs twice (fall-back) fires once, the first time.
"""

from __future__ import annotations

import calendar
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: How far ahead a cron expression is searched for a match (a "30 2 31 2 *" never matches).
_SEARCH_YEARS = 5
#: The longest DST shift any zone makes; candidates this far around the wanted instant are tried.
_DST_SLACK = timedelta(hours=3)

_MONTHS = {name: index for index, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
WEEK_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_OFFSET = re.compile(r"^[+-]?\d{1,2}(\.\d+)?$")


class ScheduleError(ValueError):
    """A cron expression or a time zone that cannot be read; the message says what is wrong."""


# --- time zones ----------------------------------------------------------------------------------


def parse_timezone(text: str | None) -> tzinfo:
    """SuperPlane's offset in hours (``"0"``, ``"-5"``, ``"5.5"``), an IANA name (``Europe/Berlin``,
    with its DST) or ``current`` (this machine's zone); empty is UTC."""
    value = (text or "").strip()
    if not value or value.upper() == "UTC":
        return UTC
    if value == "current":
        return _local_zone()
    if _OFFSET.match(value):
        hours = float(value)
        if not -14 <= hours <= 14:
            raise ScheduleError(f'"{value}" is not a UTC offset (from -14 to 14 hours)')
        offset = timedelta(seconds=round(hours * 3600))
        return UTC if not offset else timezone(offset, f"GMT{hours:+.1f}")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f'"{value}" is not a known time zone (an IANA name such as "Europe/Berlin", or an offset'
            ' in hours such as "-5" or "5.5")'
        ) from None


def _local_zone() -> tzinfo:
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        localtime = Path("/etc/localtime")
        if localtime.is_symlink():
            name = str(localtime.resolve()).partition("zoneinfo/")[2]
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def describe_timezone(zone: tzinfo, at: datetime) -> str:
    """``Europe/Berlin (UTC+01:00)``: the zone and its offset at ``at`` (SuperPlane's format)."""
    offset = at.astimezone(zone).utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    name = "UTC" if zone is UTC else str(getattr(zone, "key", None) or zone.tzname(at) or zone)
    return f"{name} (UTC{sign}{minutes // 60:02d}:{minutes % 60:02d})"


def _instant(wall: datetime, zone: tzinfo) -> datetime:
    """The instant of a local wall time: fold 0 (the first of a repeated time, and a skipped
    time read with the offset before the change, which lands after it)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


# --- cron ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cron:
    """A parsed 5-field (minute first) or 6-field (second first) cron expression."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    week_days: frozenset[int]
    #: Vixie cron's rule: when both day fields are restricted, a day matching either fires.
    either_day: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.week_days
        return (in_month or in_week) if self.either_day else (in_month and in_week)


def parse_cron(expression: str) -> Cron:
    text = _DESCRIPTORS.get(expression.strip().lower(), expression)
    fields = text.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    elif len(fields) != 6:
        raise ScheduleError(
            "must have 5 fields (minute hour day month weekday) or 6 (second minute hour day month"
            f" weekday), got {len(fields)}"
        )
    second, minute, hour, day, month, week_day = fields
    return Cron(
        seconds=tuple(sorted(_cron_field(second, "second", 0, 59))),
        minutes=tuple(sorted(_cron_field(minute, "minute", 0, 59))),
        hours=tuple(sorted(_cron_field(hour, "hour", 0, 23))),
        days=frozenset(_cron_field(day, "day of month", 1, 31)),
        months=frozenset(_cron_field(month, "month", 1, 12, _MONTHS)),
        week_days=frozenset(value % 7 for value in _cron_field(week_day, "day of week", 0, 7, _DAYS)),
        either_day=not _unrestricted(day) and not _unrestricted(week_day),
    )


def _unrestricted(field: str) -> bool:
    return field.startswith(("*", "?"))


def _cron_field(text: str, what: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        spec, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f'{what} "{part}": the step after "/" must be a positive number')
            step = int(step_text)
        if spec in ("*", "?"):
            start, end = low, high
        elif "-" in spec:
            first, _, last = spec.partition("-")
            start, end = _cron_value(first, what, low, high, names), _cron_value(last, what, low, high, names)
            if start > end:
                raise ScheduleError(f'{what} "{part}": the range runs backwards')
        else:
            start = _cron_value(spec, what, low, high, names)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return values


def _cron_value(text: str, what: str, low: int, high: int, names: dict[str, int] | None) -> int:
    if names is not None and text.upper() in {name.upper() for name in names}:
        return {name.upper(): value for name, value in names.items()}[text.upper()]
    if not text.isdigit():
        raise ScheduleError(f'{what} "{text}" is not a number from {low} to {high}')
    value = int(text)
    if not low <= value <= high:
        raise ScheduleError(f"{what} {value} is out of range (from {low} to {high})")
    return value


def next_cron(cron: Cron, zone: tzinfo, after: datetime) -> datetime | None:
    """The first instant strictly after ``after`` whose local wall time matches ``cron``."""
    local_after = after.astimezone(zone).replace(tzinfo=None)
    day = local_after.date() - timedelta(days=1)
    last = local_after.date() + timedelta(days=366 * _SEARCH_YEARS)
    while day <= last:
        if cron.matches_day(day):
            found = _first_on_day(cron, zone, day, after, local_after)
            if found is not None:
                return found
        day += timedelta(days=1)
    return None


def _first_on_day(
    cron: Cron, zone: tzinfo, day: date, after: datetime, local_after: datetime
) -> datetime | None:
    # Walking wall times in order, a skipped one maps past the times after it: keep the earliest
    # instant, and stop once wall times are past it by more than any DST shift.
    best: datetime | None = None
    for wall in _walls(cron, day, local_after - _DST_SLACK):
        if best is not None and wall > best.astimezone(zone).replace(tzinfo=None) + _DST_SLACK:
            break
        instant = _instant(wall, zone)
        if instant > after and (best is None or instant < best):
            best = instant
    return best


def _walls(cron: Cron, day: date, not_before: datetime) -> Iterator[datetime]:
    start = datetime(day.year, day.month, day.day)
    for hour in cron.hours:
        if start.replace(hour=hour, minute=59, second=59) < not_before:
            continue
        for minute in cron.minutes:
            for second in cron.seconds:
                wall = start.replace(hour=hour, minute=minute, second=second)
                if wall >= not_before:
                    yield wall


# --- SuperPlane's interval kinds ---------------------------------------------------------------------


def next_minutes(interval: int, reference: datetime, after: datetime) -> datetime:
    """Every ``interval`` minutes counted from ``reference`` (when the schedule was first armed)."""
    step = timedelta(minutes=interval)
    if after < reference:
        return reference + step
    return reference + step * ((after - reference) // step + 1)


def next_hours(interval: int, minute: int, after: datetime) -> datetime:
    """At ``minute`` past the hour, every ``interval`` hours (SuperPlane: this hour's if still ahead)."""
    candidate = after.astimezone(UTC).replace(minute=minute, second=0, microsecond=0)
    return candidate if candidate > after else candidate + timedelta(hours=interval)


def next_days(
    interval: int, hour: int, minute: int, zone: tzinfo, reference: datetime, after: datetime
) -> datetime:
    """At ``hour:minute`` local time on every ``interval``-th day from the reference's day."""
    start = reference.astimezone(zone).date()

    def fires(day: date) -> bool:
        return (day - start).days % interval == 0

    return _next_on_days(fires, hour, minute, zone, after, horizon=interval + 2)


def next_weeks(
    interval: int,
    week_days: list[str],
    hour: int,
    minute: int,
    zone: tzinfo,
    reference: datetime,
    after: datetime,
) -> datetime:
    """At ``hour:minute`` local time on ``week_days`` of every ``interval``-th week from the reference's."""
    wanted = {WEEK_DAYS.index(name) for name in week_days}
    if not wanted:
        # Validation refuses it when the canvas loads; a caller that skipped it gets an error too.
        raise ScheduleError("no day of the week is chosen, it would never fire")
    first_monday = _monday(reference.astimezone(zone).date())

    def fires(day: date) -> bool:
        weeks = (_monday(day) - first_monday).days // 7
        return day.weekday() in wanted and weeks % interval == 0

    return _next_on_days(fires, hour, minute, zone, after, horizon=7 * interval + 8)


def next_months(
    interval: int,
    day_of_month: int,
    hour: int,
    minute: int,
    zone: tzinfo,
    reference: datetime,
    after: datetime,
) -> datetime:
    """On ``day_of_month`` (the month's last day when it is shorter) of every ``interval``-th month."""
    local = after.astimezone(zone)
    start = reference.astimezone(zone)
    months = (local.year - start.year) * 12 + local.month - start.month
    months -= months % interval
    while True:
        year, month = divmod(start.year * 12 + start.month - 1 + months, 12)
        day = min(day_of_month, calendar.monthrange(year, month + 1)[1])
        candidate = _instant(datetime(year, month + 1, day, hour, minute), zone)
        if candidate > after:
            return candidate
        months += interval


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _next_on_days(
    fires: Callable[[date], bool], hour: int, minute: int, zone: tzinfo, after: datetime, *, horizon: int
) -> datetime:
    day = after.astimezone(zone).date() - timedelta(days=1)
    for _ in range(horizon + 2):
        if fires(day):
            candidate = _instant(datetime(day.year, day.month, day.day, hour, minute), zone)
            if candidate > after:
                return candidate
        day += timedelta(days=1)
    raise ScheduleError("no day within the interval fires")  # pragma: no cover
