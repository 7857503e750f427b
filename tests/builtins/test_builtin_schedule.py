"""The schedule trigger: its fire times (cron and SuperPlane's intervals, in time zones, across DST),
its load-time checks and its ``scheduler.tick`` event. No clock is read: every instant is given."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from daytonaflow.builtins import Schedule
from daytonaflow.runner import CanvasError, ComponentRegistry, check_canvas, parse_canvas

REFERENCE = datetime(2026, 1, 5, 8, 7, 0, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def fires(
    config: dict[str, Any], after: datetime, count: int = 3, reference: datetime = REFERENCE
) -> list[str]:
    """The next ``count`` fire times after ``after``, each in UTC ISO form."""
    times = []
    for _ in range(count):
        following = Schedule.next_fire(config, after, reference)
        assert following is not None
        times.append(following.isoformat().replace("+00:00", "Z"))
        after = following
    return times


def test_a_five_field_cron_fires_on_its_minutes_in_utc() -> None:
    config = {"type": "cron", "cronExpression": "*/15 9 * * MON-FRI", "timezone": "0"}
    # Friday 2026-01-09 09:40 → 09:45, then Monday 09:00 (the weekend skipped).
    assert fires(config, utc(2026, 1, 9, 9, 40)) == [
        "2026-01-09T09:45:00Z",
        "2026-01-12T09:00:00Z",
        "2026-01-12T09:15:00Z",
    ]


def test_a_six_field_cron_has_seconds_first() -> None:
    config = {"type": "cron", "cronExpression": "30 0 12 * * *", "timezone": "0"}
    assert fires(config, utc(2026, 1, 1, 12, 0, 30), 2) == ["2026-01-02T12:00:30Z", "2026-01-03T12:00:30Z"]


def test_a_cron_reads_its_times_in_an_iana_zone() -> None:
    config = {"type": "cron", "cronExpression": "0 9 * * *", "timezone": "Europe/Berlin"}
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    assert fires(config, utc(2026, 1, 10), 1) == ["2026-01-10T08:00:00Z"]
    assert fires(config, utc(2026, 7, 10), 1) == ["2026-07-10T07:00:00Z"]


def test_a_cron_reads_superplanes_hour_offsets() -> None:
    config = {"type": "cron", "cronExpression": "0 9 * * *", "timezone": "5.5"}
    assert fires(config, utc(2026, 1, 10), 1) == ["2026-01-10T03:30:00Z"]
    config["timezone"] = "-5"
    assert fires(config, utc(2026, 1, 10), 1) == ["2026-01-10T14:00:00Z"]


def test_a_daily_time_keeps_its_local_hour_across_the_spring_dst_change() -> None:
    config = {"type": "cron", "cronExpression": "0 9 * * *", "timezone": "America/New_York"}
    # New York moves from UTC-5 to UTC-4 on 2026-03-08.
    assert fires(config, utc(2026, 3, 7, 0), 2) == ["2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z"]


def test_a_time_skipped_by_spring_forward_fires_once_the_clocks_moved_on() -> None:
    config = {"type": "cron", "cronExpression": "30 2 * * *", "timezone": "America/New_York"}
    # 02:30 does not exist on 2026-03-08: it fires at 03:30 EDT (07:30 UTC), once.
    assert fires(config, utc(2026, 3, 7, 12), 3) == [
        "2026-03-08T07:30:00Z",
        "2026-03-09T06:30:00Z",
        "2026-03-10T06:30:00Z",
    ]


def test_a_time_repeated_by_fall_back_fires_once() -> None:
    config = {"type": "cron", "cronExpression": "30 1 * * *", "timezone": "America/New_York"}
    # 01:30 happens twice on 2026-11-01 (EDT, then EST): the first one fires, the second does not.
    assert fires(config, utc(2026, 10, 31, 12), 2) == ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]


def test_a_restricted_day_of_month_and_weekday_fire_on_either() -> None:
    config = {"type": "cron", "cronExpression": "0 0 13 * FRI", "timezone": "0"}
    # February 2026: Fridays 6, 13 (also the 13th), 20.
    assert fires(config, utc(2026, 2, 1), 3) == [
        "2026-02-06T00:00:00Z",
        "2026-02-13T00:00:00Z",
        "2026-02-20T00:00:00Z",
    ]


def test_descriptors_stand_for_their_expressions() -> None:
    config = {"type": "cron", "cronExpression": "@daily", "timezone": "0"}
    assert fires(config, utc(2026, 2, 1, 5), 1) == ["2026-02-02T00:00:00Z"]


def test_minutes_count_from_when_the_schedule_was_first_armed() -> None:
    config = {"type": "minutes", "minutesInterval": 20}
    assert fires(config, utc(2026, 1, 5, 9, 0)) == [
        "2026-01-05T09:07:00Z",
        "2026-01-05T09:27:00Z",
        "2026-01-05T09:47:00Z",
    ]


def test_hours_fire_at_their_minute_every_n_hours() -> None:
    config = {"type": "hours", "hoursInterval": 6, "minute": 15}
    assert fires(config, utc(2026, 1, 5, 9, 20), 2) == ["2026-01-05T15:15:00Z", "2026-01-05T21:15:00Z"]
    # The minute still ahead in this hour fires in this hour, as SuperPlane's does.
    assert fires(config, utc(2026, 1, 5, 9, 10), 1) == ["2026-01-05T09:15:00Z"]


def test_days_fire_at_a_local_time_every_n_days_from_the_first_day() -> None:
    config = {"type": "days", "daysInterval": 2, "hour": 6, "minute": 30, "timezone": "Europe/Berlin"}
    # Armed on 2026-01-05: the 5th, 7th, 9th at 06:30 Berlin (05:30 UTC).
    assert fires(config, utc(2026, 1, 5, 10)) == [
        "2026-01-07T05:30:00Z",
        "2026-01-09T05:30:00Z",
        "2026-01-11T05:30:00Z",
    ]


def test_weeks_fire_on_the_chosen_days_of_every_nth_week() -> None:
    config = {
        "type": "weeks",
        "weeksInterval": 2,
        "weekDays": ["monday", "thursday"],
        "hour": 9,
        "timezone": "0",
    }
    # Armed in the week of Monday 2026-01-05: that week, then the week of the 19th.
    assert fires(config, utc(2026, 1, 5, 10), 3) == [
        "2026-01-08T09:00:00Z",
        "2026-01-19T09:00:00Z",
        "2026-01-22T09:00:00Z",
    ]


def test_months_fire_on_their_day_or_the_months_last_day() -> None:
    config = {"type": "months", "monthsInterval": 1, "dayOfMonth": 31, "hour": 12, "timezone": "0"}
    assert fires(config, utc(2026, 1, 31, 13), 3) == [
        "2026-02-28T12:00:00Z",
        "2026-03-31T12:00:00Z",
        "2026-04-30T12:00:00Z",
    ]


def test_the_tick_carries_superplanes_calendar_in_the_schedules_zone() -> None:
    payload = Schedule.tick(
        {"type": "cron", "cronExpression": "0 9 * * *", "timezone": "Europe/Berlin"}, utc(2026, 7, 10, 7)
    )
    assert payload.model_dump(mode="json", exclude_none=True) == {
        "calendar": {
            "year": "2026",
            "month": "July",
            "day": "10",
            "hour": "09",
            "minute": "00",
            "second": "00",
            "week_day": "Friday",
        },
        "timezone": "Europe/Berlin (UTC+02:00)",
    }


def test_an_unzoned_tick_has_no_timezone() -> None:
    payload = Schedule.tick({"type": "minutes", "minutesInterval": 5}, utc(2026, 7, 10, 7, 5))
    assert payload.timezone is None
    assert payload.calendar.minute == "05"


def _canvas(configuration: dict[str, Any]) -> Any:
    return parse_canvas(
        {
            "metadata": {"name": "nightly"},
            "spec": {
                "nodes": [
                    {
                        "id": "nightly",
                        "type": "TYPE_TRIGGER",
                        "component": "schedule",
                        "configuration": configuration,
                    },
                    {"id": "done", "component": "noop"},
                ],
                "edges": [{"sourceId": "nightly", "targetId": "done"}],
            },
        }
    )


def _problems(configuration: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(CanvasError) as caught:
        check_canvas(_canvas(configuration), ComponentRegistry.discover(), source="nightly.yaml")
    return [(issue.node, issue.field, issue.message) for issue in caught.value.issues]


def test_a_malformed_cron_is_refused_at_load_naming_node_and_field() -> None:
    ((node, field, message),) = _problems({"type": "cron", "cronExpression": "61 * * * *", "timezone": "0"})
    assert (node, field) == ("nightly", "configuration.cronExpression")
    assert message == "is not a valid cron expression: minute 61 is out of range (from 0 to 59)"


def test_a_cron_of_the_wrong_length_says_how_many_fields_it_has() -> None:
    ((_, field, message),) = _problems({"type": "cron", "cronExpression": "* * *", "timezone": "0"})
    assert field == "configuration.cronExpression"
    assert "got 3" in message


def test_a_cron_that_never_matches_is_refused() -> None:
    ((_, _, message),) = _problems({"type": "cron", "cronExpression": "0 0 30 2 *", "timezone": "0"})
    assert message == "matches no date (it would never fire)"


def test_an_unknown_time_zone_is_refused_at_load() -> None:
    ((node, field, message),) = _problems({"type": "days", "timezone": "Mars/Olympus_Mons"})
    assert (node, field) == ("nightly", "configuration.timezone")
    assert message.startswith('"Mars/Olympus_Mons" is not a known time zone')


def test_an_interval_out_of_range_is_refused() -> None:
    ((_, field, message),) = _problems({"type": "minutes", "minutesInterval": 90})
    assert field == "configuration.minutesInterval"
    assert "59" in message


def test_a_valid_schedule_loads() -> None:
    assert (
        check_canvas(
            _canvas({"type": "cron", "cronExpression": "0 9 * * MON", "timezone": "UTC"}),
            ComponentRegistry.discover(),
        )
        == []
    )


def test_weeks_without_a_day_are_refused_at_load_naming_node_and_field() -> None:
    ((node, field, message),) = _problems({"type": "weeks", "weekDays": [], "timezone": "0"})
    assert (node, field) == ("nightly", "configuration.weekDays")
    assert message == "needs at least one day of the week (it would never fire)"


def test_weeks_without_a_day_computed_anyway_raise_a_schedule_error_not_an_assertion() -> None:
    from daytonaflow.builtins._calendar import ScheduleError

    with pytest.raises(ScheduleError, match="no day of the week"):
        Schedule.next_fire({"type": "weeks", "weekDays": [], "timezone": "0"}, REFERENCE, REFERENCE)
