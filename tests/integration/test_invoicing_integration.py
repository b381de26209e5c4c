"""Invoicing on DynamoDB Local: the monthly run, finalisation, month to date and reconciliation.

In-process tests drive coaching.services.invoicing against the real stores; the HTTP tests at
the end go through the local stack (real handler, template routes, development tokens).
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from coaching.adapters import keys
from coaching.adapters.billing_store import BillingStore, commit_with_entry
from coaching.adapters.booking_store import CounterItem, LocatorItem
from coaching.adapters.dynamo import MainItem, OrgRepository, Page, admin_ports
from coaching.adapters.metering_reads import ActiveHeadcount, SessionReads
from coaching.adapters.outbox import OutboxItem, commit_events
from coaching.auth import Principal, Role
from coaching.domain.booking import BookingPolicy
from coaching.domain.common import utc_now
from coaching.domain.errors import Conflict, Forbidden, InvalidInput
from coaching.domain.events import InvoiceDue, ReconciliationDue, stable_event_id
from coaching.domain.invoicing import EntryKind, Invoice, InvoiceStatus, LedgerEntry, LineKind, usage_entry
from coaching.domain.orgs import Org, OrgCreate
from coaching.domain.people import PersonCreate
from coaching.domain.pricing import NoPriceBook, Outcome, PriceBook, PriceBookVersionInput, charge_for
from coaching.domain.taxonomy import Program
from coaching.services import admin, invoicing, reconciliation
from coaching.services.invoicing import InvoicingContext
from coaching_local.seed import OPERATOR

pytestmark = pytest.mark.integration

ZONE = "Europe/Berlin"
PERIOD = "2025-03"
NEXT = "2025-04"
# Well after both months ended in Berlin; far from the real clock, so scheduled runs never touch them.
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
PRICE = 10_000  # SCALE 30 min, EUR cents
# The invoicing context on the real adapters, as functions/metering/app.py builds it.
CTX = InvoicingContext(
    billing=BillingStore(),
    orgs=OrgRepository(),
    sessions=SessionReads(),
    headcount=ActiveHeadcount(),
    commit_events=commit_events,
    clock=utc_now,
)


def book_input(**overrides: object) -> PriceBookVersionInput:
    fields: dict[str, object] = {
        "effective_from": date(2025, 1, 1),
        "currency": "EUR",
        "session_prices": {"SCALE": {"30": PRICE}, "EXEC": {"60": 40_000}},
        "no_show_fee_bps": 5000,
        "late_cancel_fee_bps": 5000,
        "tiers": [{"from_session": 4, "discount_bps": 1000}],
        "seat_price_minor": 5_000,
    }
    return PriceBookVersionInput.model_validate({**fields, **overrides})


def new_org(*, zone: str = ZONE, currency: str = "EUR", price_book: PriceBookVersionInput | None = None) -> Org:
    ctx = admin.AdminContext(**admin_ports())
    org = admin.create_org(
        OPERATOR,
        OrgCreate(name=f"Billing {uuid.uuid4().hex[:6]}", time_zone=zone, currency=currency, industry="technology"),
        ctx,
    )
    if price_book is not None:
        invoicing.add_price_book_version(OPERATOR, org.org_id, price_book, CTX)
    return org


def add_people(org_id: str, active: int, inactive: int = 0) -> None:
    ctx = admin.AdminContext(**admin_ports())
    org_admin = Principal(person_id="admin", org_id=org_id, roles=frozenset({Role.ORG_ADMIN}))
    for n in range(active + inactive):
        admin.create_person(
            org_admin,
            PersonCreate(
                external_hr_id=f"B-{uuid.uuid4().hex[:8]}",
                name=f"Person {n}",
                email=f"p{n}@example.com",
                level="manager",
                function="engineering",
                languages=["en"],
                time_zone=ZONE,
                active=n < active,
            ),
            ctx,
        )


def commit_usage(
    org_id: str,
    at: datetime,
    *,
    outcome: Outcome = Outcome.COMPLETED,
    booking_id: str | None = None,
    person: str = "p1",
    billed_in: str | None = None,
    status: str | None = None,
) -> LedgerEntry:
    """A usage entry committed the way completion commits it (open-month rule and guard), plus
    the session's locator with its status, as the booking store writes it."""
    book = BillingStore().price_book(org_id)
    assert book is not None
    booking_id = booking_id or str(uuid.uuid4())
    entry = usage_entry(
        org_id=org_id,
        booking_id=booking_id,
        person_id=person,
        program=Program.SCALE,
        length_minutes=30,
        outcome=outcome,
        charge=charge_for(book.version_for(at.date()), Program.SCALE, 30, outcome),
        occurred_at=at,
        time_zone=ZONE,
        actor="coach",
        now=at + timedelta(hours=1),
        billed_in=billed_in,
    )
    saved = commit_with_entry(lambda _transaction: None, entry, lambda keys: Conflict(f"refused: {keys}"))
    write_locator(org_id, booking_id, entry.period, status or outcome.value)
    return saved


