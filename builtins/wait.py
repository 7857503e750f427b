"""The built-in ``wait`` component: a durable delay, for a duration or until a date and time.

The delay is a check the engine persists (``ctx.schedule_check``), not a sleeping hook: an engine
restart during the wait resumes it where it was, and a canvas waiting for hours holds no task.
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from daytonaflow.builtins._base import BuiltinComponent
from daytonaflow.component import ExecutionContext
from daytonaflow.components._fields import Field, Option, When
from daytonaflow.errors import ComponentError, ConfigIssue
from daytonaflow.events import Payload
from daytonaflow.expressions import contains_template

MODES = ("interval", "countdown")
UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600}
#: A check that fires this early (clock skew between processes) waits again instead of emitting.
EARLY_TOLERANCE_SECONDS = 0.05


class WaitTargetInPastError(ComponentError):
    """``waitUntil`` names a moment already gone (SuperPlane refuses it too)."""


class WaitPayload(Payload):
    event_type: ClassVar[str] = "wait.finished"

    started_at: str
    finished_at: str
    #: ``completed``
    result: str
    #: ``timeout``: the time was reached (SuperPlane's word; its manual push-through is not offered).
    reason: str


_INTERVAL = (When("mode", ("interval",)),)
_COUNTDOWN = (When("mode", ("countdown",)),)

FIELDS = (
    Field(
        "mode",
        "select",
        "Wait Mode",
        "interval: wait for a duration; countdown: wait until a date and time.",
        default="interval",
        options=(Option("interval", "Interval"), Option("countdown", "Countdown")),
    ),
    Field(
        "waitFor",
        "string",
        "Wait for...",
        "A whole number of units (a number, or a string of digits such as an expression gives).",
        default="10",
        visible_when=_INTERVAL,
    ),
    Field(
        "unit",
        "select",
        "Unit",
        "Time unit of waitFor.",
        default="seconds",
        options=(Option("seconds", "Seconds"), Option("minutes", "Minutes"), Option("hours", "Hours")),
        visible_when=_INTERVAL,
    ),
    Field(
        "waitUntil",
        "string",
        "Wait until",
        "ISO 8601 date and time (e.g. 2026-08-14T02:00:00Z; no zone means UTC), or an RFC 1123 date.",
        visible_when=_COUNTDOWN,
        required_when=_COUNTDOWN,
    ),
)

_DOCS = """\
The Wait component pauses the run for a duration or until a date and time, then continues on
`default`.

## Configuration
- **Wait Mode** (`mode`): `interval` (default) or `countdown`.
- **Wait for** (`waitFor`) and **Unit** (`unit`: `seconds`, `minutes`, `hours`): interval mode;
  a positive whole number, written as a number or as a string (an expression's result, e.g.
  `{{ $["Plan"].data.delay }}`).
- **Wait until** (`waitUntil`): countdown mode; an ISO 8601 date and time
  (`2026-08-14T02:00:00Z`, `2026-08-14 02:00:00+02:00`, `2026-08-14`; without a zone, UTC) or an
  RFC 1123 date. A moment already past fails the node, as in SuperPlane.

## Behaviour
The wait is a check the engine persists, not a sleeping task: if the engine stops or the machine
restarts during the wait, the resumed run waits only for what was left (and continues at once if
the time passed meanwhile). SuperPlane's manual "push through" has no counterpart here.

## Output
`started_at`, `finished_at` (RFC 3339, UTC), `result` (`completed`) and `reason` (`timeout`: the
time was reached).
"""


class Wait(BuiltinComponent):
    name: ClassVar[str] = "wait"
    label: ClassVar[str] = "Wait"
    description: ClassVar[str] = "Wait for a duration, or until a date and time (durably)."
    icon: ClassVar[str] = "alarm-clock"
    color: ClassVar[str] = "yellow"
    payload_type: ClassVar[type[Payload]] = WaitPayload
    fields = FIELDS
    docs: ClassVar[str] = _DOCS

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        schema = super().config_schema()
        wait_for = schema["properties"]["waitFor"]
        # SuperPlane's field is a string; a number is the same value written plainly.
        schema["properties"]["waitFor"] = {
            **{key: wait_for[key] for key in ("title", "description", "default")},
            "type": ["string", "integer"],
        }
        return schema

    @classmethod
    def validate_config(cls, config: Any, *, allow_expressions: bool) -> list[ConfigIssue]:
        if isinstance(config, dict) and isinstance(config.get("waitFor"), int | float):
            # Checked as the string it stands for; extra_rules checks the number itself.
            config = {**config, "waitFor": str(config["waitFor"])}
        return super().validate_config(config, allow_expressions=allow_expressions)

    @classmethod
    def extra_rules(cls, config: Any, *, allow_expressions: bool) -> list[ConfigIssue]:
        def deferred(value: Any) -> bool:
            return allow_expressions and isinstance(value, str) and contains_template(value)

        mode = config.get("mode", "interval")
        if mode == "interval":
            value = config.get("waitFor", "10")
            if not deferred(value) and _whole_number(value) is None:
                return [ConfigIssue("waitFor", "must be a positive whole number")]
        elif mode == "countdown":
            value = config.get("waitUntil")
            if isinstance(value, str) and value and not deferred(value) and _parse_moment(value) is None:
                return [
                    ConfigIssue("waitUntil", "must be an ISO 8601 date and time, e.g. 2026-08-14T02:00:00Z")
                ]
        return []

    async def execute(self, ctx: ExecutionContext) -> None:
        state = ctx.metadata.get()
        if "due_at" not in state:
            # A re-run execute (the engine restarted before the check was stored) keeps the first start.
            state = self._plan(ctx)
            ctx.metadata.set(state)
        ctx.schedule_check(max(0.0, float(state["due_at"]) - time.time()))

    async def check(self, ctx: ExecutionContext) -> None:
        state = ctx.metadata.get()
        left = float(state["due_at"]) - time.time()
        if left > EARLY_TOLERANCE_SECONDS:
            ctx.schedule_check(left)
            return
        ctx.emit(
            "default",
            WaitPayload(
                started_at=_rfc3339(float(state["started"])),
                finished_at=_rfc3339(time.time()),
                result="completed",
                reason="timeout",
            ),
        )

    def _plan(self, ctx: ExecutionContext) -> dict[str, Any]:
        settings = self.settings(ctx)
        now = time.time()
        if settings["mode"] == "interval":
            amount = _whole_number(settings["waitFor"])
            assert amount is not None  # validated
            interval = float(amount * UNIT_SECONDS[settings["unit"]])
        else:
            moment = _parse_moment(settings["waitUntil"])
            assert moment is not None  # validated
            interval = moment.timestamp() - now
            if interval <= 0:
                raise WaitTargetInPastError(
                    f'node "{ctx.node_id}": waitUntil {moment.isoformat()} is in the past'
                )
        return {
            # SuperPlane's metadata names, and the exact moments the check needs.
            "start_time": _rfc3339(now),
            "interval_duration": round(interval * 1000),
            "started": now,
            "due_at": now + interval,
        }


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value > 0 else None


def _parse_moment(text: str) -> datetime | None:
    candidate = text.strip()
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(candidate)
        except (TypeError, ValueError, IndexError):
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _rfc3339(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")
