"""Domain services against DynamoDB Local over real HTTP: idempotency, concurrency, roster."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import boto3
import pytest
from coaching.adapters.dynamo import CoachRepository, admin_ports
from coaching.adapters.roster_store import RosterStore
from coaching.auth import Principal, Role
from coaching.domain.coaches import CoachUpdate, VettingDecision, VettingStatus
from coaching.domain.orgs import OrgCreate
from coaching.domain.people import PersonUpdate
from coaching.services import admin
from coaching.services.roster import RosterCache, rebuild_roster
from coaching_local.seed import OPERATOR, coach_profiles, people_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def ctx(dynamodb_local) -> admin.AdminContext:
    return admin.AdminContext(**admin_ports())


@pytest.fixture
def org_admin(ctx) -> Principal:
    org = admin.create_org(
        OPERATOR,
        OrgCreate(name=f"Int {uuid.uuid4().hex[:6]}", time_zone="Europe/Berlin", currency="EUR", industry="technology"),
        ctx,
    )
    return Principal(person_id="admin-int", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))


def test_import_is_idempotent_and_updates_only_what_changed(ctx, org_admin):
    rows = people_rows(org_admin.org_id, 250, seed=11, home_zone="Europe/Berlin")
    first = admin.import_people(org_admin, rows, ctx)
    assert (first.created, first.failed) == (250, 0)
    rows[7]["department"] = "Reorganised"
    second = admin.import_people(org_admin, rows, ctx)
    assert (second.created, second.updated, second.unchanged) == (0, 1, 249)
    page = admin.list_people(org_admin, 100, None, ctx)
    assert len(page.items) == 100
    assert page.next_cursor


def test_concurrent_imports_of_the_same_file_create_each_person_once(ctx, org_admin):
    rows = people_rows(org_admin.org_id, 300, seed=12, home_zone="Europe/Berlin")
    with ThreadPoolExecutor(max_workers=3) as pool:
        reports = list(pool.map(lambda _: admin.import_people(org_admin, rows, ctx), range(3)))
    assert sum(r.created for r in reports) == 300
    assert all(r.failed == 0 for r in reports)
    listed, cursor = 0, None
    while True:
        page = admin.list_people(org_admin, 100, cursor, ctx)
        listed += len(page.items)
        cursor = page.next_cursor
        if not cursor:
            break
    assert listed == 300


def test_concurrent_edits_of_one_person_lose_no_update(ctx, org_admin):
    rows = people_rows(org_admin.org_id, 1, seed=13, home_zone="Europe/Berlin")
    admin.import_people(org_admin, rows, ctx)
    person = admin.list_people(org_admin, 1, None, ctx).items[0]
    changes = [PersonUpdate(department=f"D{i}") for i in range(4)] + [PersonUpdate(location=f"L{i}") for i in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda change: admin.update_person(org_admin, person.person_id, change, ctx), changes))
    final = admin.get_person(org_admin, person.person_id, ctx)
    # Both fields were written by someone: neither family of edits was lost to the other.
    assert final.department.startswith("D")
    assert final.location.startswith("L")


def test_roster_snapshot_holds_only_approved_coaches_and_the_cache_follows_versions(ctx):
    store, coaches = RosterStore(), CoachRepository()
    created = [admin.create_coach(OPERATOR, profile, ctx) for profile in coach_profiles(3, seed=99)]
    admin.set_vetting(OPERATOR, created[0].coach_id, VettingDecision(status=VettingStatus.APPROVED), ctx)
    first = rebuild_roster(coaches, store)
    cache = RosterCache(store, ttl_seconds=0)
    roster = cache.get()
    assert roster.version == first.version
    ids = {c.coach_id for c in roster.coaches}
    assert created[0].coach_id in ids
    assert created[1].coach_id not in ids
    admin.set_vetting(OPERATOR, created[0].coach_id, VettingDecision(status=VettingStatus.SUSPENDED), ctx)
    second = rebuild_roster(coaches, store)
    assert second.version == first.version + 1
    assert created[0].coach_id not in {c.coach_id for c in cache.get().coaches}


def coach_events(detail_type: str, coach_id: str) -> list[dict]:
    """The outbox items of one type about one coach (a test-side Scan)."""
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
    return [d for d in details if d["coach_id"] == coach_id]


def test_coach_changes_commit_their_events_with_them_and_concurrent_decisions_lose_nothing(ctx):
    coach = admin.create_coach(OPERATOR, coach_profiles(1, seed=77)[0], ctx)
    admin.update_coach(OPERATOR, coach.coach_id, CoachUpdate(bio="Still pending"), ctx)
    assert coach_events("CoachProfileUpdated", coach.coach_id) == []
    approved = admin.set_vetting(OPERATOR, coach.coach_id, VettingDecision(status=VettingStatus.APPROVED), ctx)
    [changed] = coach_events("CoachVettingChanged", coach.coach_id)
    assert (changed["previous_status"], changed["vetting_status"]) == ("pending", "approved")
    assert CoachRepository().list(status="approved", limit=100, cursor=None).items  # the index moved with it
    admin.update_coach(OPERATOR, coach.coach_id, CoachUpdate(capacity=7), ctx)
    assert len(coach_events("CoachProfileUpdated", coach.coach_id)) == 1

    decisions = [VettingStatus.SUSPENDED, VettingStatus.APPROVED] * 3

    def decide(status: VettingStatus) -> None:
        admin.set_vetting(OPERATOR, coach.coach_id, VettingDecision(status=status), ctx)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(decide, decisions))
    final = admin.get_coach(OPERATOR, coach.coach_id, ctx)
    # Every decision is in the history (no lost update), and each change of status has exactly
    # one event, whose previous status is the one that decision really replaced.
    assert len(final.vetting_history) == len(approved.vetting_history) + len(decisions)
    statuses = [VettingStatus.PENDING.value, *(entry.status.value for entry in final.vetting_history)]
    expected = [(before, after) for before, after in pairwise(statuses) if before != after]
    events = coach_events("CoachVettingChanged", coach.coach_id)
    assert sorted((e["previous_status"], e["vetting_status"]) for e in events) == sorted(expected)
    assert final.capacity == 7
