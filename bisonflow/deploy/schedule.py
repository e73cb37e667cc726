"""EventBridge Scheduler's schedule expressions, evaluated here so `bisonflow schedule` can say
when the monthly run will next start without asking AWS.

Supported, as EventBridge Scheduler defines them:

- `cron(minutes hours day-of-month month day-of-week year)` with `, - * /` in every field,
  `?` in day-of-month or day-of-week (exactly one of the two must be `?`), `L` (last day of
  the month; alone in day-of-week it is the week's last day, SAT; `6L` is the month's last
  Friday), `W` (`15W`: the weekday nearest the 15th, never leaving the month) and `#` (`3#2`:
  the second Tuesday). Months take JAN-DEC and day-of-week SUN-SAT; day-of-week numbers run
  1=SUN to 7=SAT (not cron's 0=SUN).
- `rate(N minute[s]|hour[s]|day[s])`: without a StartDate Scheduler starts at creation, so
  the fire times are `after + N`, `after + 2N`, ... (a day is 24 hours, as on AWS).
- `at(yyyy-mm-ddThh:mm:ss)`: one time, in the schedule's time zone.

Cron fields are wall-clock times in the schedule's time zone. Across daylight saving time we
do what Scheduler does: a wall time that does not exist (the hour skipped in spring) does not
fire that day, and a wall time that happens twice (the hour repeated in autumn) fires once, at
its first occurrence. Fire times are strictly after `after`: a "now" exactly at a fire time is
the run being started, so the next one is listed.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The 2nd of every month at 06:00 UTC: after GBIF publishes its snapshot on the 1st.
DEFAULT_EXPRESSION = "cron(0 6 2 * ? *)"
DEFAULT_TIMEZONE = "UTC"

MONTH_NAMES = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


class ScheduleExpressionError(ValueError):
    """A schedule expression or time zone EventBridge Scheduler would reject."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]

    def number(self, text: str, expression: str) -> int:
        value = self.names.get(text.upper())
        if value is None:
            if not text.isdigit():
                raise ScheduleExpressionError(
                    f"{expression}: {self.name} value {text!r} is not a number"
                    + (f" or one of {'/'.join(self.names)}" if self.names else "")
                )
            value = int(text)
        if not self.low <= value <= self.high:
            raise ScheduleExpressionError(
                f"{expression}: {self.name} value {value} is out of range {self.low}-{self.high}"
            )
        return value

    def values(self, text: str, expression: str) -> frozenset[int]:
        """The values a field's list of `*`, `a`, `a-b`, with an optional `/step`, allows."""
        allowed: set[int] = set()
        for part in text.split(","):
            base, slash, step_text = part.partition("/")
            step = 1
            if slash:
                if not step_text.isdigit() or int(step_text) == 0:
                    raise ScheduleExpressionError(
                        f"{expression}: {self.name} step {step_text!r} is not a positive number"
                    )
                step = int(step_text)
            if base == "*":
                low, high = self.low, self.high
            elif "-" in base:
                first, _, last = base.partition("-")
                low, high = self.number(first, expression), self.number(last, expression)
                if low > high:
                    raise ScheduleExpressionError(
                        f"{expression}: {self.name} range {base} runs backwards"
                    )
            else:
                low = self.number(base, expression)
                high = self.high if slash else low
            allowed.update(range(low, high + 1, step))
        return frozenset(allowed)


MINUTES = _Field("minutes", 0, 59, {})
HOURS = _Field("hours", 0, 23, {})
DAY_OF_MONTH = _Field("day-of-month", 1, 31, {})
MONTH = _Field("month", 1, 12, MONTH_NAMES)
DAY_OF_WEEK = _Field("day-of-week", 1, 7, DAY_NAMES)
YEAR = _Field("year", 1970, 2199, {})

#: Which days of (year, month) a day-of-month or day-of-week field allows.
DayRule = Callable[[int, int], set[int]]


