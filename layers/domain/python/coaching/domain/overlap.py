"""Weekly time-zone overlap between a person's working hours and a coach's availability, in minutes since
Monday 00:00 UTC of the current week: the matching score's time-zone factor and the compiled roster's zone
tables both read it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from coaching.domain.availability import zone_info
from coaching.domain.roster import RosterCoach

WORKING_HOURS = (time(9), time(17))
WORKING_DAYS = range(0, 5)
FULL_OVERLAP_MINUTES = len(WORKING_DAYS) * 5 * 60  # five shared hours a working day is as good as it gets

WEEK_MINUTES = 7 * 24 * 60


def week_start(moment: datetime) -> datetime:
    monday = moment.astimezone(UTC).date() - timedelta(days=moment.astimezone(UTC).weekday())
    return datetime.combine(monday, time(0), tzinfo=UTC)


def _local_windows_utc(
    zone: str, windows: Iterable[tuple[int, time, time]], week_start: datetime
) -> list[tuple[int, int]]:
    """Weekly local windows as minutes since Monday 00:00 UTC, for the days of this week."""
    tz = zone_info(zone)
    by_weekday: dict[int, list[tuple[time, time]]] = {}
    for weekday, start, end in windows:
        by_weekday.setdefault(weekday, []).append((start, end))
    spans: list[tuple[int, int]] = []
    # Local calendar days around the UTC week, so zones far east or west are covered.
    first_day: date = week_start.date() - timedelta(days=1)
    for offset in range(9):
        day = first_day + timedelta(days=offset)
        for start, end in by_weekday.get(day.weekday(), ()):
            begin = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
            finish = datetime.combine(day, end, tzinfo=tz).astimezone(UTC)
            a = int((begin - week_start).total_seconds() // 60)
            b = int((finish - week_start).total_seconds() // 60)
            a, b = max(a, 0), min(b, WEEK_MINUTES)
            if a < b:
                spans.append((a, b))
    return sorted(spans)


def _overlap_minutes(left: list[tuple[int, int]], right: list[tuple[int, int]]) -> int:
    total, i, j = 0, 0, 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            total += end - start
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return total


@dataclass
class OverlapCalculator:
    """Weekly overlap between a person's working hours and each coach's availability.

    Computed for the current UTC week and cached per coach, so scoring a whole roster costs
    one interval merge per coach, not a calendar expansion.
    """

    person_zone: str
    now: datetime
    _person: list[tuple[int, int]] = field(init=False)
    _week: datetime = field(init=False)
    _cache: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self._week = week_start(self.now)
        windows = [(day, *WORKING_HOURS) for day in WORKING_DAYS]
        self._person = _merge(_local_windows_utc(self.person_zone, windows, self._week))
        key = (self.person_zone, self._week)
        if key not in _overlap_cache and len(_overlap_cache) > 200:
            _overlap_cache.clear()
        self._cache = _overlap_cache.setdefault(key, {})

    def person_spans(self) -> list[tuple[int, int]]:
        """The person's working hours this week, merged, as minutes since Monday 00:00 UTC."""
        return self._person

    def known_minutes(self) -> dict[str, int]:
        """What is already computed for this zone and week (read-only view for hot loops)."""
        return self._cache

    def weekly_minutes(self, coach: RosterCoach) -> int:
        minutes = self._cache.get(coach.coach_id)
        if minutes is None:
            minutes = self._cache[coach.coach_id] = _overlap_minutes(self._person, coach_spans(coach, self._week))
        return minutes


# Per (person zone, week): coach id -> minutes. People share a few dozen zones, so after
# the first request from a zone, overlap is a dict lookup per coach.
_overlap_cache: dict[tuple[str, datetime], dict[str, int]] = {}


_coach_span_cache: dict[tuple[str, str, datetime], list[tuple[int, int]]] = {}


def coach_spans(coach: RosterCoach, week: datetime) -> list[tuple[int, int]]:
    key = (coach.coach_id, coach.time_zone, week)
    spans = _coach_span_cache.get(key)
    if spans is None:
        if len(_coach_span_cache) > 50_000:
            _coach_span_cache.clear()
        windows = [(rule.weekday, rule.start, rule.end) for rule in coach.weekly_availability]
        spans = _merge(_local_windows_utc(coach.time_zone, windows, week))
        _coach_span_cache[key] = spans
    return spans


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
