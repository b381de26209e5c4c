"""Competency growth by programme and GROW cohort: where a released 360 counts, and the report cells it reaches.

A follow-up's growth counts for the programme and GROW cohort the person was in when it was released
(`coaching.domain.rollups.growth_attribution`). The property test runs random orgs through the real paths (the
rollups' event consumer and rebuild, the 360 service releasing rounds into the capture tallies) and checks that
the report's growth cells per cohort and per programme are the same whether the rollups were built from events or
rebuilt, equal the growth computed straight from source (each person's released results and their programme
records), agree with the rollups' own GROW cohort of each person, and are published only at k or more people.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime

from coaching.auth import Principal, Role
from coaching.domain.assessments import AssessmentRequest
from coaching.domain.measures import TallyCell
from coaching.domain.reporting import Measure, Rollup, decode_cell, pseudonym, suppress
from coaching.domain.rollups import growth_attribution, rollup_from_counters, tally_of
from coaching.services import assessments
from coaching.services.assessments import AssessmentContext, Participation
from coaching.services.rollups import rebuild
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.fakes.booking import Clock
from tests.unit.fakes.development import FakeDevelopmentStore
from tests.unit.fakes.rollups import (
    ORG,
    FakeRollupStore,
    FakeSource,
    make_cohort,
    make_engagement,
    make_group_session,
    make_org,
    make_person,
)
from tests.unit.test_rollups import NOW, _replayed, consume, ctx, from_source, world

COMPETENCIES = ["delegation", "giving-feedback", "communication"]
BASELINE_AT = datetime(2026, 2, 2, 9, tzinfo=UTC)
PERIOD = "2026-05"


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)


# ----------------------------------------------------------------------------- the attribution rule


def test_a_person_in_nothing_counts_under_none_and_a_scale_coachee_under_scale() -> None:
    person = make_person(1)
    assert growth_attribution(person.person_id, [], [], [], NOW) == ("none", "none")
    scale = make_engagement(person, "SCALE", "2026-03-01")
    assert growth_attribution(person.person_id, [scale], [], [], NOW) == ("SCALE", "none")
    # An engagement that starts after the release does not count for it.
    assert growth_attribution(person.person_id, [scale], [], [], _at("2026-02-27")) == ("none", "none")


def test_a_grow_cohort_counts_from_its_start_or_from_the_first_group_session_the_person_was_recorded_at() -> None:
    person = make_person(2)
    cohort = make_cohort("k1", "2026-06-01")
    # The cohort starts after the release: not yet the person's cohort.
    assert growth_attribution(person.person_id, [], [cohort], [], NOW) == ("none", "none")
    # ...unless a group session they were recorded at ran before: it began the cohort for them.
    early = make_group_session("k1", 0, _at("2026-05-12"), {person.person_id: "attended"})
    assert growth_attribution(person.person_id, [], [cohort], [early], NOW) == ("GROW", "2026-06")
    started = make_cohort("k2", "2026-04-06")
    assert growth_attribution(person.person_id, [], [started], [], NOW) == ("GROW", "2026-04")


def test_the_latest_programme_started_by_the_release_is_the_one_growth_counts_for() -> None:
    person = make_person(3)
    cohort = make_cohort("k1", "2026-03-02")
    scale = make_engagement(person, "SCALE", "2026-02-01")
    assert growth_attribution(person.person_id, [scale], [cohort], [], NOW) == ("GROW", "2026-03")
    executive = make_engagement(person, "EXEC", "2026-04-15").model_copy(update={"engagement_id": "e-exec"})
    assert growth_attribution(person.person_id, [scale, executive], [cohort], [], NOW) == ("EXEC", "2026-03")


# ----------------------------------------------------------------------------- the release path


def _employee(person_id: str) -> Principal:
    return Principal(person_id=person_id, org_id=ORG, roles=frozenset({Role.EMPLOYEE}))


def _round(context: AssessmentContext, person_id: str, rating: int, baseline_id: str | None = None) -> str:
    """Open a round with three peers and three direct reports, everyone answers: released on the last answer."""
    raters = [{"group": "peer"}] * 3 + [{"group": "direct_report"}] * 3
    request: dict[str, object] = {"competencies": COMPETENCIES, "raters": raters}
    if baseline_id:
        request |= {"kind": "follow_up", "baseline_id": baseline_id}
    opened = assessments.open_round(_employee(person_id), AssessmentRequest.model_validate(request), context)
    for invite in opened.invites:
        assessments.answer_by_link(invite.token, dict.fromkeys(COMPETENCIES, rating), context)
    view = assessments.answer_self(_employee(person_id), opened.assessment.assessment_id,
                                   dict.fromkeys(COMPETENCIES, 3), context)  # fmt: skip
    assert view.status.value == "released"
    return opened.assessment.assessment_id


def _development(source: FakeSource) -> FakeDevelopmentStore:
    store = FakeDevelopmentStore()
    store.orgs[ORG] = source.orgs[ORG]
    for (org_id, person_id), person in source.people_by_id.items():
        store.people[(org_id, person_id)] = person
        found = source.person(org_id, person_id)
        store.participations[(org_id, person_id)] = Participation(
            engagements=found.engagements, cohorts=found.cohorts, group_sessions=found.group_sessions
        )
    return store


def test_a_released_follow_up_is_tallied_under_the_programme_and_cohort_of_the_release() -> None:
    person = make_person(4)
    source = FakeSource(orgs={ORG: make_org()}, people_by_id={(ORG, person.person_id): person})
    source.cohorts["k1"] = make_cohort("k1", "2026-03-02")
    source.enrolled[(ORG, person.person_id)] = ["k1"]
    store = _development(source)
    clock = Clock(BASELINE_AT)
    context = AssessmentContext(store=store, clock=clock)
    baseline = _round(context, person.person_id, 2)
    clock.now = NOW
    _round(context, person.person_id, 3, baseline)
    (cell,) = [dims for (_, period, _), (dims, counters) in store.tallies.items()
               if period == PERIOD and counters.get("growth_people")]  # fmt: skip
    assert (cell.program, cell.grow_cohort) == ("GROW", "2026-03")
    # The baseline, released before the cohort began, counted under neither.
    (before,) = [dims for (_, period, _), (dims, _) in store.tallies.items() if period == "2026-02"]
    assert (before.program, before.grow_cohort) == ("none", "none")


# ----------------------------------------------------------------------------- the property


def _with_360s(seed: int, size: int) -> tuple[FakeSource, FakeDevelopmentStore, dict[str, tuple[int, int]]]:
    """A random org (tests/unit/test_rollups.py's world) where some people take a baseline in February and a
    follow-up released now; returns the 360 store and each measured person's (baseline, follow-up) x100."""
    source, _ = world(seed, size)
    store = _development(source)
    rng = random.Random(seed * 7 + 1)
    clock = Clock(BASELINE_AT)
    context = AssessmentContext(store=store, clock=clock)
    measured: dict[str, tuple[int, int]] = {}
    for _, person_id in sorted(source.people_by_id):
        if rng.random() < 0.3:
            continue
        before, after = rng.randint(1, 4), rng.randint(2, 5)
        clock.now = BASELINE_AT
        baseline = _round(context, person_id, before)
        clock.now = NOW
        _round(context, person_id, after, baseline)
        measured[person_id] = (before * 100, after * 100)
    return source, store, measured


def _report_rollup(store: FakeRollupStore, development: FakeDevelopmentStore) -> Rollup:
    tallies = [tally_of(TallyCell(org_id=org, period=period, cell_id=cell, dimensions=dims, counters=counters))
               for (org, period, cell), (dims, counters) in sorted(development.tallies.items())
               if (org, period) == (ORG, PERIOD)]  # fmt: skip
    return rollup_from_counters(ORG, PERIOD, store.cells(ORG, PERIOD), tallies, ["delegation"])


def _expected(source: FakeSource, measured: Mapping[str, tuple[int, int]], dimension: str) -> dict[str, Measure]:
    found: dict[str, Measure] = {}
    for person_id, (before, after) in sorted(measured.items()):
        where = source.person(ORG, person_id)
        programme, cohort = growth_attribution(person_id, where.engagements, where.cohorts, where.group_sessions,
                                               NOW)  # fmt: skip
        value = cohort if dimension == "grow_cohort" else programme
        found[value] = found.get(value, Measure()).plus(1, 1, (after - before) / 100)
    return found


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 30))
def test_growth_cells_by_cohort_and_programme_are_the_same_from_events_or_rebuilt_and_equal_the_source(
    seed: int, size: int
) -> None:
    source, development, measured = _with_360s(seed, size)
    _, events = world(seed, size)
    by_events, by_rebuild = FakeRollupStore(), FakeRollupStore()
    # As in test_rollups: yesterday's rebuild saw the people before today's changes; the rest came by events.
    before = FakeSource(orgs=source.orgs, priority_list=source.priority_list, people_by_id={
        key: p.model_copy(update={"terminated_on": None, "regrettable": None})
        for key, p in source.people_by_id.items()})  # fmt: skip
    rebuild(ORG, PERIOD, ctx(before, by_events))
    for event in _replayed(events, random.Random(seed)):
        consume(event, ctx(source, by_events))
    rebuild(ORG, PERIOD, ctx(source, by_rebuild))
    from_events, rebuilt = _report_rollup(by_events, development), _report_rollup(by_rebuild, development)
    assert from_events == rebuilt
    for dimension in ("grow_cohort", "programme"):
        expected = _expected(source, measured, dimension)
        for value, measure in expected.items():
            cell = rebuilt.cell(((dimension, value),)).measures["competency_growth"]
            assert (cell.people, cell.count) == (measure.people, measure.count), (dimension, value)
            assert round(cell.total, 2) == round(measure.total, 2), (dimension, value)
        # No growth anywhere else: the cohort (programme) cells add up to the org's growth.
        org = rebuilt.cell(()).measures.get("competency_growth", Measure())
        assert org.people == len(measured) == sum(m.people for m in expected.values())
    # The cohort a person's growth counts in is the rollups' own GROW cohort of that person this month.
    contributions = {c.pid: c for c in from_source(source, PERIOD)}
    for person_id in measured:
        where = source.person(ORG, person_id)
        _, cohort = growth_attribution(person_id, where.engagements, where.cohorts, where.group_sessions, NOW)
        assert contributions[pseudonym(ORG, person_id)].dims["grow_cohort"] == cohort
    # Every published growth figure counts at least k people, in every view that shows it.
    k = source.orgs[ORG].min_reporting_group_size
    protection = suppress(rebuilt, k)
    for encoded, cell in rebuilt.cells.items():
        growth = cell.measures.get("competency_growth")
        if protection.reason(decode_cell(encoded), "m:competency_growth") is None:
            assert growth is not None
            assert growth.people >= k, encoded


