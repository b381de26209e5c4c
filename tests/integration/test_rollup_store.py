"""Rollups on DynamoDB Local: the cells the events build equal the rebuild from source, and drift is repaired."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from coaching.adapters import keys
from coaching.adapters.dynamo import MainItem, admin_ports
from coaching.adapters.rollup_store import RollupSourceStore, RollupStore, cell_digest
from coaching.auth import Principal, Role
from coaching.domain.events import EngagementStarted, SessionCompleted
from coaching.domain.orgs import OrgCreate
from coaching.domain.rollups import contribution_of, sum_counters
from coaching.services import admin, rollups
from coaching.services.rollups import RollupContext
from coaching_local.seed import OPERATOR, people_rows

from tests.unit.fakes.rollups import make_booking, make_engagement

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
