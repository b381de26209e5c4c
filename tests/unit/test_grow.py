"""GROW cohorts on the in-memory fakes: sizes, the wait-list threshold and its idempotent trigger,
atomic capacity, the solver's hard constraints, group sessions on the shared calendar locks,
attendance outcomes and their billing keys."""

from datetime import UTC, date, datetime, timedelta

import pytest
from coaching.auth import Principal, Role
from coaching.domain.booking import buckets
from coaching.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, SlotTaken
from coaching.domain.events import CohortEnrolled, CohortOpened, GroupSessionCompleted
from coaching.domain.grow import (
    AttendanceMark,
    AttendanceRequest,
    GrowCohortRequest,
    PlannedSession,
    participant_unit_id,
)
from coaching.services import grow, grow_waitlist
from pydantic import ValidationError

from .fakes.booking import make_person, roster_coach
from .fakes.programmes import (
    ADMIN,
    GROW_COACH,
    GROW_HOUR,
    ORG,
    START,
    ProgrammesWorld,
    coach_principal,
    person_principal,
)

OTHER_ADMIN = Principal(person_id="admin-2", org_id="org-2", roles=frozenset({Role.ORG_ADMIN}))


def request(size: int = 6, **changes: object) -> GrowCohortRequest:
    start_date = (START + timedelta(days=14)).date()
    return GrowCohortRequest.model_validate({"size": size, "language": "en", "start_date": start_date} | changes)


def matched_cohort(world: ProgrammesWorld, people: int = 6) -> tuple[str, list[str], list]:
    ids = world.add_people(people)
    cohort = grow.open_cohort(ADMIN, ORG, request(max(people, 6)), world.grow)
    for person in ids:
        grow.enrol(ADMIN, ORG, cohort.cohort_id, person, world.grow)
    view = grow.match_coaches(ADMIN, ORG, cohort.cohort_id, world.grow)
    return cohort.cohort_id, ids, view.sessions


def record(world, cohort_id, session, marks, coach=GROW_COACH):
    return grow.record_attendance(
        coach_principal(coach), ORG, cohort_id, session.session_id, AttendanceRequest(attendance=marks), world.grow
    )


# ---------------------------------------------------------------------------- opening and sizes


@pytest.mark.parametrize("size", [5, 21, 0])
def test_a_cohort_has_6_to_20_places(size):
    with pytest.raises(ValidationError) as refused:
        request(size)
    assert refused.value.errors()[0]["loc"] == ("size",)


def test_the_orgs_own_size_range_is_enforced_naming_the_field():
    world = ProgrammesWorld.create()
    world.set_catalogue(GROW={"max_size": 10, "opens_when_waiting": 8})
    with pytest.raises(InvalidInput) as refused:
        grow.open_cohort(ADMIN, ORG, request(12), world.grow)
    assert refused.value.field == "size"
    assert world.store.cohort_items == {}


def test_opening_a_cohort_makes_the_default_curriculum_in_the_future():
    world = ProgrammesWorld.create()
    cohort = grow.open_cohort(ADMIN, ORG, request(8), world.grow)
    # 4 group sessions spread over 8 weeks at 10:00 in the org's zone, each on a framework competency.
    assert [s.start.date() for s in cohort.curriculum] == [date(2027, 3, 15) + timedelta(days=14 * n) for n in range(4)]
    assert all(s.start.hour == 10 for s in cohort.curriculum)
    assert (cohort.status.value, cohort.size, cohort.policy.session_minutes) == ("forming", 8, 60)
    assert [e.cohort_id for e in world.store.events(CohortOpened)] == [cohort.cohort_id]


def test_a_curriculum_names_known_competencies_in_order_and_in_the_future():
    world = ProgrammesWorld.create()
    first = datetime(2027, 3, 20, 10, tzinfo=UTC)
    unknown = [PlannedSession(start=first, competencies=["juggling"])]
    with pytest.raises(InvalidInput) as refused:
        grow.open_cohort(ADMIN, ORG, request(curriculum=unknown), world.grow)
    assert (refused.value.field, "juggling" in refused.value.message) == ("curriculum", True)
    past = [PlannedSession(start=START - timedelta(days=1), competencies=["delegation"])]
    with pytest.raises(InvalidInput):
        grow.open_cohort(ADMIN, ORG, request(curriculum=past), world.grow)
    with pytest.raises(ValidationError):
        request(
            curriculum=[
                {"start": first + timedelta(days=7), "competencies": ["delegation"]},
                {"start": first, "competencies": ["delegation"]},
            ]
        )