def test_a_lone_person_of_a_cohort_never_shows_their_growth_and_a_cohort_of_k_does() -> None:
    source = FakeSource(orgs={ORG: make_org()})
    lone, team = make_person(50), [make_person(60 + i) for i in range(4)]
    for person in [lone, *team]:
        source.people_by_id[(ORG, person.person_id)] = person
    source.cohorts["solo"] = make_cohort("solo", "2026-03-02")
    source.cohorts["team"] = make_cohort("team", "2026-04-06")
    source.enrolled[(ORG, lone.person_id)] = ["solo"]
    for person in team:
        source.enrolled[(ORG, person.person_id)] = ["team"]
    development = _development(source)
    clock = Clock(BASELINE_AT)
    context = AssessmentContext(store=development, clock=clock)
    for person in [lone, *team]:
        clock.now = BASELINE_AT
        baseline = _round(context, person.person_id, 2)
        clock.now = NOW
        _round(context, person.person_id, 4 if person is lone else 3, baseline)
    store = FakeRollupStore()
    rebuild(ORG, PERIOD, ctx(source, store))
    rollup = _report_rollup(store, development)
    protection = suppress(rollup, 3)
    assert protection.reason((("grow_cohort", "2026-03"),), "m:competency_growth") == "minimum_group"
    # With the lone cohort hidden, the org total minus the team's cohort would give the lone person away: the
    # team's cohort is hidden too (complementary), or the org's growth is.
    team_hidden = protection.reason((("grow_cohort", "2026-04"),), "m:competency_growth")
    org_hidden = protection.reason((), "m:competency_growth")
    assert team_hidden is not None or org_hidden is not None
