"""Rollups on DynamoDB Local: the cells the events build equal the rebuild from source, and drift is repaired."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from coaching.adapters import keys
from coaching.adapters.dynamo import MainItem, MarkerItem, admin_ports
from coaching.adapters.rollup_store import RollupSourceStore, RollupStore, cell_digest
from coaching.auth import Principal, Role
from coaching.domain.events import (
    CohortEnrolled,
    EngagementStarted,
    GroupSessionCompleted,
    SessionCompleted,
    WorkshopEnded,
)
from coaching.domain.orgs import OrgCreate
from coaching.domain.rollups import contribution_of, sum_counters
from coaching.services import admin, rollups
from coaching.services.rollups import RollupContext
from coaching_local.seed import OPERATOR, people_rows

from tests.unit.fakes.rollups import make_booking, make_cohort, make_engagement, make_group_session, make_workshop

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
PERIOD = NOW.strftime("%Y-%m")


def _context() -> RollupContext:
    return RollupContext(source=RollupSourceStore(), store=RollupStore(), clock=lambda: NOW)


def _save(pk: str, sk: str, kind: str, body: str) -> None:
    MainItem(pk, sk, kind=kind, body=body).save()


def test_event_built_cells_equal_the_rebuild_from_source_and_a_drifted_cell_is_repaired(dynamodb_local) -> None:
    ctx = admin.AdminContext(**admin_ports())
    org = admin.create_org(OPERATOR, OrgCreate(name=f"Rollups {uuid.uuid4().hex[:6]}", time_zone="UTC", currency="EUR",
                                               industry="technology"), ctx)  # fmt: skip
    caller = Principal(person_id="admin", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
    assert admin.import_people(caller, people_rows(org.org_id, 24, seed=5, home_zone="UTC"), ctx).created == 24
    rollup_ctx = _context()
    # Yesterday's rebuild: everyone, nobody coached yet.
    rollups.rebuild(org.org_id, PERIOD, rollup_ctx)
    rng = random.Random(3)
    events = []
    people = list(rollup_ctx.source.people(org.org_id))
    for source in people[:18]:
        person = source.person
        assert person is not None
        engagement = make_engagement(person, "SCALE", NOW.replace(day=1).date().isoformat()).model_copy(
            update={"org_id": org.org_id}
        )
        _save(keys.person_pk(org.org_id, person.person_id), keys.engagement_sk(engagement.engagement_id),
              "engagement", engagement.model_dump_json())  # fmt: skip
        events.append(EngagementStarted(org_id=org.org_id, person_id=person.person_id, coach_id="c1",
                                        engagement_id=engagement.engagement_id, program="SCALE",
                                        occurred_at=NOW.replace(day=1)))  # fmt: skip
        for n in range(rng.randint(0, 3)):
            start = NOW.replace(day=1, hour=9, minute=0, second=0, microsecond=0) + timedelta(hours=n)
            status = rng.choice(("completed", "completed", "no_show"))
            booking = make_booking(person, n, start, status).model_copy(update={"org_id": org.org_id})
            _save(keys.person_pk(org.org_id, person.person_id), keys.booking_sk(booking.booking_id), "booking",
                  booking.model_dump_json())  # fmt: skip
            events.append(SessionCompleted(org_id=org.org_id, person_id=person.person_id, coach_id="c1",
                                           booking_id=booking.booking_id, program="SCALE", start=start,
                                           status=status, outcome=status))  # fmt: skip
    rng.shuffle(events)
    for event in events + events[:5]:  # at least once, in any order
        rollups.on_person_event(event, rollup_ctx)
    by_events = RollupStore().cells(org.org_id, PERIOD)
    from_source = sum_counters(
        c for s in rollup_ctx.source.people(org.org_id) if s.person
        if (c := contribution_of(s.person, s.bookings, s.engagements, PERIOD, []))
    )  # fmt: skip
    assert {k: {n: v for n, v in c.items() if v} for k, c in by_events.items() if any(c.values())} == from_source
    result = rollups.rebuild(org.org_id, PERIOD, rollup_ctx)
    assert (result.people, result.contributions_changed, result.cells_rewritten) == (24, 0, 0)

    # A lost or doubled write: the daily rebuild finds the drifted cell and rewrites it from the contributions.
    boto3.client("dynamodb").update_item(
        TableName=MainItem.Meta.table_name,
        Key={"pk": {"S": keys.rollup_pk(org.org_id, PERIOD)}, "sk": {"S": keys.rollup_cell_sk(cell_digest(()))}},
        UpdateExpression="ADD #p :three", ExpressionAttributeNames={"#p": "people"},
        ExpressionAttributeValues={":three": {"N": "3"}},
    )  # fmt: skip
    assert RollupStore().cells(org.org_id, PERIOD)[()]["people"] == 27
    repaired = rollups.rebuild(org.org_id, PERIOD, rollup_ctx)
    assert repaired.cells_rewritten == 1
    assert RollupStore().cells(org.org_id, PERIOD)[()]["people"] == 24
    meta = RollupStore().meta(org.org_id, PERIOD)
    assert meta is not None
    assert meta.min_group_size == org.min_reporting_group_size
    assert json.loads(meta.model_dump_json())["rebuilt"] is True


def test_group_sessions_and_workshops_reach_the_cells_by_their_events_as_the_rebuild_finds_them(dynamodb_local) -> None:
    ctx = admin.AdminContext(**admin_ports())
    org = admin.create_org(OPERATOR, OrgCreate(name=f"Programme rollups {uuid.uuid4().hex[:6]}", time_zone="UTC",
                                               currency="EUR", industry="technology"), ctx)  # fmt: skip
    caller = Principal(person_id="admin", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
    assert admin.import_people(caller, people_rows(org.org_id, 14, seed=8, home_zone="UTC"), ctx).created == 14
    rollup_ctx = _context()
    rollups.rebuild(org.org_id, PERIOD, rollup_ctx)  # yesterday's: nobody took part in anything yet
    ids = sorted(s.person.person_id for s in rollup_ctx.source.people(org.org_id) if s.person)
    grow, team = ids[:8], ids[8:12]
    first = NOW.replace(day=1, hour=10, minute=0, second=0, microsecond=0)
    cohort = make_cohort("k-int", first.date().isoformat()).model_copy(update={"org_id": org.org_id})
    _save(keys.cohort_pk(org.org_id, cohort.cohort_id), keys.COHORT_SK, "cohort", cohort.model_dump_json())
    marks = dict.fromkeys(grow, "attended") | {grow[0]: "no_show", grow[1]: "excused"}
    session = make_group_session(cohort.cohort_id, 0, first, marks).model_copy(update={"org_id": org.org_id})
    _save(keys.cohort_pk(org.org_id, cohort.cohort_id), keys.group_session_sk(0), "group_session",
          session.model_dump_json())  # fmt: skip
    workshop = make_workshop("w-int", first + timedelta(hours=3), team, "completed").model_copy(
        update={"org_id": org.org_id}
    )
    _save(keys.workshop_pk(org.org_id, workshop.workshop_id), keys.WORKSHOP_SK, "workshop", workshop.model_dump_json())
    events = []
    for person_id in grow:
        MarkerItem(keys.person_pk(org.org_id, person_id), keys.participation_sk("COHORT", cohort.cohort_id),
                   kind="participation", ref=cohort.cohort_id).save()  # fmt: skip
        events.append(CohortEnrolled(org_id=org.org_id, cohort_id=cohort.cohort_id, person_id=person_id,
                                     source_of="admin", occurred_at=first))  # fmt: skip
    for person_id in team:
        MarkerItem(keys.person_pk(org.org_id, person_id), keys.participation_sk("WORKSHOP", workshop.workshop_id),
                   kind="participation", ref=workshop.workshop_id).save()  # fmt: skip
    events.append(GroupSessionCompleted(org_id=org.org_id, cohort_id=cohort.cohort_id, session_id=session.session_id,
                                        attended=6, no_shows=1, excused=1, billed_units=7))  # fmt: skip
    events.append(WorkshopEnded(org_id=org.org_id, workshop_id=workshop.workshop_id, facilitator_id="c9",
                                status="completed", billed_units=1))  # fmt: skip
    for event in events + events[-2:]:  # the programme events twice: at least once
        if isinstance(event, GroupSessionCompleted | WorkshopEnded):
            rollups.on_programme_event(event, rollup_ctx)
        else:
            rollups.on_person_event(event, rollup_ctx)
    by_events = RollupStore().cells(org.org_id, PERIOD)
    assert by_events[(("programme", "GROW"),)]["people"] == 7  # the excused participant took part in nothing
    assert by_events[(("programme", "GROW"),)]["m:attendance:n"] == 7
    assert by_events[(("programme", "TOGETHER"),)]["m:sessions:n"] == 4
    assert by_events[(("grow_cohort", PERIOD),)]["people"] == 8
    result = rollups.rebuild(org.org_id, PERIOD, rollup_ctx)
    assert (result.people, result.contributions_changed, result.cells_rewritten) == (14, 0, 0)
    assert RollupStore().cells(org.org_id, PERIOD) == by_events
