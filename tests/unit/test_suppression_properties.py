"""Property tests over random orgs: every published cell counts at least k people, every hidden cell stays
undetermined against everything published (the linear-programming attack)."""

from __future__ import annotations

import os

from coaching.domain.reporting import (
    Contribution,
    Rollup,
    Tally,
    hidden_slots,
    linked_system,
    suppress,
)
from coaching.domain.suppression import Equation, protect
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.lp_attack import attack, pinned

# The normal suite keeps the LP attack to a few small orgs (seconds); COACHING_LP_PROFILE=large runs many larger
# ones (minutes): `COACHING_LP_PROFILE=large .venv/bin/python -m pytest tests/unit/test_suppression_properties.py`.
LARGE = os.environ.get("COACHING_LP_PROFILE") == "large"
MAX_PEOPLE = 60 if LARGE else 24
LP_EXAMPLES = 60 if LARGE else 6
K_EXAMPLES = 300 if LARGE else 40

DEPARTMENTS = ("sales", "eng", "ops")
LEVELS = ("manager", "first_time_manager", "senior_leader")
COHORTS = ("none", "2026-03", "2026-04")  # GROW cohorts by start month


@st.composite
def orgs(draw: st.DrawFn) -> tuple[Rollup, int]:
    k = draw(st.integers(min_value=3, max_value=6))
    size = draw(st.integers(min_value=1, max_value=MAX_PEOPLE))
    contributions = []
    tallies = []
    for i in range(size):
        dims = {
            "department": draw(st.sampled_from(DEPARTMENTS)),
            "level": draw(st.sampled_from(LEVELS)),
            "programme": draw(st.sampled_from(("SCALE", "GROW"))),
            "grow_cohort": draw(st.sampled_from(COHORTS)),
        }
        completed = draw(st.integers(0, 5))
        contributions.append(
            Contribution(
                pid=f"p{i:03d}",
                dims=dims,
                engaged=draw(st.booleans()),
                completed=completed,
                no_shows=draw(st.integers(0, 2)),
                terminated=(terminated := draw(st.booleans())),
                regrettable=terminated and draw(st.booleans()),
                focus=draw(st.lists(st.sampled_from(("delegation", "feedback")), max_size=2)),
            )
        )
        if completed and draw(st.booleans()):
            rating = draw(st.integers(1, 5))
            tallies.append(Tally(dims=dims, counters={"feedback_respondents": 1, "feedback_responses": 1,
                                                      "satisfaction_sum": rating}))  # fmt: skip
        if draw(st.booleans()):
            # A released follow-up, tallied under the person's programme and GROW cohort (growth >= 0 here, so the
            # attacker's lower bound of 0 holds for its sum as for every other).
            baseline = draw(st.integers(100, 400))
            tallies.append(
                Tally(
                    dims=dims,
                    counters={
                        "assessments_released": 1,
                        "growth_people": 1,
                        "growth_baseline_x100": baseline,
                        "growth_follow_up_x100": baseline + draw(st.integers(0, 100)),
                    },
                )
            )
    return Rollup.build("org", "2026-05", contributions, tallies), k


def _attackable(rollup: Rollup, k: int) -> tuple[dict, list, set]:
    protection = suppress(rollup, k)
    values, equations = linked_system(rollup)
    # The counts and sums of the people and sessions measures, distributions and focus: the LP over all of them.
    keep = {"people", "m:sessions", "s:sessions", "m:attendance", "s:attendance", "n:attendance", "m:satisfaction",
            "s:satisfaction", "u:engaged", "u:0", "u:1", "u:2-3", "u:4+", "a:leavers", "a:regrettable",
            "a:non_regrettable", "f:delegation", "f:feedback", "m:competency_growth", "s:competency_growth",
            "n:competency_growth", "m:competency_baseline", "s:competency_baseline"}  # fmt: skip
    values = {slot: v for slot, v in values.items() if slot[1] in keep}
    equations = [e for e in equations if e.parent[1] in keep]
    for e in equations:
        for slot in (e.parent, *e.children):
            values.setdefault(slot, 0.0)
    hidden = {slot for slot in hidden_slots(rollup, protection) if slot in values}
    return values, equations, hidden


@settings(max_examples=K_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orgs())
def test_every_published_cell_counts_at_least_k_people(org: tuple[Rollup, int]) -> None:
    rollup, k = org
    protection = suppress(rollup, k)
    values, _ = linked_system(rollup)
    for (key, part), value in values.items():
        counted = part == "people" or part.startswith(("m:", "u:", "a:", "f:"))
        if counted and protection.reason(key, part) is None:
            assert value >= k, (key, part, value)


@settings(max_examples=LP_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orgs())
def test_no_hidden_cell_is_recovered_by_the_linear_programming_attack(org: tuple[Rollup, int]) -> None:
    rollup, k = org
    values, equations, hidden = _attackable(rollup, k)
    # Structural zeros are outside the attack: a cell nobody can be in (no such department) has no equation.
    ranges = attack(values, equations, hidden)
    assert not pinned(ranges), {slot: (ranges[slot], values[slot]) for slot in pinned(ranges)}


def test_a_single_hidden_cell_in_a_table_with_a_total_takes_a_second_one_with_it() -> None:
    counts = {"total": 20, "a": 2, "b": 8, "c": 10}
    result = protect(counts, [Equation("total", ("a", "b", "c"))], 5)
    assert result.suppressed == {"a", "b"}
    assert not pinned(attack(counts, [Equation("total", ("a", "b", "c"))], result.suppressed))
