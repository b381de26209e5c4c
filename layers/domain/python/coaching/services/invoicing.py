"""Invoicing use cases: price books, the monthly invoice run, finalisation, exports and
month-to-date usage (the reconciliation of sessions, ledger and invoices is `coaching.services.reconciliation`).

How a month is invoiced (see adapters/billing_store.py for the storage side):

1. The month's billing period is closed first. From then on, a usage entry that would be
   billed in it fails the transaction's open-month check and lands in the next month, where
   it shows as an adjustment. So after the close the month's ledger partition never changes.
2. The partition is read with one Query, and the invoice computed from it. The invoice's
   ``created_at`` is the moment the period was *first* closed, not the caller's clock, so any
   number of concurrent or repeated runs compute byte-identical invoices.
3. The invoice is stored conditionally: created if absent, replaced if a draft (on the version
   read), left alone once finalised. A run that loses a race re-reads and returns what is stored.

The monthly schedule fans out: it writes one ``InvoiceDue`` event per org to the outbox (with
an id stable per org and month, so a re-run writes nothing twice), the table's stream relays
them to the bus, and the bus invokes the metering function once per org, so each invocation's
work stays bounded whatever the number of orgs. Reconciliation fans out the same way
(``ReconciliationDue``, one id per org, month and day).

Every read and write goes through the ports of `InvoicingContext`; the metering function
(functions/metering/app.py) builds it with the DynamoDB adapters.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from coaching.auth import Principal, Role
from coaching.domain.booking import Allowance, BookingPolicy, period_of, period_reset
from coaching.domain.common import Clock, DeferredModel
from coaching.domain.errors import Conflict, InvalidInput, NotFound
from coaching.domain.events import Event, InvoiceDue, stable_event_id
from coaching.domain.invoicing import (
    EntryKind,
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    LineKind,
    UsageFound,
    check_period,
    compute_invoice,
    first_day,
    invoice_csv,
    next_period,
    previous_period,
)
from coaching.domain.orgs import Org
from coaching.domain.pricing import NoPriceBook, Outcome, PriceBook, PriceBookVersion, PriceBookVersionInput
from coaching.domain.taxonomy import Program

# Who reads an org's billing besides operators: its finance team and its administrators.
BILLING_READERS = (Role.FINANCE, Role.ORG_ADMIN)
_ORG_PAGE = 100
_SAVE_ATTEMPTS = 6
_BACKOFF_SECONDS = 0.01


# ---------------------------------------------------------------------------- ports


class OrgPage(Protocol):
    @property
    def items(self) -> list[Org]: ...

    @property
    def next_cursor(self) -> str | None: ...


class Orgs(Protocol):
    def get(self, org_id: str) -> Org | None: ...

    def list(self, *, limit: int, cursor: str | None) -> OrgPage: ...


class Billing(Protocol):
    """Price books, the ledger, billing periods and invoices (adapters/billing_store.py)."""

    def price_book(self, org_id: str) -> PriceBook | None: ...

    def save_price_book(self, book: PriceBook, change: Callable[[PriceBook], PriceBook]) -> PriceBook:
        """Apply `change` to the stored book, or create it from `book`."""
        ...

    def entries(self, org_id: str, billed_in: str) -> Iterable[LedgerEntry]:
        """Every entry billed in a month (its own, late ones, reversals)."""
        ...

    def usage_of(self, org_id: str, booking_ids: Collection[str]) -> dict[str, UsageFound]:
        """Each session's usage guard and the entry it points to; unbilled sessions are absent."""
        ...

    def close_period(self, org_id: str, period: str, now: datetime) -> str:
        """Close the month to new entries (idempotent); when it was first closed, ISO 8601."""
        ...

    def period_closed_at(self, org_id: str, period: str) -> str | None: ...

    def last_closed_from(self, org_id: str, period: str) -> str | None:
        """The latest closed month from `period` on, or None."""
        ...

    def invoice(self, org_id: str, period: str) -> tuple[Invoice, int] | None:
        """The stored invoice and its version."""
        ...

    def save_invoice(self, invoice: Invoice, version: int | None) -> bool:
        """Create (version None) or replace the version read; False when someone wrote first."""
        ...

    def invoices(self, org_id: str) -> list[Invoice]:
        """Newest first."""
        ...