def test_only_the_orgs_admin_opens_and_reads_cohorts_and_only_when_grow_is_enabled():
    world = ProgrammesWorld.create()
    with pytest.raises(Forbidden):
        grow.open_cohort(OTHER_ADMIN, ORG, request(), world.grow)
    with pytest.raises(Forbidden):
        grow.open_cohort(person_principal("p00"), ORG, request(), world.grow)
    world.set_catalogue(GROW={"enabled": False})
    with pytest.raises(InvalidInput) as refused:
        grow.open_cohort(ADMIN, ORG, request(), world.grow)
    assert refused.value.field == "program"


# ---------------------------------------------------------------------------- enrolment and capacity


def test_capacity_is_enforced_and_one_place_per_person():
    world = ProgrammesWorld.create()
    ids = world.add_people(7)
    cohort = grow.open_cohort(ADMIN, ORG, request(6), world.grow)
    for person in ids[:6]:
        grow.enrol(ADMIN, ORG, cohort.cohort_id, person, world.grow)
    with pytest.raises(Conflict) as full:
        grow.enrol(ADMIN, ORG, cohort.cohort_id, ids[6], world.grow)
    assert "full (6 places)" in full.value.message
    assert len(world.store.members(ORG, cohort.cohort_id)) == world.store.seats[(ORG, cohort.cohort_id)] == 6
    with pytest.raises(Conflict) as twice:
        grow.enrol(ADMIN, ORG, cohort.cohort_id, ids[0], world.grow)
    assert twice.value.field in {"cohort_id", "person_id"}
    assert len(world.store.events(CohortEnrolled)) == 6


def test_only_eligible_active_people_are_enrolled():
    world = ProgrammesWorld.create()
    cohort = grow.open_cohort(ADMIN, ORG, request(), world.grow)
    (manager,) = world.add_people(1, level="manager", prefix="m")
    with pytest.raises(InvalidInput) as refused:
        grow.enrol(ADMIN, ORG, cohort.cohort_id, manager, world.grow)
    assert refused.value.field == "person_id"
    assert "GROW is for first_time_manager" in refused.value.message
    with pytest.raises(NotFound):
        grow.enrol(ADMIN, ORG, cohort.cohort_id, "nobody", world.grow)
    with pytest.raises(NotFound):
        grow.enrol(ADMIN, ORG, "no-cohort", manager, world.grow)
    (leaver,) = world.add_people(1, prefix="x")
    world.store.persons[(ORG, leaver)] = world.store.persons[(ORG, leaver)].model_copy(update={"active": False})
    with pytest.raises(Forbidden):
        grow.enrol(ADMIN, ORG, cohort.cohort_id, leaver, world.grow)
    assert world.store.members(ORG, cohort.cohort_id) == []


def test_a_matched_cohort_no_longer_enrols():
    world = ProgrammesWorld.create()
    cohort_id, _, _ = matched_cohort(world)
    (late,) = world.add_people(1, prefix="late")
    with pytest.raises(Conflict) as refused:
        grow.enrol(ADMIN, ORG, cohort_id, late, world.grow)
    assert "matched" in refused.value.message


# ---------------------------------------------------------------------------- the wait-list


def test_a_cohort_opens_when_enough_people_of_one_language_wait():
    world = ProgrammesWorld.create()
    ids = world.add_people(8)
    outcomes = [grow_waitlist.add_to_waitlist(ADMIN, ORG, person, world.grow) for person in ids]
    assert [o.opened_cohort_id for o in outcomes[:7]] == [None] * 7
    assert [o.waiting for o in outcomes[:7]] == list(range(1, 8))
    opened = outcomes[7]
    assert opened.opened_cohort_id is not None
    assert sorted(opened.enrolled) == ids
    cohort, _ = world.store.cohort(ORG, opened.opened_cohort_id)
    assert (cohort.size, cohort.opened_from_waitlist, cohort.language) == (8, True, "en")
    # The cohort starts after the notice the catalogue gives participants.
    assert cohort.start_date == (START + timedelta(days=14)).date()
    assert world.store.waiting(ORG, "new_manager") == []


