"""Every rule the matching service enforces, on in-memory ports (tests/unit/fakes/matching.py)."""

from __future__ import annotations

import uuid

import pytest
from coaching.auth import Principal, Role
from coaching.domain.coaches import VettingStatus
from coaching.domain.engagements import EngagementStatus, MatchStatus
from coaching.domain.errors import ChooseRefused, Conflict, Forbidden, InvalidInput, NoEligibleCoachError, NotFound
from coaching.domain.events import EngagementEnded, EngagementStarted, MatchProposed, PersonPromoted, stable_event_id
from coaching.domain.matching import MatchingSettings, MatchRequestIn, MatchWeights
from coaching.services import matching, rematches

from .fakes.matching import (
    OPERATOR,
    SUNDAY_NIGHT,
    MatchingWorld,
    coach_caller,
    make_coach,
    make_org,
    role,
)

SITUATION = "My first reorg as a manager: two teams merge next month and I lead both."


def ask(world: MatchingWorld, who: Principal, program: str = "SCALE", focus=("delegation",), **extra: object):
    body = MatchRequestIn.model_validate(
        {"program": program, "focus_competencies": list(focus), "situation": SITUATION, **extra}
    )
    return matching.request_match(who, body, world.ctx)


def ids(view: matching.MatchView) -> list[str]:
    return [p.coach_id for p in view.proposals]


@pytest.fixture
def world() -> MatchingWorld:
    return MatchingWorld()


# ---------------------------------------------------------------------------- eligibility and ranking


def test_every_hard_constraint_holds_and_the_job_done_ranks_first_with_reasons(world):
    job = [role("first_time_manager", "engineering")]
    best, good, fair = world.coaches(
        make_coach("best", languages=["is"], roles_held=job, specialties=["delegation", "change-leadership"]),
        make_coach("good", languages=["is"], roles_held=[role("first_time_manager", "sales")]),
        make_coach("fair", languages=["is"]),
    )
    excluded = world.coaches(
        make_coach("pending", languages=["is"], roles_held=job, status=VettingStatus.PENDING),
        make_coach("colleague", languages=["is"], roles_held=job, employer_org_ids=[world.org.org_id]),
        make_coach("night owl", languages=["is"], roles_held=job, weekly=SUNDAY_NIGHT),
        make_coach("exec only", languages=["is"], roles_held=job, programs=["EXEC"]),
        make_coach("no icelandic", languages=["de"], roles_held=job),
    )
    employee = world.person(languages=["is"])
    view = ask(world, employee, focus=("delegation", "change-leadership"))
    assert ids(view)[0] == best.coach_id
    assert set(ids(view)) == {best.coach_id, good.coach_id, fair.coach_id}
    assert not {c.coach_id for c in excluded} & set(ids(view))
    top = view.proposals[0]
    assert "was a first time manager in engineering for 5 years" in top.reasons
    assert "specialises in delegation, change-leadership" in top.reasons
    assert "speaks Icelandic" in top.reasons
    assert any(r.endswith("h overlap with your working day") for r in top.reasons)
    assert view.proposals[0].score > view.proposals[1].score >= view.proposals[2].score
    assert top.factors["has_done_the_job"] > view.proposals[1].factors["has_done_the_job"]


def test_a_senior_leader_only_gets_coaches_who_led_at_that_level(world):
    world.coaches(make_coach("manager", roles_held=[role("manager")]))
    senior = make_coach("senior", roles_held=[role("senior_leader")])
    world.coaches(senior)
    leader = world.person(level="senior_leader")
    assert ids(ask(world, leader)) == [senior.coach_id]


def test_only_three_are_proposed_best_first_and_the_time_zone_counts(world):
    near = world.coaches(*(make_coach(f"near {i}", time_zone="Europe/London") for i in range(3)))
    far = world.coaches(make_coach("far", time_zone="Pacific/Auckland"))
    view = ask(world, world.person())
    assert len(view.proposals) == 3
    assert set(ids(view)) == {c.coach_id for c in near}
    assert far[0].coach_id not in ids(view)


