"""The scorer over the precomputed roster equals the reference scorer it replaced, on random rosters.

Same candidates in the same order with the same points, so the same top lists; the reasons of the
top coaches (score_coach over those) are then the same too, and a refusal names the same constraint.
"""

from datetime import UTC, datetime, timedelta

import pytest
from coaching.domain.availability import (
    AvailabilityPolicy,
    Interval,
    bookable_hours,
    free_intervals,
    hours_together,
    working_intervals,
)
from coaching.domain.compiled_roster import compile_roster
from coaching.domain.matching import (
    PROPOSALS,
    History,
    MatchWeights,
    NoEligibleCoach,
    PersonContext,
    readable,
    score_coach,
    scored_candidates,
)
from coaching.domain.overlap import OverlapCalculator
from coaching.domain.roster import Roster, roster_entries
from coaching.domain.taxonomy import JobFunction, Level, Program
from coaching_local import synthetic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference.scorer_v1 import reference_candidates

COMPETENCIES = ["delegation", "hiring", "giving-feedback", "resilience", "decision-making", "prioritisation"]
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "Asia/Kolkata", "UTC"]
# Naive bounds with a zone strategy: how Hypothesis draws aware datetimes.
START, END = datetime(2026, 1, 1), datetime(2027, 12, 31)  # noqa: DTZ001
_rosters: dict[tuple[int, int], Roster] = {}


def _roster(seed: int, size: int) -> Roster:
    key = (seed, size)
    if key not in _rosters:
        coaches = synthetic.coaches(size, seed=seed)
        # Some coaches work for the person's org, so the not-a-colleague rule binds for some rosters.
        for coach in coaches[:: max(size // 7, 1)]:
            coach.employer_org_ids = ["org-1"]
        _rosters[key] = Roster(version=seed * 1000 + size, built_at=datetime(2026, 1, 1, tzinfo=UTC),
                               coaches=roster_entries(coaches))  # fmt: skip
    return _rosters[key]


people = st.builds(
    PersonContext,
    person_id=st.just("p1"),
    org_id=st.sampled_from(["org-1", "org-2"]),
    level=st.sampled_from(list(Level)),
    function=st.sampled_from([f.value for f in JobFunction]),
    industry=st.sampled_from(["technology", "retail", "healthcare", "financial_services"]),
    languages=st.sampled_from([("en",), ("de", "en"), ("es",), ("ja",), ("fr", "en"), ("xx",), ("pt", "it")]),
    time_zone=st.sampled_from(ZONES),
    program=st.sampled_from(list(Program)),
    focus=st.lists(st.sampled_from(COMPETENCIES), min_size=0, max_size=4, unique=True).map(tuple),
    preferred_languages=st.sampled_from([(), ("en",), ("de",), ("es", "ja")]),
)
weights = st.builds(
    MatchWeights,
    **{
        name: st.integers(0, 100)
        for name in [
            "has_done_the_job",
            "industry",
            "competencies",
            "time_zone_overlap",
            "continuity",
            "load_balance",
            "preferred_language",
        ]
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(1, 6),
    size=st.sampled_from([1, 5, 40, 250]),
    person=people,
    weights=weights,
    picks=st.lists(st.integers(0, 10_000), max_size=6),
    previous_pick=st.one_of(st.none(), st.integers(0, 10_000)),
    now=st.datetimes(min_value=START, max_value=END, timezones=st.just(UTC)),
)
def test_precomputed_scorer_equals_the_reference(seed, size, person, weights, picks, previous_pick, now):
    roster = _roster(seed, size)
    compiled = compile_roster(roster)
    ids = [c.coach_id for c in roster.coaches]
    declined = frozenset(ids[p % len(ids)] for p in picks[:-1])
    exclude = frozenset(ids[p % len(ids)] for p in picks[-1:])
    previous = ids[previous_pick % len(ids)] if previous_pick is not None else None
    history = History(declined=declined, previous_coach=previous)
    try:
        expected = reference_candidates(compiled, person, weights, history, now, exclude)
    except NoEligibleCoach as reference_error:
        refusal = (reference_error.constraint, reference_error.message)
        with pytest.raises(NoEligibleCoach) as refused:
            scored_candidates(compiled, person, weights, history, now, exclude)
        assert (refused.value.constraint, refused.value.message) == refusal
        return
    got = scored_candidates(compiled, person, weights, history, now, exclude)
    assert [(p, c.coach_id) for p, c in got] == [(p, c.coach_id) for p, c in expected]
    overlap = OverlapCalculator(person.time_zone, now)
    for (_, new), (_, old) in zip(got[: PROPOSALS * 4], expected[: PROPOSALS * 4], strict=True):
        minutes = overlap.weekly_minutes(new.coach)
        explain = {"weights": weights, "history": history, "active_load": 0, "weekly_overlap_minutes": minutes}
        assert readable(score_coach(person, new, **explain)) == readable(score_coach(person, old, **explain))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(1, 6),
    zone=st.sampled_from(ZONES),
    now=st.datetimes(min_value=START, max_value=END, timezones=st.just(UTC)).map(
        lambda moment: moment.replace(minute=0, second=0, microsecond=0)
    ),
    sessions=st.lists(st.tuples(st.integers(0, 14 * 24 * 4), st.sampled_from([30, 45, 60])), max_size=6),
)
def test_free_time_intersected_with_working_hours_equals_bookable_hours(seed, zone, now, sessions):
    """Per coach once and per zone once, then intersected: the same hours as computed together."""
    busy = sorted(Interval(now + timedelta(minutes=15 * q), now + timedelta(minutes=15 * q + n)) for q, n in sessions)
    working = working_intervals(zone, now, now + timedelta(days=14))
    for coach in _roster(seed, 40).coaches[:8]:
        policy = AvailabilityPolicy.from_coach(coach)
        together = hours_together(free_intervals(policy, busy, now, 14, now=now), working)
        assert together == bookable_hours(policy, busy, zone, now, days=14, now=now)
