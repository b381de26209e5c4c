"""Monthly invoicing on DynamoDB Local: does one org's invoice cost the same with 1 org or 110?

Seeds one month of completed-session ledger entries per org straight into the ledger
partitions (BatchWriteItem, keys as coaching.adapters.billing_store writes them), plus a price
book and people per org. Then times `invoice_org` for org 0 while it is the only org, and again
with every org present, counting read units with ReturnConsumedCapacity: the ratio should be
about 1, because an invoice reads its own month partition with one Query and never scans.
Finally it invoices every org, one after the other, as the InvoiceDue fan-out would.

    python -m bench.invoicing                     # 110 orgs x 10,000 sessions (a few minutes to seed)
    python -m bench.invoicing --quick             # 12 orgs x 2,000 sessions
    python -m bench.invoicing --orgs 50 --sessions 5000 --people 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench.local_dynamodb import local_dynamodb

PERIOD = "2026-09"
NOW = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)  # the monthly run's instant for September
MONTH_START = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
RERUNS = 5
BATCH = 25  # BatchWriteItem's limit


def _context() -> Any:
    """The invoicing context on the real adapters, as functions/metering/app.py builds it."""
    from coaching.adapters.billing_store import BillingStore
    from coaching.adapters.dynamo import OrgRepository
    from coaching.adapters.metering_reads import ActiveHeadcount, SessionReads
    from coaching.adapters.outbox import commit_events
    from coaching.domain.common import utc_now
    from coaching.services.invoicing import InvoicingContext

    return InvoicingContext(
        billing=BillingStore(),
        orgs=OrgRepository(),
        sessions=SessionReads(),
        headcount=ActiveHeadcount(),
        commit_events=commit_events,
        clock=utc_now,
    )


def _batches(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


class Seeder:
    """Raw BatchWriteItem from a thread pool: seeding speed, not the code under test."""

    def __init__(self, endpoint: str, table: str, workers: int) -> None:
        import boto3
        from botocore.config import Config

        self.table = table
        self.workers = workers
        self.client = boto3.client("dynamodb", endpoint_url=endpoint, config=Config(max_pool_connections=workers))
        self.items = 0
        self.seconds = 0.0

    def _write(self, batch: list[dict[str, Any]]) -> None:
        request: dict[str, Any] = {self.table: [{"PutRequest": {"Item": item}} for item in batch]}
        attempt = 0
        while request:
            response = self.client.batch_write_item(RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if request:
                time.sleep(min(0.05 * 2**attempt, 1.0))
                attempt += 1

    def write(self, items: list[dict[str, Any]]) -> None:
        began = time.perf_counter()
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(self._write, _batches(items)))
        self.seconds += time.perf_counter() - began
        self.items += len(items)


def _templates(book: Any) -> list[dict[str, Any]]:
    """Valid ledger entries as dicts, one per (program, outcome) mix slot; amounts from the domain."""
    from coaching.domain.invoicing import usage_entry
    from coaching.domain.pricing import Outcome, charge_for
    from coaching.domain.taxonomy import Program

    version = book.versions[0]
    mix = [(Program.SCALE, 30, Outcome.COMPLETED)] * 12 + [(Program.GROW, 45, Outcome.COMPLETED)] * 6
    mix += [(Program.SCALE, 30, Outcome.NO_SHOW), (Program.GROW, 45, Outcome.LATE_CANCELLED)]
    return [
        usage_entry(
            org_id=book.org_id,
            booking_id="template",
            person_id="template",
            program=program,
            length_minutes=length,
            outcome=outcome,
            charge=charge_for(version, program, length, outcome),
            occurred_at=MONTH_START,
            time_zone="UTC",
            actor="bench-coach",
            now=MONTH_START,
        ).model_dump(mode="json")
        for program, length, outcome in mix
    ]


def ledger_items(org_id: str, book: Any, sessions: int, people: int) -> list[dict[str, Any]]:
    from coaching.adapters import keys

    templates = _templates(book)
    step = timedelta(days=29) / max(sessions, 1)
    pk = keys.ledger_pk(org_id, PERIOD)
    items = []
    for n in range(sessions):
        entry = dict(templates[n % len(templates)])
        booking_id = f"{org_id[:8]}-{n:08d}"
        at = (MONTH_START + step * n).isoformat()
        entry.update(
            entry_id=f"{booking_id}#{entry['outcome']}",
            org_id=org_id,
            booking_id=booking_id,
            person_id=f"{org_id[:8]}-p{n % max(people, 1):05d}",
            occurred_at=at,
            recorded_at=at,
        )
        body = json.dumps(entry, separators=(",", ":"))
        items.append(
            {
                "pk": {"S": pk},
                "sk": {"S": keys.entry_sk(entry["entry_id"])},
                "kind": {"S": "ledger_entry"},
                "body": {"S": body},
                "version": {"N": "1"},
            }
        )
    return items


def people_items(org_id: str, count: int) -> list[dict[str, Any]]:
    from coaching.adapters import keys
    from coaching.domain.people import Person

    base = Person(
        person_id="template",
        org_id=org_id,
        external_hr_id="template",
        name="Bench Person",
        email="person@example.com",
        level="manager",
        function="engineering",
        languages=["en"],
        time_zone="UTC",
        created_at=NOW,
        updated_at=NOW,
    )
    items = []
    for n in range(count):
        person_id = f"{org_id[:8]}-p{n:05d}"
        # One in ten has left: the eligible headcount counts active people only.
        person = base.model_copy(update={"person_id": person_id, "external_hr_id": f"HR{n:05d}", "active": n % 10 != 0})
        items.append(
            {
                "pk": {"S": keys.people_pk(org_id)},
                "sk": {"S": keys.person_sk(person_id)},
                "kind": {"S": "person"},
                "body": {"S": person.model_dump_json()},
                "version": {"N": "1"},
            }
        )
    return items


def _new_org(number: int) -> tuple[str, Any]:
    from coaching.adapters.dynamo import admin_ports
    from coaching.domain.orgs import OrgCreate
    from coaching.domain.pricing import PriceBookVersionInput
    from coaching.services import admin, invoicing
    from coaching_local.seed import OPERATOR

    org = admin.create_org(
        OPERATOR,
        OrgCreate(name=f"Invoicing bench {number}", time_zone="UTC", currency="EUR", industry="technology"),
        admin.AdminContext(**admin_ports()),
    )
    version = PriceBookVersionInput(
        effective_from=date(2026, 1, 1),
        currency="EUR",
        session_prices={"SCALE": {30: 9_000}, "GROW": {45: 13_500}},
        late_cancel_fee_bps=5_000,
        no_show_fee_bps=5_000,
        tiers=[{"from_session": 101, "discount_bps": 1_000}, {"from_session": 1_001, "discount_bps": 2_000}],
        seat_price_minor=4_000,
    )
    return org.org_id, invoicing.add_price_book_version(OPERATOR, org.org_id, version, _context())


def _seed_org(seeder: Seeder, number: int, sessions: int, people: int) -> str:
    org_id, book = _new_org(number)
    seeder.write(ledger_items(org_id, book, sessions, people) + people_items(org_id, people))
    return org_id


def _timed(org_id: str) -> tuple[float, float, float, dict[str, int], Any]:
    """One invoice run: seconds, read units, write units, calls by operation, the invoice."""
    from coaching.services import invoicing

    from bench.capacity import metered

    ctx = _context()
    with metered() as meter:
        began = time.perf_counter()
        invoice = invoicing.invoice_org(org_id, PERIOD, NOW, ctx)
        seconds = time.perf_counter() - began
    return seconds, meter.read_units, meter.write_units, dict(meter.calls), invoice


def _bare_query(seeder: Seeder, org_id: str) -> float:
    """The floor: the month partition read with boto3 alone (same consistent Query, no parsing)."""
    from coaching.adapters import keys

    paginator = seeder.client.get_paginator("query")
    samples = []
    for _ in range(RERUNS):
        began = time.perf_counter()
        for _page in paginator.paginate(
            TableName=seeder.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :entry)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.ledger_pk(org_id, PERIOD)},
                ":entry": {"S": keys.ENTRY_PREFIX},
            },
            ConsistentRead=True,
        ):
            pass
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def _warm_up(org_id: str) -> None:
    """Pay the one-off costs (validator builds, connections, first-call paths) before anything is
    measured: an empty earlier month of the same org, and the month's invoice computed in memory."""
    from coaching.adapters.billing_store import BillingStore
    from coaching.domain.invoicing import compute_invoice
    from coaching.services import invoicing

    invoicing.invoice_org(org_id, "2026-08", NOW, _context())
    store = BillingStore()
    book = store.price_book(org_id)
    entries = list(store.entries(org_id, PERIOD))
    compute_invoice(org_id=org_id, period=PERIOD, entries=entries, price_book=book, eligible_headcount=0, now=NOW)