def test_no_eligible_coach_names_the_binding_constraint_and_records_the_gap(world):
    world.coaches(make_coach("english", programs=["SCALE", "EXEC"], roles_held=[role("executive", "finance")]))
    executive = world.person(level="executive", function="finance", languages=["ja"])
    with pytest.raises(NoEligibleCoachError) as refused:
        ask(world, executive, program="EXEC")
    assert refused.value.message == "no approved EXEC coach speaks Japanese"
    assert refused.value.field == "languages"
    assert refused.value.details == {"constraint": "language"}
    gaps = matching.gap_report(OPERATOR, 10, world.ctx)
    assert [(g["org_id"], g["constraint"], g["message"]) for g in gaps] == [
        (world.org.org_id, "language", refused.value.message)
    ]
    assert world.store.matches == {}
    assert world.store.events == []


def test_an_empty_network_and_bad_requests_are_refused(world):
    employee = world.person()
    with pytest.raises(NoEligibleCoachError, match="network is empty"):
        ask(world, employee)
    world.coaches(make_coach("one"))
    with pytest.raises(InvalidInput, match="EXEC coaching is for senior leaders") as exec_refused:
        ask(world, employee, program="EXEC")
    assert exec_refused.value.field == "program"
    with pytest.raises(InvalidInput, match="unknown competencies") as focus_refused:
        ask(world, employee, focus=("juggling",))
    assert focus_refused.value.field == "focus_competencies"
    with pytest.raises(Forbidden):
        ask(world, world.admin())
    with pytest.raises(Forbidden, match="is inactive in this organisation") as inactive:
        ask(world, world.person(active=False))
    assert inactive.value.field == "person_id"


def test_the_availability_bar_and_the_weights_are_the_orgs_to_tune(world):
    weekend = make_coach("weekend", weekly=[], roles_held=[role("first_time_manager")])
    weekday = make_coach("weekday", industries=["retail"])
    world.coaches(weekend, weekday)
    employee = world.person()
    assert ids(ask(world, employee)) == [weekday.coach_id]  # no weekday hours: below the default bar of 2
    tuned = MatchingSettings(min_bookable_hours=0, weights=MatchWeights(time_zone_overlap=0, has_done_the_job=90))
    world.set_org(make_org(world.org.org_id, matching=tuned))
    second = ask(world, employee)
    assert ids(second) == [weekend.coach_id, weekday.coach_id]
    assert second.proposals[0].factors["time_zone_overlap"] == 0


def test_a_request_commits_the_match_its_situation_and_match_proposed_together(world):
    world.coaches(*(make_coach(f"c{i}") for i in range(4)))
    employee = world.person()
    view = ask(world, employee)
    stored, version = world.store.matches[(world.org.org_id, employee.person_id, view.match_id)]
    assert (stored.status, version, stored.shown) == (MatchStatus.PROPOSED, 1, ids(view))
    assert world.store.situations[view.match_id] == SITUATION
    [event] = world.store.events
    assert isinstance(event, MatchProposed)
    assert (event.match_id, event.person_id, event.trigger, event.coach_ids) == (
        view.match_id,
        employee.person_id,
        "request",
        ids(view),
    )
    assert matching.get_match(employee, view.match_id, world.ctx) == view
    assert matching.list_matches(employee, world.ctx) == [view]
    stranger = world.person()
    with pytest.raises(NotFound):
        matching.get_match(stranger, view.match_id, world.ctx)


# ---------------------------------------------------------------------------- decline and exhaustion


def test_decline_returns_the_next_three_never_repeats_and_exhausts(world):
    network = world.coaches(*(make_coach(f"c{i}") for i in range(7)))
    employee = world.person()
    first = ask(world, employee)
    second = matching.decline_all(employee, first.match_id, world.ctx)
    assert len(second.proposals) == 3
    assert set(ids(first)).isdisjoint(ids(second))
    third = matching.decline_all(employee, first.match_id, world.ctx)
    assert ids(third) == [c.coach_id for c in network if c.coach_id not in {*ids(first), *ids(second)}]
    with pytest.raises(NoEligibleCoachError):
        matching.decline_all(employee, first.match_id, world.ctx)
    exhausted, _ = world.store.matches[(world.org.org_id, employee.person_id, first.match_id)]
    assert exhausted.status is MatchStatus.EXHAUSTED
    assert set(exhausted.declined) == {c.coach_id for c in network}
    with pytest.raises(Conflict, match="exhausted; nothing to decline"):
        matching.decline_all(employee, first.match_id, world.ctx)
    # Declined coaches stay excluded from the person's next request too.
    with pytest.raises(NoEligibleCoachError, match="declined or ended with every coach"):
        ask(world, employee)
    # A decline shows a new list of the same request: no new MatchProposed.
    assert len(world.events_of(MatchProposed)) == 1


