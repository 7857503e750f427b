"""The ``schedule`` trigger (SuperPlane's "Schedule"): starts a run at set times, cron or interval."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from daytonaflow.builtins import _calendar
from daytonaflow.builtins._calendar import WEEK_DAYS, ScheduleError
from daytonaflow.builtins._trigger import TriggerComponent
from daytonaflow.components import _fields
from daytonaflow.components._fields import Field, Option, When
from daytonaflow.errors import ConfigIssue
from daytonaflow.events import Payload

#: The schedule kinds whose times are local to the configured time zone (SuperPlane's list).
ZONED_TYPES = ("days", "weeks", "months", "cron")


class Calendar(BaseModel):
    """The fire time in the schedule's zone, each part as text (SuperPlane's ``calendar``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    year: str
    month: str
    day: str
    hour: str
    minute: str
    second: str
    week_day: str


class SchedulerTickPayload(Payload):
    event_type: ClassVar[str] = "scheduler.tick"

    calendar: Calendar
    #: ``Europe/Berlin (UTC+01:00)``; only for the kinds whose times are zoned (days, weeks, months, cron).
    timezone: str | None = PydanticField(default=None)


def _when(*types: str) -> tuple[When, ...]:
    return (When("type", types),)


def _interval(name: str, label: str, unit: str, high: int) -> Field:
    return Field(
        name,
        "number",
        label,
        f"Number of {unit} between triggers (1-{high}).",
        default=1,
        minimum=1,
        maximum=high,
        visible_when=_when(unit),
        expressions=False,
    )


FIELDS = (
    Field(
        "type",
        "select",
        "Frequency",
        "How the fire times are set: every N minutes, hours, days, weeks or months, or a cron expression.",
        default="minutes",
        options=(
            Option("minutes", "Minutes"),
            Option("hours", "Hours"),
            Option("days", "Days"),
            Option("weeks", "Weeks"),
            Option("months", "Months"),
            Option("cron", "Cron (Custom)"),
        ),
        expressions=False,
    ),
    Field(
        "timezone",
        "string",
        "Timezone",
        'Time zone of the fire times: an offset in hours as SuperPlane writes it ("0", "-5", "5.5"),'
        ' an IANA name with its daylight saving time ("Europe/Berlin"), or "current" (the zone of the'
        " machine running `daytonaflow up`).",
        default="current",
        placeholder="Europe/Berlin",
        visible_when=_when(*ZONED_TYPES),
        expressions=False,
    ),
    _interval("minutesInterval", "Minutes between triggers", "minutes", 59),
    _interval("hoursInterval", "Hours between triggers", "hours", 23),
    _interval("daysInterval", "Days between triggers", "days", 31),
    _interval("weeksInterval", "Weeks between triggers", "weeks", 52),
    _interval("monthsInterval", "Months between triggers", "months", 24),
    Field(
        "dayOfMonth",
        "number",
        "Trigger on day of the month",
        "Day of the month (1-31); a shorter month fires on its last day.",
        default=1,
        minimum=1,
        maximum=31,
        visible_when=_when("months"),
        expressions=False,
    ),
    Field(
        "weekDays",
        "list",
        "Trigger on days of the week",
        "Which days of the week to trigger.",
        default=["monday"],
        item=Field(
            "weekDay",
            "select",
            "Day",
            options=tuple(Option(day, day.capitalize()) for day in WEEK_DAYS),
            expressions=False,
        ),
        visible_when=_when("weeks"),
        expressions=False,
    ),
    Field(
        "hour",
        "number",
        "Trigger at hour",
        "Hour of the day (0-23).",
        default=0,
        minimum=0,
        maximum=23,
        visible_when=_when("days", "weeks", "months"),
        expressions=False,
    ),
    Field(
        "minute",
        "number",
        "Trigger at minute",
        "Minute of the hour (0-59).",
        default=0,
        minimum=0,
        maximum=59,
        visible_when=_when("hours", "days", "weeks", "months"),
        expressions=False,
    ),
    Field(
        "cronExpression",
        "string",
        "Cron Expression",
        "Cron expression in 5-field (e.g. '30 14 * * MON-FRI') or 6-field (e.g. '0 30 14 * * MON-FRI')"
        " format. Valid wildcards: * , - / (and @daily, @hourly, ...).",
        placeholder="30 14 * * MON-FRI",
        visible_when=_when("cron"),
        required_when=_when("cron"),
        expressions=False,
    ),
)