def _aws_weekday(day: date) -> int:
    """1=SUN .. 7=SAT, as AWS numbers the days of the week."""
    return (day.weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int) -> int | None:
    """Quartz/AWS `W`: Saturday moves to Friday and Sunday to Monday, within the month."""
    last = calendar.monthrange(year, month)[1]
    if day > last:
        return None
    weekday = date(year, month, day).weekday()  # Mon=0 .. Sun=6
    if weekday == 5:
        return day - 1 if day > 1 else day + 2
    if weekday == 6:
        return day + 1 if day < last else day - 2
    return day


def _day_of_month_rule(text: str, expression: str) -> DayRule:
    if text == "L":
        return lambda y, m: {calendar.monthrange(y, m)[1]}
    if text.endswith("W"):
        day = DAY_OF_MONTH.number(text[:-1], expression)

        def weekday_nearest(y: int, m: int) -> set[int]:
            found = _nearest_weekday(y, m, day)
            return set() if found is None else {found}

        return weekday_nearest
    if "L" in text or "W" in text:
        raise ScheduleExpressionError(
            f"{expression}: day-of-month {text!r}: L and W stand alone (L, 15W)"
        )
    days = DAY_OF_MONTH.values(text, expression)
    return lambda y, m: {d for d in days if d <= calendar.monthrange(y, m)[1]}


def _day_of_week_rule(text: str, expression: str) -> DayRule:
    def month_days(y: int, m: int) -> list[date]:
        return [date(y, m, d) for d in range(1, calendar.monthrange(y, m)[1] + 1)]

    if text == "L":
        text = "7"  # alone, L is the last day of the week: Saturday
    elif text.endswith("L"):
        weekday = DAY_OF_WEEK.number(text[:-1], expression)
        return lambda y, m: {max(d.day for d in month_days(y, m) if _aws_weekday(d) == weekday)}
    elif "#" in text:
        weekday_text, _, nth_text = text.partition("#")
        weekday = DAY_OF_WEEK.number(weekday_text, expression)
        if nth_text not in {"1", "2", "3", "4", "5"}:
            raise ScheduleExpressionError(
                f"{expression}: day-of-week {text!r}: the number after # must be 1-5"
            )
        nth = int(nth_text)

        def nth_weekday(y: int, m: int) -> set[int]:
            matching = [d.day for d in month_days(y, m) if _aws_weekday(d) == weekday]
            return {matching[nth - 1]} if nth <= len(matching) else set()

        return nth_weekday
    weekdays = DAY_OF_WEEK.values(text, expression)
    return lambda y, m: {d.day for d in month_days(y, m) if _aws_weekday(d) in weekdays}


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression: the allowed values of each field, days as a rule per month."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: DayRule
    months: frozenset[int]
    years: frozenset[int]

    @classmethod
    def parse(cls, body: str, expression: str) -> Cron:
        fields = body.split()
        if len(fields) != 6:
            raise ScheduleExpressionError(
                f"{expression}: cron needs 6 fields (minutes hours day-of-month month "
                f"day-of-week year), got {len(fields)}"
            )
        minutes, hours, day_of_month, month, day_of_week, year = fields
        if (day_of_month == "?") == (day_of_week == "?"):
            raise ScheduleExpressionError(
                f"{expression}: exactly one of day-of-month ({day_of_month}) and day-of-week "
                f"({day_of_week}) must be ?"
            )
        for name, text in (("minutes", minutes), ("hours", hours), ("month", month),
                           ("year", year)):  # fmt: skip
            if "?" in text:
                raise ScheduleExpressionError(f"{expression}: {name} cannot be ?")
        days = (
            _day_of_week_rule(day_of_week, expression)
            if day_of_month == "?"
            else _day_of_month_rule(day_of_month, expression)
        )
        return cls(
            MINUTES.values(minutes, expression),
            HOURS.values(hours, expression),
            days,
            MONTH.values(month, expression),
            YEAR.values(year, expression),
        )

    def fire_times(self, after: datetime, zone: ZoneInfo) -> Iterator[datetime]:
        """Every fire time after `after`, in order, as aware datetimes in `zone`."""
        start = after.astimezone(zone)
        # Compared in UTC: aware datetimes sharing a tzinfo compare by wall time, fold ignored.
        after_utc = after.astimezone(UTC)
        year, month = start.year, start.month
        while year <= YEAR.high:
            if year in self.years and month in self.months:
                for day in sorted(self.days(year, month)):
                    if date(year, month, day) < start.date():
                        continue
                    for hour in sorted(self.hours):
                        for minute in sorted(self.minutes):
                            wall = datetime(year, month, day, hour, minute, tzinfo=zone)
                            if _exists(wall) and wall.astimezone(UTC) > after_utc:
                                yield wall
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _exists(wall: datetime) -> bool:
    """False for a wall time inside a spring-forward gap (it maps to another wall time)."""
    round_trip = wall.astimezone(UTC).astimezone(wall.tzinfo)
    return round_trip.replace(tzinfo=None) == wall.replace(tzinfo=None)


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleExpressionError(f"unknown time zone {timezone!r}") from exc