def test_a_decline_that_lost_a_race_is_refused(world):
    world.coaches(*(make_coach(f"c{i}") for i in range(6)))
    employee = world.person()
    view = ask(world, employee)

    def someone_else_declines(store):
        record, version = store.matches[(world.org.org_id, employee.person_id, view.match_id)]
        store.matches[(world.org.org_id, employee.person_id, view.match_id)] = (record, version + 1)

    world.store.before_commit = someone_else_declines
    with pytest.raises(Conflict, match="changed while you were deciding"):
        matching.decline_all(employee, view.match_id, world.ctx)


# ---------------------------------------------------------------------------- choosing


def test_choose_starts_the_engagement_takes_a_place_and_commits_engagement_started(world):
    network = world.coaches(*(make_coach(f"c{i}") for i in range(3)))
    employee = world.person()
    view = ask(world, employee)
    engagement = matching.choose(employee, view.match_id, ids(view)[1], world.ctx)
    assert (engagement.coach_id, engagement.status, engagement.match_id) == (
        ids(view)[1],
        EngagementStatus.ACTIVE,
        view.match_id,
    )
    assert world.store.load == {ids(view)[1]: 1}
    chosen = matching.get_match(employee, view.match_id, world.ctx)
    assert (chosen.status, chosen.engagement_id) == (MatchStatus.CHOSEN, engagement.engagement_id)
    [started] = world.events_of(EngagementStarted)
    assert (started.engagement_id, started.coach_id, started.match_id, started.program) == (
        engagement.engagement_id,
        engagement.coach_id,
        view.match_id,
        "SCALE",
    )
    assert matching.list_engagements(employee, world.ctx) == [engagement]
    with pytest.raises(Conflict, match="already chosen"):
        matching.choose(employee, view.match_id, ids(view)[0], world.ctx)
    assert len(network) == 3


def test_choose_refuses_a_coach_not_proposed_and_one_no_longer_approved(world):
    network = world.coaches(*(make_coach(f"c{i}") for i in range(4)))
    employee = world.person()
    view = ask(world, employee)
    outsider = next(c.coach_id for c in network if c.coach_id not in ids(view))
    with pytest.raises(InvalidInput, match="choose one of the coaches proposed") as refused:
        matching.choose(employee, view.match_id, outsider, world.ctx)
    assert refused.value.field == "coach_id"
    world.network.set_status(ids(view)[0], VettingStatus.SUSPENDED)
    with pytest.raises(Conflict, match="no longer available"):
        matching.choose(employee, view.match_id, ids(view)[0], world.ctx)
    assert world.store.events == world.events_of(MatchProposed)


def test_capacity_holds_when_people_race_for_the_last_place(world):
    star = make_coach("star", capacity=2, roles_held=[role("manager", "sales")])
    world.coaches(star, make_coach("other"))
    people = [world.person(level="manager", function="sales") for _ in range(3)]
    views = [ask(world, p) for p in people]
    assert all(ids(v)[0] == star.coach_id for v in views)
    matching.choose(people[0], views[0].match_id, star.coach_id, world.ctx)
    # The third person's choice lands while the second's commits: the race is lost.
    world.store.before_commit = lambda store: store.load.__setitem__(star.coach_id, 2)
    with pytest.raises(ChooseRefused, match="just reached capacity") as refused:
        matching.choose(people[2], views[2].match_id, star.coach_id, world.ctx)
    assert refused.value.field == "coach_id"
    assert world.store.active(world.org.org_id, people[2].person_id) == []
    assert len(world.events_of(EngagementStarted)) == 1
    # A full coach is no longer proposed to anyone.
    assert star.coach_id not in ids(ask(world, world.person(level="manager", function="sales")))


