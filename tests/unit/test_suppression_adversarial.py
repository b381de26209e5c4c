"""An insider tries to isolate one person through what the reports publish, and never succeeds.

The target is `p-target`. The insider knows which cells the target is in, may know their own contribution,
and can ask for every view: single filters, pairs, breakdowns, consecutive months.
"""

from __future__ import annotations

import pytest
from coaching.domain.errors import GroupTooSmall
from coaching.domain.report_views import ReportSettings, org_report
from coaching.domain.reporting import (
    Contribution,
    Dimension,
    Figure,
    Filter,
    Rollup,
    Tally,
    breakdown,
    figures,
    hidden_slots,
    linked_system,
    selected,
    suppress,
)

from tests.unit.lp_attack import attack, pinned

K = 5


def person(i: int, department: str, level: str = "manager", completed: int = 2, **extra: object) -> Contribution:
    dims = {"department": department, "level": level, "programme": "SCALE"}
    return Contribution(pid=f"p{i:03d}", dims=dims, engaged=True, completed=completed, **extra)  # type: ignore[arg-type]


def org(target_department: str = "legal", others: int = 20, **target: object) -> Rollup:
    people = [person(i, "sales" if i % 2 else "eng", completed=i % 5) for i in range(others)]
    people.append(Contribution(pid="p-target", dims={"department": target_department, "level": "manager",
                                                     "programme": "SCALE"}, engaged=True, completed=4,
                               **target))  # type: ignore[arg-type]  # fmt: skip
    return Rollup.build("org", "2026-05", people)


def _recoverable(rollup: Rollup) -> dict:
    protection = suppress(rollup, K)
    values, equations = linked_system(rollup)
    return pinned(attack(values, equations, hidden_slots(rollup, protection)))


def test_a_filter_on_the_targets_one_person_department_is_refused_naming_the_rule() -> None:
    rollup = org()
    protection = suppress(rollup, K)
    with pytest.raises(GroupTooSmall) as refused:
        selected(rollup, protection, [Filter(dimension=Dimension.DEPARTMENT, value="legal")])
    assert refused.value.details["rule"] == "minimum_group"
    assert refused.value.status == 422


def test_the_complement_of_a_small_group_is_hidden_too_so_total_minus_cells_gives_nothing() -> None:
    # legal (1 person) is hidden; eng and sales published with the org would give legal by subtraction.
    rollup = org()
    protection = suppress(rollup, K)
    table = breakdown(rollup, protection, (), Dimension.DEPARTMENT)
    hidden = [row.cell["department"] for row in table if row.people.suppressed]
    assert "legal" in hidden
    assert len(hidden) >= 2
    assert not _recoverable(rollup)


def test_a_pair_of_filters_whose_remainder_is_below_k_is_refused() -> None:
    people = [person(i, "sales", level="manager") for i in range(8)]
    people += [person(100, "sales", level="senior_leader")]
    people += [person(200 + i, "eng", level="senior_leader") for i in range(8)]
    rollup = Rollup.build("org", "2026-05", people)
    protection = suppress(rollup, K)
    # sales = 9 people, sales and manager = 8: the pair would leave the one senior leader in sales as remainder.
    with pytest.raises(GroupTooSmall):
        selected(rollup, protection, [Filter(dimension=Dimension.DEPARTMENT, value="sales"),
                                      Filter(dimension=Dimension.LEVEL, value="manager")])  # fmt: skip
    assert not _recoverable(rollup)


def test_overlapping_filters_cannot_be_combined_into_the_target() -> None:
    # Tracker: every published one-filter and two-filter view, together, still pins nothing.
    people = [person(i, ["sales", "eng", "ops"][i % 3], level=["manager", "senior_leader"][i % 2]) for i in range(23)]
    people.append(person(999, "ops", level="executive", completed=5))
    assert not _recoverable(Rollup.build("org", "2026-05", people))


@pytest.mark.parametrize("distribution", ["all_in_one_bucket", "none_in_a_bucket"])
def test_a_zero_or_hundred_percent_distribution_reveals_nobodys_bucket(distribution: str) -> None:
    sessions = [4] * 12 if distribution == "all_in_one_bucket" else [0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4]
    rollup = Rollup.build("org", "2026-05", [person(i, "eng", completed=s) for i, s in enumerate(sessions)])
    shown = figures(rollup, suppress(rollup, K), ()).utilisation
    published = {bucket: f.value for bucket, f in shown.items() if f.suppressed is None}
    # No bucket shows 0 people, and no published bucket holds the whole group.
    assert all(value and value < len(sessions) for value in published.values())


def test_month_over_month_around_a_termination_reveals_neither_the_leaver_nor_the_flag() -> None:
    before = org(target_department="sales")
    after = org(target_department="sales", terminated=True, regrettable=True)
    for month in (before, after):
        assert not _recoverable(month)
    shown = figures(after, suppress(after, K), ()).attrition
    assert all(f.suppressed for f in shown.values())  # one leaver: the regrettable count is never shown