def write_locator(org_id: str, booking_id: str, period: str, status: str) -> None:
    LocatorItem(
        *keys.locator_key(booking_id),
        org_id=org_id,
        person_id="p1",
        coach_id="c1",
        status=status,
        gsi1pk=keys.sessions_index_pk(org_id, period),
        gsi1sk=keys.sessions_index_sk(booking_id),
    ).save()


def march(day: int, hour: int = 9) -> datetime:
    return datetime(2025, 3, day, hour, 0, tzinfo=UTC)


def invoice_items(org_id: str) -> list[MainItem]:
    return list(
        MainItem.query(keys.billing_pk(org_id), MainItem.sk.startswith(keys.INVOICE_PREFIX), consistent_read=True)
    )


def finance_of(org_id: str) -> Principal:
    return Principal(person_id="cfo", org_id=org_id, roles=frozenset({Role.FINANCE}))


# ---------------------------------------------------------------------------- the invoice run


def test_two_concurrent_runs_leave_one_invoice_and_compute_the_same(dynamodb_local):
    org = new_org(price_book=book_input())
    add_people(org.org_id, active=3, inactive=2)
    for n in range(6):
        commit_usage(org.org_id, march(3 + n), person=f"p{n % 2}")
    commit_usage(org.org_id, march(20), outcome=Outcome.NO_SHOW)

    barrier = threading.Barrier(2)
    results: dict[int, Invoice] = {}
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            results[n] = invoicing.invoice_org(org.org_id, PERIOD, NOW + timedelta(seconds=n), CTX)
        except BaseException as exc:  # surfaced below, with the thread's own traceback
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert results[0].model_dump_json() == results[1].model_dump_json()
    assert len(invoice_items(org.org_id)) == 1

    invoice = results[0]
    closed_at = BillingStore().period_closed_at(org.org_id, PERIOD)
    assert invoice.created_at == datetime.fromisoformat(closed_at)
    assert invoice.status is InvoiceStatus.DRAFT
    assert invoice.entry_count == 7
    # 6 sessions at 100.00, a 50 % no-show fee, 10 % off sessions 4 to 6.
    assert invoice.amount_of(LineKind.SESSION) == 6 * PRICE
    assert invoice.amount_of(LineKind.FEE) == PRICE // 2
    assert invoice.amount_of(LineKind.TIER_DISCOUNT) == -3 * PRICE // 10
    assert invoice.total_minor == 6 * PRICE + PRICE // 2 - 3 * PRICE // 10
    assert invoice.summary.eligible_headcount == 3  # the two inactive people are not eligible
    assert invoice.summary.active_participants == 2

    version = BillingStore().invoice(org.org_id, PERIOD)[1]
    again = invoicing.invoice_org(org.org_id, PERIOD, NOW + timedelta(days=3), CTX)
    assert again.model_dump_json() == invoice.model_dump_json()
    assert BillingStore().invoice(org.org_id, PERIOD)[1] == version  # an unchanged draft is not rewritten


