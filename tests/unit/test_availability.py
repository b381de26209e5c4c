"""Coach availability: properties against an independent minute-by-minute oracle, and DST examples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate, pairwise
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from coaching.domain.availability import (
    AvailabilityException,
    AvailabilityPolicy,
    Interval,
    available_intervals,
    bookable_hours,
    local_to_utc,
    merge_intervals,
    open_slots,
    subtract_intervals,
    working_intervals,
)
from coaching.domain.coaches import AvailabilityRule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
# 2026 transitions: EU, US, Lord Howe (a 30-minute shift); the oracle below must see them too.
TRANSITION_DAYS = [
    date(2026, 3, 29),
    date(2026, 10, 25),
    date(2026, 3, 8),
    date(2026, 11, 1),
    date(2026, 4, 5),
    date(2026, 10, 4),
]
MINUTE = timedelta(minutes=1)
# Further back than any offset change in ZONES, so a running maximum of wall time over it is exact.
PAD_MINUTES = 180


def rule(weekday: int, start: str, end: str) -> AvailabilityRule:
    return AvailabilityRule(weekday=weekday, start=time.fromisoformat(start), end=time.fromisoformat(end))


def policy(zone: str, rules: list[AvailabilityRule], **fields: object) -> AvailabilityPolicy:
    defaults: dict[str, object] = {"buffer_minutes": 0, "min_notice_hours": 0, "horizon_days": 180}
    return AvailabilityPolicy(time_zone=zone, weekly=rules, **{**defaults, **fields})


def at(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold)  # type: ignore[misc]


def wall(slot_start: datetime) -> tuple[str, int]:
    return slot_start.strftime("%H:%M"), slot_start.fold


# --- The oracle -------------------------------------------------------------------------------------------------
#
# Independent of the implementation's local -> UTC conversion: it only converts UTC -> local (never ambiguous).
# An instant u is inside a local window [s, e) on date d exactly when the coach's wall clock has reached s but not
# yet e, i.e. when M(u), the largest wall time shown at or before u, lies in [d s, d e). That is the documented rule
# (a gap boundary moves to the end of the gap, an overlap boundary is its first occurrence) stated without folds.


@dataclass
class Oracle:
    base: datetime  # UTC, whole minute: index 0
    coach: list[bool]  # per minute from base: the coach is available

    def index(self, instant: datetime) -> int:
        offset = instant.astimezone(UTC) - self.base
        assert offset % MINUTE == timedelta(0)
        return offset // MINUTE


def monotone_walls(zone: ZoneInfo, base: datetime, minutes: int) -> list[datetime]:
    walls = [
        (base + (k - PAD_MINUTES) * MINUTE).astimezone(zone).replace(tzinfo=None) for k in range(minutes + PAD_MINUTES)
    ]
    return list(accumulate(walls, max))[PAD_MINUTES:]


def minutes_of(start: time, end: time) -> range:
    # Test windows are on whole minutes, so a day can be painted minute by minute.
    return range(start.hour * 60 + start.minute, end.hour * 60 + end.minute)


def coach_day(coach: AvailabilityPolicy, day: date) -> list[bool]:
    """Minute by minute of the local day: a weekly rule covers it and no time off does, or an extra window does."""
    weekly, off, extra = [False] * 1440, [False] * 1440, [False] * 1440
    for r in coach.weekly:
        if r.weekday == day.weekday():
            for m in minutes_of(r.start, r.end):
                weekly[m] = True
    for x in coach.exceptions:
        if x.date != day:
            continue
        painted = off if x.kind == "time_off" else extra
        whole_day = x.start is None or x.end is None
        for m in range(1440) if whole_day else minutes_of(x.start, x.end):
            painted[m] = True
    return [e or (w and not o) for w, o, e in zip(weekly, off, extra, strict=True)]


def coach_oracle(coach: AvailabilityPolicy, base: datetime, minutes: int) -> Oracle:
    days: dict[date, list[bool]] = {}
    covered = []
    for moment in monotone_walls(ZoneInfo(coach.time_zone), base, minutes):
        day = days.get(moment.date()) or days.setdefault(moment.date(), coach_day(coach, moment.date()))
        covered.append(day[moment.hour * 60 + moment.minute])
    return Oracle(base, covered)


def working_oracle(zone: ZoneInfo, base: datetime, minutes: int, hours: tuple[time, time], days: range) -> list[bool]:
    window = minutes_of(*hours)
    return [m.weekday() in days and m.hour * 60 + m.minute in window for m in monotone_walls(zone, base, minutes)]


# --- Strategies -------------------------------------------------------------------------------------------------

# Minutes of the day on a 5-minute grid, often in the small hours where transitions happen, plus 23:59.
minute_of_day = st.one_of(st.integers(0, 48).map(lambda n: n * 5), st.integers(0, 287).map(lambda n: n * 5))


@st.composite
def windows(draw: st.DrawFn) -> tuple[time, time]:
    lo = draw(minute_of_day)
    hi = min(lo + draw(st.integers(1, 288)) * 5, 1439)
    return time(lo // 60, lo % 60), time(hi // 60, hi % 60)


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    zone = draw(st.sampled_from(ZONES))
    day = draw(st.one_of(st.sampled_from(TRANSITION_DAYS), st.dates(date(2026, 1, 1), date(2026, 12, 31))))
    start = datetime.combine(day - timedelta(days=1), time(), tzinfo=UTC) + draw(st.integers(0, 2879)) * MINUTE
    span = draw(st.integers(60, 4 * 1440)) * MINUTE
    weekly = [
        AvailabilityRule(weekday=draw(st.integers(0, 6)), start=s, end=e)
        for s, e in draw(st.lists(windows(), max_size=8))
    ]
    if weekly and weekly[-1].end < time(23, 55) and draw(st.booleans()):
        # A window touching the previous one: together they must behave as one.
        last = weekly[-1]
        weekly.append(AvailabilityRule(weekday=last.weekday, start=last.end, end=time(23, 59)))
    exceptions = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["time_off", "extra"]))
        window = draw(windows()) if kind == "extra" or draw(st.booleans()) else (None, None)
        exceptions.append(
            AvailabilityException(
                date=day + timedelta(days=draw(st.integers(-2, 5))), kind=kind, start=window[0], end=window[1]
            )
        )
    busy = [
        Interval(begin, begin + draw(st.integers(1, 240)) * MINUTE)
        for begin in (start + draw(st.integers(-200, span // MINUTE)) * MINUTE for _ in range(draw(st.integers(0, 6))))
    ]
    rules = AvailabilityPolicy(
        time_zone=zone,
        weekly=weekly,
        exceptions=exceptions,
        buffer_minutes=draw(st.integers(0, 120)),
        min_notice_hours=draw(st.integers(0, 48)),
        horizon_days=draw(st.integers(1, 6)),
    )
    return {
        "policy": rules,
        "busy": busy,
        "start": start,
        "end": start + span,
        "now": start + draw(st.integers(-3 * 1440, 2 * 1440)) * MINUTE,
        "length": draw(st.sampled_from([30, 45, 60])),
        "step": draw(st.sampled_from([5, 10, 15, 20, 30, 60])),
        "requester": draw(st.sampled_from(ZONES)),
    }


PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- Properties -------------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(scenarios())
def test_open_slots_are_exactly_the_valid_grid_starts(case: dict) -> None:
    rules: AvailabilityPolicy = case["policy"]
    start, end, now, length = case["start"], case["end"], case["now"], timedelta(minutes=case["length"])
    slots = open_slots(
        rules, case["busy"], case["length"], start, end, now, case["requester"], step_minutes=case["step"]
    )

    coach_zone, requester = ZoneInfo(rules.time_zone), ZoneInfo(case["requester"])
    oracle = coach_oracle(rules, start, (end - start + length) // MINUTE)
    widened = [b.widened(rules.buffer_minutes) for b in case["busy"]]
    earliest, latest = now + timedelta(hours=rules.min_notice_hours), now + timedelta(days=rules.horizon_days)

    starts = [slot.start_utc for slot in slots]
    assert starts == sorted(set(starts)), "sorted and unique"
    for slot in slots:
        assert slot.start_utc.tzinfo is UTC
        assert slot.start.tzinfo == requester
        assert slot.end.tzinfo == requester
        # Converted, not compared: Python never finds a repeated-hour time equal to one in another zone (PEP 495),
        # and subtracting two datetimes in one zone gives wall-clock, not elapsed, time.
        assert slot.start.astimezone(UTC) == slot.start_utc
        assert slot.end.astimezone(UTC) - slot.start_utc == length
        local = slot.start_utc.astimezone(coach_zone)
        assert local.minute % case["step"] == 0
        assert local.second == 0
        assert start <= slot.start_utc < end
        assert earliest <= slot.start_utc < latest
        assert not any(Interval(slot.start_utc, slot.start_utc + length).overlaps(b) for b in widened)
        first = oracle.index(slot.start_utc)
        assert all(oracle.coach[first : first + case["length"]]), f"{local} is not inside the coach's availability"

    # Completeness: every grid start the oracle accepts is offered.
    expected = []
    for k in range((end - start) // MINUTE):
        moment = start + k * MINUTE
        if not (earliest <= moment < latest and all(oracle.coach[k : k + case["length"]])):
            continue
        if moment.astimezone(coach_zone).minute % case["step"]:
            continue
        if not any(Interval(moment, moment + length).overlaps(b) for b in widened):
            expected.append(moment)
    assert starts == expected


@PROPERTY_SETTINGS
@given(scenarios())
def test_available_intervals_match_the_oracle_and_are_merged(case: dict) -> None:
    rules: AvailabilityPolicy = case["policy"]
    start, end = case["start"], case["end"]
    intervals = available_intervals(rules, start, end)

    for left, right in pairwise(intervals):
        assert left.end < right.start, "sorted, disjoint and not touching"
    assert all(start <= item.start and item.end <= end for item in intervals)
    minutes = (end - start) // MINUTE
    got = [False] * minutes
    for item in intervals:
        for k in range((item.start - start) // MINUTE, (item.end - start) // MINUTE):
            got[k] = True
    assert got == coach_oracle(rules, start, minutes).coach


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.sampled_from(ZONES), windows(), st.sets(st.integers(0, 6), min_size=1))
def test_bookable_hours_match_the_oracle(case: dict, person: str, hours: tuple[time, time], days: set[int]) -> None:
    rules: AvailabilityPolicy = case["policy"]
    start, now = case["start"], case["now"]
    span_days = 3
    got = bookable_hours(rules, case["busy"], person, start, span_days, hours, range(7), now)
    got_days = bookable_hours(rules, case["busy"], person, start, span_days, hours, sorted(days), now)

    minutes = span_days * 1440
    coach = coach_oracle(rules, start, minutes).coach
    widened = [b.widened(rules.buffer_minutes) for b in case["busy"]]
    earliest, latest = now + timedelta(hours=rules.min_notice_hours), now + timedelta(days=rules.horizon_days)
    free = [
        coach[k]
        and earliest <= start + k * MINUTE < latest
        and not any(b.start <= start + k * MINUTE < b.end for b in widened)
        for k in range(minutes)
    ]
    everyday = working_oracle(ZoneInfo(person), start, minutes, hours, range(7))
    some_days = [
        w and (start + k * MINUTE).astimezone(ZoneInfo(person)).weekday() in days for k, w in enumerate(everyday)
    ]
    assert got == round(sum(f and w for f, w in zip(free, everyday, strict=True)) / 60, 2)
    assert got_days == round(sum(f and w for f, w in zip(free, some_days, strict=True)) / 60, 2)


# --- DST examples: a Berlin coach seen from New York across the 2026 transitions ---------------------------------


@pytest.mark.parametrize(
    ("monday", "utc_hours", "new_york_hours"),
    [
        (date(2026, 3, 2), (14, 17), ("09:00", "10:00", "11:00")),  # both on standard time
        (date(2026, 3, 9), (14, 17), ("10:00", "11:00", "12:00")),  # US moved on 03-08, EU not yet
        (date(2026, 3, 23), (14, 17), ("10:00", "11:00", "12:00")),
        (date(2026, 3, 30), (13, 16), ("09:00", "10:00", "11:00")),  # EU moved on 03-29
        (date(2026, 10, 19), (13, 16), ("09:00", "10:00", "11:00")),  # both on summer time
        (date(2026, 10, 26), (14, 17), ("10:00", "11:00", "12:00")),  # EU back on 10-25, US not yet
        (date(2026, 11, 2), (14, 17), ("09:00", "10:00", "11:00")),  # US back on 11-01
    ],
)
def test_berlin_monday_afternoon_seen_from_new_york(
    monday: date, utc_hours: tuple[int, int], new_york_hours: tuple[str, ...]
) -> None:
    coach = policy("Europe/Berlin", [rule(0, "15:00", "18:00")])
    day_start = datetime.combine(monday, time(), tzinfo=UTC)
    start, end = day_start - timedelta(days=1), day_start + timedelta(days=2)

    assert available_intervals(coach, start, end) == [
        Interval(day_start + timedelta(hours=utc_hours[0]), day_start + timedelta(hours=utc_hours[1]))
    ]
    slots = open_slots(coach, [], 60, start, end, start - timedelta(days=7), "America/New_York", step_minutes=60)
    assert [slot.start.strftime("%H:%M") for slot in slots] == list(new_york_hours)
    assert all(slot.start.date() == monday and slot.start.tzinfo == NEW_YORK for slot in slots)
    assert [slot.start_utc.astimezone(BERLIN).strftime("%H:%M") for slot in slots] == ["15:00", "16:00", "17:00"]
    # The person's 09:00-11:00 New York catches two of the coach's hours most weeks, one between the changes.
    overlap = bookable_hours(coach, [], "America/New_York", start, 3, (time(9), time(11)), now=start)
    assert overlap == (1.0 if new_york_hours[0] == "10:00" else 2.0)


def test_spring_forward_gap_shortens_a_window_and_moves_a_start_to_the_end_of_the_gap() -> None:
    sunday = date(2026, 3, 29)  # Berlin 02:00 CET -> 03:00 CEST
    start = datetime(2026, 3, 28, tzinfo=UTC)
    end = start + timedelta(days=2)

    crossing = policy("Europe/Berlin", [rule(6, "01:00", "04:00")])
    assert available_intervals(crossing, start, end) == [
        Interval(datetime(2026, 3, 29, 0, tzinfo=UTC), datetime(2026, 3, 29, 2, tzinfo=UTC))
    ]
    slots = open_slots(crossing, [], 60, start, end, start, "Europe/Berlin")
    assert [wall(s.start) for s in slots] == [("01:00", 0), ("01:15", 0), ("01:30", 0), ("01:45", 0), ("03:00", 0)]
    assert [s.end.strftime("%H:%M") for s in slots] == ["03:00", "03:15", "03:30", "03:45", "04:00"]

    starts_in_gap = policy("Europe/Berlin", [rule(6, "02:30", "05:00")])
    assert available_intervals(starts_in_gap, start, end) == [
        Interval(at(BERLIN, 2026, 3, 29, 3), at(BERLIN, 2026, 3, 29, 5))
    ]
    assert local_to_utc(sunday, time(2, 30), BERLIN) == datetime(2026, 3, 29, 1, tzinfo=UTC)
    # Wholly inside the gap: nothing.
    assert available_intervals(policy("Europe/Berlin", [rule(6, "02:00", "02:45")]), start, end) == []


def test_fall_back_overlap_uses_the_first_occurrence_and_offers_the_repeated_hour() -> None:
    sunday = date(2026, 10, 25)  # Berlin 03:00 CEST -> 02:00 CET
    start = datetime(2026, 10, 24, tzinfo=UTC)
    end = start + timedelta(days=2)

    crossing = policy("Europe/Berlin", [rule(6, "01:00", "04:00")])
    (window,) = available_intervals(crossing, start, end)
    assert (window.start, window.end) == (datetime(2026, 10, 24, 23, tzinfo=UTC), datetime(2026, 10, 25, 3, tzinfo=UTC))
    assert window.hours == 4
    slots = open_slots(crossing, [], 60, start, end, start, "Europe/Berlin", step_minutes=60)
    assert [wall(s.start) for s in slots] == [("01:00", 0), ("02:00", 0), ("02:00", 1), ("03:00", 0)]
    assert [s.start.utcoffset() for s in slots] == [timedelta(hours=h) for h in (2, 2, 1, 1)]
    assert [s.end.strftime("%H:%M%z") for s in slots] == ["02:00+0200", "02:00+0100", "03:00+0100", "04:00+0100"]

    # 02:30 is the first 02:30 (CEST); 03:30 exists once (CET): two real hours.
    (inside,) = available_intervals(policy("Europe/Berlin", [rule(6, "02:30", "03:30")]), start, end)
    assert (inside.start, inside.end) == (
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 30, tzinfo=UTC),
    )
    assert local_to_utc(sunday, time(2, 30), BERLIN) == at(BERLIN, 2026, 10, 25, 2, 30, fold=0).astimezone(UTC)
    # Ending at the first 02:30 leaves out the repeated hour after it.
    (before,) = available_intervals(policy("Europe/Berlin", [rule(6, "01:00", "02:30")]), start, end)
    assert before.hours == 1.5


@pytest.mark.parametrize(
    ("zone", "sunday", "hours"),
    [
        ("Europe/Berlin", date(2026, 3, 29), 2.0),
        ("Europe/Berlin", date(2026, 10, 25), 4.0),
        ("America/New_York", date(2026, 3, 8), 2.0),
        ("America/New_York", date(2026, 11, 1), 4.0),
        ("Australia/Lord_Howe", date(2026, 10, 4), 2.5),  # 02:00 -> 02:30
        ("Australia/Lord_Howe", date(2026, 4, 5), 3.5),  # 02:00 -> 01:30
        ("Asia/Kolkata", date(2026, 3, 29), 3.0),
        ("UTC", date(2026, 3, 29), 3.0),
    ],
)
def test_a_one_to_four_rule_lasts_what_the_clock_says_that_night(zone: str, sunday: date, hours: float) -> None:
    start = datetime.combine(sunday - timedelta(days=2), time(), tzinfo=UTC)
    intervals = available_intervals(policy(zone, [rule(6, "01:00", "04:00")]), start, start + timedelta(days=4))
    assert [item.hours for item in intervals] == [hours]


def test_notice_is_counted_in_real_hours_across_a_transition() -> None:
    # 20:00 CET on Saturday plus 12 real hours is 09:00 CEST on Sunday, not 08:00.
    coach = policy("Europe/Berlin", [rule(6, "08:00", "10:00")], min_notice_hours=12)
    now = at(BERLIN, 2026, 3, 28, 20)
    slots = open_slots(coach, [], 30, now, now + timedelta(days=2), now, "Europe/Berlin")
    assert [wall(s.start) for s in slots] == [("09:00", 0), ("09:15", 0), ("09:30", 0)]


def test_working_hours_follow_the_persons_own_clock() -> None:
    start, end = datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)
    assert working_intervals("America/New_York", start, end) == [
        Interval(datetime(2026, 3, 6, 14, tzinfo=UTC), datetime(2026, 3, 6, 22, tzinfo=UTC)),  # Friday, EST
        Interval(datetime(2026, 3, 9, 13, tzinfo=UTC), datetime(2026, 3, 9, 21, tzinfo=UTC)),  # Monday, EDT
    ]


# --- Booking rules ----------------------------------------------------------------------------------------------


def test_busy_time_is_widened_by_the_buffer_on_both_sides() -> None:
    coach = policy("Europe/Berlin", [rule(1, "09:00", "13:00")], buffer_minutes=10)
    tuesday = at(BERLIN, 2026, 6, 2)
    booked = Interval(at(BERLIN, 2026, 6, 2, 10), at(BERLIN, 2026, 6, 2, 11))
    slots = open_slots(coach, [booked], 30, tuesday, tuesday + timedelta(days=1), tuesday, "Europe/Berlin")
    assert [wall(s.start)[0] for s in slots] == ["09:00", "09:15", "11:15", "11:30", "11:45", "12:00", "12:15", "12:30"]


def test_slots_may_end_after_the_range_but_not_start_outside_it_or_the_horizon() -> None:
    coach = policy("Europe/Berlin", [rule(1, "09:00", "11:00")], horizon_days=1)
    now = at(BERLIN, 2026, 6, 1, 10, 0)
    slots = open_slots(coach, [], 60, now, at(BERLIN, 2026, 6, 2, 10, 15), now, "Asia/Kolkata", step_minutes=30)
    # Horizon is now + 24 h = Tuesday 10:00 Berlin, so 10:00 itself is out.
    assert [s.start_utc.astimezone(BERLIN).strftime("%H:%M") for s in slots] == ["09:00", "09:30"]
    assert [s.start.strftime("%H:%M%z") for s in slots] == ["12:30+0530", "13:00+0530"]


def test_grid_is_aligned_to_the_hour_in_the_coachs_zone() -> None:
    # Kolkata is +05:30, so the coach's round hours are half past in UTC.
    coach = policy("Asia/Kolkata", [rule(2, "09:10", "11:00")])
    wednesday = datetime(2026, 6, 3, tzinfo=UTC)
    slots = open_slots(
        coach,
        [],
        45,
        wednesday - timedelta(days=1),
        wednesday + timedelta(days=1),
        wednesday - timedelta(days=2),
        "UTC",
        step_minutes=30,
    )
    assert [s.start.strftime("%H:%M") for s in slots] == ["04:00", "04:30"]  # 09:30 and 10:00 in Kolkata


def test_exceptions_remove_and_add_time() -> None:
    week = [rule(d, "09:00", "12:00") for d in range(5)]
    exceptions = [
        AvailabilityException(date=date(2026, 6, 1), kind="time_off"),  # all Monday
        AvailabilityException(date=date(2026, 6, 2), kind="time_off", start=time(10), end=time(11)),
        AvailabilityException(date=date(2026, 6, 3), kind="extra", start=time(12), end=time(14)),  # joins 9-12
        AvailabilityException(date=date(2026, 6, 4), kind="time_off"),
        AvailabilityException(date=date(2026, 6, 4), kind="extra", start=time(15), end=time(16)),  # wins over time off
        AvailabilityException(date=date(2026, 6, 6), kind="extra", start=time(10), end=time(11)),  # a Saturday
    ]
    coach = policy("Europe/Berlin", week, exceptions=exceptions)
    got = available_intervals(coach, at(BERLIN, 2026, 6, 1), at(BERLIN, 2026, 6, 8))
    local = [(i.start.astimezone(BERLIN).strftime("%a %H:%M"), i.end.astimezone(BERLIN).strftime("%H:%M")) for i in got]
    assert local == [
        ("Tue 09:00", "10:00"),
        ("Tue 11:00", "12:00"),
        ("Wed 09:00", "14:00"),
        ("Thu 15:00", "16:00"),
        ("Fri 09:00", "12:00"),
        ("Sat 10:00", "11:00"),
    ]


def test_touching_windows_merge_so_a_session_may_span_them() -> None:
    extra = AvailabilityException(date=date(2026, 6, 1), kind="extra", start=time(10, 30), end=time(11))
    coach = policy("UTC", [rule(0, "09:00", "10:00"), rule(0, "10:00", "10:30")], exceptions=[extra])
    monday = datetime(2026, 6, 1, tzinfo=UTC)
    assert available_intervals(coach, monday, monday + timedelta(days=1)) == [
        Interval(monday + timedelta(hours=9), monday + timedelta(hours=11))
    ]
    slots = open_slots(coach, [], 60, monday, monday + timedelta(days=1), monday, "UTC", step_minutes=30)
    assert [s.start.strftime("%H:%M") for s in slots] == ["09:00", "09:30", "10:00"]


def test_available_intervals_are_clipped_to_the_range() -> None:
    coach = policy("UTC", [rule(0, "09:00", "12:00")])
    got = available_intervals(coach, datetime(2026, 6, 1, 10, 30, tzinfo=UTC), datetime(2026, 6, 1, 11, tzinfo=UTC))
    assert got == [Interval(datetime(2026, 6, 1, 10, 30, tzinfo=UTC), datetime(2026, 6, 1, 11, tzinfo=UTC))]


# --- bookable_hours ---------------------------------------------------------------------------------------------

OFFICE = [rule(d, "09:00", "17:00") for d in range(5)]
JUNE_MONDAY_BERLIN = at(BERLIN, 2026, 6, 1)


def test_bookable_hours_when_coach_and_person_share_a_zone() -> None:
    coach = policy("Europe/Berlin", OFFICE)
    earlier = JUNE_MONDAY_BERLIN - timedelta(days=1)
    assert bookable_hours(coach, [], "Europe/Berlin", JUNE_MONDAY_BERLIN, days=7, now=earlier) == 40.0
    assert bookable_hours(coach, [], "Europe/Berlin", JUNE_MONDAY_BERLIN, now=earlier) == 80.0
    # Without `now`, notice runs from `start`: Monday 00:00 + 12 h takes 09:00-12:00.
    assert (
        bookable_hours(
            coach.model_copy(update={"min_notice_hours": 12}), [], "Europe/Berlin", JUNE_MONDAY_BERLIN, days=7
        )
        == 37.0
    )
    # A three-day horizon leaves Monday to Wednesday.
    short = coach.model_copy(update={"horizon_days": 3})
    assert bookable_hours(short, [], "Europe/Berlin", JUNE_MONDAY_BERLIN, days=7) == 24.0


def test_bookable_hours_shrink_with_busy_time_and_its_buffer() -> None:
    coach = policy("Europe/Berlin", OFFICE, buffer_minutes=10)
    earlier = JUNE_MONDAY_BERLIN - timedelta(days=1)
    meeting = Interval(at(BERLIN, 2026, 6, 2, 10), at(BERLIN, 2026, 6, 2, 11))
    assert bookable_hours(coach, [meeting], "Europe/Berlin", JUNE_MONDAY_BERLIN, days=7, now=earlier) == 38.67
    early = Interval(at(BERLIN, 2026, 6, 3, 8, 30), at(BERLIN, 2026, 6, 3, 9))  # only its buffer reaches in
    assert bookable_hours(coach, [early], "Europe/Berlin", JUNE_MONDAY_BERLIN, days=7, now=earlier) == 39.83


def test_bookable_hours_across_zones_and_working_days() -> None:
    berlin_coach = policy("Europe/Berlin", OFFICE)
    monday_ny = at(NEW_YORK, 2026, 6, 1)
    earlier = monday_ny - timedelta(days=1)
    # New York 09:00-17:00 is Berlin 15:00-23:00 in June: two shared hours a day.
    assert bookable_hours(berlin_coach, [], "America/New_York", monday_ny, days=7, now=earlier) == 10.0
    # A weekend-only person never meets a weekday-only coach.
    assert (
        bookable_hours(berlin_coach, [], "Europe/Berlin", JUNE_MONDAY_BERLIN, 7, working_days=(5, 6), now=earlier)
        == 0.0
    )

    tokyo_office = [rule(d, "09:00", "18:00") for d in range(5)]
    tokyo_coach = policy("Asia/Tokyo", tokyo_office)
    assert bookable_hours(tokyo_coach, [], "America/New_York", monday_ny, days=7, now=earlier) == 0.0
    # Tokyo evenings 21:00-23:00 on Tue-Thu are New York 08:00-10:00 in summer: one shared hour each...
    evenings = policy("Asia/Tokyo", [*tokyo_office, *(rule(d, "21:00", "23:00") for d in (1, 2, 3))])
    assert bookable_hours(evenings, [], "America/New_York", monday_ny, days=7, now=earlier) == 3.0
    # ...but 07:00-09:00 in winter, when New York is an hour further from Tokyo: none.
    january = at(NEW_YORK, 2026, 1, 5)
    assert bookable_hours(evenings, [], "America/New_York", january, days=7, now=january - timedelta(days=1)) == 0.0
    assert at(TOKYO, 2026, 1, 6, 21).astimezone(NEW_YORK).hour == 7


# --- Validation -------------------------------------------------------------------------------------------------


def test_session_length_and_step_are_checked() -> None:
    coach = policy("UTC", OFFICE)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="got 50"):
        open_slots(coach, [], 50, now, now + timedelta(days=1), now, "UTC")
    with pytest.raises(ValueError, match="divide 60"):
        open_slots(coach, [], 30, now, now + timedelta(days=1), now, "UTC", step_minutes=7)
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        open_slots(coach, [], 30, now, now + timedelta(days=1), now.replace(tzinfo=None), "UTC")
    with pytest.raises(ValueError, match="IANA"):
        open_slots(coach, [], 30, now, now + timedelta(days=1), now, "Mars/Olympus")


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "extra"},  # an extra window needs times
        {"kind": "time_off", "start": "10:00"},  # half a window
        {"kind": "time_off", "start": "10:00", "end": "10:00"},
        {"kind": "extra", "start": "12:00", "end": "11:00"},
        {"kind": "extra", "start": "10:00+02:00", "end": "11:00+02:00"},  # offsets would be ignored
        {"kind": "holiday"},
        {"kind": "time_off", "reason": "typo-prone extra field"},
    ],
)
def test_exceptions_are_validated(fields: dict) -> None:
    with pytest.raises(ValidationError):
        AvailabilityException(date=date(2026, 6, 1), **fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"time_zone": "Mars/Olympus"},
        {"buffer_minutes": 121},
        {"buffer_minutes": -1},
        {"min_notice_hours": 337},
        {"horizon_days": 0},
        {"horizon_days": 181},
        {"timezone": "UTC"},
    ],
)
def test_policy_bounds(fields: dict) -> None:
    with pytest.raises(ValidationError):
        AvailabilityPolicy(**{"time_zone": "UTC", **fields})


def test_policy_defaults() -> None:
    defaults = AvailabilityPolicy(time_zone="Europe/Berlin")
    assert (defaults.buffer_minutes, defaults.min_notice_hours, defaults.horizon_days) == (10, 12, 60)


def test_policy_from_a_coach_profile() -> None:
    profile = SimpleNamespace(time_zone="Asia/Tokyo", weekly_availability=[rule(0, "09:00", "12:00")])
    made = AvailabilityPolicy.from_coach(profile, buffer_minutes=0)
    assert (made.time_zone, made.weekly, made.buffer_minutes, made.min_notice_hours) == (
        "Asia/Tokyo",
        profile.weekly_availability,
        0,
        12,
    )


def test_intervals_are_utc_and_ordered() -> None:
    item = Interval(at(BERLIN, 2026, 6, 1, 9), at(BERLIN, 2026, 6, 1, 10))
    assert item.start == datetime(2026, 6, 1, 7, tzinfo=UTC)
    assert item.start.tzinfo is UTC
    with pytest.raises(ValueError, match="after start"):
        Interval(item.end, item.start)
    with pytest.raises(ValueError, match="aware"):
        Interval(datetime(2026, 6, 1), datetime(2026, 6, 2))  # noqa: DTZ001
    a, b, c = (
        Interval(datetime(2026, 6, 1, h, tzinfo=UTC), datetime(2026, 6, 1, h + 2, tzinfo=UTC)) for h in (1, 3, 7)
    )
    assert merge_intervals([c, b, a]) == [Interval(a.start, b.end), c]
    assert subtract_intervals([Interval(a.start, c.end)], [b]) == [Interval(a.start, b.start), Interval(b.end, c.end)]
