"""Booking through the local API (real handler, real API Gateway proxy events) on DynamoDB Local.

Prints p50/p99 latency of POST /bookings over distinct people and slots, against a bare
TransactWriteItems of the same number of items on the same DynamoDB Local in the same
run, plus DynamoDB round trips and read/write units per booking (ReturnConsumedCapacity).
Target from issue 4: at most 2 round trips per booking: one BatchGetItem, one transaction.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests

from bench.local_dynamodb import local_dynamodb
from bench.stats import percentile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=300)
    args = parser.parse_args(argv)
    endpoint = local_dynamodb()
    import boto3
    from coaching.adapters.dynamo import CoachRepository, PersonRepository, admin_ports
    from coaching.adapters.matching_store import MatchingStore
    from coaching.adapters.roster_store import RosterStore
    from coaching.auth import Principal, Role
    from coaching.domain.availability import AvailabilityPolicy, open_slots
    from coaching.domain.booking import BookingPolicy
    from coaching.domain.coaches import CoachCreate, VettingDecision, VettingStatus
    from coaching.domain.engagements import Engagement
    from coaching.domain.orgs import OrgCreate
    from coaching.services import admin
    from coaching.services.roster import rebuild_roster
    from coaching_local import synthetic, tokens
    from coaching_local.gateway import LocalGateway
    from coaching_local.seed import OPERATOR, coach_profiles, give_price_book

    from bench.capacity import metered

    ctx = admin.AdminContext(**admin_ports())
    policy = BookingPolicy(allowances={"SCALE": {"sessions": 50}}, max_upcoming=20)
    org = admin.create_org(OPERATOR, OrgCreate(name="Booking bench", time_zone="UTC", currency="EUR",
                                               industry="technology"), ctx)  # fmt: skip
    ctx.orgs.modify(org.org_id, lambda current: current.model_copy(update={"booking": policy}))
    give_price_book(org.org_id, "EUR")
    week = [{"weekday": d, "start": "06:00", "end": "22:00"} for d in range(7)]
    profile = CoachCreate.model_validate(coach_profiles(1, seed=3)[0].model_dump() | {
        "weekly_availability": week, "time_zone": "UTC", "capacity": 200, "horizon_days": 120})  # fmt: skip
    coach = admin.create_coach(OPERATOR, profile, ctx)
    admin.set_vetting(OPERATOR, coach.coach_id, VettingDecision(status=VettingStatus.APPROVED), ctx)
    rebuild_roster(CoachRepository(), RosterStore())
    org_admin = Principal(person_id="bench", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
    rows = synthetic.people(org.org_id, args.bookings, seed=17)
    for row in rows:
        row["time_zone"] = "UTC"
    admin.import_people(org_admin, rows, ctx)
    cursor = None
    people = []
    while True:
        page = PersonRepository().list(org.org_id, limit=100, cursor=cursor)
        people += page.items
        cursor = page.next_cursor
        if not cursor:
            break
    store = MatchingStore()
    now = datetime.now(UTC)
    engagements = []
    for person in people[: args.bookings]:
        engagement = Engagement(engagement_id=str(uuid.uuid4()), org_id=org.org_id, person_id=person.person_id,
                                coach_id=coach.coach_id, program="SCALE", start_date=now.date().isoformat(),
                                created_at=now)  # fmt: skip
        store.start_engagement(engagement, capacity=1000)
        engagements.append(engagement)
    coach_policy = AvailabilityPolicy(time_zone="UTC", weekly=coach.weekly_availability or profile.weekly_availability,
                                      buffer_minutes=10, min_notice_hours=12, horizon_days=120)  # fmt: skip
    slots = open_slots(coach_policy, [], 30, now + timedelta(days=1), now + timedelta(days=60), now, "UTC")
    starts = [slot.start_utc for slot in slots[::3]][: len(engagements)]  # 45 min apart: no overlaps

    key = b"bench-signing-key-0123456789abcdef"
    # No stream sources: the outbox relay's own DynamoDB calls are not the booking's round trips.
    gateway = LocalGateway(port=0, prefix="bench", dynamodb_endpoint=endpoint, signing_key=key, run_scheduler=False,
                           run_streams=False, env={"ROSTER_CACHE_TTL_SECONDS": "0"})  # fmt: skip
    gateway.start()
    session = requests.Session()
    latencies: list[float] = []
    try:
        with metered() as meter:
            for engagement, start in zip(engagements, starts, strict=False):
                token = tokens.dev_token("employee", org.org_id, engagement.person_id, key)
                began = time.perf_counter()
                response = session.post(f"{gateway.url}/bookings", timeout=30, json={
                    "engagement_id": engagement.engagement_id, "start": start.isoformat(),
                    "focus_competencies": ["delegation"], "situation": "Benchmark booking situation text.",
                }, headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                latencies.append((time.perf_counter() - began) * 1000)
                if response.status_code != 201:
                    raise SystemExit(f"booking failed: {response.status_code} {response.text[:300]}")
            calls = sum(meter.calls.values())
            reads, writes = meter.read_units, meter.write_units
    finally:
        gateway.stop()

    # Baseline: a bare transaction of the same size: 20 items, like the booking (1 condition check,
    # booking, situation, place and locator, 14 calendar locks, 1 counter update).
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    bare: list[float] = []
    for index in range(len(latencies)):
        pk = f"BENCH#{uuid.uuid4()}"
        items = [{"Put": {"TableName": "bench-MainTable", "Item": {"pk": {"S": pk}, "sk": {"S": f"I#{n}"},
                                                                  "kind": {"S": "bench"}},
                          "ConditionExpression": "attribute_not_exists(pk)"}} for n in range(19)]  # fmt: skip
        count = {"TableName": "bench-MainTable", "Key": {"pk": {"S": pk}, "sk": {"S": "COUNT"}},
                 "UpdateExpression": "ADD used :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}  # fmt: skip
        items.append({"Update": count})
        began = time.perf_counter()
        client.transact_write_items(TransactItems=items)
        bare.append((time.perf_counter() - began) * 1000)
        del index

    n = len(latencies)
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    b50, b99 = statistics.median(bare), percentile(bare, 0.99)
    print(f"booking through the local API, {n} bookings (distinct people and slots)")
    print(f"  POST /bookings     p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
    print(f"  bare transaction   p50 {b50:6.1f} ms   p99 {b99:6.1f} ms   (20 items, same DynamoDB Local)")
    print(f"  ratio              p50 {p50 / b50:5.2f}x   p99 {p99 / b99:5.2f}x")
    print(f"  DynamoDB round trips per booking: {calls / n:.1f} (target <= 2); "
          f"{reads / n:.1f} read units, {writes / n:.1f} write units")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
