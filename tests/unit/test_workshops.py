"""TOGETHER workshops on the in-memory fakes: team size and length, the goal, the facilitator match and
its fallback, the shared calendar locks, completion billed once, cancel and late-cancel billing."""

from datetime import UTC, datetime, timedelta

import pytest
from coaching.auth import Principal, Role
from coaching.domain.booking import buckets
from coaching.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, SlotTaken
from coaching.domain.events import WorkshopBooked, WorkshopEnded
from coaching.domain.workshops import WorkshopCancel, WorkshopCompletion, WorkshopRequest, unit_ids
from coaching.services import workshops
from pydantic import ValidationError

from .fakes.booking import roster_coach
from .fakes.programmes import (
    ADMIN,
    FACILITATOR,
    LEADER,
    ORG,
    PARTICIPANT_FEE,
    START,
    TOGETHER_HOUR,
    ProgrammesWorld,
    coach_principal,
    person_principal,
)

WHEN = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)  # a Wednesday, inside every coach's 07:00-21:00


def body(team: list[str], **changes: object) -> WorkshopRequest:
    return WorkshopRequest.model_validate(
        {
            "team_name": "Platform",
            "participant_ids": team,
            "goal": "alignment",
            "length_minutes": 120,
            "start": WHEN,
            "language": "en",
        }
        | changes
    )


def world_and_team(size: int = 5, **book: object) -> tuple[ProgrammesWorld, list[str]]:
    world = ProgrammesWorld.create(**book)
    return world, world.add_people(size, level="manager", prefix="t")


def facilitator(coach_id: str, years: int, **changes: object):
    roles = [{"level": "manager", "function": "engineering", "industry": "technology", "years": years}]
    return roster_coach(coach_id, **({"programs": ["TOGETHER"], "roles_held": roles} | changes))


# ---------------------------------------------------------------------------- the request


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"participant_ids": ["a", "b", "c"]}, "participant_ids"),
        ({"participant_ids": [f"p{n}" for n in range(21)]}, "participant_ids"),
        ({"length_minutes": 45}, "length_minutes"),
        ({"length_minutes": 255}, "length_minutes"),
        ({"length_minutes": 100}, "length_minutes"),  # 15-minute steps
        ({"goal": "party"}, "goal"),
        ({"start": "2027-03-10T09:00:00"}, "start"),  # a time without its zone
        ({"language": "klingon"}, "language"),
        ({"team_name": ""}, "team_name"),
    ],
)
def test_a_workshop_request_outside_the_rules_names_the_field(changes, field):
    with pytest.raises(ValidationError) as refused:
        body(["a", "b", "c", "d"], **changes)
    assert refused.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize("goal", ["alignment", "reorg", "decision"])
def test_every_goal_of_the_enum_books(goal):
    world, team = world_and_team()
    assert workshops.book(ADMIN, body(team, goal=goal), world.workshops).goal.value == goal


def test_the_team_is_4_to_20_different_active_people_of_the_org_within_its_settings():
    world, team = world_and_team(7)
    with pytest.raises(InvalidInput) as duplicates:
        workshops.book(ADMIN, body([team[0], team[0], team[1], team[2]]), world.workshops)
    assert duplicates.value.field == "participant_ids"
    with pytest.raises(InvalidInput) as strangers:
        workshops.book(ADMIN, body([*team[:3], "someone-else"]), world.workshops)
    assert "someone-else" in strangers.value.message
    world.set_catalogue(TOGETHER={"max_participants": 6, "min_minutes": 90})
    with pytest.raises(InvalidInput) as too_many:
        workshops.book(ADMIN, body(team), world.workshops)
    assert (too_many.value.field, "4 to 6" in too_many.value.message) == ("participant_ids", True)
    with pytest.raises(InvalidInput) as too_short:
        workshops.book(ADMIN, body(team[:5], length_minutes=60), world.workshops)
    assert too_short.value.field == "length_minutes"
    world.set_catalogue(TOGETHER={"enabled": False})
    with pytest.raises(Forbidden):
        workshops.book(ADMIN, body(team[:5]), world.workshops)
    assert world.store.workshop_items == {}


def test_only_a_manager_or_org_admin_books_and_only_ahead():
    world, team = world_and_team()
    with pytest.raises(Forbidden):
        workshops.book(person_principal(team[0]), body(team), world.workshops)
    with pytest.raises(Forbidden):
        workshops.book(coach_principal(FACILITATOR), body(team), world.workshops)
    world.at(WHEN + timedelta(minutes=1))
    with pytest.raises(InvalidInput) as past:
        workshops.book(LEADER, body(team), world.workshops)
    assert past.value.field == "start"


# ---------------------------------------------------------------------------- the facilitator


