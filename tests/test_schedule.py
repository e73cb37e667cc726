"""EventBridge Scheduler expressions: next fire times checked against the calendar by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bisonflow.deploy.schedule import (
    DEFAULT_EXPRESSION,
    DEFAULT_TIMEZONE,
    ScheduleExpressionError,
    next_fire_times,
    schedule_summary,
)

NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def days(times: list[datetime]) -> list[str]:
    return [t.strftime("%Y-%m-%d %H:%M") for t in times]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # An ordinary afternoon.
        (utc(2026, 11, 23, 16, 44), ["2026-12-02", "2027-01-02", "2027-02-02"]),
        # Exactly at a fire time: that run is starting, the next one is a month later.
        (utc(2026, 12, 2, 6, 0), ["2027-01-02", "2027-02-02", "2027-03-02"]),
        # One second before it, it is still the next one.
        (utc(2026, 12, 2, 5, 59, 59), ["2026-12-02", "2027-01-02", "2027-02-02"]),
        # At the year's end.
        (utc(2026, 12, 31, 23, 59), ["2027-01-02", "2027-02-02", "2027-03-02"]),
    ],
)
def test_default_schedule_next_three(now: datetime, expected: list[str]) -> None:
    assert DEFAULT_EXPRESSION == "cron(0 6 2 * ? *)" and DEFAULT_TIMEZONE == "UTC"
    times = next_fire_times(DEFAULT_EXPRESSION, now)
    assert days(times) == [f"{d} 06:00" for d in expected]
    assert all(t.utcoffset().total_seconds() == 0 for t in times)


@pytest.mark.parametrize(
    ("expression", "now", "expected"),
    [
        # L: the month's last day, February of a leap year included; now at a fire time.
        ("cron(0 12 L * ? *)", utc(2028, 1, 31, 12), ["2028-02-29", "2028-03-31", "2028-04-30"]),
        # W: the weekday nearest the 15th (Sat 15 May -> Fri 14; Sun 15 Aug -> Mon 16).
        ("cron(0 9 15W * ? *)", utc(2027, 7, 16), ["2027-08-16", "2027-09-15", "2027-10-15"]),
        ("cron(0 9 15W * ? *)", utc(2027, 5, 1), ["2027-05-14", "2027-06-15", "2027-07-15"]),
        # 1W on a Saturday the 1st moves forward to Monday the 3rd, never into April.
        ("cron(0 9 1W 5 ? *)", utc(2027, 4, 15), ["2027-05-03", "2028-05-01", "2029-05-01"]),
        # #: the second Tuesday (3 = TUE; AWS counts 1 = SUN).
        ("cron(0 9 ? * 3#2 *)", utc(2026, 11, 23), ["2026-12-08", "2027-01-12", "2027-02-09"]),
        # 6L: the month's last Friday.
        ("cron(0 9 ? * 6L *)", utc(2026, 11, 23), ["2026-11-27", "2026-12-25", "2027-01-29"]),
        # L alone in day-of-week: the week's last day, Saturday.
        ("cron(0 9 ? * L *)", utc(2026, 11, 23), ["2026-11-28", "2026-12-05", "2026-12-12"]),
        # 1 is Sunday; names and ranges; a list of months.
        ("cron(0 9 ? * 1 *)", utc(2026, 11, 23), ["2026-11-29", "2026-12-06", "2026-12-13"]),
        ("cron(0 9 ? JAN,FEB MON-WED 2027)", utc(2027, 1, 29), ["2027-02-01", "2027-02-02"]),
        # Schedules that end: limited to this year, or a day that never comes (30 February).
        ("cron(0 6 2 * ? 2026)", utc(2026, 11, 23), ["2026-12-02"]),
        ("cron(0 6 30 2 ? *)", utc(2026, 11, 23), []),
    ],
)
def test_special_day_rules(expression: str, now: datetime, expected: list[str]) -> None:
    count = 2 if "JAN,FEB" in expression else 3
    times = next_fire_times(expression, now, count=count)
    assert [t.strftime("%Y-%m-%d") for t in times] == expected


def test_minutes_and_hours_with_steps_and_ranges() -> None:
    times = next_fire_times("cron(0/20 8-9 * * ? *)", utc(2026, 11, 23, 8, 30), count=5)
    assert days(times) == [
        "2026-11-23 08:40",
        "2026-11-23 09:00",
        "2026-11-23 09:20",
        "2026-11-23 09:40",
        "2026-11-24 08:00",
    ]


def test_spring_gap_is_skipped_and_autumn_overlap_fires_once() -> None:
    # 14 March 2027: New York jumps from 02:00 to 03:00, so 02:30 does not exist that day.
    spring = next_fire_times("cron(30 2 * * ? *)", utc(2027, 3, 13, 12), 2, "America/New_York")
    assert days(spring) == ["2027-03-15 02:30", "2027-03-16 02:30"]
    assert spring[0].tzinfo == NEW_YORK and spring[0].tzname() == "EDT"
    # 7 November 2027: 01:30 happens twice; it fires once, at the first (EDT, 05:30 UTC).
    autumn = next_fire_times("cron(30 1 * * ? *)", utc(2027, 11, 6, 12), 2, "America/New_York")
    assert [t.astimezone(UTC).strftime("%d %H:%M") for t in autumn] == ["07 05:30", "08 06:30"]
    # A "now" in the repeated hour's second pass is after the first pass: that one is past.
    second_pass = datetime(2027, 11, 7, 1, 45, fold=1, tzinfo=NEW_YORK)
    after = next_fire_times("cron(50 1 * * ? *)", second_pass, 1, "America/New_York")
    assert days(after) == ["2027-11-08 01:50"]


def test_time_zone_shifts_the_utc_time() -> None:
    times = next_fire_times(DEFAULT_EXPRESSION, utc(2027, 2, 1), 2, "America/New_York")
    assert [t.astimezone(UTC).strftime("%m-%d %H:%M") for t in times] == [
        "02-02 11:00",  # EST, UTC-5
        "03-02 11:00",
    ]
    summer = next_fire_times(DEFAULT_EXPRESSION, utc(2027, 6, 1), 1, "America/New_York")
    assert summer[0].astimezone(UTC).strftime("%m-%d %H:%M") == "06-02 10:00"  # EDT


def test_rate_and_at() -> None:
    now = utc(2026, 11, 23, 16, 44)
    assert days(next_fire_times("rate(20 minutes)", now)) == [
        "2026-11-23 17:04",
        "2026-11-23 17:24",
        "2026-11-23 17:44",
    ]
    # A day is 24 hours: across New York's spring change the wall clock moves by one hour.
    spring = next_fire_times("rate(1 day)", utc(2027, 3, 13, 12), 2, "America/New_York")
    assert days(spring) == ["2027-03-14 08:00", "2027-03-15 08:00"]
    assert [t.tzname() for t in spring] == ["EDT", "EDT"]
    tokyo = next_fire_times("at(2027-01-01T00:00:00)", now, timezone="Asia/Tokyo")
    assert [t.astimezone(UTC) for t in tokyo] == [utc(2026, 12, 31, 15)]
    assert next_fire_times("at(2026-01-01T00:00:00)", now) == []


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 6 2 * * *)", r"exactly one of day-of-month \(2\) and day-of-week \(\*\) must"),
        ("cron(0 6 ? * ? *)", r"exactly one of day-of-month \(\?\) and day-of-week \(\?\)"),
        ("cron(60 6 2 * ? *)", "minutes value 60 is out of range 0-59"),
        ("cron(0 24 2 * ? *)", "hours value 24 is out of range 0-23"),
        ("cron(0 6 32 * ? *)", "day-of-month value 32 is out of range 1-31"),
        ("cron(0 6 2 FOO ? *)", "month value 'FOO' is not a number or one of JAN/FEB"),
        ("cron(0 6 ? * 0 *)", "day-of-week value 0 is out of range 1-7"),
        ("cron(0 6 ? * 3#6 *)", "day-of-week '3#6': the number after # must be 1-5"),
        ("cron(0 6 2 * ? 1969)", "year value 1969 is out of range 1970-2199"),
        ("cron(0 6 5-2 * ? *)", "day-of-month range 5-2 runs backwards"),
        ("cron(0 */0 2 * ? *)", "hours step '0' is not a positive number"),
        ("cron(0 6 L,3 * ? *)", "day-of-month 'L,3': L and W stand alone"),
        ("cron(0 6 2 * ?)", r"cron needs 6 fields .* got 5"),
        ("cron(? 6 2 * 1 *)", r"day-of-month \(2\) and day-of-week \(1\)"),
        ("cron(? 6 ? * 1 *)", "minutes cannot be ?"),
        ("rate(1 days)", "with value 1 the unit is day"),
        ("rate(5 day)", "with value 5 the unit is days"),
        ("rate(0 minutes)", "rate value must be positive"),
        ("rate(2 weeks)", "rate needs a positive whole number and minute"),
        ("at(2026-02-30T00:00:00)", "at needs a valid yyyy-mm-ddThh:mm:ss time"),
        ("at(2026-02-03 00:00)", "at needs a valid"),
        ("monthly", "'monthly' is not cron"),
    ],
)
def test_invalid_expressions_name_the_bad_field(expression: str, message: str) -> None:
    with pytest.raises(ScheduleExpressionError, match=message):
        next_fire_times(expression, utc(2026, 11, 23))


def test_bad_time_zone_and_naive_now_are_named() -> None:
    with pytest.raises(ScheduleExpressionError, match="unknown time zone 'Mars/Olympus'"):
        next_fire_times(DEFAULT_EXPRESSION, utc(2026, 11, 23), timezone="Mars/Olympus")
    with pytest.raises(ScheduleExpressionError, match="needs a time zone"):
        next_fire_times(DEFAULT_EXPRESSION, datetime(2026, 11, 23))


def test_summary_prints_expression_zone_and_both_clocks() -> None:
    text = schedule_summary(DEFAULT_EXPRESSION, "Europe/Berlin", utc(2026, 11, 23, 16, 44), 2)
    assert text.splitlines() == [
        "Schedule expression: cron(0 6 2 * ? *)",
        "Time zone:           Europe/Berlin",
        "Next 2 fire times after 2026-11-23 16:44 UTC:",
        "  Wed 2026-12-02 06:00 CET       = 2026-12-02 05:00 UTC",
        "  Sat 2027-01-02 06:00 CET       = 2027-01-02 05:00 UTC",
    ]
    ended = schedule_summary("at(2026-01-01T00:00:00)", "UTC", utc(2026, 11, 23))
    assert ended.splitlines()[-1] == "  none: the schedule does not fire again"