def test_every_coach_at_capacity_is_explained(world):
    only = make_coach("only", capacity=1)
    world.coaches(only)
    first = world.person()
    matching.choose(first, ask(world, first).match_id, only.coach_id, world.ctx)
    with pytest.raises(NoEligibleCoachError, match="every eligible coach is at capacity"):
        ask(world, world.person())


def test_one_active_engagement_per_programme_per_person(world):
    world.coaches(*(make_coach(f"c{i}") for i in range(4)))
    employee = world.person()
    first, second = ask(world, employee), ask(world, employee)
    matching.choose(employee, first.match_id, ids(first)[0], world.ctx)
    with pytest.raises(ChooseRefused, match="already have an active engagement in this programme") as refused:
        matching.choose(employee, second.match_id, ids(second)[1], world.ctx)
    assert refused.value.field == "program"
    grow = ask(world, employee, program="GROW")
    assert matching.choose(employee, grow.match_id, ids(grow)[0], world.ctx).program == "GROW"


def test_continuity_puts_the_current_coach_first_for_another_programme(world):
    world.coaches(*(make_coach(f"c{i}") for i in range(5)))
    employee = world.person()
    view = ask(world, employee)
    current = ids(view)[-1]  # not the top one: continuity must lift it
    matching.choose(employee, view.match_id, current, world.ctx)
    grow = ask(world, employee, program="GROW")
    assert grow.proposals[0].coach_id == current
    assert "your previous coach" in grow.proposals[0].reasons


# ---------------------------------------------------------------------------- change of coach


def test_change_of_coach_ends_the_engagement_excludes_the_coach_and_proposes_others(world):
    network = world.coaches(*(make_coach(f"c{i}") for i in range(3)))
    employee = world.person()
    view = ask(world, employee)
    current = ids(view)[0]
    engagement = matching.choose(employee, view.match_id, current, world.ctx)
    changed = matching.change_coach(employee, engagement.engagement_id, "we did not click", world.ctx)
    assert changed.trigger == "change"
    assert set(ids(changed)) == {c.coach_id for c in network} - {current}
    assert world.store.load[current] == 0
    history = matching.list_engagements(employee, world.ctx)
    assert [(e.coach_id, e.status, e.ended_by, e.end_reason) for e in history] == [
        (current, EngagementStatus.ENDED, "person", "we did not click")
    ]
    ended, proposed = world.store.events[-2:]
    assert isinstance(ended, EngagementEnded)
    assert (ended.engagement_id, ended.coach_id, ended.end_reason) == (
        engagement.engagement_id,
        current,
        "we did not click",
    )
    assert isinstance(proposed, MatchProposed)
    assert (proposed.match_id, proposed.trigger, proposed.coach_ids) == (changed.match_id, "change", ids(changed))
    assert world.store.situations[changed.match_id] == "Change of coach requested: we did not click"
    # The programme's place is free again, and the coach left is never proposed again.
    matching.choose(employee, changed.match_id, ids(changed)[0], world.ctx)
    assert current not in ids(ask(world, employee, program="GROW"))
    with pytest.raises(Conflict, match="already ended"):
        matching.change_coach(employee, engagement.engagement_id, "twice", world.ctx)


def test_change_of_coach_with_nobody_else_keeps_the_engagement(world):
    only = make_coach("only")
    world.coaches(only)
    employee = world.person()
    engagement = matching.choose(employee, ask(world, employee).match_id, only.coach_id, world.ctx)
    events_before = list(world.store.events)
    with pytest.raises(NoEligibleCoachError):
        matching.change_coach(employee, engagement.engagement_id, "try", world.ctx)
    assert [e.status for e in matching.list_engagements(employee, world.ctx)] == [EngagementStatus.ACTIVE]
    assert world.store.events == events_before
    assert world.store.load[only.coach_id] == 1
    with pytest.raises(NotFound):
        matching.change_coach(world.person(), engagement.engagement_id, "not mine", world.ctx)