def test_people_of_different_languages_do_not_open_a_cohort_together():
    world = ProgrammesWorld.create()
    ids = world.add_people(8)
    for person in ids[:4]:
        world.store.persons[(ORG, person)] = make_person(person, level="first_time_manager").model_copy(
            update={"languages": ["de"]}
        )
    outcomes = [grow_waitlist.add_to_waitlist(ADMIN, ORG, person, world.grow) for person in ids]
    assert {o.opened_cohort_id for o in outcomes} == {None}
    assert len(world.store.waiting(ORG, "new_manager")) == 8


def test_a_smaller_threshold_opens_a_cohort_of_at_least_the_minimum_size():
    world = ProgrammesWorld.create()
    world.set_catalogue(GROW={"opens_when_waiting": 6, "min_size": 6})
    ids = world.add_people(6)
    outcome = [grow_waitlist.add_to_waitlist(ADMIN, ORG, person, world.grow) for person in ids][-1]
    cohort, _ = world.store.cohort(ORG, outcome.opened_cohort_id)
    assert cohort.size == 6


def test_the_trigger_is_idempotent_and_finishes_an_interrupted_opening():
    world = ProgrammesWorld.create()
    ids = world.add_people(8)
    for person in ids:
        world.store.add(
            grow.WaitEntry(
                org_id=ORG,
                person_id=person,
                transition="new_manager",
                language="en",
                source="promotion",
                since=START,
            )
        )
    # A first run opened the cohort and enrolled three people, then stopped.
    real_enrol = world.store.enrol
    calls = {"n": 0}

    def enrol_then_fail(cohort, enrolment, events):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("the function timed out")
        real_enrol(cohort, enrolment, events)

    world.store.enrol = enrol_then_fail  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        grow_waitlist.open_waiting(ADMIN, ORG, world.grow)
    world.store.enrol = real_enrol  # type: ignore[method-assign]
    (cohort_id,) = [c.cohort_id for c in world.store.cohorts(ORG)]
    assert len(world.store.members(ORG, cohort_id)) == 3
    # The same people still wait for the rest: the retry finds the same cohort (its id derives from
    # who waited) and enrols the five left.
    retried = grow_waitlist.open_waiting(ADMIN, ORG, world.grow)
    assert (retried.opened_cohort_id, len(retried.enrolled)) == (cohort_id, 5)
    assert [c.cohort_id for c in world.store.cohorts(ORG)] == [cohort_id]
    assert len(world.store.members(ORG, cohort_id)) == 8
    # Again: nobody waits, nothing happens.
    again = grow_waitlist.open_waiting(ADMIN, ORG, world.grow)
    assert (again.waiting, again.opened_cohort_id, again.enrolled) == (0, None, [])
    assert len(world.store.cohort_items) == 1
    assert len(world.store.events(CohortOpened)) == 1
    assert len(world.store.events(CohortEnrolled)) == 8


def test_the_wait_list_takes_eligible_people_once():
    world = ProgrammesWorld.create()
    (person,) = world.add_people(1)
    first = grow_waitlist.add_to_waitlist(ADMIN, ORG, person, world.grow)
    second = grow_waitlist.add_to_waitlist(ADMIN, ORG, person, world.grow)
    assert (first.waiting, second.waiting) == (1, 1)
    (manager,) = world.add_people(1, level="manager", prefix="m")
    with pytest.raises(InvalidInput) as refused:
        grow_waitlist.add_to_waitlist(ADMIN, ORG, manager, world.grow)
    assert refused.value.field == "person_id"
    with pytest.raises(Forbidden):
        grow_waitlist.open_waiting(OTHER_ADMIN, ORG, world.grow)


# ---------------------------------------------------------------------------- coaches (the solver)


def _coach(coach_id: str, **changes: object):
    return roster_coach(coach_id, **({"programs": ["GROW"]} | changes))


def _match_with(coaches: list, people: int = 6) -> tuple[ProgrammesWorld, list[str]]:
    world = ProgrammesWorld.create(coaches=coaches)
    ids = world.add_people(people)
    cohort = grow.open_cohort(ADMIN, ORG, request(max(6, people)), world.grow)
    for person in ids:
        grow.enrol(ADMIN, ORG, cohort.cohort_id, person, world.grow)
    return world, [cohort.cohort_id]