def test_a_draft_is_recomputed_and_a_finalised_invoice_never_changes(dynamodb_local):
    org = new_org(price_book=book_input())
    add_people(org.org_id, active=2)
    commit_usage(org.org_id, march(4))
    draft = invoicing.invoice_org(org.org_id, PERIOD, NOW, CTX)
    assert draft.summary.eligible_headcount == 2

    add_people(org.org_id, active=1)
    redrawn = invoicing.invoice_org(org.org_id, PERIOD, NOW + timedelta(hours=1), CTX)
    assert redrawn.summary.eligible_headcount == 3
    assert redrawn.created_at == draft.created_at  # the first close, whoever runs it later
    assert redrawn.lines == draft.lines

    finalised = invoicing.finalise_invoice(finance_of(org.org_id), org.org_id, PERIOD, CTX)
    assert finalised.status is InvoiceStatus.FINALISED
    assert finalised.finalised_at is not None

    add_people(org.org_id, active=4)
    rerun = invoicing.invoice_org(org.org_id, PERIOD, NOW + timedelta(days=1), CTX)
    assert rerun.model_dump_json() == finalised.model_dump_json()
    assert BillingStore().invoice(org.org_id, PERIOD)[0].summary.eligible_headcount == 3

    with pytest.raises(Conflict, match="already finalised"):
        invoicing.finalise_invoice(OPERATOR, org.org_id, PERIOD, CTX)
    with pytest.raises(Conflict, match="no draft invoice"):
        invoicing.finalise_invoice(OPERATOR, org.org_id, "2025-02", CTX)
    employee = Principal(person_id="e", org_id=org.org_id, roles=frozenset({Role.EMPLOYEE}))
    with pytest.raises(Forbidden):
        invoicing.finalise_invoice(employee, org.org_id, PERIOD, CTX)
    with pytest.raises(Forbidden):
        invoicing.finalise_invoice(finance_of(str(uuid.uuid4())), org.org_id, PERIOD, CTX)


def test_usage_after_the_close_lands_on_the_next_invoice_as_an_adjustment(dynamodb_local):
    org = new_org(price_book=book_input())
    commit_usage(org.org_id, march(5))
    invoicing.invoice_org(org.org_id, PERIOD, NOW, CTX)
    march_invoice = invoicing.finalise_invoice(OPERATOR, org.org_id, PERIOD, CTX)
    assert (march_invoice.entry_count, march_invoice.status) == (1, InvoiceStatus.FINALISED)

    # A March session completed after March was invoiced and finalised: the open-month rule moves it.
    late = commit_usage(org.org_id, march(28, 15))
    assert (late.period, late.billed_in) == (PERIOD, NEXT)
    assert BillingStore().entry(org.org_id, late.booking_id, EntryKind.USAGE).billed_in == NEXT
    assert [e.entry_id for e in BillingStore().entries(org.org_id, NEXT)] == [late.entry_id]

    again = invoicing.invoice_org(org.org_id, PERIOD, NOW, CTX)
    assert again.model_dump_json() == march_invoice.model_dump_json()

    commit_usage(org.org_id, datetime(2025, 4, 10, 9, tzinfo=UTC))
    april = invoicing.invoice_org(org.org_id, NEXT, NOW, CTX)
    adjustments = [line for line in april.lines if line.kind is LineKind.ADJUSTMENT]
    assert len(adjustments) == 1
    assert (adjustments[0].period, adjustments[0].amount_minor, adjustments[0].quantity) == (PERIOD, PRICE, 1)
    assert april.amount_of(LineKind.SESSION) == PRICE
    assert april.total_minor == 2 * PRICE
    assert april.summary.sessions_delivered == 1  # the late March session is not April's
    assert reconciliation.reconcile(org.org_id, PERIOD, CTX).differences == []
    assert reconciliation.reconcile(org.org_id, NEXT, CTX).differences == []