def test_the_most_experienced_certified_facilitator_who_offers_the_time_is_matched():
    coaches = [
        facilitator("junior", 2),
        facilitator("senior", 9),
        facilitator("not-certified", 20, programs=["SCALE", "GROW"]),
        facilitator("other-language", 20, languages=["de"]),
        facilitator("colleague", 20, employer_org_ids=[ORG]),
        facilitator("weekends", 20, weekly_availability=[{"weekday": 5, "start": "08:00", "end": "18:00"}]),
        facilitator("short-days", 20, weekly_availability=[{"weekday": 2, "start": "09:00", "end": "10:00"}]),
    ]
    world = ProgrammesWorld.create(coaches=coaches)
    team = world.add_people(4, level="manager", prefix="t")
    booked = workshops.book(LEADER, body(team), world.workshops)
    assert booked.facilitator_id == "senior"
    assert (booked.booked_by, booked.length_minutes, booked.policy.late_cancel_hours) == ("leader-1", 120, 72)
    # Its time and the buffer after it hold the facilitator's calendar, with the locks a 1:1 takes.
    held = {b for (coach, b), ref in world.store.coach_locks.items() if coach == "senior"}
    assert held == set(buckets(WHEN, WHEN + timedelta(minutes=130)))
    (event,) = world.store.events(WorkshopBooked)
    assert (event.facilitator_id, event.participants, event.goal) == ("senior", 4, "alignment")


def test_a_taken_facilitator_falls_back_to_the_next_and_then_refuses():
    world = ProgrammesWorld.create(coaches=[facilitator("senior", 9), facilitator("junior", 2)])
    team = world.add_people(4, level="manager", prefix="t")
    # The senior facilitator has a 1:1 in the middle of that time (booked elsewhere, same locks).
    for bucket in buckets(WHEN + timedelta(minutes=60), WHEN + timedelta(minutes=90)):
        world.store.coach_locks[("senior", bucket)] = "a-booking"
    assert workshops.book(ADMIN, body(team), world.workshops).facilitator_id == "junior"
    # Now both are taken: refused, naming the time.
    with pytest.raises(SlotTaken) as refused:
        workshops.book(ADMIN, body(team), world.workshops)
    assert refused.value.field == "start"
    assert len(world.store.workshop_items) == 1


def test_nobody_certified_in_the_language_is_a_conflict_naming_the_time():
    world = ProgrammesWorld.create(coaches=[facilitator("senior", 9, languages=["de"])])
    team = world.add_people(4, level="manager", prefix="t")
    with pytest.raises(Conflict) as refused:
        workshops.book(ADMIN, body(team), world.workshops)
    assert (refused.value.field, "no TOGETHER facilitator speaking 'en'" in refused.value.message) == ("start", True)


# ---------------------------------------------------------------------------- completion and billing


def test_completion_bills_the_workshop_and_each_participants_fee_once():
    world, team = world_and_team(5, together_participant_fee_minor=PARTICIPANT_FEE)
    booked = workshops.book(ADMIN, body(team), world.workshops)
    with pytest.raises(Conflict):
        workshops.complete(
            coach_principal(FACILITATOR),
            ORG,
            booked.workshop_id,
            WorkshopCompletion(actual_minutes=120),
            world.workshops,
        )
    world.at(WHEN + timedelta(hours=2))
    done = workshops.complete(
        coach_principal(FACILITATOR), ORG, booked.workshop_id, WorkshopCompletion(actual_minutes=118), world.workshops
    )
    assert (done.status.value, done.actual_minutes) == ("completed", 118)
    base, per_person = unit_ids(booked.workshop_id, team)
    # 120 minutes at the 60-minute price pro rata; one fee per participant; deterministic unit ids.
    billed = {e.booking_id: e.amount_minor for e in world.store.ledger.values()}
    assert billed == {base: 2 * TOGETHER_HOUR} | dict.fromkeys(per_person.values(), PARTICIPANT_FEE)
    assert {e.program.value for e in world.store.ledger.values()} == {"TOGETHER"}
    # A retry changes nothing and bills nothing more.
    again = workshops.complete(
        coach_principal(FACILITATOR), ORG, booked.workshop_id, WorkshopCompletion(actual_minutes=118), world.workshops
    )
    assert again == done
    assert len(world.store.ledger) == 6
    (ended,) = world.store.events(WorkshopEnded)
    assert (ended.status, ended.billed_units) == ("completed", 6)


def test_without_a_participant_fee_only_the_workshop_is_billed():
    world, team = world_and_team()
    booked = workshops.book(ADMIN, body(team, length_minutes=60), world.workshops)
    world.at(WHEN + timedelta(hours=1))
    workshops.complete(
        coach_principal(FACILITATOR), ORG, booked.workshop_id, WorkshopCompletion(actual_minutes=60), world.workshops
    )
    assert [e.amount_minor for e in world.store.ledger.values()] == [TOGETHER_HOUR]


