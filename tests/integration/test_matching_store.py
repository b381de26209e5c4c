"""Matching services on DynamoDB Local, in-process: redelivered events, promotion levels, the outbox."""

import json
import uuid

import boto3
import pytest
from coaching.adapters.booking_store import BookingStore
from coaching.adapters.dynamo import CoachRepository, PersonRepository, admin_ports
from coaching.adapters.matching_store import MatchingStore
from coaching.adapters.roster_store import RosterStore
from coaching.auth import Principal, Role
from coaching.domain.coaches import CoachCreate, RoleHeld, VettingDecision, VettingStatus
from coaching.domain.common import utc_now
from coaching.domain.errors import ChooseRefused, NoEligibleCoachError
from coaching.domain.events import PersonPromoted
from coaching.domain.matching import MatchRequestIn
from coaching.domain.orgs import OrgCreate
from coaching.domain.people import PersonCreate
from coaching.services import admin, matching, rematches
from coaching.services.roster import RosterCache, rebuild_roster
from coaching_local.seed import OPERATOR, coach_profiles

pytestmark = pytest.mark.integration


def outbox(detail_type: str, **match: object) -> list[dict]:
    """The details of the outbox items of one type whose fields match (a test-side Scan)."""
    table = boto3.resource("dynamodb").Table("test-MainTable")
    scan = {
        "FilterExpression": "kind = :kind AND detail_type = :type",
        "ExpressionAttributeValues": {":kind": "outbox", ":type": detail_type},
    }
    details, page = [], table.scan(**scan)
    while True:
        details += [json.loads(item["detail"]) for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        page = table.scan(**scan, ExclusiveStartKey=page["LastEvaluatedKey"])
    return [d for d in details if all(d.get(key) == value for key, value in match.items())]


def matching_context() -> matching.MatchingContext:
    return matching.MatchingContext(
        roster=RosterCache(RosterStore(), ttl_seconds=0),
        store=MatchingStore(),
        people=PersonRepository(),
        coaches=CoachRepository(),
        bookings=BookingStore(),
        clock=utc_now,
    )


def assert_summary_matches_the_partition(org_id: str, person_id: str) -> None:
    """The summary item, kept in the writing transactions, says what a Query over the partition says."""
    store = MatchingStore()
    history = store.history(org_id, person_id)
    summary = store.summaries(org_id, [person_id])[person_id]
    assert summary.for_matching() == history.for_matching()
    assert summary.active_programs() == {e.program.value for e in history.active_engagements()}
    _, _, read_together = store.person_with_history(org_id, person_id)
    assert read_together == summary
    # A match request reads the same, with the org's catalogue, in the same BatchGetItem.
    *for_request, catalogue = store.person_for_request(org_id, person_id)
    assert tuple(for_request) == store.person_with_history(org_id, person_id)
    assert catalogue == store.catalogue(org_id)[0]


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
    rebuild_roster(CoachRepository(), RosterStore())
    ctx = matching_context()
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
    first = rematches.on_person_promoted(event, ctx)
    again = rematches.on_person_promoted(event, ctx)  # EventBridge retried the same event
    assert first.rematch_ids == again.rematch_ids
    assert len([m for m in matching.list_matches(employee, ctx) if m.trigger == "promotion"]) == 1

    rematch = matching.get_match(employee, first.rematch_ids[0], ctx)
    senior_ids = {coaches[1].coach_id, coaches[2].coach_id}
    assert {p.coach_id for p in rematch.proposals} == senior_ids
    # Declining keeps the senior-leader bar although the person record still says manager.
    with pytest.raises(NoEligibleCoachError):
        matching.decline_all(employee, rematch.match_id, ctx)
    assert_summary_matches_the_partition(org.org_id, person.person_id)
    summary = MatchingStore().summaries(org.org_id, [person.person_id])[person.person_id]
    assert senior_ids <= summary.for_matching().declined

    # The re-match's MatchProposed was committed once, under its stable id, with the match.
    assert [e["coach_ids"] for e in outbox("MatchProposed", match_id=first.rematch_ids[0])] == [
        [p.coach_id for p in rematch.proposals]
    ]


def test_choices_commit_their_events_with_them_and_a_full_coach_refuses_without_any(dynamodb_local):
    ctx_admin = admin.AdminContext(**admin_ports())
    org = admin.create_org(
        OPERATOR, OrgCreate(name="Outbox", time_zone="UTC", currency="EUR", industry="technology"), ctx_admin
    )
    org_admin = Principal(person_id="a", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
    language = "ro"  # nobody else in this session's network speaks it
    weekdays = [{"weekday": d, "start": "08:00", "end": "18:00"} for d in range(5)]
    coaches = []
    for profile, capacity in zip(coach_profiles(2, seed=41), [1, 5], strict=True):
        changes = {
            "languages": [language],
            "time_zone": "Europe/Bucharest",
            "weekly_availability": weekdays,
            "programs": ["SCALE"],
            "capacity": capacity,
        }
        created = admin.create_coach(OPERATOR, CoachCreate.model_validate(profile.model_dump() | changes), ctx_admin)
        admin.set_vetting(OPERATOR, created.coach_id, VettingDecision(status=VettingStatus.APPROVED), ctx_admin)
        coaches.append(created)
    rebuild_roster(CoachRepository(), RosterStore())
    ctx = matching_context()
    people = []
    for index in range(2):
        person = admin.create_person(
            org_admin,
            PersonCreate(
                external_hr_id=f"O-{index}-{uuid.uuid4().hex[:6]}",
                name="Ola",
                email="ola@example.com",
                level="first_time_manager",
                function="engineering",
                languages=[language],
                time_zone="Europe/Bucharest",
            ),
            ctx_admin,
        )
        people.append(Principal(person_id=person.person_id, org_id=org.org_id, roles=frozenset({Role.EMPLOYEE})))
    request = MatchRequestIn(program="SCALE", focus_competencies=["delegation"], situation="A new team to lead soon.")
    views = [matching.request_match(p, request, ctx) for p in people]
    for view in views:
        [proposed] = outbox("MatchProposed", match_id=view.match_id)
        assert proposed["coach_ids"] == [p.coach_id for p in view.proposals]
        assert proposed["trigger"] == "request"

    small = coaches[0].coach_id
    engagement = matching.choose(people[0], views[0].match_id, small, ctx)
    [started] = outbox("EngagementStarted", engagement_id=engagement.engagement_id)
    assert (started["coach_id"], started["match_id"], started["person_id"]) == (
        small,
        views[0].match_id,
        people[0].person_id,
    )
    with pytest.raises(ChooseRefused) as refused:
        matching.choose(people[1], views[1].match_id, small, ctx)
    assert refused.value.field == "coach_id"
    assert outbox("EngagementStarted", person_id=people[1].person_id) == []

    # A change of coach: the engagement ends and the new request is stored in one transaction.
    changed = matching.change_coach(people[0], engagement.engagement_id, "another style", ctx)
    [ended] = outbox("EngagementEnded", engagement_id=engagement.engagement_id)
    assert (ended["coach_id"], ended["end_reason"]) == (small, "another style")
    [proposed] = outbox("MatchProposed", match_id=changed.match_id)
    assert proposed["trigger"] == "change"
    assert small not in proposed["coach_ids"]
    # The place it freed is the other person's now.
    assert matching.choose(people[1], views[1].match_id, small, ctx).coach_id == small
    for person in people:
        assert_summary_matches_the_partition(org.org_id, person.person_id)
    left = MatchingStore().summaries(org.org_id, [people[0].person_id])[people[0].person_id].for_matching()
    assert small in left.declined
