"""Cohort launches through the service, on in-memory ports: optimal assignment, reasons, commit."""

from __future__ import annotations

import pytest
from coaching.domain.errors import Forbidden, InvalidInput, NotFound
from coaching.domain.matching import MatchingSettings
from coaching.services import cohorts, matching
from coaching.services.cohorts import CohortRequest

from .fakes.matching import MatchingWorld, make_coach, make_org, role


def launch(world: MatchingWorld, people: list[str], **extra: object) -> cohorts.CohortPlan:
    request = CohortRequest.model_validate({"program": "GROW", "participant_ids": people, **extra})
    return cohorts.match_cohort_for_org(world.admin(), request, world.cohort_ctx)


def test_a_cohort_fills_every_place_optimally_and_explains_who_is_left_out():
    world = MatchingWorld()
    network = world.coaches(*(make_coach(f"c{i}", languages=["eu"], capacity=2, programs=["GROW"]) for i in range(3)))
    cohort = [world.person(languages=["eu"]).person_id for _ in range(8)]
    stranded = world.person(languages=["tl"]).person_id  # nobody in the network speaks Tagalog
    plan = launch(world, [*cohort, stranded], focus_competencies=["delegation"])
    assert (plan.participants, plan.matched, plan.mode, plan.committed) == (9, 6, "best_fit", False)
    assert plan.load == {c.coach_id: 2 for c in network}
    reasons = {u["person_id"]: u["reason"] for u in plan.unmatched}
    assert reasons[stranded] == "no approved GROW coach speaks Tagalog"
    assert sum(1 for r in reasons.values() if r == "every eligible coach was at capacity") == 2
    assert not any(a.engagement_id for a in plan.assignments)
    assert world.store.engagements == {}  # a plan without commit writes nothing

    everyone = launch(world, [*cohort, stranded], mode="everyone_matched")
    assert everyone.matched == 6
    assert everyone.objective <= plan.objective


def test_the_assignment_maximises_total_fit_where_greedy_would_not():
    world = MatchingWorld()
    expert = make_coach(
        "expert",
        capacity=1,
        programs=["GROW"],
        specialties=["delegation"],
        roles_held=[role("manager", "sales"), role("first_time_manager", "engineering")],
    )
    generalist = make_coach("generalist", capacity=1, programs=["GROW"], roles_held=[role("manager", "sales")])
    world.coaches(expert, generalist)
    sales = world.person(level="manager", function="sales").person_id
    finance = world.person(level="first_time_manager", function="finance").person_id
    plan = launch(world, [sales, finance], focus_competencies=["delegation"])
    # Greedy would give the sales manager their best edge (the expert) and leave the finance
    # manager a coach worth nothing to them; the optimum gives each a coach who fits.
    assignment = {a.person_id: a.coach_id for a in plan.assignments}
    assert assignment == {sales: generalist.coach_id, finance: expert.coach_id}
    scores = {a.person_id: a.score for a in plan.assignments}
    assert all(score > 0 for score in scores.values())
    assert plan.objective == pytest.approx(sum(scores.values()))


def test_commit_turns_each_assignment_into_an_engagement_within_capacity():
    world = MatchingWorld()
    network = world.coaches(*(make_coach(f"c{i}", capacity=2, programs=["GROW"]) for i in range(2)))
    cohort = [world.person().person_id for _ in range(4)]
    plan = launch(world, cohort, commit=True)
    assert plan.committed is True
    assert plan.refused == []
    assert all(a.engagement_id for a in plan.assignments)
    assert world.store.load == {c.coach_id: 2 for c in network}
    for assignment in plan.assignments:
        [engagement] = world.store.active(world.org.org_id, assignment.person_id)
        assert (engagement.engagement_id, engagement.coach_id, engagement.program) == (
            assignment.engagement_id,
            assignment.coach_id,
            "GROW",
        )
    # The network is now full: a second launch finds every coach at capacity.
    assert launch(world, [world.person().person_id]).matched == 0


def test_a_coach_who_filled_up_meanwhile_is_reported_not_overbooked():
    world = MatchingWorld()
    only = make_coach("only", capacity=1, programs=["GROW"])
    world.coaches(only)
    person = world.person().person_id
    world.store.before_commit = lambda store: store.load.__setitem__(only.coach_id, 1)
    plan = launch(world, [person], commit=True)
    assert plan.refused == [{"person_id": person, "reason": "the coach reached capacity before this engagement"}]
    assert plan.assignments[0].engagement_id is None
    assert world.store.load == {only.coach_id: 1}


def test_someone_already_in_the_programme_is_refused_at_commit():
    world = MatchingWorld()
    world.coaches(*(make_coach(f"c{i}", programs=["GROW"]) for i in range(2)))
    person = world.person()
    grow = matching.request_match(
        person,
        matching.MatchRequestIn(
            program="GROW", focus_competencies=["delegation"], situation="Leading my first larger team."
        ),
        world.ctx,
    )
    matching.choose(person, grow.match_id, grow.proposals[0].coach_id, world.ctx)
    plan = launch(world, [person.person_id], commit=True)
    assert plan.refused == [
        {"person_id": person.person_id, "reason": "already has an active engagement in this programme"}
    ]


def test_participants_must_be_active_people_of_the_callers_org():
    world = MatchingWorld()
    world.coaches(make_coach("one", programs=["GROW"]))
    mine = world.person().person_id
    gone = world.person(active=False).person_id
    with pytest.raises(InvalidInput, match="not active people") as refused:
        launch(world, [mine, gone])
    assert refused.value.field == "participant_ids[1]"
    with pytest.raises(InvalidInput) as foreign:
        launch(world, ["someone-elses"])
    assert foreign.value.field == "participant_ids[0]"
    with pytest.raises(Forbidden):
        cohorts.match_cohort_for_org(
            world.person(), CohortRequest(program="GROW", participant_ids=[mine]), world.cohort_ctx
        )


def test_the_orgs_cohort_mode_applies_when_the_request_names_none():
    world = MatchingWorld(org=make_org(matching=MatchingSettings(cohort_mode="everyone_matched")))
    world.coaches(make_coach("one", programs=["GROW"]))
    assert launch(world, [world.person().person_id]).mode == "everyone_matched"
    missing = MatchingWorld()
    missing.people.org_records.clear()
    with pytest.raises(NotFound):
        launch(missing, ["p"])