def test_a_month_that_has_not_ended_in_the_org_time_zone_is_not_invoiced(dynamodb_local):
    org = new_org(zone="Pacific/Pago_Pago", price_book=book_input())  # UTC-11
    # 1 April 05:00 UTC is still 31 March in Pago Pago.
    with pytest.raises(InvalidInput) as refused:
        invoicing.invoice_org(org.org_id, PERIOD, datetime(2025, 4, 1, 5, 0, tzinfo=UTC), CTX)
    assert refused.value.field == "period"
    assert BillingStore().period_closed_at(org.org_id, PERIOD) is None
    with pytest.raises(InvalidInput) as bad:
        invoicing.invoice_org(org.org_id, "2025-13", NOW, CTX)
    assert bad.value.field == "period"


def test_an_org_without_a_price_book_is_skipped_and_reconciliation_reports_its_entries(dynamodb_local):
    org = new_org()
    outcome = invoicing.on_invoice_due(InvoiceDue(org_id=org.org_id, period=PERIOD), CTX)
    assert outcome.status == "skipped"
    assert "no price book" in (outcome.reason or "")
    assert BillingStore().period_closed_at(org.org_id, PERIOD) is None  # still open: nothing moved on
    with pytest.raises(NoPriceBook):
        invoicing.run_invoice(OPERATOR, org.org_id, PERIOD, CTX)
    assert reconciliation.reconcile(org.org_id, PERIOD, CTX).differences == []

    # An entry priced elsewhere (say, before the book was lost) cannot be invoiced: reported.
    foreign = PriceBook(org_id=org.org_id).with_version(book_input(), now=NOW, actor="test")
    entry = usage_entry(
        org_id=org.org_id,
        booking_id=str(uuid.uuid4()),
        person_id="p1",
        program=Program.SCALE,
        length_minutes=30,
        outcome=Outcome.COMPLETED,
        charge=charge_for(foreign.versions[0], Program.SCALE, 30, Outcome.COMPLETED),
        occurred_at=march(6),
        time_zone=ZONE,
        actor="coach",
        now=march(6, 12),
    )
    commit_with_entry(lambda _transaction: None, entry, lambda keys: Conflict(f"refused: {keys}"))
    write_locator(org.org_id, entry.booking_id, PERIOD, "completed")
    report = reconciliation.reconcile(org.org_id, PERIOD, CTX)
    assert len(report.differences) == 1
    assert "1 ledger entries are billed in 2025-03 but cannot be invoiced" in report.differences[0]


# ---------------------------------------------------------------------------- price books


def test_price_book_versions_follow_the_org_currency_and_never_rewrite_a_drawn_month(dynamodb_local):
    org = new_org(currency="GBP")
    with pytest.raises(InvalidInput) as wrong_currency:
        invoicing.add_price_book_version(OPERATOR, org.org_id, book_input(), CTX)
    assert wrong_currency.value.field == "currency"
    invoicing.add_price_book_version(OPERATOR, org.org_id, book_input(currency="GBP"), CTX)
    with pytest.raises(Forbidden):
        invoicing.add_price_book_version(finance_of(org.org_id), org.org_id, book_input(currency="GBP"), CTX)

    commit_usage(org.org_id, march(7))
    invoicing.invoice_org(org.org_id, PERIOD, NOW, CTX)
    # Effective in February would change the version in effect in March, whose invoice is drawn.
    with pytest.raises(InvalidInput) as drawn:
        invoicing.add_price_book_version(
            OPERATOR, org.org_id, book_input(currency="GBP", effective_from=date(2025, 2, 1)), CTX
        )
    assert drawn.value.field == "effective_from"
    assert "2025-03 has already been drawn" in drawn.value.message
    assert "from 2025-04-01 at the earliest" in drawn.value.message
    book = invoicing.add_price_book_version(
        OPERATOR, org.org_id, book_input(currency="GBP", effective_from=date(2025, 4, 1)), CTX
    )
    assert [v.version for v in book.versions] == [1, 2]
    assert invoicing.get_price_book(finance_of(org.org_id), org.org_id, CTX) == book
    with pytest.raises(Forbidden):
        invoicing.get_price_book(finance_of(str(uuid.uuid4())), org.org_id, CTX)
    assert invoicing.get_price_book(OPERATOR, new_org().org_id, CTX).versions == []