@pytest.mark.parametrize(
    ("excluded", "why"),
    [
        ({"programs": ["SCALE", "EXEC"]}, "not GROW-certified"),
        ({"languages": ["de"]}, "does not speak the cohort's language"),
        ({"employer_org_ids": [ORG]}, "employed by the org"),
        ({"capacity": 3}, "no room for their share of 1:1 coachees"),
        ({"weekly_availability": [{"weekday": 5, "start": "09:00", "end": "12:00"}]}, "not free on the dates"),
    ],
)
def test_the_solver_never_assigns_a_coach_failing_a_hard_constraint(excluded, why):
    world, (cohort_id,) = _match_with([_coach("ineligible", **excluded), _coach("eligible")])
    view = grow.match_coaches(ADMIN, ORG, cohort_id, world.grow)
    assert view.cohort.coach_ids == ["eligible"], why
    # With only the ineligible one, the match is refused naming what is missing; nothing is written.
    world, (cohort_id,) = _match_with([_coach("ineligible", **excluded)])
    with pytest.raises(Conflict) as refused:
        grow.match_coaches(ADMIN, ORG, cohort_id, world.grow)
    assert "this cohort needs 1" in refused.value.message
    assert world.store.session_items == {}
    assert world.store.coach_locks == {}


def test_the_solver_prefers_the_curriculums_specialist_and_a_large_cohort_gets_two_coaches():
    specialist = _coach("specialist", specialties=["giving-feedback", "difficult-conversations", "delegation"])
    world, (cohort_id,) = _match_with([_coach("generalist"), specialist])
    assert grow.match_coaches(ADMIN, ORG, cohort_id, world.grow).cohort.coach_ids == ["specialist"]
    world, (cohort_id,) = _match_with([_coach("a"), _coach("b"), _coach("c")], people=14)
    view = grow.match_coaches(ADMIN, ORG, cohort_id, world.grow)
    assert len(view.cohort.coach_ids) == 2
    # Participants share the coaches out for their 1:1s; the group sessions are with both.
    coaches = {e.coach_id for e in world.store.engagements.values()}
    assert coaches == set(view.cohort.coach_ids)
    assert all(s.coach_ids == view.cohort.coach_ids for s in view.sessions)


def test_matching_needs_the_minimum_enrolled():
    world = ProgrammesWorld.create()
    ids = world.add_people(5)
    cohort = grow.open_cohort(ADMIN, ORG, request(6), world.grow)
    for person in ids:
        grow.enrol(ADMIN, ORG, cohort.cohort_id, person, world.grow)
    with pytest.raises(Conflict) as refused:
        grow.match_coaches(ADMIN, ORG, cohort.cohort_id, world.grow)
    assert "at least 6 participants; 5 enrolled" in refused.value.message


def test_matching_starts_each_participants_engagement_and_blocks_the_coachs_calendar():
    world = ProgrammesWorld.create()
    cohort_id, ids, sessions = matched_cohort(world)
    assert len(sessions) == 4
    engagements = {e.person_id: e for e in world.store.engagements.values()}
    assert sorted(engagements) == ids
    assert {(e.program.value, e.coach_id) for e in engagements.values()} == {("GROW", GROW_COACH)}
    for session in sessions:
        held = {ref for (coach, bucket), ref in world.store.coach_locks.items() if bucket in session.coach_buckets()}
        assert held == {session.session_id}
        assert session.participants == ids
    # Matching again is refused (the cohort is matched), and nothing is scheduled twice.
    with pytest.raises(Conflict):
        grow.match_coaches(ADMIN, ORG, cohort_id, world.grow)
    assert len(world.store.session_items) == 4


def test_a_group_session_colliding_with_a_1_to_1_is_refused_and_nothing_is_left_behind():
    world = ProgrammesWorld.create()
    ids = world.add_people(6)
    cohort = grow.open_cohort(ADMIN, ORG, request(6), world.grow)
    for person in ids:
        grow.enrol(ADMIN, ORG, cohort.cohort_id, person, world.grow)
    # A 1:1 already holds the third session's time on the coach's calendar.
    third = cohort.curriculum[2].start.astimezone(UTC)
    for bucket in buckets(third + timedelta(minutes=20), third + timedelta(minutes=50)):
        world.store.coach_locks[(GROW_COACH, bucket)] = "a-booking"
    with pytest.raises(SlotTaken) as refused:
        grow.match_coaches(ADMIN, ORG, cohort.cohort_id, world.grow)
    assert "group session 3" in refused.value.message
    assert refused.value.field == "curriculum"
    # The two sessions written before it were removed; the cohort still forms; no engagement started.
    assert world.store.session_items == {}
    assert set(world.store.coach_locks.values()) == {"a-booking"}
    assert world.store.cohort(ORG, cohort.cohort_id)[0].status.value == "forming"
    assert world.store.engagements == {}


