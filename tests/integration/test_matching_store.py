"""Matching services on DynamoDB Local, in-process: redelivered events and promotion levels."""

import uuid

import pytest
from coaching.adapters.booking_store import BookingStore
from coaching.adapters.dynamo import CoachRepository, PersonRepository, admin_ports
from coaching.adapters.matching_store import MatchingStore
from coaching.adapters.roster_store import RosterStore
from coaching.auth import Principal, Role
from coaching.domain.coaches import CoachCreate, RoleHeld, VettingDecision, VettingStatus
from coaching.domain.common import utc_now
from coaching.domain.events import PersonPromoted
from coaching.domain.matching import MatchRequestIn
from coaching.domain.orgs import OrgCreate
from coaching.domain.people import PersonCreate
from coaching.services import admin, matching
from coaching.services.roster import RosterCache, rebuild_roster
from coaching_local.seed import OPERATOR, coach_profiles

pytestmark = pytest.mark.integration


def test_a_redelivered_promotion_event_creates_one_rematch_and_declines_keep_the_new_level(dynamodb_local):
    ctx_admin = admin.AdminContext(**admin_ports())
    org = admin.create_org(
        OPERATOR, OrgCreate(name="Promo", time_zone="UTC", currency="EUR", industry="technology"), ctx_admin
    )
    org_admin = Principal(person_id="a", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
    person = admin.create_person(
        org_admin,
        PersonCreate(
            external_hr_id=f"P-{uuid.uuid4().hex[:6]}",
            name="Pat",
            email="pat@example.com",
            level="manager",
            function="engineering",
            languages=["et"],
            time_zone="Europe/Tallinn",
        ),
        ctx_admin,
    )
    held = {
        "manager": [RoleHeld(level="manager", function="engineering", industry="technology", years=5)],
        "senior": [RoleHeld(level="senior_leader", function="engineering", industry="technology", years=5)],
    }
    profiles = coach_profiles(4, seed=31)
    coaches = []
    for profile, kind in zip(profiles, ["manager", "senior", "senior", "manager"], strict=True):
        weekdays = [{"weekday": d, "start": "08:00", "end": "18:00"} for d in range(5)]
        changes = {
            "languages": ["et"],
            "time_zone": "Europe/Tallinn",
            "roles_held": held[kind],
            "weekly_availability": weekdays,
            "programs": ["SCALE"],
        }
        created = admin.create_coach(OPERATOR, CoachCreate.model_validate(profile.model_dump() | changes), ctx_admin)
        admin.set_vetting(OPERATOR, created.coach_id, VettingDecision(status=VettingStatus.APPROVED), ctx_admin)
        coaches.append(created)
    store = RosterStore()
    rebuild_roster(CoachRepository(), store)
    ctx = matching.MatchingContext(
        roster=RosterCache(store, ttl_seconds=0),
        store=MatchingStore(),
        people=PersonRepository(),
        coaches=CoachRepository(),
        bookings=BookingStore(),
        clock=utc_now,
    )
    employee = Principal(person_id=person.person_id, org_id=org.org_id, roles=frozenset({Role.EMPLOYEE}))
    view = matching.request_match(
        employee,
        MatchRequestIn(program="SCALE", focus_competencies=["delegation"], situation="Leading my first larger team."),
        ctx,
    )
    manager_coach = next(p.coach_id for p in view.proposals if p.coach_id == coaches[0].coach_id)
    matching.choose(employee, view.match_id, manager_coach, ctx)

    event = PersonPromoted(
        event_id="event-1",
        org_id=org.org_id,
        person_id=person.person_id,
        previous_level="manager",
        new_level="senior_leader",
        effective_date="2026-12-01",
    )
    first = matching.on_person_promoted(event, ctx)
    again = matching.on_person_promoted(event, ctx)  # EventBridge retried the same event
    assert first.rematch_ids == again.rematch_ids
    assert len([m for m in matching.list_matches(employee, ctx) if m.trigger == "promotion"]) == 1

    rematch = matching.get_match(employee, first.rematch_ids[0], ctx)
    senior_ids = {coaches[1].coach_id, coaches[2].coach_id}
    assert {p.coach_id for p in rematch.proposals} == senior_ids
    # Declining keeps the senior-leader bar although the person record still says manager.
    with pytest.raises(matching.NoEligibleCoachError):
        matching.decline_all(employee, rematch.match_id, ctx)