def test_only_its_approved_facilitator_completes_it_within_a_plausible_length():
    world, team = world_and_team()
    booked = workshops.book(ADMIN, body(team), world.workshops)
    world.at(WHEN + timedelta(hours=3))
    with pytest.raises(NotFound):
        workshops.complete(
            coach_principal("another"), ORG, booked.workshop_id, WorkshopCompletion(actual_minutes=120), world.workshops
        )
    with pytest.raises(InvalidInput) as implausible:
        workshops.complete(
            coach_principal(FACILITATOR),
            ORG,
            booked.workshop_id,
            WorkshopCompletion(actual_minutes=300),
            world.workshops,
        )
    assert implausible.value.field == "actual_minutes"
    world.roster.coaches = [c for c in world.roster.coaches if c.coach_id != FACILITATOR]
    with pytest.raises(Forbidden):
        workshops.complete(
            coach_principal(FACILITATOR),
            ORG,
            booked.workshop_id,
            WorkshopCompletion(actual_minutes=120),
            world.workshops,
        )
    assert world.store.ledger == {}


def test_an_early_cancel_is_free_and_frees_the_facilitator():
    world, team = world_and_team()
    booked = workshops.book(LEADER, body(team), world.workshops)
    cancelled = workshops.cancel(LEADER, booked.workshop_id, WorkshopCancel(reason="moved"), world.workshops)
    assert (cancelled.status.value, cancelled.sequence, cancelled.cancel_reason) == ("cancelled", 1, "moved")
    assert world.store.ledger == {}
    assert world.store.coach_locks == {}
    invite = workshops.invite(LEADER, booked.workshop_id, world.workshops)
    assert "METHOD:CANCEL" in invite
    assert "SEQUENCE:1" in invite
    with pytest.raises(Conflict):
        workshops.cancel(LEADER, booked.workshop_id, WorkshopCancel(), world.workshops)
    # The facilitator's time is free again for the next team.
    assert workshops.book(ADMIN, body(team), world.workshops).facilitator_id == FACILITATOR


def test_a_late_cancel_is_billed_at_the_late_cancel_fee_when_the_policy_says_so():
    world, team = world_and_team()
    booked = workshops.book(ADMIN, body(team), world.workshops)
    world.at(WHEN - timedelta(hours=71))  # inside the 72-hour window snapshotted at booking
    late = workshops.cancel(ADMIN, booked.workshop_id, WorkshopCancel(), world.workshops)
    assert late.status.value == "late_cancelled"
    (entry,) = world.store.ledger.values()
    assert (entry.outcome.value, entry.amount_minor, entry.booking_id) == (
        "late_cancelled",
        TOGETHER_HOUR,  # half of the 120-minute price
        unit_ids(booked.workshop_id, team)[0],
    )
    assert world.store.coach_locks == {}
    # An org that does not bill late cancels: free, whenever.
    world, team = world_and_team()
    world.set_catalogue(TOGETHER={"bill_late_cancels": False})
    booked = workshops.book(ADMIN, body(team), world.workshops)
    world.at(WHEN - timedelta(hours=1))
    assert workshops.cancel(ADMIN, booked.workshop_id, WorkshopCancel(), world.workshops).status.value == "cancelled"
    assert world.store.ledger == {}


def test_who_sees_and_cancels_a_workshop():
    world, team = world_and_team()
    booked = workshops.book(LEADER, body(team), world.workshops)
    for who in (LEADER, ADMIN, person_principal(team[0])):
        assert workshops.get_workshop(who, booked.workshop_id, world.workshops).workshop_id == booked.workshop_id
    for who in (
        person_principal("outsider"),
        Principal(person_id="admin-2", org_id="org-2", roles=frozenset({Role.ORG_ADMIN})),
    ):
        with pytest.raises((NotFound, Forbidden)):
            workshops.get_workshop(who, booked.workshop_id, world.workshops)
    other_leader = Principal(person_id="leader-2", org_id=ORG, roles=frozenset({Role.LEADER, Role.EMPLOYEE}))
    with pytest.raises(NotFound):
        workshops.cancel(other_leader, booked.workshop_id, WorkshopCancel(), world.workshops)
    assert world.store.workshop(ORG, booked.workshop_id)[0].status.value == "booked"
    invite = workshops.invite(person_principal(team[0]), booked.workshop_id, world.workshops)
    assert f"UID:{booked.workshop_id}@coaching-platform" in invite
    assert all(p not in invite for p in team)
    assert booked.start > START