# ---------------------------------------------------------------------------- month to date


def test_month_to_date_counts_sessions_money_cap_and_commitment(dynamodb_local):
    org = new_org(price_book=book_input(monthly_commitment_minor=100_000))
    policy = BookingPolicy(monthly_session_cap=50)
    OrgRepository().modify(org.org_id, lambda current: current.model_copy(update={"booking": policy}))
    june = [datetime(2025, 6, day, 9, tzinfo=UTC) for day in (2, 3, 4)]
    for n, at in enumerate(june):
        commit_usage(org.org_id, at, person=f"p{n % 2}")
    commit_usage(org.org_id, datetime(2025, 6, 5, 9, tzinfo=UTC), outcome=Outcome.NO_SHOW)
    # A May session that arrived after May closed: billed in June, shown as a late adjustment.
    commit_usage(org.org_id, datetime(2025, 5, 30, 9, tzinfo=UTC), billed_in="2025-06")
    CounterItem(*keys.meter_key(org.org_id, "cap", "2025-06"), kind="org_usage", used=7).save()

    view = invoicing.month_to_date(finance_of(org.org_id), org.org_id, datetime(2025, 6, 10, 12, tzinfo=UTC), CTX)
    assert view.period == "2025-06"
    assert (view.sessions_delivered, view.active_participants, view.no_shows, view.late_cancellations) == (3, 2, 1, 0)
    assert view.amount_so_far_minor == 3 * PRICE + PRICE // 2 + PRICE
    assert view.late_adjustments_minor == PRICE
    assert view.currency == "EUR"
    assert (view.monthly_session_cap, view.sessions_counted, view.sessions_left_under_cap) == (50, 7, 43)
    assert view.allowances == policy.allowances
    assert view.price_book_version == 1
    assert view.monthly_commitment_minor == 100_000
    # The month's own charges (35,000) fall 65,000 short; the late May session does not count.
    assert view.commitment_shortfall_minor == 100_000 - (3 * PRICE + PRICE // 2)

    # On the 1st of July in Berlin, the month to date is July, and empty.
    july = invoicing.month_to_date(OPERATOR, org.org_id, datetime(2025, 6, 30, 23, tzinfo=UTC), CTX)
    assert july.period == "2025-07"
    assert (july.sessions_delivered, july.amount_so_far_minor, july.commitment_shortfall_minor) == (0, 0, 100_000)
    employee = Principal(person_id="e", org_id=org.org_id, roles=frozenset({Role.EMPLOYEE}))
    with pytest.raises(Forbidden):
        invoicing.month_to_date(employee, org.org_id, NOW, CTX)


# ---------------------------------------------------------------------------- reconciliation


def test_reconciliation_is_clean_then_finds_every_planted_difference(dynamodb_local):
    org = new_org(price_book=book_input())
    for n in range(4):
        commit_usage(org.org_id, march(3 + n))
    commit_usage(org.org_id, march(10), outcome=Outcome.LATE_CANCELLED, status="late_cancelled")
    write_locator(org.org_id, str(uuid.uuid4()), PERIOD, "cancelled")  # free cancellation: no entry
    write_locator(org.org_id, str(uuid.uuid4()), PERIOD, "booked")
    invoicing.invoice_org(org.org_id, PERIOD, NOW, CTX)

    clean = reconciliation.reconcile(org.org_id, PERIOD, CTX)
    assert clean.differences == []
    assert (clean.sessions, clean.billable_sessions, clean.usage_entries_found, clean.ledger_entries) == (7, 5, 5, 5)
    assert clean.invoice_status is InvoiceStatus.DRAFT

    # 1. A completed session that was never billed.
    unbilled = str(uuid.uuid4())
    write_locator(org.org_id, unbilled, PERIOD, "completed")
    # 2. A session billed as completed, then cancelled for free in the booking record.
    cancelled = commit_usage(org.org_id, march(12), billed_in=NEXT, status="cancelled")
    # 3. An invoice tampered with after it was drawn.
    stored, version = BillingStore().invoice(org.org_id, PERIOD)
    BillingStore().save_invoice(stored.model_copy(update={"total_minor": stored.total_minor + 1}), version)

    report = reconciliation.reconcile(org.org_id, PERIOD, CTX)
    assert len(report.differences) == 3, report.differences
    assert any(unbilled in d and "no usage entry" in d for d in report.differences)
    assert any(cancelled.booking_id in d and "cancelled (not billable)" in d for d in report.differences)
    assert any(d.startswith(f"invoice {stored.invoice_id}: total") for d in report.differences)
    assert report.billable_sessions == 6
    assert report.usage_entries_found == 5


def test_reconciliation_finds_a_guard_without_its_entry_and_an_entry_without_its_session(dynamodb_local):
    org = new_org(price_book=book_input())
    entry = commit_usage(org.org_id, march(3))
    orphan = commit_usage(org.org_id, march(4))
    LocatorItem.get(*keys.locator_key(orphan.booking_id)).delete()
    MainItem.get(keys.ledger_pk(org.org_id, PERIOD), keys.entry_sk(entry.entry_id)).delete()

    report = reconciliation.reconcile(org.org_id, PERIOD, CTX)
    assert sorted(report.differences) == sorted(
        [
            f"session {entry.booking_id}: its usage guard points to entry {PERIOD}/{entry.entry_id}, "
            "which does not exist",
            f"usage entry {orphan.entry_id} bills session {orphan.booking_id}, which is not among the sessions "
            f"of {PERIOD}",
        ]
    )
    guard_pk, guard_sk = keys.guard_key(org.org_id, entry.booking_id, EntryKind.USAGE)
    assert MainItem.count(guard_pk, MainItem.sk == guard_sk) == 1
    assert BillingStore().entry(org.org_id, entry.booking_id, EntryKind.USAGE) is None


# ---------------------------------------------------------------------------- fan-out


class OnlyTheseOrgs:
    """The org directory restricted to a test's own orgs: the table holds every other test's orgs,
    and a fan-out over them would write (and a running local stack relay) events for all of them."""

    def __init__(self, *org_ids: str) -> None:
        self.org_ids = sorted(org_ids)

    def get(self, org_id: str) -> Org | None:
        return OrgRepository().get(org_id) if org_id in self.org_ids else None

    def list(self, *, limit: int, cursor: str | None) -> Page[Org]:
        start = int(cursor or 0)
        page = [org for org_id in self.org_ids[start : start + limit] if (org := OrgRepository().get(org_id))]
        more = start + limit < len(self.org_ids)
        return Page(items=page, next_cursor=str(start + limit) if more else None)


def outbox_detail(event_id: str) -> tuple[str, str, dict[str, object]] | None:
    try:
        item = OutboxItem.get(keys.outbox_pk(event_id), keys.OUTBOX_SK, consistent_read=True)
    except OutboxItem.DoesNotExist:
        return None
    return item.source, item.detail_type, json.loads(item.detail)


def test_the_monthly_run_and_the_daily_reconciliation_write_one_event_per_org_to_the_outbox(dynamodb_local):
    # No price book and months long past: if a running local stack relays these, the runs are
    # harmless (skipped, clean reconciliations).
    east = new_org(zone="Pacific/Kiritimati")  # UTC+14
    west = new_org(zone="Pacific/Pago_Pago")  # UTC-11
    ctx = replace(CTX, orgs=OnlyTheseOrgs(east.org_id, west.org_id))

    now = datetime(2025, 8, 1, 12, 0, tzinfo=UTC)
    monthly = invoicing.run_monthly_invoicing(now, ctx)
    assert (monthly.kind, monthly.period, monthly.orgs, monthly.events) == ("InvoiceDue", "2025-07", 2, 2)
    for org in (east, west):
        event_id = stable_event_id("InvoiceDue", org.org_id, "2025-07")
        source, detail_type, detail = outbox_detail(event_id)
        assert (source, detail_type) == ("coaching.metering", "InvoiceDue")
        assert InvoiceDue.model_validate(detail) == InvoiceDue(
            event_id=event_id, occurred_at=now, org_id=org.org_id, period="2025-07"
        )
    # A re-run builds the same ids: the items first written are kept, nothing is written twice.
    assert invoicing.run_monthly_invoicing(now + timedelta(minutes=10), ctx) == monthly
    kept = InvoiceDue.model_validate(outbox_detail(stable_event_id("InvoiceDue", east.org_id, "2025-07"))[2])
    assert kept.occurred_at == now

    daily = reconciliation.run_daily_reconciliation(datetime(2025, 8, 1, 3, 0, tzinfo=UTC), ctx)
    assert (daily.kind, daily.period, daily.orgs, daily.events) == ("ReconciliationDue", None, 2, 4)
    expected = {east.org_id: ("2025-07", "2025-08"), west.org_id: ("2025-06", "2025-07")}  # 1 Aug east, 31 Jul west
    for org_id, periods in expected.items():
        for period in periods:
            event_id = stable_event_id("ReconciliationDue", org_id, period, "2025-08-01")
            source, detail_type, detail = outbox_detail(event_id)
            assert (source, detail_type) == ("coaching.metering", "ReconciliationDue")
            assert ReconciliationDue.model_validate(detail).period == period
    # The other months of the orgs got nothing.
    assert outbox_detail(stable_event_id("ReconciliationDue", west.org_id, "2025-08", "2025-08-01")) is None


@pytest.mark.parametrize(
    ("now", "period"),
    [
        (datetime(2026, 12, 1, 12, 0, tzinfo=UTC), "2026-11"),
        (datetime(2027, 1, 1, 12, 0, tzinfo=UTC), "2026-12"),
        (datetime(2026, 3, 31, 23, 59, tzinfo=UTC), "2026-02"),
    ],
)
def test_month_just_closed_is_the_previous_utc_month(now: datetime, period: str) -> None:
    assert invoicing.month_just_closed(now) == period


# ---------------------------------------------------------------------------- over HTTP


class Http:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def __call__(self, method: str, path: str, body: object = None, **params: str) -> requests.Response:
        return requests.request(
            method,
            self.url + path,
            json=body,
            params=params or None,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )


@pytest.mark.e2e
def test_price_book_invoice_run_csv_and_finalise_over_http(local_stack):
    operator = Http(local_stack.url, local_stack.token(["operator"], person_id="operator-billing"))
    created = operator(
        "POST", "/orgs", {"name": "Billing HTTP", "time_zone": ZONE, "currency": "EUR", "industry": "media"}
    )
    assert created.status_code == 201, created.text
    org_id = created.json()["org_id"]
    finance = Http(local_stack.url, local_stack.token(["finance"], org_id=org_id, person_id="cfo-http"))
    employee = Http(local_stack.url, local_stack.token(["employee"], org_id=org_id, person_id="emp-http"))
    base = f"/orgs/{org_id}"

    version = book_input().model_dump(mode="json")
    bad = operator("POST", f"{base}/price-book/versions", version | {"currency": "USD"})
    assert bad.status_code == 422, bad.text
    assert [f["field"] for f in bad.json()["error"]["fields"]] == ["currency"]
    bad = operator("POST", f"{base}/price-book/versions", version | {"effective_from": "2025-01-15"})
    assert bad.status_code == 422
    assert [f["field"] for f in bad.json()["error"]["fields"]] == ["effective_from"]
    assert finance("POST", f"{base}/price-book/versions", version).status_code == 403

    posted = operator("POST", f"{base}/price-book/versions", version)
    assert posted.status_code == 201, posted.text
    assert [v["version"] for v in posted.json()["versions"]] == [1]
    read = finance("GET", f"{base}/price-book")
    assert read.status_code == 200
    assert read.json() == posted.json()
    assert employee("GET", f"{base}/price-book").status_code == 403

    for n in range(3):
        commit_usage(org_id, march(3 + n))
    bad_period = operator("POST", f"{base}/invoices/2025-3/run")
    assert bad_period.status_code == 422
    assert [f["field"] for f in bad_period.json()["error"]["fields"]] == ["period"]
    assert finance("POST", f"{base}/invoices/{PERIOD}/run").status_code == 403
    run = operator("POST", f"{base}/invoices/{PERIOD}/run")
    assert run.status_code == 200, run.text
    assert run.json()["total_minor"] == 3 * PRICE
    assert run.json()["status"] == "draft"

    got = finance("GET", f"{base}/invoices/{PERIOD}")
    assert got.status_code == 200
    assert got.json() == run.json()
    assert finance("GET", f"{base}/invoices").json()["items"] == [run.json()]
    assert finance("GET", f"{base}/invoices/2025-02").status_code == 404
    assert employee("GET", f"{base}/invoices/{PERIOD}").status_code == 403

    exported = finance("GET", f"{base}/invoices/{PERIOD}/invoice.csv")
    assert exported.status_code == 200
    assert exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][0] == "kind"
    assert rows[1][:2] == ["session", "SCALE 30 min sessions"]
    assert rows[-1][0] == "TOTAL"
    assert rows[-1][7] == "300.00"

    assert employee("POST", f"{base}/invoices/{PERIOD}/finalise").status_code == 403
    final = finance("POST", f"{base}/invoices/{PERIOD}/finalise")
    assert final.status_code == 200, final.text
    assert final.json()["status"] == "finalised"
    again = finance("POST", f"{base}/invoices/{PERIOD}/finalise")
    assert again.status_code == 409
    assert operator("POST", f"{base}/invoices/{PERIOD}/run").json() == final.json()

    report = finance("POST", f"{base}/billing/reconcile", period=PERIOD)
    assert report.status_code == 200, report.text
    assert report.json()["differences"] == []
    assert report.json()["invoice_status"] == "finalised"
    missing = finance("POST", f"{base}/billing/reconcile")
    assert missing.status_code == 422
    assert [f["field"] for f in missing.json()["error"]["fields"]] == ["period"]
    assert employee("POST", f"{base}/billing/reconcile", period=PERIOD).status_code == 403

    mtd = finance("GET", f"{base}/usage/month-to-date")
    assert mtd.status_code == 200, mtd.text
    assert mtd.json()["currency"] == "EUR"
    assert employee("GET", f"{base}/usage/month-to-date").status_code == 403