# ---------------------------------------------------------------------------- attendance and billing


def test_attendance_bills_each_participant_once_under_deterministic_keys():
    world = ProgrammesWorld.create()
    cohort_id, ids, sessions = matched_cohort(world, people=8)
    session = sessions[0]
    world.at(session.start + timedelta(minutes=30))
    marks = dict.fromkeys(ids, AttendanceMark.ATTENDED) | {
        ids[0]: AttendanceMark.NO_SHOW,
        ids[1]: AttendanceMark.EXCUSED,
    }
    done = record(world, cohort_id, session, marks)
    assert (done.status.value, done.attendance) == ("completed", marks)
    billed = {e.booking_id: (e.person_id, e.outcome.value, e.amount_minor) for e in world.store.ledger.values()}
    expected = {participant_unit_id(session.session_id, p): (p, "completed", GROW_HOUR) for p in ids[2:]}
    expected[participant_unit_id(session.session_id, ids[0])] = (ids[0], "no_show", GROW_HOUR // 2)
    assert billed == expected
    assert {e.program.value for e in world.store.ledger.values()} == {"GROW"}
    # Every participant has a locator (the excused one as a free, cancelled unit) for reconciliation.
    assert world.store.locators[participant_unit_id(session.session_id, ids[1])] == (ids[1], "cancelled")
    (event,) = world.store.events(GroupSessionCompleted)
    assert (event.attended, event.no_shows, event.excused, event.billed_units) == (6, 1, 1, 7)
    # A retry of the same record bills nothing more; a different record is refused.
    assert record(world, cohort_id, session, marks) == done
    assert len(world.store.ledger) == 7
    with pytest.raises(Conflict):
        record(world, cohort_id, session, dict.fromkeys(ids, AttendanceMark.ATTENDED))
    assert len(world.store.ledger) == 7


def test_a_no_show_is_not_billed_when_the_policy_says_so():
    world = ProgrammesWorld.create()
    world.set_catalogue(GROW={"bill_no_shows": False})
    cohort_id, ids, sessions = matched_cohort(world)
    world.at(sessions[0].start + timedelta(hours=1))
    record(world, cohort_id, sessions[0], dict.fromkeys(ids, AttendanceMark.NO_SHOW))
    assert world.store.ledger == {}
    assert set(world.store.locators.values()) == {(p, "cancelled") for p in ids}


def test_attendance_rules():
    world = ProgrammesWorld.create()
    cohort_id, ids, sessions = matched_cohort(world)
    session = sessions[0]
    everyone = dict.fromkeys(ids, AttendanceMark.ATTENDED)
    world.at(session.start + timedelta(minutes=10))
    with pytest.raises(Conflict) as early:
        record(world, cohort_id, session, everyone)
    assert "15 minutes after the start" in early.value.message
    world.at(session.start + timedelta(minutes=15))
    with pytest.raises(InvalidInput) as missing:
        record(world, cohort_id, session, dict(list(everyone.items())[:-1]))
    assert (missing.value.field, ids[-1] in missing.value.message) == ("attendance", True)
    with pytest.raises(InvalidInput) as stranger:
        record(world, cohort_id, session, everyone | {"someone-else": AttendanceMark.ATTENDED})
    assert "someone-else" in stranger.value.message
    with pytest.raises(NotFound):
        record(world, cohort_id, session, everyone, coach="another-coach")
    with pytest.raises(Forbidden):
        grow.record_attendance(
            ADMIN, ORG, cohort_id, session.session_id, AttendanceRequest(attendance=everyone), world.grow
        )
    # The roster no longer holds the coach (suspended): refused.
    world.roster.coaches = []
    with pytest.raises(Forbidden):
        record(world, cohort_id, session, everyone)
    assert world.store.ledger == {}


def test_a_group_session_in_a_closed_month_is_billed_in_the_next_open_one():
    world = ProgrammesWorld.create()
    cohort_id, ids, sessions = matched_cohort(world)
    session = sessions[0]
    month = session.start.strftime("%Y-%m")
    world.store.closed.add((ORG, month))
    world.at(session.start + timedelta(hours=1))
    record(world, cohort_id, session, dict.fromkeys(ids, AttendanceMark.ATTENDED))
    assert {e.billed_in for e in world.store.ledger.values()} == {"2027-04"}
    assert {e.period for e in world.store.ledger.values()} == {month}


def test_without_a_price_book_attendance_is_refused_and_nothing_written():
    world = ProgrammesWorld.create()
    cohort_id, ids, sessions = matched_cohort(world)
    del world.store.books[ORG]
    world.at(sessions[0].start + timedelta(hours=1))
    with pytest.raises(Conflict) as refused:
        record(world, cohort_id, sessions[0], dict.fromkeys(ids, AttendanceMark.ATTENDED))
    assert refused.value.field == "price_book"
    assert world.store.group_sessions(ORG, cohort_id)[0][0].status.value == "scheduled"


def test_sessions_and_invites_are_for_participants_coaches_and_the_admin():
    world = ProgrammesWorld.create()
    cohort_id, ids, sessions = matched_cohort(world)
    session = sessions[0]
    for who in (person_principal(ids[0]), coach_principal(GROW_COACH), ADMIN):
        assert next(s.session_id for s in grow.list_sessions(who, ORG, cohort_id, world.grow)) == session.session_id
        invite = grow.invite(who, ORG, cohort_id, session.session_id, world.grow)
        assert f"UID:{session.session_id}@coaching-platform" in invite
        assert "6 participants" in invite
    # The invite names no participant (it is forwarded).
    assert all(p not in invite for p in ids)
    outsider = person_principal("outsider")
    with pytest.raises(NotFound):
        grow.list_sessions(outsider, ORG, cohort_id, world.grow)
    with pytest.raises(NotFound):
        grow.invite(outsider, ORG, cohort_id, session.session_id, world.grow)
    with pytest.raises(NotFound):
        grow.invite(coach_principal("another-coach"), ORG, cohort_id, session.session_id, world.grow)
    view = grow.get_cohort(ADMIN, ORG, cohort_id, world.grow)
    assert (view.enrolled, len(view.sessions)) == (ids, 4)
    assert [c.cohort_id for c in grow.list_cohorts(ADMIN, ORG, world.grow)] == [cohort_id]


def test_a_person_taken_by_another_cohort_meanwhile_is_skipped_and_a_place_left_is_topped_up():
    world = ProgrammesWorld.create()
    ids = world.add_people(9)
    for person in ids[:8]:
        grow_waitlist.add_to_waitlist(ADMIN, ORG, person, world.grow)
    (cohort,) = world.store.cohorts(ORG)
    # One participant leaves the forming cohort (an operator removed them): a place is free again.
    world.store.memberships[(ORG, cohort.cohort_id)].pop(ids[0])
    world.store.seats[(ORG, cohort.cohort_id)] -= 1
    # The next person to wait takes it, and no second cohort opens.
    topped = grow_waitlist.add_to_waitlist(ADMIN, ORG, ids[8], world.grow)
    assert (topped.opened_cohort_id, topped.enrolled) == (cohort.cohort_id, [ids[8]])
    assert len(world.store.cohort_items) == 1
    # An enrolment from the wait-list of someone no longer waiting is refused, naming the person.
    stale = grow.WaitEntry(
        org_id=ORG, person_id=ids[0], transition="new_manager", language="en", source="admin", since=START
    )
    enrolled = grow_waitlist._enrol_waiting(cohort, [stale], world.grow, world.clock.now)
    assert enrolled == []
    assert ids[0] not in {m.person_id for m in world.store.members(ORG, cohort.cohort_id)}


def test_a_wait_list_enrolment_that_lost_to_a_concurrent_one_is_tried_again():
    world = ProgrammesWorld.create()
    ids = world.add_people(8)
    for person in ids:
        world.store.add(
            grow.WaitEntry(
                org_id=ORG,
                person_id=person,
                transition="new_manager",
                language="en",
                source="admin",
                since=START,
            )
        )
    real_enrol = world.store.enrol
    lost = {"n": 0}

    def contended(cohort, enrolment, events):
        # Every other attempt loses to a concurrent transaction on the cohort (no reason given).
        lost["n"] += 1
        if lost["n"] % 2:
            raise Conflict("the cohort changed at the same time; try again", field="cohort_id")
        real_enrol(cohort, enrolment, events)

    world.store.enrol = contended  # type: ignore[method-assign]
    outcome = grow_waitlist.open_waiting(ADMIN, ORG, world.grow)
    assert sorted(outcome.enrolled) == ids
    assert world.store.waiting(ORG, "new_manager") == []