_DOCS = """\
The Schedule trigger starts a run at set times, while `daytonaflow up` keeps the canvas armed.

## Schedule types
- **Minutes** (`minutesInterval`, 1-59): every N minutes, counted from when the schedule was first armed.
- **Hours** (`hoursInterval`, `minute`): every N hours at the given minute past the hour.
- **Days** (`daysInterval`, `hour`, `minute`): every N days at a local time.
- **Weeks** (`weeksInterval`, `weekDays`, `hour`, `minute`): on the chosen days of every N-th week
  (at least one day: an empty `weekDays` is refused when the canvas loads).
- **Months** (`monthsInterval`, `dayOfMonth`, `hour`, `minute`): on a day of every N-th month (a
  shorter month fires on its last day).
- **Cron** (`cronExpression`): 5 fields `minute hour day month weekday` (`30 14 * * MON-FRI`) or 6
  with seconds first (`0 30 14 * * MON-FRI`); `*`, `,`, `-`, `/`, month and day names, `@daily` and
  the other descriptors. When both day fields are restricted, a day matching either fires (cron's rule).

## Time zones
Days, weeks, months and cron schedules read their times in `timezone`: SuperPlane's offset in
hours (`"0"`, `"-5"`, `"5.5"`), an IANA name (`Europe/Berlin`, daylight saving time included), or
`current` (the zone of the machine running `daytonaflow up`). A local time that a DST change skips
fires once the clocks have moved on (02:30 fires at 03:30); a local time that occurs twice fires once.

## Durability
`daytonaflow up` keeps each schedule's next fire time in the run database. A fire time missed
while it was not running fires **once** when it starts again (not once per missed tick), and the
schedule then goes on from the current time; a restart never fires the same tick twice. A tick due
while 1000 events of the canvas already wait for a run slot is skipped (and logged), so a fast
schedule of slow runs cannot grow the queue without bound. A schedule that fails to fire (a full
disk) is retried with a back-off, from 1 second up to 30, and its error logged at most once a minute.

## Event data
Each fire emits `scheduler.tick` on `default` with the fire time in the schedule's zone:
- **calendar**: `year`, `month` (name), `day`, `hour`, `minute`, `second`, `week_day` (name), as text;
- **timezone**: the zone and its offset, for the zoned types (days, weeks, months, cron).
"""


class Schedule(TriggerComponent):
    name: ClassVar[str] = "schedule"
    label: ClassVar[str] = "Schedule"
    description: ClassVar[str] = "Start a new execution chain on a schedule"
    icon: ClassVar[str] = "alarm-clock"
    color: ClassVar[str] = "yellow"
    payload_type: ClassVar[type[Payload]] = SchedulerTickPayload
    fields: ClassVar[tuple[Field, ...]] = FIELDS
    docs: ClassVar[str] = _DOCS

    @classmethod
    def extra_rules(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        settings = _fields.apply_defaults(cls.fields, config)
        issues = []
        if settings.get("type") in ZONED_TYPES and isinstance(settings.get("timezone"), str):
            try:
                _calendar.parse_timezone(settings["timezone"])
            except ScheduleError as error:
                issues.append(ConfigIssue("timezone", str(error)))
        if settings.get("type") == "weeks" and settings.get("weekDays") == []:
            issues.append(ConfigIssue("weekDays", "needs at least one day of the week (it would never fire)"))
        expression = settings.get("cronExpression")
        if settings.get("type") == "cron" and isinstance(expression, str) and expression.strip():
            try:
                cron = _calendar.parse_cron(expression)
            except ScheduleError as error:
                issues.append(ConfigIssue("cronExpression", f"is not a valid cron expression: {error}"))
            else:
                if _calendar.next_cron(cron, UTC, datetime(2000, 1, 1, tzinfo=UTC)) is None:
                    issues.append(ConfigIssue("cronExpression", "matches no date (it would never fire)"))
        return issues

    @classmethod
    def next_fire(cls, config: Mapping[str, Any], after: datetime, reference: datetime) -> datetime | None:
        """The first fire time strictly after ``after``; ``reference`` is when the schedule was
        first armed (intervals count from it). None: a cron expression with no date left to match."""
        settings = _fields.apply_defaults(cls.fields, config)
        kind = settings["type"]
        zone = _calendar.parse_timezone(settings["timezone"]) if kind in ZONED_TYPES else UTC
        hour, minute = int(settings["hour"]), int(settings["minute"])
        if kind == "minutes":
            return _calendar.next_minutes(int(settings["minutesInterval"]), reference, after)
        if kind == "hours":
            return _calendar.next_hours(int(settings["hoursInterval"]), minute, after)
        if kind == "days":
            return _calendar.next_days(int(settings["daysInterval"]), hour, minute, zone, reference, after)
        if kind == "weeks":
            interval = int(settings["weeksInterval"])
            days = list(settings["weekDays"])
            return _calendar.next_weeks(interval, days, hour, minute, zone, reference, after)
        if kind == "months":
            interval, day = int(settings["monthsInterval"]), int(settings["dayOfMonth"])
            return _calendar.next_months(interval, day, hour, minute, zone, reference, after)
        return _calendar.next_cron(_calendar.parse_cron(settings["cronExpression"]), zone, after)

    @classmethod
    def tick(cls, config: Mapping[str, Any], at: datetime) -> SchedulerTickPayload:
        """The event of the fire time ``at``, its calendar read in the schedule's zone."""
        settings = _fields.apply_defaults(cls.fields, config)
        zoned = settings["type"] in ZONED_TYPES
        zone = _calendar.parse_timezone(settings["timezone"]) if zoned else UTC
        local = at.astimezone(zone)
        return SchedulerTickPayload(
            calendar=Calendar(
                year=f"{local.year}",
                month=local.strftime("%B"),
                day=f"{local.day}",
                hour=f"{local.hour:02d}",
                minute=f"{local.minute:02d}",
                second=f"{local.second:02d}",
                week_day=local.strftime("%A"),
            ),
            timezone=_calendar.describe_timezone(zone, at) if zoned else None,
        )
