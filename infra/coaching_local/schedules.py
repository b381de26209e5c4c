"""EventBridge Scheduler expressions: `rate(...)` and AWS six-field `cron(...)`, with `croniter` doing the cron part.

Cron fields: minutes hours day-of-month month day-of-week year, evaluated in the schedule's IANA
time zone. Day-of-week is AWS-numbered (1=SUN .. 7=SAT; croniter counts 0=SUN, so numbers are
shifted before croniter sees them). Exactly one of day-of-month and day-of-week must be `?`.
Supported: `*`, `?`, values, ranges, lists, `/` steps, names (JAN, MON-FRI) and `L` (last day of the
month) in day-of-month; years 1970-2099 (croniter's range; AWS accepts up to 2199). `W`, `#` and `L`
in day-of-week raise ValueError, as does a range that runs backwards. One-time `at(...)` schedules
are refused locally.

croniter walks wall-clock times (naive datetimes, so it applies no time zone rules of its own); this
module maps each to an instant, which is where the daylight-saving behaviour lives: a wall-clock time
that does not exist (spring forward) fires at the same instant as the wall clock shifted forward by
the gap (02:30 → 03:30); a time that occurs twice (fall back) fires once, on its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, CroniterError, croniter

MAX_YEAR = 2099  # the last year croniter accepts (AWS: 2199)

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # AWS numbering: SUN=1
_NAMES = {name: number for names in (_MONTHS, _DAYS) for number, name in enumerate(names, start=1)}
_FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, MAX_YEAR))
# After a "wall time → instant" shift a later wall time can map to an earlier instant only within one
# DST gap (at most 2 h anywhere), so scanning this far around the first hit finds the earliest.
_DST_REACH = timedelta(hours=3)


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
    croniter_expression: str  # minute hour dom month dow(0=SUN) second year


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


def _check_aws_rules(fields: list[str], expression: str) -> None:
    """What AWS refuses (or this stack does not support) but croniter would accept."""
    dom, dow = fields[2], fields[4]
    for token in ("W", "#"):
        for name, value in (("day-of-month", dom), ("day-of-week", dow)):
            if token in value.upper():
                raise ValueError(f"{expression}: '{token}' in {name} is not supported locally")
    if "L" in dow.upper():  # L and 5L (last weekday of the month); no day name contains an L
        raise ValueError(f"{expression}: 'L' in day-of-week is not supported locally")
    if (dom == "?") == (dow == "?"):
        raise ValueError(f"{expression}: exactly one of day-of-month and day-of-week must be '?'")
    if any("L" in part.upper() and part.upper() != "L" for part in dom.split(",")):
        raise ValueError(f"{expression}: only a bare 'L' is supported in day-of-month")
    for field, value, (low, high) in zip(_FIELDS, fields, _RANGES, strict=True):
        for first, last in re.findall(r"(\w+)-(\w+)", value):
            if _ordinal(first) > _ordinal(last):  # croniter reads 5-3 as a wrap-around; AWS rejects it
                raise ValueError(f"{expression}: range {first}-{last} runs backwards in {field}")
        for number in re.findall(r"(?<![/\d])\d+", value):
            if not low <= int(number) <= high:
                raise ValueError(f"{expression}: {number} is outside {low}-{high} in {field}")


def _ordinal(token: str) -> int:
    """A field value as a number: digits, or a month or day name (AWS numbering); -1 when neither."""
    return int(token) if token.isdigit() else _NAMES.get(token.upper(), -1)


def _croniter_day_of_week(value: str) -> str:
    """AWS day-of-week numbers (1=SUN) as croniter's (0=SUN); step sizes after `/` stay as they are."""
    return re.sub(r"(?<![/\d])\d+", lambda m: str(int(m.group(0)) - 1), value)


def _parse_cron(body: str, expression: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ValueError(f"{expression}: cron needs 6 fields (minutes hours day-of-month month day-of-week year)")
    _check_aws_rules(fields, expression)
    minute, hour, dom, month, dow, year = fields
    day_of_month = "*" if dom == "?" else dom
    day_of_week = "*" if dow == "?" else _croniter_day_of_week(dow)
    spec = f"{minute} {hour} {day_of_month} {month} {day_of_week} 0 {year}"  # second 0, year last
    try:
        expanded, _ = croniter.expand(spec)
    except CroniterError as exc:
        raise ValueError(f"{expression}: {str(exc).strip().splitlines()[-1]}") from exc

    def values(index: int, low: int, high: int) -> frozenset[int]:
        items = expanded[index]
        return frozenset(range(low, high + 1)) if "*" in items else frozenset(int(v) for v in items if v != "l")

    days_of_month = None if dom == "?" else values(2, 1, 31)
    days_of_week = None if dow == "?" else frozenset(d + 1 for d in values(4, 0, 6))
    return Cron(
        minutes=values(0, 0, 59),
        hours=values(1, 0, 23),
        days_of_month=days_of_month,
        last_day_of_month="l" in expanded[2],
        months=values(3, 1, 12),
        days_of_week=days_of_week,
        years=values(6, 1970, MAX_YEAR),
        croniter_expression=spec,
    )


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
    start = after_utc.astimezone(zone).replace(tzinfo=None) - _DST_REACH
    walls = croniter(cron.croniter_expression, start, ret_type=datetime)
    best: datetime | None = None
    best_wall: datetime | None = None
    try:
        while True:
            wall = walls.get_next(datetime)
            if best_wall is not None and wall > best_wall + _DST_REACH:
                break
            instant = _instant(wall, zone)
            if instant > after_utc and (best is None or instant < best):
                best, best_wall = instant, wall
    except CroniterBadDateError:
        pass  # no wall time left in the years the expression allows
    if best is None:
        raise ValueError(f"{expression}: never fires after {after_utc.isoformat()}")
    return best.astimezone(zone)


def fires_at(expression: str, moment: datetime, timezone: str = "UTC") -> bool:
    """Whether a cron expression's fields match `moment`'s local wall clock (minute resolution)."""
    schedule = parse(expression)
    if not isinstance(schedule, Cron):
        raise ValueError("fires_at only applies to cron expressions")
    local = _aware(moment).astimezone(ZoneInfo(timezone)).replace(tzinfo=None, second=0, microsecond=0)
    return bool(croniter.match(schedule.croniter_expression, local))