# ---------------------------------------------------------------------------- promotion


def promoted(world: MatchingWorld, who: Principal, old: str, new: str, event_id: str = "event-1") -> PersonPromoted:
    assert who.org_id is not None
    return PersonPromoted(
        event_id=event_id,
        org_id=who.org_id,
        person_id=who.person_id,
        previous_level=old,
        new_level=new,
        effective_date="2026-12-01",
    )


def test_promotion_keeps_an_eligible_coach(world):
    plain = make_coach("plain", roles_held=[role("manager")])
    world.coaches(plain)
    employee = world.person(level="individual_contributor")
    matching.choose(employee, ask(world, employee).match_id, plain.coach_id, world.ctx)
    events_before = len(world.store.events)
    outcome = rematches.on_person_promoted(
        promoted(world, employee, "individual_contributor", "first_time_manager"), world.ctx
    )
    assert (len(outcome.kept), outcome.rematch_ids) == (1, [])
    assert len(world.store.events) == events_before
    assert [m.trigger for m in matching.list_matches(employee, world.ctx)] == ["request"]


def test_promotion_rematches_once_per_event_and_choosing_replaces_the_engagement(world):
    plain = make_coach("plain", roles_held=[role("manager")])
    seasoned = make_coach("seasoned", roles_held=[role("senior_leader")])
    world.coaches(plain, seasoned)
    employee = world.person(level="manager")
    old = matching.choose(employee, ask(world, employee).match_id, plain.coach_id, world.ctx)
    event = promoted(world, employee, "manager", "senior_leader")
    first = rematches.on_person_promoted(event, world.ctx)
    again = rematches.on_person_promoted(event, world.ctx)  # the bus redelivered the same event
    assert first.rematch_ids == again.rematch_ids
    assert len(first.rematch_ids) == 1
    promotion_matches = [m for m in matching.list_matches(employee, world.ctx) if m.trigger == "promotion"]
    assert [(m.match_id, ids(m)) for m in promotion_matches] == [(first.rematch_ids[0], [seasoned.coach_id])]
    [proposed] = [e for e in world.events_of(MatchProposed) if e.trigger == "promotion"]
    assert proposed.coach_ids == [seasoned.coach_id]
    assert proposed.event_id == stable_event_id("MatchProposed", first.rematch_ids[0])
    # Another event (a later promotion) is another re-match.
    later = rematches.on_person_promoted(promoted(world, employee, "manager", "senior_leader", "event-2"), world.ctx)
    assert later.rematch_ids != first.rematch_ids

    new = matching.choose(employee, first.rematch_ids[0], seasoned.coach_id, world.ctx)
    statuses = {e.engagement_id: e.status for e in matching.list_engagements(employee, world.ctx)}
    assert statuses == {old.engagement_id: EngagementStatus.ENDED, new.engagement_id: EngagementStatus.ACTIVE}
    assert world.store.load == {plain.coach_id: 0, seasoned.coach_id: 1}
    started, ended = world.store.events[-2:]
    assert isinstance(started, EngagementStarted)
    assert started.engagement_id == new.engagement_id
    assert isinstance(ended, EngagementEnded)
    assert (ended.engagement_id, ended.coach_id, ended.end_reason) == (old.engagement_id, plain.coach_id, "promotion")
    # The replaced coach no longer sees the person.
    with pytest.raises(NotFound):
        matching.engagement_context(coach_caller(plain), old.engagement_id, world.ctx)


def test_declining_a_promotion_rematch_keeps_the_new_level(world):
    plain = make_coach("plain", roles_held=[role("manager")])
    other_manager = make_coach("other manager", roles_held=[role("manager")])
    seasoned = make_coach("seasoned", roles_held=[role("senior_leader")])
    world.coaches(plain, other_manager, seasoned)
    employee = world.person(level="manager")
    view = ask(world, employee)
    matching.choose(employee, view.match_id, plain.coach_id, world.ctx)
    outcome = rematches.on_person_promoted(promoted(world, employee, "manager", "senior_leader"), world.ctx)
    [rematch_id] = outcome.rematch_ids
    assert ids(matching.get_match(employee, rematch_id, world.ctx)) == [seasoned.coach_id]
    # The person record still says manager, yet the manager-level coach is not proposed: once
    # the only senior leader is declined, nobody is left (at manager level, `other` would be).
    with pytest.raises(NoEligibleCoachError) as refused:
        matching.decline_all(employee, rematch_id, world.ctx)
    assert refused.value.details == {"constraint": "not_declined"}
    assert matching.get_match(employee, rematch_id, world.ctx).status is MatchStatus.EXHAUSTED


