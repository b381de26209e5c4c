"""Coach availability as pure, time-zone-correct functions.

Everything is computed on UTC instants; local wall times only exist at the edges, where a coach's weekly rules,
exceptions and a person's working hours are turned into instants, and where slots are shown to a requester.

Local wall time -> instant (`local_to_utc`), the one place daylight saving time matters:

- A wall time that does not exist (the spring-forward gap, e.g. 02:30 in Berlin on 2026-03-29) moves to the first
  valid instant after the gap (03:00 CEST). A window lying wholly inside a gap is empty; one that straddles it is
  shorter in real time (01:00-04:00 Berlin that night is two hours).
- A wall time that happens twice (the fall-back overlap, e.g. 02:30 in Berlin on 2026-10-25) means the first
  occurrence (fold=0, still CEST). So 01:00-04:00 Berlin that night is four hours, and 02:30-03:30 is two.

Equivalently: a local time t on date d resolves to the first instant at which the coach's wall clock reads t or
later. Windows are half-open, [start, end), and never cross local midnight (AvailabilityRule requires end > start).

Python does wall-clock arithmetic on aware datetimes in a ZoneInfo zone, compares two sharing a tzinfo by wall time
ignoring fold, and never finds a repeated-hour time equal to one in another zone; so every input instant is converted
to UTC first, and slots are ordered by `start_utc`.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from coaching.domain.coaches import AvailabilityException, AvailabilityRule, check_naive_time
from coaching.domain.common import StrictModel, TimeZoneName

SESSION_LENGTHS_MINUTES: tuple[int, ...] = (30, 45, 60)


class HasWeeklyAvailability(Protocol):
    """What a policy needs from a coach: a Coach, a RosterCoach, or anything shaped like them."""

    time_zone: str
    weekly_availability: list[AvailabilityRule]


class AvailabilityPolicy(StrictModel):
    """A coach's bookable time: weekly rules and exceptions in `time_zone`, plus booking constraints."""

    time_zone: TimeZoneName
    weekly: Annotated[list[AvailabilityRule], Field(max_length=50)] = []
    exceptions: Annotated[list[AvailabilityException], Field(max_length=1000)] = []
    # Kept free before and after every booking.
    buffer_minutes: Annotated[int, Field(ge=0, le=120)] = 10
    min_notice_hours: Annotated[int, Field(ge=0, le=336)] = 12
    # Sessions may start up to this many 24-hour days after now.
    horizon_days: Annotated[int, Field(ge=1, le=180)] = 60

    @classmethod
    def from_coach(cls, coach: HasWeeklyAvailability, **overrides: object) -> AvailabilityPolicy:
        """The policy for a coach's profile: zone, weekly rules and, where the profile has them,
        buffer, notice and horizon; `overrides` win."""
        fields: dict[str, object] = {"time_zone": coach.time_zone, "weekly": coach.weekly_availability}
        for name in ("buffer_minutes", "min_notice_hours", "horizon_days"):
            if hasattr(coach, name):
                fields[name] = getattr(coach, name)
        if hasattr(coach, "availability_exceptions"):
            fields["exceptions"] = coach.availability_exceptions
        return cls.model_validate(fields | overrides)

    @property
    def zone(self) -> ZoneInfo:
        return zone_info(self.time_zone)


@functools.lru_cache(maxsize=1024)
def zone_info(name: str) -> ZoneInfo:
    """`ZoneInfo(name)`, strongly cached: ZoneInfo keeps only a few zones alive itself, so matching over
    dozens of zones would otherwise re-read the IANA files from disk."""
    return ZoneInfo(name)