@pytest.mark.e2e
def test_the_monthly_schedule_fans_out_and_invoices_each_org(local_stack):
    operator = Http(local_stack.url, local_stack.token(["operator"], person_id="operator-billing"))
    created = operator("POST", "/orgs", {"name": "Fan-out", "time_zone": "UTC", "currency": "EUR", "industry": "media"})
    org_id = created.json()["org_id"]
    operator("POST", f"/orgs/{org_id}/price-book/versions", book_input().model_dump(mode="json"))
    period = invoicing.month_just_closed(datetime.now(UTC))

    fired = local_stack.fire("MonthlyInvoicing")
    assert fired["status"] == "succeeded", fired
    assert fired["result"]["period"] == period
    assert fired["result"]["events"] == fired["result"]["orgs"] >= 1
    # The bus delivers one InvoiceDue per org back to the metering function.
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    invoice = None
    while datetime.now(UTC) < deadline:
        response = operator("GET", f"/orgs/{org_id}/invoices/{period}")
        if response.status_code == 200:
            invoice = response.json()
            break
        time.sleep(0.2)
    assert invoice is not None, "the fanned-out run did not draw the invoice"
    assert (invoice["total_minor"], invoice["entry_count"], invoice["status"]) == (0, 0, "draft")
    failed = [d for d in local_stack.deliveries() if d["detail_type"] == "InvoiceDue" and d["status"] != "succeeded"]
    assert failed == []

    reconciled = local_stack.fire("DailyReconciliation")
    assert reconciled["status"] == "succeeded", reconciled
    assert reconciled["result"]["events"] == 2 * reconciled["result"]["orgs"]
