"""What 1,000 delivered sessions cost to run on AWS, from what this run measures, at public list prices.

A small org goes the whole way through the local stack (real handlers, the outbox relay on the table's
stream, EventBridge rules, all in-process on DynamoDB Local): people are matched and choose a coach
(match), book --sessions-per-engagement sessions each (book), the sessions happen (their stored times
are moved into last month, standing in for the clock) and coaches complete them (complete), then last
month is invoiced (invoice: one org's month, its share spread over that month's sessions). Per step it
measures DynamoDB read and write request units (from ReturnConsumedCapacity, consumers included), Lambda
invocations and their duration at each function's template MemorySize (GB-seconds), API Gateway requests,
EventBridge events and stream reads, and scales each step to 1,000 delivered sessions. The report step is
the org month's share of measurement: the month's run (its final rebuild and the rendered HTML report and
CSVs, S3 PUTs counted), one leader reading the month's report, and the daily rebuilds that recompute the
month while it is the current or the previous one (about 60 a month; one is measured in-process and
multiplied). No function sends session reminders, so that line is zero and says so. One more person goes the whole way
first, unmeasured, so containers are warm as on a running platform (a new container's roster load is
not a session's cost). Lambda durations are this machine's
in-process times: on Lambda at the template's memory they are of the same order, not the same; the
table shows GB-seconds so they can be re-priced.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from botocore.client import BaseClient

from bench.capacity import metered
from bench.floor import quiet
from bench.local_dynamodb import local_dynamodb

# Public list prices, US East (N. Virginia), on-demand, as published on aws.amazon.com/pricing on 2025-01-31
# (DynamoDB after its November 2024 on-demand reduction). Free tiers are ignored.
PRICES_DATE = "2025-01-31"
PRICES = {
    "dynamodb_write_unit": 0.625 / 1e6,  # per write request unit
    "dynamodb_read_unit": 0.125 / 1e6,  # per read request unit
    "lambda_gb_second": 0.0000133334,  # arm64
    "lambda_request": 0.20 / 1e6,
    "api_request": 3.50 / 1e6,  # REST API, first 333 million a month
    "eventbridge_event": 1.00 / 1e6,  # custom events (64 KB chunks)
    "stream_read": 0.0,  # GetRecords by a Lambda event source mapping is free
    "s3_put": 0.005 / 1000,  # S3 Standard PUT, COPY, POST, LIST requests
}
# RollupsDaily rebuilds the current and the previous month of every org each day: a month is rebuilt about
# 30 times while it is current and 30 more while it is the previous one.
DAILY_REBUILDS_PER_MONTH = 60


@dataclass
class Usage:
    read_units: float = 0.0
    write_units: float = 0.0
    api_requests: int = 0
    events: int = 0
    stream_reads: int = 0
    s3_puts: int = 0
    invocations: Counter[str] = field(default_factory=Counter)
    gb_seconds: float = 0.0

    def add(self, other: Usage, *, times: int) -> None:
        """Another usage `times` over (a recurring job's runs in a month)."""
        self.read_units += other.read_units * times
        self.write_units += other.write_units * times
        self.api_requests += other.api_requests * times
        self.events += other.events * times
        self.stream_reads += other.stream_reads * times
        self.s3_puts += other.s3_puts * times
        self.gb_seconds += other.gb_seconds * times
        for name, count in other.invocations.items():
            self.invocations[name] += count * times

    def cost(self) -> dict[str, float]:
        return {
            "dynamodb": self.read_units * PRICES["dynamodb_read_unit"]
            + self.write_units * PRICES["dynamodb_write_unit"],
            "lambda": self.gb_seconds * PRICES["lambda_gb_second"]
            + sum(self.invocations.values()) * PRICES["lambda_request"],
            "api": self.api_requests * PRICES["api_request"],
            "events": self.events * PRICES["eventbridge_event"],
            "streams": self.stream_reads * PRICES["stream_read"],
            "s3": self.s3_puts * PRICES["s3_put"],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engagements", type=int, default=10)
    parser.add_argument("--sessions-per-engagement", type=int, default=6)
    args = parser.parse_args(argv)
    endpoint = local_dynamodb()
    import boto3
    from coaching.adapters import keys
    from coaching.adapters.dynamo import CoachRepository, admin_ports
    from coaching.adapters.roster_store import RosterStore
    from coaching.auth import Principal, Role
    from coaching.domain.booking import BookingPolicy
    from coaching.domain.coaches import CoachCreate, VettingDecision, VettingStatus
    from coaching.domain.orgs import OrgCreate
    from coaching.ids import person_id_for
    from coaching.services import admin
    from coaching.services.roster import rebuild_roster
    from coaching_local import synthetic, tokens
    from coaching_local.gateway import LocalGateway
    from coaching_local.seed import OPERATOR, coach_profiles, give_price_book

    ctx = admin.AdminContext(**admin_ports())
    org = admin.create_org(OPERATOR, OrgCreate(name="Cost bench", time_zone="UTC", currency="EUR",
                                               industry="technology"), ctx)  # fmt: skip
    policy = BookingPolicy(allowances={"SCALE": {"sessions": 50}}, max_upcoming=20)
    ctx.orgs.modify(org.org_id, lambda current: current.model_copy(update={"booking": policy}))
    give_price_book(org.org_id, "EUR")
    week = [{"weekday": d, "start": "06:00", "end": "22:00"} for d in range(7)]
    coach_ids = []
    # Yoruba: no synthetic coach speaks it, so this org is matched with these coaches even when another
    # benchmark of the same run filled the network first.
    for profile in coach_profiles(3, seed=53):
        changes = {"weekly_availability": week, "time_zone": "UTC", "capacity": 200, "horizon_days": 120,
                   "languages": ["yo"], "programs": ["SCALE"]}  # fmt: skip
        created = admin.create_coach(OPERATOR, CoachCreate.model_validate(profile.model_dump() | changes), ctx)
        admin.set_vetting(OPERATOR, created.coach_id, VettingDecision(status=VettingStatus.APPROVED), ctx)
        coach_ids.append(created.coach_id)
    rebuild_roster(CoachRepository(), RosterStore())
    org_admin = Principal(person_id="bench", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
    rows = synthetic.people(org.org_id, args.engagements + 1, seed=61)  # the last one warms the containers
    for row in rows:
        row.update(languages=["yo"], time_zone="UTC")
    admin.import_people(org_admin, rows, ctx)
    people = [person_id_for(org.org_id, row["external_hr_id"]) for row in rows]

    key = b"bench-signing-key-0123456789abcdef"
    gateway = LocalGateway(port=0, prefix="bench", dynamodb_endpoint=endpoint, signing_key=key, run_scheduler=False,
                           run_streams=True, streams_paused=True,
                           env={"ROSTER_CACHE_TTL_SECONDS": "0"})  # fmt: skip
    gateway.start()
    usage: dict[str, Usage] = {name: Usage() for name in ("match", "book", "remind", "complete", "invoice", "report")}
    current: list[Usage] = [usage["match"]]
    for pool in gateway.pools.values():
        _time_invocations(pool, current)
    _count_events(gateway, current)
    _count_stream_reads_and_s3_puts(current)
    session = requests.Session()

    def call(method: str, path: str, token: str, body: Any = None) -> requests.Response:
        current[0].api_requests += 1
        response = session.request(method, f"{gateway.url}{path}", json=body, timeout=60,
                                   headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        if response.status_code >= 300:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response

    def step(name: str) -> Any:
        return _Step(name, usage[name], current, gateway)

    table = boto3.resource("dynamodb", endpoint_url=endpoint).Table("bench-MainTable")
    delivered = 0
    try:
        with quiet():
            employee = {p: tokens.dev_token("employee", org.org_id, p, key) for p in people}
            # Warm containers, as a running platform has them: one more person goes through match, choice and a
            # booking first, unmeasured, so a new container's roster load is not counted as the sessions' cost.
            *people, warm = people
            current[0] = Usage()
            match = call("POST", "/matches", employee[warm], {"program": "SCALE", "focus_competencies": ["delegation"],
                         "situation": "Preparing a difficult conversation with a peer next week."}).json()  # fmt: skip
            engaged = call("POST", f"/matches/{match['match_id']}/choose", employee[warm],
                           {"coach_id": match["proposals"][0]["coach_id"]}).json()  # fmt: skip
            start = datetime.now(UTC).replace(hour=21, minute=0, second=0, microsecond=0) + timedelta(days=3)
            call("POST", "/bookings", employee[warm], {"engagement_id": engaged["engagement_id"],
                 "start": start.isoformat(), "focus_competencies": ["delegation"],
                 "situation": "Benchmark booking situation text."})  # fmt: skip
            _settle(gateway)
            engagements = {}
            with step("match"):
                for person in people:
                    match = call("POST", "/matches", employee[person], {
                        "program": "SCALE", "focus_competencies": ["delegation"],
                        "situation": "Preparing a difficult conversation with a peer next week."}).json()  # fmt: skip
                    chosen = match["proposals"][0]["coach_id"]
                    engagements[person] = call("POST", f"/matches/{match['match_id']}/choose", employee[person],
                                               {"coach_id": chosen}).json()  # fmt: skip
            bookings = []
            base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2, hours=1)
            with step("book"):
                for index, person in enumerate(people):
                    engagement = engagements[person]
                    for n in range(args.sessions_per_engagement):
                        # Distinct hours per person and per coach: no calendar overlaps.
                        start = base + timedelta(days=n, hours=index % 12, minutes=0)
                        start = start.replace(hour=8 + (index % 12))
                        booked = call("POST", "/bookings", employee[person], {
                            "engagement_id": engagement["engagement_id"], "start": start.isoformat(),
                            "focus_competencies": ["delegation"],
                            "situation": "Benchmark booking situation text."}).json()  # fmt: skip
                        bookings.append((person, engagement["coach_id"], booked["booking_id"]))
            # The sessions happen last month: their stored times move there (unmetered, as the clock would).
            first_of_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            for n, (person, _, booking_id) in enumerate(bookings):
                _time_travel(table, keys, org.org_id, person, booking_id, first_of_month - timedelta(days=20, hours=n))
            with step("complete"):
                for _, coach_id, booking_id in bookings:
                    coach_token = tokens.dev_token("coach", None, coach_id, key)
                    call("POST", f"/coach/sessions/{booking_id}/complete", coach_token, {"actual_minutes": 45})
                    delivered += 1
            last_month = (first_of_month - timedelta(days=1)).strftime("%Y-%m")
            operator = tokens.dev_token("operator", None, "bench-operator", key)
            with step("invoice"):
                call("POST", f"/orgs/{org.org_id}/invoices/{last_month}/run", operator)
            # The report step runs the current month: its people are engaged in it (the sessions moved to last
            # month, where the engagements had not started, so last month's report would have no one in it).
            this_month = first_of_month.strftime("%Y-%m")
            with step("report"):
                rendered = _count(gateway, "ReportDue")
                run = call("POST", f"/orgs/{org.org_id}/reports/{this_month}/run", operator).json()
                _until_delivered(gateway, "ReportDue", rendered)  # report_generation renders on the run's ReportDue
                leader = tokens.dev_token("leader", org.org_id, "bench-leader", key)
                call("GET", f"/orgs/{org.org_id}/reports/{this_month}", leader)
                rollups_mb = gateway.pools["RollupsFunction"].spec.memory_size
                daily = _daily_rebuild(org.org_id, this_month, memory_mb=rollups_mb)
                usage["report"].add(daily, times=DAILY_REBUILDS_PER_MONTH)
            if not run.get("report_due", True) or usage["report"].s3_puts == 0:
                raise SystemExit(f"the month's report was not rendered: {run}")
    finally:
        gateway.stop()

    scale = 1000 / delivered
    memory = {pool.spec.logical_id: pool.spec.memory_size for pool in gateway.pools.values()}
    print(f"cost of 1,000 delivered sessions, measured on {delivered} sessions in {args.engagements} engagements "
          f"({args.sessions_per_engagement} sessions each), scaled x{scale:.1f}")  # fmt: skip
    print(f"prices: AWS public list prices, us-east-1, on-demand, as of {PRICES_DATE}: DynamoDB $0.625 per million "
          "write units and $0.125 per million read units; Lambda arm64 $0.0000133334 per GB-s and $0.20 per "
          "million requests; API Gateway REST $3.50 per million; EventBridge $1.00 per million events; stream "
          "reads by Lambda free; S3 $0.005 per 1,000 PUT requests")  # fmt: skip
    header = (f"  {'step':<9} {'reads':>8} {'writes':>8} {'API':>6} {'events':>7} {'stream':>7} {'S3 PUT':>7} "
              f"{'GB-s':>8} {'USD':>9}")  # fmt: skip
    print(header)
    total = 0.0
    for name, spent in usage.items():
        cost = sum(spent.cost().values()) * scale
        total += cost
        notes = {"remind": "  (no function sends session reminders)",
                 "report": f"  (with {DAILY_REBUILDS_PER_MONTH} daily rebuilds of the month)"}  # fmt: skip
        note = notes.get(name, "")
        print(f"  {name:<9} {spent.read_units * scale:8.0f} {spent.write_units * scale:8.0f} "
              f"{spent.api_requests * scale:6.0f} {spent.events * scale:7.0f} {spent.stream_reads * scale:7.0f} "
              f"{spent.s3_puts * scale:7.0f} {spent.gb_seconds * scale:8.2f} "
              f"{cost:9.4f}{note}")  # fmt: skip
    by_service: Counter[str] = Counter()
    for spent in usage.values():
        for service, cost in spent.cost().items():
            by_service[service] += cost * scale
    print(f"  total USD per 1,000 delivered sessions: {total:.4f}  (per session {total / 1000:.6f})")
    print("  by service: " + ", ".join(f"{k} {v:.4f}" for k, v in by_service.most_common()))
    invocations = Counter[str]()
    for spent in usage.values():
        invocations.update(spent.invocations)
    print("  Lambda invocations per 1,000 sessions at their MemorySize: " + ", ".join(
        f"{fn} {count * scale:.0f} x {memory[fn]} MB" for fn, count in invocations.most_common()))  # fmt: skip
    return 0


class _Step:
    def __init__(self, name: str, usage: Usage, current: list[Usage], gateway: Any) -> None:
        self.name, self.usage, self.current, self.gateway = name, usage, current, gateway

    def __enter__(self) -> None:
        print(f"  step: {self.name}", file=sys.stderr, flush=True)
        self.current[0] = self.usage
        self._meter = metered()
        self.meter = self._meter.__enter__()

    def __exit__(self, *exc: object) -> None:
        _settle(self.gateway)
        self._meter.__exit__(None, None, None)
        self.usage.read_units += self.meter.read_units
        self.usage.write_units += self.meter.write_units


def _settle(gateway: Any) -> None:
    """Let the relay publish what the step wrote and the rules deliver it, then pause the streams again.

    The stream pollers stay paused while a step's requests run: in one process, Powertools' Metrics keep
    one metric set for every function, so a consumer flushing its metrics while a handler adds its own
    could empty the handler's set under it (on Lambda each container is its own process).
    """
    names = [stream["name"] for stream in gateway.stream_list()]
    for name in names:
        gateway.resume_stream(name)
    for _ in range(3):
        gateway.drain_streams(timeout=30)
        before = len(gateway.deliveries())
        time.sleep(0.5)
        if len(gateway.deliveries()) == before:
            break
    for name in names:
        gateway.pause_stream(name)


def _count(gateway: Any, detail_type: str) -> int:
    return sum(1 for d in gateway.deliveries() if d["detail_type"] == detail_type)


def _until_delivered(gateway: Any, detail_type: str, before: int, timeout: float = 120.0) -> None:
    """Run the streams until one more `detail_type` has been delivered (and its consumer has returned)."""
    names = [stream["name"] for stream in gateway.stream_list()]
    for name in names:
        gateway.resume_stream(name)
    deadline = time.monotonic() + timeout
    while _count(gateway, detail_type) <= before:
        if time.monotonic() > deadline:
            raise SystemExit(f"no {detail_type} was delivered within {timeout:.0f} s")
        time.sleep(0.1)
    _settle(gateway)


def _time_invocations(pool: Any, current: list[Usage]) -> None:
    invoke = pool.invoke
    gigabytes = pool.spec.memory_size / 1024

    def timed(event: Any) -> Any:
        began = time.perf_counter()
        try:
            return invoke(event)
        finally:
            billed_ms = max(1, round((time.perf_counter() - began) * 1000))
            current[0].invocations[pool.spec.logical_id] += 1
            current[0].gb_seconds += billed_ms / 1000 * gigabytes

    pool.invoke = timed


def _count_events(gateway: Any, current: list[Usage]) -> None:
    put_events = gateway.bus.put_events

    def counted(entries: Any) -> Any:
        current[0].events += len(entries)
        return put_events(entries)

    gateway.bus.put_events = counted


def _daily_rebuild(org_id: str, period: str, *, memory_mb: int) -> Usage:
    """One daily rebuild of the org's month, as RollupsDaily runs it for each org, measured in-process."""
    from coaching.adapters.rollup_store import RollupSourceStore, RollupStore
    from coaching.domain.common import utc_now
    from coaching.services import rollups

    ctx = rollups.RollupContext(source=RollupSourceStore(), store=RollupStore(), clock=utc_now)
    with metered() as meter:
        began = time.perf_counter()
        rollups.rebuild(org_id, period, ctx)
        billed_ms = max(1, round((time.perf_counter() - began) * 1000))
    # The daily invocation serves every org; its request is counted whole here (a small overstatement).
    usage = Usage(
        read_units=meter.read_units, write_units=meter.write_units, gb_seconds=billed_ms / 1000 * memory_mb / 1024
    )
    usage.invocations["RollupsFunction"] += 1
    return usage


def _count_stream_reads_and_s3_puts(current: list[Usage]) -> None:
    from coaching.adapters.artefact_store import LocalArtefacts

    store = LocalArtefacts.store

    def stored(self: LocalArtefacts, org_id: str, period: str, files: Any) -> None:
        current[0].s3_puts += len(files)  # the local stand-in for the bucket: on S3, one PutObject per file
        store(self, org_id, period, files)

    LocalArtefacts.store = stored  # type: ignore[method-assign]
    original = BaseClient._make_api_call

    def call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodbstreams" and operation == "GetRecords":
            current[0].stream_reads += 1
        return original(self, operation, params)

    BaseClient._make_api_call = call


def _time_travel(table: Any, keys: Any, org_id: str, person_id: str, booking_id: str, start: datetime) -> None:
    key = {"pk": keys.person_pk(org_id, person_id), "sk": keys.booking_sk(booking_id)}
    item = table.get_item(Key=key, ConsistentRead=True)["Item"]
    body = json.loads(item["body"])
    length = datetime.fromisoformat(body["end"]) - datetime.fromisoformat(body["start"])
    body["start"], body["end"] = start.isoformat(), (start + length).isoformat()
    table.put_item(Item=item | {"body": json.dumps(body), "version": item["version"] + 1})


if __name__ == "__main__":
    raise SystemExit(main())