class Sessions(Protocol):
    """The org's sessions as booking records them."""

    def statuses_in(self, org_id: str, period: str) -> dict[str, str]:
        """Booking id -> status of every session of the month (may lag a moment behind)."""
        ...

    def current_statuses(self, booking_ids: Collection[str]) -> dict[str, str]:
        """Booking id -> current status; bookings that do not exist are absent."""
        ...

    def cap_counted(self, org_id: str, period: str) -> int:
        """Sessions booked in the month as the monthly session cap counts them."""
        ...


class Headcount(Protocol):
    def active(self, org_id: str) -> int:
        """Active people in the org (the invoice's eligible headcount)."""
        ...


class CommitEvents(Protocol):
    """Writes events that belong to no state change of their own to the outbox; an event id
    already there is kept, so a re-run that builds the same ids writes nothing twice."""

    def __call__(self, events: Sequence[Event], /) -> None: ...


@dataclass(frozen=True)
class InvoicingContext:
    billing: Billing
    orgs: Orgs
    sessions: Sessions
    headcount: Headcount
    commit_events: CommitEvents
    clock: Clock


# ---------------------------------------------------------------------------- views


class FanOut(DeferredModel):
    """What a scheduled run wrote to the outbox: one event per org (and period)."""

    kind: str
    period: str | None  # None when each org gets its own periods (reconciliation)
    orgs: int
    events: int


class InvoiceRun(DeferredModel):
    """The outcome of an InvoiceDue event for one org."""

    org_id: str
    period: str
    status: Literal["draft", "finalised", "skipped"]
    invoice_id: str | None = None
    total_minor: int | None = None
    currency: str | None = None
    entry_count: int | None = None
    reason: str | None = None


class MonthToDate(DeferredModel):
    """The current month so far, in the org's time zone.

    Money counts what is billed in this month so far: its sessions, fees and credits, the
    volume tier discounts they have earned, and late adjustments for earlier months that
    arrived this month. It is what the invoice would say if the month ended now, except the
    commitment true-up, which is shown separately as the shortfall so far (it shrinks as
    sessions are delivered, and is only owed if still there when the month ends).
    """

    org_id: str
    period: str
    time_zone: str
    as_of: datetime
    currency: str
    sessions_delivered: int  # completed sessions of this month that stand (not credited)
    active_participants: int  # distinct people among them
    no_shows: int
    late_cancellations: int
    amount_so_far_minor: int
    late_adjustments_minor: int  # the part of amount_so_far for earlier months' sessions
    # The booking policy's cap counts sessions *booked* in the month (it is what the cap
    # refuses on); the counter is kept only while the org has a cap.
    monthly_session_cap: int | None
    sessions_counted: int
    sessions_left_under_cap: int | None
    allowances: dict[Program, Allowance]  # per person and month, by program (and level)
    price_book_version: int | None
    monthly_commitment_minor: int | None
    commitment_shortfall_minor: int | None  # what the true-up would be if the month ended now


# ---------------------------------------------------------------------------- helpers


def authorise(caller: Principal, org_id: str, *org_roles: Role) -> None:
    """Operators act on any org; the other roles only on their own."""
    caller.require(Role.OPERATOR, *org_roles)
    if not caller.has(Role.OPERATOR):
        caller.require_same_org(org_id, *org_roles)


def _backoff(attempt: int) -> None:
    """Jittered exponential pause before retrying a conditional write that lost a race."""
    time.sleep(random.uniform(0, _BACKOFF_SECONDS * 2**attempt))