def test_promotion_without_an_eligible_coach_records_a_gap_and_keeps_the_engagement(world):
    plain = make_coach("plain", roles_held=[role("manager")])
    world.coaches(plain)
    employee = world.person(level="manager")
    matching.choose(employee, ask(world, employee).match_id, plain.coach_id, world.ctx)
    outcome = rematches.on_person_promoted(promoted(world, employee, "manager", "executive"), world.ctx)
    assert (outcome.kept, outcome.rematch_ids) == ([], [])
    assert [g["constraint"] for g in world.store.gap_log] == ["seniority"]
    assert [e.status for e in matching.list_engagements(employee, world.ctx)] == [EngagementStatus.ACTIVE]


# ---------------------------------------------------------------------------- what a coach sees


def test_the_coach_sees_goals_and_history_never_what_was_said_and_only_while_engaged(world):
    first_coach, second_coach = world.coaches(make_coach("first"), make_coach("second"))
    employee = world.person()
    view = ask(world, employee, focus=("delegation", "hiring"))
    chosen = ids(view)[0]
    other = second_coach.coach_id if chosen == first_coach.coach_id else first_coach.coach_id
    engagement = matching.choose(employee, view.match_id, chosen, world.ctx)
    context = matching.engagement_context(coach_caller(chosen), engagement.engagement_id, world.ctx)
    assert context.focus_history[0]["focus_competencies"] == ["delegation", "hiring"]
    assert (context.person_name, context.level, context.program) == ("Pat Person", "first_time_manager", "SCALE")
    assert SITUATION not in context.model_dump_json()
    with pytest.raises(NotFound):
        matching.engagement_context(coach_caller(other), engagement.engagement_id, world.ctx)
    with pytest.raises(Forbidden):
        matching.engagement_context(employee, engagement.engagement_id, world.ctx)
    matching.change_coach(employee, engagement.engagement_id, "moving on", world.ctx)
    # The coach the person left sees nothing of them any more.
    with pytest.raises(NotFound):
        matching.engagement_context(coach_caller(chosen), engagement.engagement_id, world.ctx)


def test_the_gap_report_is_for_operators_newest_first(world):
    employee = world.person(languages=["ja"])
    world.coaches(make_coach("english"))
    for minute in range(3):
        world.now = world.now.replace(minute=minute)
        with pytest.raises(NoEligibleCoachError):
            ask(world, employee)
    gaps = matching.gap_report(OPERATOR, 2, world.ctx)
    assert [g["at"][14:16] for g in gaps] == ["02", "01"]
    with pytest.raises(Forbidden):
        matching.gap_report(world.admin(), 2, world.ctx)
    uuid.UUID(gaps[0]["gap_id"])  # every gap has its own id


def test_a_leader_cannot_request_for_someone_else(world):
    world.coaches(make_coach("one"))
    leader = Principal(person_id="leader", org_id=world.org.org_id, roles=frozenset({Role.LEADER}))
    with pytest.raises(Forbidden):
        ask(world, leader)


def test_a_coachs_new_hours_count_as_soon_as_the_roster_has_them(world):
    coach = make_coach("changing")
    world.coaches(coach)
    employee = world.person()
    assert ids(ask(world, employee)) == [coach.coach_id]
    # The coach moved every hour to Sunday night; the next roster version says so.
    world.network.coaches[coach.coach_id] = coach.model_validate(
        coach.model_dump() | {"weekly_availability": [r.model_dump() for r in SUNDAY_NIGHT]}
    )
    world.network.publish()
    with pytest.raises(NoEligibleCoachError, match="bookable hours"):
        ask(world, employee)
