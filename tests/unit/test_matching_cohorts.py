"""Cohort launches through the service, on in-memory ports: optimal assignment, neutral reasons, commit."""

from __future__ import annotations

import pytest
from coaching.auth import Principal
from coaching.domain.errors import Forbidden, InvalidInput, NoEligibleCoachError, NotFound
from coaching.domain.events import EngagementStarted, stable_event_id
from coaching.domain.matching import MatchingSettings
from coaching.services import cohorts, matching
from coaching.services.cohorts import NOT_ASSIGNABLE, CohortRequest

from .fakes.matching import MatchingWorld, make_coach, make_org, role


def launch(world: MatchingWorld, people: list[str], **extra: object) -> cohorts.CohortPlan:
    request = CohortRequest.model_validate({"program": "GROW", "participant_ids": people, **extra})
    return cohorts.match_cohort_for_org(world.admin(), request, world.cohort_ctx)


def test_a_cohort_fills_every_place_optimally_and_names_who_is_left_out_neutrally():
    world = MatchingWorld()
    network = world.coaches(*(make_coach(f"c{i}", languages=["eu"], capacity=2, programs=["GROW"]) for i in range(3)))
    cohort = [world.person(languages=["eu"]).person_id for _ in range(8)]
    stranded = world.person(languages=["tl"]).person_id  # nobody in the network speaks Tagalog
    plan = launch(world, [*cohort, stranded], focus_competencies=["delegation"])
    assert (plan.participants, plan.matched, plan.mode, plan.committed) == (9, 6, "best_fit", False)
    assert plan.load == {c.coach_id: 2 for c in network}
    reasons = {u["person_id"]: u["reason"] for u in plan.unmatched}
    assert stranded in reasons
    assert set(reasons.values()) == {NOT_ASSIGNABLE}
    # The detail is kept for operators as counts by reason, without anyone's id.
    assert plan.unassigned_by_reason == {"at_capacity": 2, "no_eligible_coach:language": 1}
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


def test_each_committed_engagement_starts_with_its_event_in_the_same_write_as_a_1_to_1_match():
    world = MatchingWorld()
    world.coaches(*(make_coach(f"c{i}", capacity=1, programs=["GROW"]) for i in range(2)))
    cohort = [world.person().person_id for _ in range(3)]  # two places: one is left out
    plan = launch(world, cohort, commit=True)
    started = world.events_of(EngagementStarted)
    committed = [a for a in plan.assignments if a.engagement_id]
    assert len(committed) == 2
    by_engagement = {e.engagement_id: e for e in started}
    assert set(by_engagement) == {a.engagement_id for a in committed}
    for assignment in committed:
        event = by_engagement[assignment.engagement_id]
        engagement = world.store.engagements[(world.org.org_id, assignment.person_id, assignment.engagement_id)][0]
        assert (event.org_id, event.person_id, event.coach_id, event.program, event.match_id) == (
            world.org.org_id,
            assignment.person_id,
            assignment.coach_id,
            "GROW",
            None,  # no match request: a cohort launch committed it
        )
        assert event.occurred_at == engagement.created_at
        assert event.event_id == stable_event_id(EngagementStarted.detail_type, assignment.engagement_id)
    # A plan that is not committed starts nothing, and announces nothing.
    before = len(world.events_of(EngagementStarted))
    launch(world, [world.person().person_id])
    assert len(world.events_of(EngagementStarted)) == before


def test_a_coach_who_filled_up_meanwhile_is_reported_not_overbooked():
    world = MatchingWorld()
    only = make_coach("only", capacity=1, programs=["GROW"])
    world.coaches(only)
    person = world.person().person_id
    world.store.before_commit = lambda store: store.load.__setitem__(only.coach_id, 1)
    plan = launch(world, [person], commit=True)
    assert plan.refused == [{"person_id": person, "reason": NOT_ASSIGNABLE}]
    assert plan.unassigned_by_reason == {"refused_at_commit:coach_id": 1}
    assert plan.assignments[0].engagement_id is None
    assert world.store.load == {only.coach_id: 1}
    assert world.events_of(EngagementStarted) == []  # a refused engagement's event is not committed either


def enrol(world: MatchingWorld, person: Principal, program: str = "GROW") -> None:
    """The person asks for a coach in `program` themselves and takes the first proposal."""
    request = matching.MatchRequestIn(
        program=program, focus_competencies=["delegation"], situation="Leading my first larger team."
    )
    proposed = matching.request_match(person, request, world.ctx)
    matching.choose(person, proposed.match_id, proposed.proposals[0].coach_id, world.ctx)


def test_someone_already_in_the_programme_is_left_out_of_the_plan_and_the_commit_alike():
    world = MatchingWorld()
    world.coaches(*(make_coach(f"c{i}", programs=["GROW"]) for i in range(2)))
    coached = world.person()
    enrol(world, coached)
    newcomer = world.person().person_id
    plan = launch(world, [coached.person_id, newcomer])
    committed = launch(world, [coached.person_id, newcomer], commit=True)
    for result in (plan, committed):
        assert result.unmatched == [{"person_id": coached.person_id, "reason": NOT_ASSIGNABLE}]
        assert [a.person_id for a in result.assignments] == [newcomer]
        assert result.refused == []
        assert result.unassigned_by_reason == {"active_engagement": 1}
    assert len(world.store.active(world.org.org_id, coached.person_id)) == 1  # untouched


def test_an_engagement_in_another_programme_does_not_keep_anyone_out():
    world = MatchingWorld()
    world.coaches(*(make_coach(f"c{i}", programs=["GROW", "SCALE"]) for i in range(2)))
    person = world.person()
    enrol(world, person, program="SCALE")
    plan = launch(world, [person.person_id])
    assert [a.person_id for a in plan.assignments] == [person.person_id]


def test_no_reason_an_org_admin_sees_tells_one_unassigned_person_from_another():
    """Coached, declined every coach, speaks no network language, or lost to capacity: one reason."""
    world = MatchingWorld()
    world.coaches(*(make_coach(f"c{i}", languages=["en"], capacity=1, programs=["GROW"]) for i in range(3)))
    picky = world.person()
    proposed = matching.request_match(
        picky,
        matching.MatchRequestIn(program="GROW", focus_competencies=["delegation"], situation="Growing my team."),
        world.ctx,
    )
    with pytest.raises(NoEligibleCoachError):  # declined all three: the match is exhausted
        matching.decline_all(picky, proposed.match_id, world.ctx)
    coached = world.person()
    enrol(world, coached)  # takes one of the three places
    stranded = world.person(languages=["tl"]).person_id
    crowd = [world.person().person_id for _ in range(3)]  # two places left for three
    everyone = [coached.person_id, picky.person_id, stranded, *crowd]
    for commit in (False, True):
        result = launch(world, everyone, commit=commit)
        left_out = result.unmatched + result.refused
        assert {u["person_id"] for u in left_out} >= {coached.person_id, picky.person_id, stranded}
        assert {u["reason"] for u in left_out} == {NOT_ASSIGNABLE}
        shown = result.model_dump_json()
        for detail in ("active", "declined", "speaks", "capacity", "better", "unassigned_by_reason"):
            assert detail not in shown
        assert result.unassigned_by_reason == {
            "active_engagement": 1,
            "at_capacity": 1,
            "no_eligible_coach:language": 1,
            "no_eligible_coach:not_declined": 1,
        }
        assert not any(pid in code for code in result.unassigned_by_reason for pid in everyone)


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
