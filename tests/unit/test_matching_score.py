"""The hot scoring loop and the explained score agree exactly, and constraints bind in order."""

from datetime import UTC, datetime

import pytest
from coaching.domain.compiled_roster import compile_roster
from coaching.domain.matching import (
    History,
    MatchWeights,
    NoEligibleCoach,
    PersonContext,
    eligible,
    score_coach,
    scored_candidates,
    static_constraints,
)
from coaching.domain.overlap import OverlapCalculator
from coaching.domain.roster import Roster, roster_entries
from coaching.domain.taxonomy import JobFunction, Level, Program
from coaching_local import synthetic
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ROSTER = Roster(version=1, built_at=NOW, coaches=roster_entries(synthetic.coaches(300, seed=5)))
COMPILED = compile_roster(ROSTER)
COMPETENCIES = ["delegation", "hiring", "giving-feedback", "resilience", "decision-making"]

people = st.builds(
    PersonContext,
    person_id=st.just("p1"),
    org_id=st.just("org-1"),
    level=st.sampled_from(list(Level)),
    function=st.sampled_from([f.value for f in JobFunction]),
    industry=st.sampled_from(["technology", "retail", "healthcare"]),
    languages=st.sampled_from([("en",), ("de", "en"), ("es",), ("ja",), ("fr", "en")]),
    time_zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]),
    program=st.sampled_from([Program.SCALE, Program.EXEC]),
    focus=st.lists(st.sampled_from(COMPETENCIES), min_size=1, max_size=3, unique=True).map(tuple),
    preferred_languages=st.sampled_from([(), ("en",), ("de",)]),
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


@settings(max_examples=60, deadline=None)
@given(person=people, weights=weights, previous=st.sampled_from([None, *[c.coach_id for c in ROSTER.coaches[:5]]]))
def test_scored_candidates_equal_the_explained_score_and_order_ties_by_id(person, weights, previous):
    history = History(previous_coach=previous)
    try:
        ranked = scored_candidates(COMPILED, person, weights, history, NOW)
    except NoEligibleCoach:
        return
    overlap = OverlapCalculator(person.time_zone, NOW)
    for points, coach in ranked[:25]:
        explained = score_coach(
            person,
            coach,
            weights=weights,
            history=history,
            active_load=0,
            weekly_overlap_minutes=overlap.weekly_minutes(coach.coach),
        )
        assert explained.points == points
        assert explained.score == round(points / 10_000, 2)
    keys = [(-points, coach.coach_id) for points, coach in ranked]
    assert keys == sorted(keys)


def test_binding_constraint_is_the_first_that_leaves_nobody():
    person = PersonContext(
        person_id="p",
        org_id="o",
        level=Level.EXECUTIVE,
        function="finance",
        industry="retail",
        languages=("xx",),
        time_zone="UTC",
        program=Program.EXEC,
        focus=("delegation",),
    )
    with pytest.raises(NoEligibleCoach) as refused:
        eligible(COMPILED.coaches, static_constraints(person, History()))
    assert refused.value.constraint == "language"
    assert refused.value.message.startswith("no approved EXEC coach speaks")


def test_seniority_gate_only_from_senior_leader_up():
    base = {
        "person_id": "p",
        "org_id": "o",
        "function": "sales",
        "industry": "retail",
        "languages": ("en",),
        "time_zone": "UTC",
        "program": Program.SCALE,
        "focus": ("delegation",),
    }
    manager = static_constraints(PersonContext(level=Level.MANAGER, **base), History())
    senior = static_constraints(PersonContext(level=Level.SENIOR_LEADER, **base), History())
    assert "seniority" not in {c.name for c in manager}
    assert "seniority" in {c.name for c in senior}
    for coach in eligible(COMPILED.speaking(("en",)), senior):
        assert coach.highest_rank >= 3
