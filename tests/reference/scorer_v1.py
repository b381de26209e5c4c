"""The scorer matching used before the roster was precomputed, kept as the reference the new one must equal.

`eligible` over `static_constraints` then `score_all` over the candidates, verbatim as they were: the
property tests check `scored_candidates` against it (same order, same points, hence the same top lists
and reasons), and bench/matching.py times both in the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from coaching.domain.compiled_roster import LEVEL_RANK, SCALE, CompiledCoach, CompiledRoster
from coaching.domain.matching import (
    History,
    MatchWeights,
    NoEligibleCoach,
    PersonContext,
    eligible,
    static_constraints,
    weight_vector,
)
from coaching.domain.overlap import FULL_OVERLAP_MINUTES, OverlapCalculator


def reference_candidates(
    roster: CompiledRoster,
    person: PersonContext,
    weights: MatchWeights,
    history: History,
    now: datetime,
    exclude: frozenset[str] = frozenset(),
) -> list[tuple[int, CompiledCoach]]:
    """What propose() did before: the language index, the constraints in order, then score_all.

    Raises NoEligibleCoach as propose() did: explained over the whole network."""
    constraints = static_constraints(person, History(history.declined | exclude))
    try:
        candidates = eligible(roster.speaking(person.languages), constraints)
    except NoEligibleCoach:
        candidates = eligible(roster.coaches, constraints)
    return score_all(person, candidates, weights, history, OverlapCalculator(person.time_zone, now))


def score_all(
    person: PersonContext,
    coaches: Sequence[CompiledCoach],
    weights: MatchWeights,
    history: History,
    overlap: OverlapCalculator,
) -> list[tuple[int, CompiledCoach]]:
    """Every coach's score with no load yet, best first: the hot loop of a match.

    The arithmetic is factor_values' inlined (a test holds the two equal); at thousands of
    coaches per request, function calls and tuples are most of the cost in Python.
    """
    w_job, w_industry, w_comp, w_tz, w_pref, w_cont, w_load = weight_vector(weights)
    level, function, industry = person.level.value, person.function, person.industry
    exact_key = (level, function)
    rank_ = LEVEL_RANK[person.level]
    neighbours = {rank_ - 1, rank_ + 1}
    focus = frozenset(person.focus)
    focus_len = len(person.focus)
    preferred = person.preferred_languages
    previous = history.previous_coach
    same_level = SCALE * 6 // 10
    near = SCALE * 4 // 10
    known = overlap.known_minutes()
    scored: list[tuple[int, CompiledCoach]] = []
    for coach in coaches:
        overlap_minutes = known.get(coach.coach_id)
        if overlap_minutes is None:
            overlap_minutes = overlap.weekly_minutes(coach.coach)
        if exact_key in coach.exact_years:
            job = SCALE
        elif level in coach.level_function:
            job = same_level
        else:
            held = coach.function_ranks.get(function)
            job = near if held and not neighbours.isdisjoint(held) else 0
        shared = len(focus & coach.specialties)
        points = (
            w_job * job
            + (w_industry * SCALE if industry in coach.industries else 0)
            + (w_comp * (shared * SCALE // focus_len) if focus_len else 0)
            + w_tz * min(overlap_minutes * SCALE // FULL_OVERLAP_MINUTES, SCALE)
            + (w_pref * SCALE if preferred and not coach.languages.isdisjoint(preferred) else 0)
            + (w_cont * SCALE if coach.coach_id == previous else 0)
            + (w_load * SCALE if coach.capacity else 0)
        )
        scored.append((points, coach))
    # Candidates arrive in coach-id order (the compiled roster is sorted) and the sort is
    # stable, so ties keep coach-id order without comparing strings: far cheaper.
    scored.sort(key=_points, reverse=True)
    return scored


def _points(pair: tuple[int, CompiledCoach]) -> int:
    return pair[0]