def _as_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _zone(value: str | ZoneInfo) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    try:
        return zone_info(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Berlin") from exc


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A half-open span of time [start, end); both ends are stored as UTC datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        # Normalise once, so every comparison and subtraction below is plain UTC arithmetic.
        object.__setattr__(self, "start", _as_utc(self.start, "start"))
        object.__setattr__(self, "end", _as_utc(self.end, "end"))
        if self.end <= self.start:
            raise ValueError(f"interval end {self.end.isoformat()} must be after start {self.start.isoformat()}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def hours(self) -> float:
        return self.duration.total_seconds() / 3600

    def overlaps(self, other: Interval) -> bool:
        # Touching intervals ([9, 10) and [10, 11)) do not overlap.
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end

    def widened(self, minutes: int) -> Interval:
        return Interval(self.start - timedelta(minutes=minutes), self.end + timedelta(minutes=minutes))

    def clipped(self, start: datetime, end: datetime) -> Interval | None:
        """The part inside [start, end), or None if nothing is."""
        lo, hi = max(self.start, _as_utc(start, "start")), min(self.end, _as_utc(end, "end"))
        return Interval(lo, hi) if lo < hi else None


def _interval(start: datetime, end: datetime) -> Interval | None:
    return Interval(start, end) if start < end else None


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping and touching intervals joined."""
    merged: list[Interval] = []
    for item in sorted(intervals):
        if merged and item.start <= merged[-1].end:
            if item.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, item.end)
        else:
            merged.append(item)
    return merged


def subtract_intervals(base: Iterable[Interval], removed: Iterable[Interval]) -> list[Interval]:
    """The parts of `base` not covered by any of `removed`, merged and sorted."""
    cuts = merge_intervals(removed)
    starts = [cut.start for cut in cuts]
    result: list[Interval] = []
    for item in merge_intervals(base):
        cursor = item.start
        # Only cuts that can reach this item: those starting before its end, from the last one starting before it.
        index = max(bisect.bisect_right(starts, item.start) - 1, 0)
        for cut in cuts[index:]:
            if cut.start >= item.end:
                break
            if cut.end <= cursor:
                continue
            if cut.start > cursor:
                result.append(Interval(cursor, cut.start))
            cursor = max(cursor, cut.end)
        if cursor < item.end:
            result.append(Interval(cursor, item.end))
    return result


def intersect_intervals(left: Iterable[Interval], right: Iterable[Interval]) -> list[Interval]:
    """Where both sets of intervals are, merged and sorted."""
    a, b = merge_intervals(left), merge_intervals(right)
    result: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        part = _interval(max(a[i].start, b[j].start), min(a[i].end, b[j].end))
        if part is not None:
            result.append(part)
        if a[i].end <= b[j].end:
            i += 1
        else:
            j += 1
    return result


def total_hours(intervals: Iterable[Interval]) -> float:
    return sum((item.hours for item in merge_intervals(intervals)), 0.0)


def local_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which `zone`'s clock on `day` reads `wall`; see the module docstring for DST."""
    naive = datetime.combine(day, wall.replace(tzinfo=None, fold=0))
    first = naive.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first  # exists; in an overlap fold=0 already means the first occurrence
    # In a gap the two folds use the offsets either side of the transition, so they bracket it: search for the
    # first instant whose wall time is at or after `naive`, i.e. the end of the gap.
    other = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = min(first, other), max(first, other)
    step = timedelta(microseconds=1)
    while hi - lo > step:
        mid = lo + (hi - lo) // 2
        if mid.astimezone(zone).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi


def _local_dates(start: datetime, end: datetime, zone: ZoneInfo) -> list[date]:
    # One day of padding each side: a fall-back at midnight can move the local date backwards.
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _window(day: date, start: time, end: time, zone: ZoneInfo) -> Interval | None:
    # None when the whole window falls inside a spring-forward gap.
    return _interval(local_to_utc(day, start, zone), local_to_utc(day, end, zone))


def _whole_day(day: date, zone: ZoneInfo) -> Interval | None:
    return _interval(local_to_utc(day, time(0), zone), local_to_utc(day + timedelta(days=1), time(0), zone))


def available_intervals(policy: AvailabilityPolicy, start: datetime, end: datetime) -> list[Interval]:
    """The coach's availability within [start, end), in UTC, merged and sorted.

    Weekly rules are expanded per local calendar date in the coach's zone, time off is removed, then extra windows
    are added. Notice, horizon and buffers are booking constraints and are not applied here.
    """
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    if end <= start:
        raise ValueError("end must be after start")
    zone = policy.zone
    days = _local_dates(start, end, zone)
    rules_by_weekday: dict[int, list[AvailabilityRule]] = {}
    for rule in policy.weekly:
        rules_by_weekday.setdefault(rule.weekday, []).append(rule)
    weekly = [
        window
        for day in days
        for rule in rules_by_weekday.get(day.weekday(), [])
        if (window := _window(day, rule.start, rule.end, zone)) is not None
    ]
    in_range = set(days)
    time_off: list[Interval] = []
    extra: list[Interval] = []
    for exception in policy.exceptions:
        if exception.date not in in_range:
            continue
        if exception.start is None or exception.end is None:
            window = _whole_day(exception.date, zone)
        else:
            window = _window(exception.date, exception.start, exception.end, zone)
        if window is not None:
            (time_off if exception.kind == "time_off" else extra).append(window)
    available = merge_intervals(subtract_intervals(weekly, time_off) + extra)
    return [part for item in available if (part := item.clipped(start, end)) is not None]


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable session: `start`/`end` in the requester's zone, `start_utc` for ordering and storage.

    Use `start_utc` to compare, sort or store: Python never finds a wall time in a repeated hour equal to an instant
    in another zone (PEP 495), and `end - start` in one zone is wall-clock, not elapsed, time.
    """

    start: datetime
    end: datetime
    start_utc: datetime

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    @property
    def interval(self) -> Interval:
        return Interval(self.start_utc, self.end_utc)


def _on_grid(instant: datetime, zone: ZoneInfo, step_minutes: int) -> bool:
    local = instant.astimezone(zone)
    return local.minute % step_minutes == 0 and local.second == 0 and local.microsecond == 0


def _next_grid_point(instant: datetime, zone: ZoneInfo, step_minutes: int) -> datetime:
    """The first instant at or after `instant` whose wall time in `zone` is a multiple of the step past the hour."""
    candidate = instant
    # Rounding assumes the offset stays put; if a transition intervenes, round again from there (a few rounds at
    # most, since each one moves forward by less than a step).
    for _ in range(8):
        if _on_grid(candidate, zone, step_minutes):
            return candidate
        local = candidate.astimezone(zone)
        past = timedelta(minutes=local.minute % step_minutes, seconds=local.second, microseconds=local.microsecond)
        candidate = candidate - past + timedelta(minutes=step_minutes)
    raise ValueError(f"no {step_minutes}-minute grid point near {instant.isoformat()} in {zone.key}")


def open_slots(
    policy: AvailabilityPolicy,
    busy: Iterable[Interval],
    length_minutes: int,
    start: datetime,
    end: datetime,
    now: datetime,
    requester_tz: str | ZoneInfo,
    step_minutes: int = 15,
) -> list[Slot]:
    """Bookable session starts in [start, end) for one coach, shown in the requester's zone, ordered by start.

    A slot [s, s + length) lies inside one available interval, overlaps no busy interval widened by
    `buffer_minutes` on both sides, starts at or after now + min_notice_hours and before now + horizon_days. Starts
    lie on a `step_minutes` grid aligned to the hour in the coach's zone (the step must divide 60). A slot may end
    after `end`; only its start must fall in the range.
    """
    if length_minutes not in SESSION_LENGTHS_MINUTES:
        raise ValueError(f"length_minutes must be one of {SESSION_LENGTHS_MINUTES}, got {length_minutes}")
    if step_minutes <= 0 or 60 % step_minutes:
        raise ValueError(f"step_minutes must divide 60, got {step_minutes}")
    start, end, now = _as_utc(start, "start"), _as_utc(end, "end"), _as_utc(now, "now")
    if end <= start:
        raise ValueError("end must be after start")
    zone, shown_in = policy.zone, _zone(requester_tz)
    length, step = timedelta(minutes=length_minutes), timedelta(minutes=step_minutes)
    first_start = max(start, now + timedelta(hours=policy.min_notice_hours))
    last_start = min(end, now + timedelta(days=policy.horizon_days))  # exclusive
    if last_start <= first_start:
        return []
    # Availability up to last_start + length, so a session starting just before the range end can still fit.
    free = subtract_intervals(
        available_intervals(policy, first_start, last_start + length),
        (item.widened(policy.buffer_minutes) for item in busy),
    )
    slots: list[Slot] = []
    for window in free:
        candidate = _next_grid_point(max(window.start, first_start), zone, step_minutes)
        while candidate < last_start and candidate + length <= window.end:
            slots.append(Slot(candidate.astimezone(shown_in), (candidate + length).astimezone(shown_in), candidate))
            candidate = _next_grid_point(candidate + step, zone, step_minutes)
    return slots


def working_intervals(
    person_tz: str | ZoneInfo,
    start: datetime,
    end: datetime,
    working_hours: tuple[time, time] = (time(9), time(17)),
    working_days: Collection[int] = range(0, 5),
) -> list[Interval]:
    """A person's working hours within [start, end), in UTC: `working_hours` on `working_days` (0 is Monday) in
    their own zone, with the same DST rules as a coach's availability."""
    begin, finish = working_hours
    check_naive_time(begin)
    check_naive_time(finish)
    if finish <= begin:
        raise ValueError("working hours must end after they start, within one day")
    if any(day not in range(7) for day in working_days):
        raise ValueError("working days are weekdays 0 (Monday) to 6 (Sunday)")
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    if end <= start:
        raise ValueError("end must be after start")
    zone = _zone(person_tz)
    windows = [
        window
        for day in _local_dates(start, end, zone)
        if day.weekday() in working_days and (window := _window(day, begin, finish, zone)) is not None
    ]
    return [part for item in merge_intervals(windows) if (part := item.clipped(start, end)) is not None]


def free_intervals(
    policy: AvailabilityPolicy, busy: Iterable[Interval], start: datetime, days: int = 14, now: datetime | None = None
) -> list[Interval]:
    """The coach's free time in [start, start + days): available, outside busy intervals widened by the buffer, and
    within [now + min_notice_hours, now + horizon_days). The coach's half of `bookable_hours`, reusable across
    people: intersect it with `working_intervals` of each person's zone over the same window."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    start = _as_utc(start, "start")
    now = start if now is None else _as_utc(now, "now")
    end = start + timedelta(days=days)
    lo = max(start, now + timedelta(hours=policy.min_notice_hours))
    hi = min(end, now + timedelta(days=policy.horizon_days))
    if hi <= lo:
        return []
    return subtract_intervals(
        available_intervals(policy, lo, hi), (item.widened(policy.buffer_minutes) for item in busy)
    )


def hours_together(free: Sequence[Interval], working: Sequence[Interval]) -> float:
    """Hours when the coach is free and the person at work, rounded to 2 decimals (as `bookable_hours`).

    Both sides sorted and merged (free_intervals and working_intervals give them so): one pass over both.
    """
    total = 0.0
    i = j = 0
    while i < len(free) and j < len(working):
        a, b = free[i], working[j]
        start, end = max(a.start, b.start), min(a.end, b.end)
        if start < end:
            total += (end - start).total_seconds()
        if a.end < b.end:
            i += 1
        else:
            j += 1
    return round(total / 3600, 2)


def bookable_hours(
    policy: AvailabilityPolicy,
    busy: Iterable[Interval],
    person_tz: str | ZoneInfo,
    start: datetime,
    days: int = 14,
    working_hours: tuple[time, time] = (time(9), time(17)),
    working_days: Collection[int] = range(0, 5),
    now: datetime | None = None,
) -> float:
    """Hours in [start, start + days) when the coach is free and the person is at work, rounded to 2 decimals.

    Free means available, outside busy intervals widened by the buffer, and within [now + min_notice_hours,
    now + horizon_days). `now` defaults to `start` (the view from the start of the window), keeping this pure.
    Days are 24-hour days.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    start = _as_utc(start, "start")
    now = start if now is None else _as_utc(now, "now")
    end = start + timedelta(days=days)
    lo = max(start, now + timedelta(hours=policy.min_notice_hours))
    hi = min(end, now + timedelta(days=policy.horizon_days))
    if hi <= lo:
        return 0.0
    free = subtract_intervals(
        available_intervals(policy, lo, hi), (item.widened(policy.buffer_minutes) for item in busy)
    )
    working = working_intervals(person_tz, lo, hi, working_hours, working_days)
    return round(total_hours(intersect_intervals(free, working)), 2)


def offers(
    policy: AvailabilityPolicy, start: datetime, length_minutes: int, now: datetime, step_minutes: int = 15
) -> bool:
    """Whether the coach offers [start, start + length) for a session of any length (a group session, a
    workshop of up to four hours): on the grid, inside one available interval, within notice and horizon.
    The same rules as `open_slots`, which lists only the 1:1 lengths; overlap is the calendar locks' job."""
    if length_minutes <= 0:
        raise ValueError(f"length_minutes must be positive, got {length_minutes}")
    start, now = _as_utc(start, "start"), _as_utc(now, "now")
    if start < now + timedelta(hours=policy.min_notice_hours) or start >= now + timedelta(days=policy.horizon_days):
        return False
    if not _on_grid(start, policy.zone, step_minutes):
        return False
    end = start + timedelta(minutes=length_minutes)
    return any(window.start <= start and end <= window.end for window in available_intervals(policy, start, end))