def month_just_closed(now: datetime) -> str:
    """The calendar month before `now`'s, in UTC.

    The monthly run fires at 12:00 UTC on the 1st. UTC offsets in use span -12:00 to +14:00,
    so at that instant the local time everywhere lies between 00:00 on the 1st and 02:00 on
    the 2nd: the previous month has ended in every org's time zone, and it is the same month
    for all of them. (At 00:00 UTC it would still be the last day of the month west of UTC.)
    """
    return (now.astimezone(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def org_of(ctx: InvoicingContext, org_id: str) -> Org:
    org = ctx.orgs.get(org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    return org


def priced(book: PriceBook | None, org_id: str, period: str) -> tuple[PriceBook, PriceBookVersion]:
    """The book and the version in effect in `period`, or NoPriceBook saying what is missing."""
    if book is None or not book.versions:
        raise NoPriceBook(f"organisation {org_id} has no price book; an operator must post one before it is invoiced")
    try:
        return book, book.version_for(first_day(period))
    except NoPriceBook as exc:
        raise NoPriceBook(f"no price book version of organisation {org_id} is in effect in {period}") from exc


def org_pages(ctx: InvoicingContext) -> Iterator[list[Org]]:
    """Every org, a page at a time (Query on the platform's org index; never a Scan)."""
    cursor: str | None = None
    while True:
        page = ctx.orgs.list(limit=_ORG_PAGE, cursor=cursor)
        yield page.items
        cursor = page.next_cursor
        if not cursor:
            return


def _computed(
    org_id: str, period: str, entries: list[LedgerEntry], book: PriceBook, headcount: int, now: datetime
) -> Invoice:
    try:
        return compute_invoice(
            org_id=org_id, period=period, entries=entries, price_book=book, eligible_headcount=headcount, now=now
        )
    except ValueError as exc:
        # The ledger breaks an invariant (a double write, a foreign currency): never bill it.
        raise Conflict(f"the ledger of {period} cannot be invoiced: {exc}", field="period") from exc


# ---------------------------------------------------------------------------- price books


def get_price_book(caller: Principal, org_id: str, ctx: InvoicingContext) -> PriceBook:
    """The org's price book with its whole version history (no versions yet: an empty list)."""
    authorise(caller, org_id, *BILLING_READERS)
    org_of(ctx, org_id)
    return ctx.billing.price_book(org_id) or PriceBook(org_id=org_id)


def add_price_book_version(
    caller: Principal, org_id: str, data: PriceBookVersionInput, ctx: InvoicingContext
) -> PriceBook:
    """Append a version (operators only). Its currency must be the org's.

    A version may not take effect in a month whose invoice has been drawn: that invoice would
    no longer be reproducible from the ledger and the price book. A version taking effect in
    the current month applies to the month's invoice (tiers, commitment, seat comparison);
    sessions already billed this month keep the price they were charged at.
    """
    caller.require(Role.OPERATOR)
    org = org_of(ctx, org_id)
    if data.currency != org.currency:
        raise InvalidInput(
            f"the price book must be in the organisation's currency {org.currency}, not {data.currency}",
            field="currency",
        )
    effective = f"{data.effective_from.year:04d}-{data.effective_from.month:02d}"
    closed = ctx.billing.last_closed_from(org_id, effective)
    if closed is not None:
        raise InvalidInput(
            f"the invoice for {closed} has already been drawn; a new version can take effect from "
            f"{next_period(closed)}-01 at the earliest",
            field="effective_from",
        )
    now = ctx.clock()
    return ctx.billing.save_price_book(
        PriceBook(org_id=org_id), lambda book: book.with_version(data, now=now, actor=caller.person_id)
    )


# ---------------------------------------------------------------------------- the invoice run


def _store(ctx: InvoicingContext, fresh: Invoice, stored: tuple[Invoice, int] | None) -> Invoice:
    """Create, replace a draft, or keep a finalised invoice; every write is conditional."""
    for attempt in range(_SAVE_ATTEMPTS):
        if stored is None:
            if ctx.billing.save_invoice(fresh, None):
                return fresh
        else:
            current, version = stored
            if not current.replaced_by(fresh):
                return current
            if ctx.billing.save_invoice(fresh, version):
                return fresh
        # Someone wrote it between our read and our write: look at what they stored.
        _backoff(attempt)
        stored = ctx.billing.invoice(fresh.org_id, fresh.period)
    raise Conflict(f"the invoice for {fresh.period} is being written by someone else; try again", field="period")


def invoice_org(org_id: str, period: str, now: datetime, ctx: InvoicingContext) -> Invoice:
    """Draw (or redraw) the org's invoice for a month that has ended in its time zone.

    Idempotent and safe to run concurrently: see the module docstring. An org without a price
    book version for the month raises NoPriceBook, and its month stays open, so that nothing
    moves to a later month before there is a price to bill it at.
    """
    check_period(period)
    org = org_of(ctx, org_id)
    ends = period_reset(period, org.time_zone)
    if now < ends:
        raise InvalidInput(
            f"{period} has not ended in {org.time_zone} yet (it ends {ends.isoformat()}); "
            "only a past month can be invoiced",
            field="period",
        )
    book, _ = priced(ctx.billing.price_book(org_id), org_id, period)
    stored = ctx.billing.invoice(org_id, period)
    if stored is not None and stored[0].status is InvoiceStatus.FINALISED:
        return stored[0]
    closed_at = datetime.fromisoformat(ctx.billing.close_period(org_id, period, now))
    entries = list(ctx.billing.entries(org_id, period))
    fresh = _computed(org_id, period, entries, book, ctx.headcount.active(org_id), closed_at)
    return _store(ctx, fresh, stored)


def run_invoice(caller: Principal, org_id: str, period: str, ctx: InvoicingContext) -> Invoice:
    """An operator's on-demand invoice run for one org (the same run as the monthly one)."""
    caller.require(Role.OPERATOR)
    return invoice_org(org_id, period, ctx.clock(), ctx)


def fan_out(ctx: InvoicingContext, events_of: Callable[[Org], list[Event]]) -> tuple[int, int]:
    """The events of every org, written to the outbox a page of orgs at a time; (orgs, events).

    A failed write raises, so the scheduler retries the whole run; the events' ids are stable,
    so what the failed run already wrote is kept, not written again.
    """
    orgs = events = 0
    for page in org_pages(ctx):
        batch = [event for org in page for event in events_of(org)]
        ctx.commit_events(batch)
        orgs += len(page)
        events += len(batch)
    return orgs, events


def invoice_due(org_id: str, period: str, now: datetime) -> InvoiceDue:
    """The monthly run's event for one org: one id per org and month, whoever builds it."""
    event_id = stable_event_id(InvoiceDue.detail_type, org_id, period)
    return InvoiceDue(event_id=event_id, occurred_at=now, org_id=org_id, period=period)


def run_monthly_invoicing(now: datetime, ctx: InvoicingContext) -> FanOut:
    """One InvoiceDue per org for the month just closed (see `month_just_closed`), through the
    outbox. A re-run builds the same event ids, so each org's event is written once."""
    period = month_just_closed(now)
    orgs, events = fan_out(ctx, lambda org: [invoice_due(org.org_id, period, now)])
    return FanOut(kind=InvoiceDue.detail_type, period=period, orgs=orgs, events=events)


def on_invoice_due(event: InvoiceDue, ctx: InvoicingContext) -> InvoiceRun:
    """One org's invoice run from its InvoiceDue event. No price book: skipped, with the reason."""
    org_id, period = event.org_id, check_period(event.period)
    try:
        invoice = invoice_org(org_id, period, ctx.clock(), ctx)
    except NoPriceBook as exc:
        return InvoiceRun(org_id=org_id, period=period, status="skipped", reason=exc.message)
    return InvoiceRun(
        org_id=org_id,
        period=period,
        status=invoice.status.value,
        invoice_id=invoice.invoice_id,
        total_minor=invoice.total_minor,
        currency=invoice.currency,
        entry_count=invoice.entry_count,
    )


# ---------------------------------------------------------------------------- invoices


def finalise_invoice(caller: Principal, org_id: str, period: str, ctx: InvoicingContext) -> Invoice:
    """Draft -> finalised (finance of the org, operators). A finalised invoice never changes."""
    authorise(caller, org_id, Role.FINANCE)
    check_period(period)
    for attempt in range(_SAVE_ATTEMPTS):
        stored = ctx.billing.invoice(org_id, period)
        if stored is None:
            raise Conflict(f"there is no draft invoice for {period} to finalise; run the invoice first", field="period")
        current, version = stored
        done = current.finalised(now=ctx.clock())
        if ctx.billing.save_invoice(done, version):
            return done
        _backoff(attempt)  # an invoice run replaced the draft meanwhile: finalise the fresh one
    raise Conflict(f"the invoice for {period} is being changed by someone else; try again", field="period")


def list_invoices(caller: Principal, org_id: str, ctx: InvoicingContext) -> list[Invoice]:
    authorise(caller, org_id, *BILLING_READERS)
    org_of(ctx, org_id)
    return ctx.billing.invoices(org_id)


def get_invoice(caller: Principal, org_id: str, period: str, ctx: InvoicingContext) -> Invoice:
    authorise(caller, org_id, *BILLING_READERS)
    check_period(period)
    stored = ctx.billing.invoice(org_id, period)
    if stored is None:
        raise NotFound(f"no invoice for {period}")
    return stored[0]


def invoice_csv_export(caller: Principal, org_id: str, period: str, ctx: InvoicingContext) -> str:
    return invoice_csv(get_invoice(caller, org_id, period, ctx))


# ---------------------------------------------------------------------------- month to date


def _standing_usage(entries: list[LedgerEntry], period: str) -> list[LedgerEntry]:
    reversed_ids = {e.reverses for e in entries if e.kind is EntryKind.REVERSAL}
    return [e for e in entries if e.kind is EntryKind.USAGE and e.period == period and e.entry_id not in reversed_ids]


def month_to_date(caller: Principal, org_id: str, now: datetime, ctx: InvoicingContext) -> MonthToDate:
    """Usage, money, cap and commitment of the current month so far (see MonthToDate)."""
    authorise(caller, org_id, *BILLING_READERS)
    org = org_of(ctx, org_id)
    period = period_of(now, org.time_zone)
    entries = list(ctx.billing.entries(org_id, period))
    standing = _standing_usage(entries, period)
    delivered = [e for e in standing if e.outcome is Outcome.COMPLETED]
    late = sum(e.amount_minor for e in entries if e.period < period)
    version: PriceBookVersion | None = None
    try:
        book, version = priced(ctx.billing.price_book(org_id), org_id, period)
    except NoPriceBook:
        # Nothing can be charged without a price: whatever the ledger holds, at face value.
        amount, shortfall, currency = sum(e.amount_minor for e in entries), None, org.currency
    else:
        # The invoice as if the month ended now; headcount only feeds the seat comparison.
        draft = _computed(org_id, period, entries, book, 0, now)
        true_up = draft.amount_of(LineKind.COMMITMENT_TRUE_UP)
        amount = draft.total_minor - true_up
        shortfall = None if version.monthly_commitment_minor is None else true_up
        currency = version.currency
    policy = org.booking or BookingPolicy()
    cap = policy.monthly_session_cap
    counted = ctx.sessions.cap_counted(org_id, period)
    return MonthToDate(
        org_id=org_id,
        period=period,
        time_zone=org.time_zone,
        as_of=now,
        currency=currency,
        sessions_delivered=len(delivered),
        active_participants=len({e.person_id for e in delivered}),
        no_shows=sum(1 for e in standing if e.outcome is Outcome.NO_SHOW),
        late_cancellations=sum(1 for e in standing if e.outcome is Outcome.LATE_CANCELLED),
        amount_so_far_minor=amount,
        late_adjustments_minor=late,
        monthly_session_cap=cap,
        sessions_counted=counted,
        sessions_left_under_cap=None if cap is None else max(cap - counted, 0),
        allowances=policy.allowances,
        price_book_version=None if version is None else version.version,
        monthly_commitment_minor=None if version is None else version.monthly_commitment_minor,
        commitment_shortfall_minor=shortfall,
    )


__all__ = [
    "BILLING_READERS",
    "Billing",
    "CommitEvents",
    "FanOut",
    "Headcount",
    "InvoiceRun",
    "InvoicingContext",
    "MonthToDate",
    "OrgPage",
    "Orgs",
    "Sessions",
    "add_price_book_version",
    "finalise_invoice",
    "get_invoice",
    "get_price_book",
    "invoice_csv_export",
    "invoice_due",
    "invoice_org",
    "list_invoices",
    "month_just_closed",
    "month_to_date",
    "on_invoice_due",
    "previous_period",
    "run_invoice",
    "run_monthly_invoicing",
]