def _rate(body: str, expression: str) -> timedelta:
    match = re.fullmatch(r"(\d+)\s+(minute|hour|day)(s?)", body.strip())
    if not match:
        raise ScheduleExpressionError(
            f"{expression}: rate needs a positive whole number and minute(s), hour(s) or day(s)"
        )
    value, unit, plural = int(match.group(1)), match.group(2), match.group(3)
    if value == 0:
        raise ScheduleExpressionError(f"{expression}: rate value must be positive")
    if (value == 1) == bool(plural):
        expected = unit if value == 1 else unit + "s"
        raise ScheduleExpressionError(f"{expression}: with value {value} the unit is {expected}")
    return value * RATE_UNITS[unit]


def _at(body: str, expression: str, zone: ZoneInfo) -> datetime:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", body):
            raise ValueError
        return datetime.fromisoformat(body).replace(tzinfo=zone)
    except ValueError as exc:
        raise ScheduleExpressionError(
            f"{expression}: at needs a valid yyyy-mm-ddThh:mm:ss time"
        ) from exc


def next_fire_times(
    expression: str, after: datetime, count: int = 3, timezone: str = DEFAULT_TIMEZONE
) -> list[datetime]:
    """The next `count` fire times strictly after `after` (aware), in `timezone`.

    Fewer come back when the schedule ends first (an `at`, or a cron limited to past years).
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ScheduleExpressionError(f"after={after.isoformat()} needs a time zone")
    zone = _zone(timezone)
    match = re.fullmatch(r"(cron|rate|at)\((.*)\)", expression.strip())
    if not match:
        raise ScheduleExpressionError(f"{expression!r} is not cron(...), rate(...) or at(...)")
    kind, body = match.groups()
    if kind == "rate":
        step = _rate(body, expression)
        return [(after + step * k).astimezone(zone) for k in range(1, count + 1)]
    if kind == "at":
        when = _at(body, expression, zone)
        return [when] if when > after and count > 0 else []
    times: list[datetime] = []
    for fire in Cron.parse(body, expression).fire_times(after, zone):
        if len(times) == count:
            break
        times.append(fire)
    return times


def schedule_summary(expression: str, timezone: str, now: datetime, count: int = 5) -> str:
    """What `bisonflow schedule` prints: the expression, its time zone, the next fire times
    in that zone and in UTC."""
    times = next_fire_times(expression, now, count, timezone)
    lines = [
        f"Schedule expression: {expression}",
        f"Time zone:           {timezone}",
        f"Next {len(times)} fire time{'s' if len(times) != 1 else ''} after "
        f"{now.astimezone(UTC):%Y-%m-%d %H:%M} UTC:",
    ]
    for fire in times:
        local = f"{fire:%a %Y-%m-%d %H:%M} {fire.tzname()}"
        lines.append(f"  {local:<30} = {fire.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    if not times:
        lines.append("  none: the schedule does not fire again")
    return "\n".join(lines)