def _reruns(org_id: str) -> tuple[float, float, dict[str, int]]:
    """Median of RERUNS re-runs, after two discarded ones (both JITs settle on the same work)."""
    runs = [_timed(org_id) for _ in range(RERUNS + 2)][2:]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[-1][3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=110)
    parser.add_argument("--sessions", type=int, default=10_000, help="completed-session ledger entries per org")
    parser.add_argument("--people", type=int, default=500, help="people per org (one in ten inactive)")
    parser.add_argument("--workers", type=int, default=16, help="seeding threads")
    parser.add_argument("--quick", action="store_true", help="12 orgs x 2,000 sessions x 200 people")
    args = parser.parse_args(argv)
    if args.quick:
        args.orgs, args.sessions, args.people = 12, 2_000, 200
    if args.orgs < 2:
        parser.error("--orgs must be at least 2 to compare one org with many")

    endpoint = local_dynamodb()
    from coaching.config import settings

    seeder = Seeder(endpoint, settings().main_table, args.workers)
    print(f"invoicing: {args.orgs} orgs x {args.sessions:,} ledger entries ({PERIOD}) x {args.people} people")

    first_org = _seed_org(seeder, 0, args.sessions, args.people)
    _warm_up(first_org)
    first_s, first_rcu, first_wcu, first_calls, invoice = _timed(first_org)
    solo_s, solo_rcu, solo_calls = _reruns(first_org)

    for number in range(1, args.orgs):
        _seed_org(seeder, number, args.sessions, args.people)
    rate = seeder.items / seeder.seconds
    print(f"  seeded {seeder.items:,} items in {seeder.seconds:.0f} s ({rate:,.0f} items/s, {args.workers} threads)")

    many_s, many_rcu, many_calls = _reruns(first_org)
    bare_s = _bare_query(seeder, first_org)
    from coaching.adapters.dynamo import OrgRepository

    org_ids = [org.org_id for org in OrgRepository().list(limit=100, cursor=None).items]
    cursor = OrgRepository().list(limit=100, cursor=None).next_cursor
    while cursor:
        page = OrgRepository().list(limit=100, cursor=cursor)
        org_ids += [org.org_id for org in page.items]
        cursor = page.next_cursor
    others = [org_id for org_id in org_ids if org_id != first_org]
    began = time.perf_counter()
    runs = [_timed(org_id) for org_id in [first_org, *others]]
    total_s = time.perf_counter() - began
    fresh = runs[1:]  # first runs of every other org, with every org present
    fresh_s = statistics.median(r[0] for r in fresh)
    fresh_rcu = statistics.median(r[1] for r in fresh)
    scans = sum(r[3].get("Scan", 0) for r in runs) + first_calls.get("Scan", 0)

    print(f"  invoice of org 0: {invoice.entry_count:,} entries, {invoice.total_minor / 100:,.2f} EUR, "
          f"{len(invoice.lines)} lines, headcount {invoice.summary.eligible_headcount}")  # fmt: skip
    rows = [
        ("first run, 1 org present", first_s, first_rcu, first_calls),
        (f"first run, {args.orgs} orgs (median)", fresh_s, fresh_rcu, fresh[0][3]),
        ("re-run, 1 org present", solo_s, solo_rcu, solo_calls),
        (f"re-run, {args.orgs} orgs present", many_s, many_rcu, many_calls),
    ]
    print(f"  {'invoice_org':32} {'ms':>7} {'read units':>11}   calls")
    for label, seconds, units, calls in rows:
        print(f"  {label:32} {seconds * 1000:7.0f} {units:11.1f}   {_calls(calls)}")
    print(f"  {'bare Query of the partition':32} {bare_s * 1000:7.0f}   (boto3 only, {args.orgs} orgs present)")
    print(f"  a first run also writes {first_wcu:.0f} units (period close, invoice); "
          f"re-run / bare Query: {many_s / bare_s:.2f}x")  # fmt: skip
    print(f"  ratio {args.orgs} orgs / 1 org: re-run time {many_s / solo_s:.2f}, read units {many_rcu / solo_rcu:.2f}; "
          f"first run time {fresh_s / first_s:.2f}, read units {fresh_rcu / first_rcu:.2f}")  # fmt: skip
    print(f"  read units per entry: {many_rcu / invoice.entry_count:.3f}; Scan calls: {scans}")
    print(f"  all {len(runs)} orgs invoiced one after another: {total_s:.1f} s "
          f"({total_s / len(runs) * 1000:.0f} ms per org)")  # fmt: skip
    return 0


def _calls(calls: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))


if __name__ == "__main__":
    raise SystemExit(main())