def test_month_over_month_around_a_promotion_keeps_the_newly_promoted_cell_hidden() -> None:
    people = [person(i, "eng") for i in range(12)]
    before = Rollup.build("org", "2026-04", [*people, person(50, "eng")])
    promoted = person(50, "eng").model_copy(update={"dims": {**person(50, "eng").dims, "newly_promoted": "true"}})
    rest = [p.model_copy(update={"dims": {**p.dims, "newly_promoted": "false"}}) for p in people]
    after = Rollup.build("org", "2026-05", [*rest, promoted])
    protection = suppress(after, K)
    with pytest.raises(GroupTooSmall):
        selected(after, protection, [Filter(dimension=Dimension.NEWLY_PROMOTED, value="true")])
    # ... and the not-newly-promoted group is hidden with it, so org minus it gives nothing.
    assert protection.reason((("newly_promoted", "false"),), "people") is not None
    assert not _recoverable(before)
    assert not _recoverable(after)


def test_a_person_subtracting_their_own_contribution_learns_nobody_elses() -> None:
    # Two people in a hidden department: one of them removes their own part from everything published and
    # attacks what is left (the others' system, under the suppression the full data got).
    me = person(90, "legal", completed=1)
    people = [person(i, "eng") for i in range(10)] + [me, person(91, "legal")]
    full = Rollup.build("org", "2026-05", people)
    others = Rollup.build("org", "2026-05", [p for p in people if p is not me])
    values, equations = linked_system(others)
    full_values, _ = linked_system(full)
    hidden = hidden_slots(full, suppress(full, K))
    for slot in full_values:
        values.setdefault(slot, 0.0)
    assert not pinned(attack(values, equations, hidden))


def test_the_same_query_always_gets_the_same_answer_whatever_order_the_data_arrived_in() -> None:
    people = [person(i, ["sales", "eng", "legal"][i % 3], completed=i % 6) for i in range(17)]
    first = Rollup.build("org", "2026-05", people)
    second = Rollup.build("org", "2026-05", list(reversed(people)))
    assert first == second
    assert suppress(first, K) == suppress(second, K)
    assert figures(first, suppress(first, K), ()) == figures(second, suppress(second, K), ())


# ------------------------------------------------------------------ competency growth by GROW cohort and programme


def _grower(i: int, cohort: str, growth: int, department: str = "eng") -> tuple[Contribution, Tally]:
    """A person of a GROW cohort ("none": in none, coached in SCALE) and the tally of their released follow-up."""
    dims = {"department": department, "level": "manager", "programme": "SCALE" if cohort == "none" else "GROW",
            "grow_cohort": cohort}  # fmt: skip
    counters = {"assessments_released": 1, "growth_people": 1, "growth_baseline_x100": 250,
                "growth_follow_up_x100": 250 + growth}  # fmt: skip
    return Contribution(pid=f"g{i:03d}", dims=dims, engaged=True, completed=2), Tally(dims=dims, counters=counters)


def _growth_org(members: list[tuple[Contribution, Tally]]) -> Rollup:
    return Rollup.build("org", "2026-05", [c for c, _ in members], [t for _, t in members])


def test_the_growth_of_a_cohort_of_one_is_hidden_in_every_view_and_cannot_be_derived() -> None:
    members = [_grower(i, "2026-03", 40 + i) for i in range(8)] + [_grower(20 + i, "none", 10 * i) for i in range(9)]
    members.append(_grower(99, "2026-04", 95))  # the target: alone in their cohort
    rollup = _growth_org(members)
    protection = suppress(rollup, K)
    target = (("grow_cohort", "2026-04"),)
    assert protection.reason(target, "m:competency_growth") == "minimum_group"
    # The org's growth minus the published cohorts would give the target's: a second cohort's growth goes too.
    by_cohort = {row.cell["grow_cohort"]: row for row in breakdown(rollup, protection, (), Dimension.GROW_COHORT)}
    hidden = [value for value, row in by_cohort.items() if row.measures["competency_growth"].suppressed]
    assert "2026-04" in hidden
    assert len(hidden) >= 2 or figures(rollup, protection, ()).measures["competency_growth"].suppressed
    # The same cell under another view (the GROW programme's cohorts, the report's lagging section) is hidden too.
    under_grow = breakdown(rollup, protection, (("programme", "GROW"),), Dimension.GROW_COHORT)
    (alone,) = [row for row in under_grow if row.cell["grow_cohort"] == "2026-04"]
    assert alone.measures["competency_growth"].suppressed
    report = org_report(rollup, protection, [], ReportSettings())
    (cohorts,) = [b for b in report.lagging.growth_by_cohort if b.dimension == "grow_cohort"]
    row = next(r for r in cohorts.rows if r["value"] == "2026-04")
    for name in ("competency_growth", "competency_growth_percent"):
        figure = row[name]
        assert isinstance(figure, Figure)
        assert figure.suppressed
    # And the LP attack over everything published (growth sums included) pins no hidden value.
    assert not _recoverable(rollup)


def test_a_cohort_member_subtracting_their_own_growth_learns_nobody_elses() -> None:
    me = _grower(90, "2026-04", 30)
    members = [_grower(i, "none", 20 + i) for i in range(10)] + [me, _grower(91, "2026-04", 70)]
    full = _growth_org(members)
    others = _growth_org([m for m in members if m is not me])
    values, equations = linked_system(others)
    full_values, _ = linked_system(full)
    hidden = hidden_slots(full, suppress(full, K))
    assert ((("grow_cohort", "2026-04"),), "s:competency_growth") in hidden
    for slot in full_values:
        values.setdefault(slot, 0.0)
    assert not pinned(attack(values, equations, hidden))
