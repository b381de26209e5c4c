"""Booking through the local API (real handler, real API Gateway proxy events) on DynamoDB Local.

Two figures per booking, p50 over distinct people and slots: the handler in-process (the function
invoked with the proxy event, inside the gateway) and the whole request through the local API over
HTTP. Each is a ratio to the floor: the booking's own round trips replayed bare right after it (the
BatchGetItem of the same keys and the same transaction's items on fresh keys), on the same DynamoDB Local.
The ratios to the minimal floor (empty items of the same count, no conditions) are printed below them.
Targets (issue 14): handler <= 1.25x, API <= 1.4x the floor; at most 2 round trips per booking.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.floor import bare_ms, progress, quiet, recorded, settle, table
from bench.local_dynamodb import local_dynamodb
from bench.stack import KEY, start_stack
from bench.stats import percentile

HANDLER_TARGET = 1.25
API_TARGET = 1.4
UNIT_BOOKINGS = 20  # more bookings, untimed, that count capacity units
# Untimed bookings first: a new container's first booking also loads the roster snapshot (one more round trip).
WARMUP_BOOKINGS = 3


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
    rows = synthetic.people(org.org_id, WARMUP_BOOKINGS + args.bookings + UNIT_BOOKINGS, seed=17)
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
    for person in people[: WARMUP_BOOKINGS + args.bookings + UNIT_BOOKINGS]:
        engagement = Engagement(engagement_id=str(uuid.uuid4()), org_id=org.org_id, person_id=person.person_id,
                                coach_id=coach.coach_id, program="SCALE", start_date=now.date().isoformat(),
                                created_at=now)  # fmt: skip
        store.start_engagement(engagement, capacity=1000)
        engagements.append(engagement)
    coach_policy = AvailabilityPolicy(time_zone="UTC", weekly=coach.weekly_availability or profile.weekly_availability,
                                      buffer_minutes=10, min_notice_hours=12, horizon_days=120)  # fmt: skip
    slots = open_slots(coach_policy, [], 30, now + timedelta(days=1), now + timedelta(days=60), now, "UTC")
    starts = [slot.start_utc for slot in slots[::3]][: len(engagements)]  # 45 min apart: no overlaps

    # The handler in-process: the time the function itself takes for the proxy event, inside the gateway.
    stack = start_stack(endpoint, "BookingFunction", env={"ROSTER_CACHE_TTL_SECONDS": "0"})
    gateway, http, handler_ms, key = stack.gateway, stack.http, stack.handler_ms, KEY
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    latencies: list[float] = []
    floors: list[float] = []
    minimal_floors: list[float] = []
    round_trips: list[int] = []

    def book(engagement: Engagement, start: datetime) -> list[tuple[str, dict[str, Any]]]:
        """One booking through the local API, timed; returns its DynamoDB calls for the floor."""
        token = tokens.dev_token("employee", org.org_id, engagement.person_id, key)
        body = json.dumps({
            "engagement_id": engagement.engagement_id, "start": start.isoformat(),
            "focus_competencies": ["delegation"], "situation": "Benchmark booking situation text.",
        })  # fmt: skip
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        settle()
        with recorded() as calls:
            began = time.perf_counter()
            response = http.request("POST", "/bookings", body=body, headers=headers)
            latencies.append((time.perf_counter() - began) * 1000)
        if response.status != 201:
            raise SystemExit(f"booking failed: {response.status} {response.data[:300]!r}")
        return calls

    pairs = list(zip(engagements, starts, strict=False))
    warmup, pairs = pairs[:WARMUP_BOOKINGS], pairs[WARMUP_BOOKINGS:]
    timed, for_units = pairs[: args.bookings], pairs[args.bookings :]
    try:
        with quiet():
            for engagement, start in warmup:
                book(engagement, start)
            del handler_ms[:], latencies[:]
            for index, (engagement, start) in enumerate(timed):
                calls = book(engagement, start)
                # The floor: the same round trips bare (the BatchGetItem of the same keys, the same
                # transaction on fresh keys), right after, on the same DynamoDB Local.
                floors.append(bare_ms(client, calls, "bench-MainTable"))
                minimal_floors.append(bare_ms(client, calls, "bench-MainTable", minimal=True))
                round_trips.append(len(calls))
                progress("bookings", index + 1, len(timed))
            # Capacity units on bookings of their own: the meter asks every call for ReturnConsumedCapacity,
            # which the platform never does, so no timed booking carries it, and their times are dropped.
            with metered() as meter:
                for engagement, start in for_units:
                    book(engagement, start)
            reads, writes = meter.read_units, meter.write_units
            del handler_ms[len(timed) :], latencies[len(timed) :]
    finally:
        gateway.stop()

    n = len(latencies)
    floor = statistics.median(floors)
    print(f"booking, {n} bookings (distinct people and slots); floor = its own round trips, bare, same run")
    table("POST /bookings", [
        ("handler in-process", floor, statistics.median(handler_ms)),
        ("through the local API (HTTP)", floor, statistics.median(latencies)),
    ])  # fmt: skip
    minimal = statistics.median(minimal_floors)
    table("  the same, to the minimal floor (empty items of the same count, no conditions)", [
        ("handler in-process", minimal, statistics.median(handler_ms)),
        ("through the local API (HTTP)", minimal, statistics.median(latencies)),
    ])  # fmt: skip
    print(f"  p99: handler {percentile(handler_ms, 0.99):.1f} ms, API {percentile(latencies, 0.99):.1f} ms, "
          f"floor {percentile(floors, 0.99):.1f} ms")  # fmt: skip
    print(f"  targets: handler <= {HANDLER_TARGET}x, API <= {API_TARGET}x the floor")
    print(f"  DynamoDB round trips per booking: {statistics.mean(round_trips):.1f} (target <= 2); "
          f"{reads / len(for_units):.1f} read units, {writes / len(for_units):.1f} write units")  # fmt: skip
    ok = statistics.median(handler_ms) <= HANDLER_TARGET * floor and statistics.median(latencies) <= API_TARGET * floor
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
