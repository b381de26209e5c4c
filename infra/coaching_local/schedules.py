"""EventBridge Scheduler expressions: `rate(...)` and AWS six-field `cron(...)`.

Cron fields: minutes hours day-of-month month day-of-week year, evaluated in the schedule's IANA
time zone. Day-of-week is AWS-numbered (1=SUN .. 7=SAT). Exactly one of day-of-month and
day-of-week must be `?`. Supported: `*`, `?`, values, ranges, lists, `/` steps, names (JAN, MON-FRI)
and `L` (last day of the month) in day-of-month. `W`, `#` and `L` in day-of-week raise ValueError.

Daylight-saving behaviour: a wall-clock time that does not exist (spring forward) fires at the
same instant as the wall clock shifted forward by the gap (02:30 → 03:30); a time that occurs twice
(fall back) fires once, on its first occurrence.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

MAX_YEAR = 2199  # the last year an AWS cron expression accepts

_MONTHS = {
    name: i
    for i, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1
    )
}
_DAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Rate:
    interval: timedelta


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None when the field is `?`
    last_day_of_month: bool
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # AWS numbering 1=SUN..7=SAT; None when `?`
    years: frozenset[int]

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        if self.days_of_week is not None:
            # date.isoweekday(): MON=1..SUN=7  →  AWS: SUN=1..SAT=7
            return (day.isoweekday() % 7) + 1 in self.days_of_week
        last = calendar.monthrange(day.year, day.month)[1]
        return (self.days_of_month is not None and day.day in self.days_of_month) or (
            self.last_day_of_month and day.day == last
        )


def parse(expression: str) -> Rate | Cron:
    """Parse a schedule expression; ValueError names anything unsupported or invalid."""
    text = expression.strip()
    rate = _RATE.match(text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            raise ValueError(f"{expression}: the rate value must be positive")
        # AWS insists on the singular for 1 and the plural otherwise.
        if (value == 1) != (not unit.endswith("s")):
            raise ValueError(f"{expression}: use '1 {unit.rstrip('s')}' or 'N {unit.rstrip('s')}s'")
        return Rate(timedelta(seconds=value * _UNITS[unit.rstrip("s")]))
    cron = _CRON.match(text)
    if cron:
        return _parse_cron(cron.group(1), expression)
    if text.startswith("at("):
        raise ValueError(f"{expression}: one-time at() schedules are not supported locally")
    raise ValueError(f"{expression}: not a rate() or cron() expression")


def _parse_cron(body: str, expression: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ValueError(f"{expression}: cron needs 6 fields (minutes hours day-of-month month day-of-week year)")
    minute_f, hour_f, dom_f, month_f, dow_f, year_f = fields
    for token in ("W", "#"):
        for name, value in (("day-of-month", dom_f), ("day-of-week", dow_f)):
            if token in value:
                raise ValueError(f"{expression}: '{token}' in {name} is not supported locally")
    if "L" in dow_f.upper():  # L and 5L (last weekday of the month); no day name contains an L
        raise ValueError(f"{expression}: 'L' in day-of-week is not supported locally")
    if (dom_f == "?") == (dow_f == "?"):
        raise ValueError(f"{expression}: exactly one of day-of-month and day-of-week must be '?'")
    last_day = False
    days_of_month: frozenset[int] | None = None
    if dom_f != "?":
        parts = dom_f.split(",")
        if "L" in parts:
            last_day = True
            parts = [p for p in parts if p != "L"]
        if any("L" in p for p in parts):
            raise ValueError(f"{expression}: only a bare 'L' is supported in day-of-month")
        days_of_month = _parse_field(",".join(parts), 1, 31, {}, "day-of-month", expression) if parts else frozenset()
    return Cron(
        minutes=_parse_field(minute_f, 0, 59, {}, "minutes", expression),
        hours=_parse_field(hour_f, 0, 23, {}, "hours", expression),
        days_of_month=days_of_month,
        last_day_of_month=last_day,
        months=_parse_field(month_f, 1, 12, _MONTHS, "month", expression),
        days_of_week=None if dow_f == "?" else _parse_field(dow_f, 1, 7, _DAYS, "day-of-week", expression),
        years=_parse_field(year_f, 1970, MAX_YEAR, {}, "year", expression),
    )


def _parse_field(text: str, low: int, high: int, names: dict[str, int], field: str, expression: str) -> frozenset[int]:
    def number(token: str) -> int:
        token = token.upper()
        if token in names:
            return names[token]
        if not token.isdigit():
            raise ValueError(f"{expression}: {token!r} is not valid in {field}")
        value = int(token)
        if not low <= value <= high:
            raise ValueError(f"{expression}: {value} is outside {low}-{high} in {field}")
        return value

    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ValueError(f"{expression}: empty list item in {field}")
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{expression}: bad step {step_text!r} in {field}")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = number(first), number(last)
            if start > end:
                raise ValueError(f"{expression}: range {base} runs backwards in {field}")
        else:
            start = number(base)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _aware(after: datetime) -> datetime:
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("`after` must be timezone-aware")
    return after


def next_fire(expression: str, after: datetime, timezone: str = "UTC", *, anchor: datetime | None = None) -> datetime:
    """The first fire time strictly after `after`, as an aware datetime in `timezone`.

    Rate schedules run every interval from `anchor` (the moment the schedule was created; defaults to
    `after`, so the next run is one interval away).
    """
    zone = ZoneInfo(timezone)
    after = _aware(after)
    schedule = parse(expression)
    if isinstance(schedule, Rate):
        start = _aware(anchor) if anchor is not None else after
        if start > after:
            return start.astimezone(zone)
        periods = (after - start) // schedule.interval + 1
        return (start + periods * schedule.interval).astimezone(zone)
    return _next_cron(schedule, after.astimezone(UTC), zone, expression)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant a wall-clock time fires at: fold=0 is the first occurrence of an ambiguous
    time and, for a time inside a spring-forward gap, lands after the gap (shifted forward)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _next_cron(cron: Cron, after_utc: datetime, zone: ZoneInfo, expression: str) -> datetime:
    start_day = after_utc.astimezone(zone).date() - timedelta(days=1)  # gaps can pull instants earlier
    best: datetime | None = None
    best_wall: datetime | None = None
    for day in _days(cron, start_day):
        if best_wall is not None and datetime.combine(day, dtime()) > best_wall + timedelta(hours=3):
            break
        for hour in sorted(cron.hours):
            for minute in sorted(cron.minutes):
                wall = datetime.combine(day, dtime(hour, minute))
                instant = _instant(wall, zone)
                if instant > after_utc and (best is None or instant < best):
                    best, best_wall = instant, wall
                    # A later wall time can only map earlier within one DST gap (< 3 h), so keep
                    # scanning a little past the first hit and take the earliest instant.
    if best is None:
        raise ValueError(f"{expression}: never fires after {after_utc.isoformat()}")
    return best.astimezone(zone)


def _days(cron: Cron, start: date) -> Iterator[date]:
    for year in range(start.year, MAX_YEAR + 1):
        if year not in cron.years:
            continue
        for month in sorted(cron.months):
            if (year, month) < (start.year, start.month):
                continue
            last = calendar.monthrange(year, month)[1]
            first = start.day if (year, month) == (start.year, start.month) else 1
            for day_number in range(first, last + 1):
                day = date(year, month, day_number)
                if cron.day_matches(day):
                    yield day


def fires_at(expression: str, moment: datetime, timezone: str = "UTC") -> bool:
    """Whether a cron expression's fields match `moment`'s local wall clock (minute resolution)."""
    schedule = parse(expression)
    if not isinstance(schedule, Cron):
        raise ValueError("fires_at only applies to cron expressions")
    local = _aware(moment).astimezone(ZoneInfo(timezone))
    return local.minute in schedule.minutes and local.hour in schedule.hours and schedule.day_matches(local.date())
