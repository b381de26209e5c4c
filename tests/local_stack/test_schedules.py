"""rate()/cron() parsing and next-fire computation, including DST in Europe/Berlin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from coaching_local.schedules import Cron, Rate, fires_at, next_fire, parse
from hypothesis import given, settings
from hypothesis import strategies as st

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(6 hours)", 21600),
        ("rate(1 day)", 86400),
        ("rate(2 days)", 172800),
    ],
)
def test_rates(expression: str, seconds: int) -> None:
    parsed = parse(expression)
    assert isinstance(parsed, Rate)
    assert parsed.interval == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minutes)",
        "rate(2 minute)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "rate(minutes)",
        "every 5 minutes",
        "cron(0 3 * * *)",
        "cron(0 3 * * * *)",
        "cron(0 3 ? * ? *)",
        "cron(61 3 * * ? *)",
        "cron(0 3 * FOO ? *)",
        "cron(0 5-3 * * ? *)",
        "cron(0 3 1 * ? 1969)",
    ],
)
def test_invalid_expressions(expression: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse(expression)


@pytest.mark.parametrize(
    ("expression", "token"), [("cron(0 3 15W * ? *)", "W"), ("cron(0 3 ? * 2#1 *)", "#"), ("cron(0 3 ? * 6L *)", "L")]
)
def test_unsupported_syntax_is_named(expression: str, token: str) -> None:
    with pytest.raises(ValueError, match=f"'{token}'"):
        parse(expression)


def test_cron_fields() -> None:
    cron = parse("cron(0/15 8-17 ? JAN,MAR-MAY MON-FRI 2024-2026)")
    assert isinstance(cron, Cron)
    assert cron.minutes == {0, 15, 30, 45}
    assert cron.hours == set(range(8, 18))
    assert cron.months == {1, 3, 4, 5}
    assert cron.days_of_week == {2, 3, 4, 5, 6}  # AWS: 1=SUN
    assert cron.years == {2024, 2025, 2026}
    assert cron.days_of_month is None


def test_rate_is_anchored() -> None:
    anchor = utc(2024, 1, 1, 0, 0)
    assert next_fire("rate(5 minutes)", utc(2024, 1, 1, 0, 0), anchor=anchor) == utc(2024, 1, 1, 0, 5)
    assert next_fire("rate(5 minutes)", utc(2024, 1, 1, 0, 7), anchor=anchor) == utc(2024, 1, 1, 0, 10)
    assert next_fire("rate(1 hour)", utc(2024, 1, 1, 0, 0, 30)) == utc(2024, 1, 1, 1, 0, 30)


def test_weekday_numbering() -> None:
    # 2024-06-03 is a Monday; AWS day 2 is Monday.
    assert next_fire("cron(0 9 ? * 2 *)", utc(2024, 6, 1, 0, 0)) == utc(2024, 6, 3, 9, 0)
    assert next_fire("cron(0 9 ? * SUN *)", utc(2024, 6, 1, 0, 0)) == utc(2024, 6, 2, 9, 0)
    assert next_fire("cron(0 9 ? * 7 *)", utc(2024, 6, 1, 10, 0)) == utc(2024, 6, 8, 9, 0)


def test_day_of_week_steps_lists_and_ranges_in_aws_numbering() -> None:
    # 2024-06-03 is a Monday. AWS 2/2 is Mon, Wed, Fri; 1,7 is the weekend; 2-6 the working week.
    week = [utc(2024, 6, 2) + timedelta(days=i) for i in range(7)]  # Sunday .. Saturday

    def days(expression: str) -> list[int]:
        return [d.day for d in week if fires_at(expression, d.replace(hour=9))]

    assert days("cron(0 9 ? * 2/2 *)") == [3, 5, 7]
    assert days("cron(0 9 ? * 1,7 *)") == [2, 8]
    assert days("cron(0 9 ? * 2-6 *)") == [3, 4, 5, 6, 7]
    assert days("cron(0 9 ? * MON-FRI *)") == [3, 4, 5, 6, 7]
    assert next_fire("cron(0 9 ? * 2/2 *)", utc(2024, 6, 3, 10)) == utc(2024, 6, 5, 9)


def test_last_day_and_a_day_in_one_list() -> None:
    assert next_fire("cron(0 12 15,L * ? *)", utc(2024, 2, 16)) == utc(2024, 2, 29, 12)
    assert next_fire("cron(0 12 15,L * ? *)", utc(2024, 2, 29, 12)) == utc(2024, 3, 15, 12)


@pytest.mark.parametrize("expression", ["cron(0 3 ? * 0 *)", "cron(0 3 ? * 8 *)", "cron(0 3 1 * ? 2150)"])
def test_out_of_range_days_of_week_and_years(expression: str) -> None:
    with pytest.raises(ValueError, match=r"cron"):
        parse(expression)


def test_last_day_of_month() -> None:
    assert next_fire("cron(0 12 L * ? *)", utc(2024, 2, 1)) == utc(2024, 2, 29, 12, 0)  # leap year
    assert next_fire("cron(0 12 L * ? *)", utc(2023, 2, 1)) == utc(2023, 2, 28, 12, 0)
    assert next_fire("cron(0 12 L * ? *)", utc(2024, 4, 30, 12, 0)) == utc(2024, 5, 31, 12, 0)


def test_monthly_berlin_across_months_and_dst() -> None:
    fires = []
    moment = utc(2024, 1, 15)
    for _ in range(14):
        moment = next_fire("cron(0 3 1 * ? *)", moment, "Europe/Berlin")
        fires.append(moment)
    assert all(f.tzinfo is not None for f in fires)
    assert [(f.month, f.day, f.hour, f.minute) for f in fires] == [(m, 1, 3, 0) for m in range(2, 13)] + [
        (m, 1, 3, 0) for m in range(1, 4)
    ]
    as_utc = [f.astimezone(UTC) for f in fires]
    assert as_utc[0] == utc(2024, 2, 1, 2, 0)  # CET, UTC+1
    assert as_utc[2] == utc(2024, 4, 1, 1, 0)  # CEST, UTC+2 after 31 March
    assert as_utc[9] == utc(2024, 11, 1, 2, 0)  # back to CET after 27 October


def test_nonexistent_local_time_is_shifted_forward() -> None:
    # 2024-03-31 02:30 does not exist in Berlin; it fires at 03:30 CEST, i.e. 01:30 UTC.
    fire = next_fire("cron(30 2 * * ? *)", utc(2024, 3, 30, 12, 0), "Europe/Berlin")
    assert fire.astimezone(UTC) == utc(2024, 3, 31, 1, 30)
    following = next_fire("cron(30 2 * * ? *)", fire, "Europe/Berlin")
    assert following.astimezone(UTC) == utc(2024, 4, 1, 0, 30)


def test_ambiguous_local_time_fires_once() -> None:
    # 2024-10-27 02:30 happens twice in Berlin; it fires only at the first (CEST, 00:30 UTC).
    fire = next_fire("cron(30 2 * * ? *)", utc(2024, 10, 26, 12, 0), "Europe/Berlin")
    assert fire.astimezone(UTC) == utc(2024, 10, 27, 0, 30)
    following = next_fire("cron(30 2 * * ? *)", fire, "Europe/Berlin")
    assert following.astimezone(UTC) == utc(2024, 10, 28, 1, 30)


def test_every_half_hour_through_spring_forward_is_monotonic() -> None:
    moment = utc(2024, 3, 30, 23, 0)
    seen = []
    for _ in range(8):
        moment = next_fire("cron(0/30 * * * ? *)", moment, "Europe/Berlin")
        seen.append(moment.astimezone(UTC))
    assert seen == [utc(2024, 3, 30, 23, 30) + timedelta(minutes=30 * i) for i in range(8)]


def test_year_restriction_and_exhaustion() -> None:
    assert next_fire("cron(0 0 1 1 ? 2030)", utc(2024, 5, 5)) == utc(2030, 1, 1)
    with pytest.raises(ValueError, match="never fires"):
        next_fire("cron(0 0 1 1 ? 2020)", utc(2024, 5, 5))


def test_naive_after_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire("rate(1 minute)", datetime(2024, 1, 1))  # noqa: DTZ001 - the point of the test


_minutes = st.sets(st.integers(0, 59), min_size=1, max_size=4)
_hours = st.sets(st.integers(0, 23), min_size=1, max_size=4)
_zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
_moments = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2035, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    timezones=st.just(UTC),
)


def _join(values: set[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


@settings(max_examples=150, deadline=None)
@given(
    minutes=_minutes, hours=_hours, dow=st.sets(st.integers(1, 7), min_size=1, max_size=3), zone=_zones, after=_moments
)
def test_property_next_fire_is_after_and_matches_fields(
    minutes: set[int], hours: set[int], dow: set[int], zone: str, after: datetime
) -> None:
    expression = f"cron({_join(minutes)} {_join(hours)} ? * {_join(dow)} *)"
    fire = next_fire(expression, after, zone)
    assert fire > after
    assert fire - after <= timedelta(days=8, hours=3)
    local = fire.astimezone(ZoneInfo(zone))
    assert fire.tzinfo is not None
    if fires_at(expression, fire, zone):
        return
    # Otherwise the wall-clock time did not exist: it was shifted forward out of a DST gap.
    shifted_from = [local.replace(tzinfo=None) - timedelta(minutes=gap) for gap in (30, 60)]
    assert any(w.minute in minutes and w.hour in hours for w in shifted_from), (expression, after, fire)


@settings(max_examples=100, deadline=None)
@given(after=_moments, zone=_zones)
def test_property_consecutive_fires_increase(after: datetime, zone: str) -> None:
    first = next_fire("cron(15 */3 * * ? *)", after, zone)
    second = next_fire("cron(15 */3 * * ? *)", first, zone)
    assert after < first < second
