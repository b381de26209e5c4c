"""In-memory ports of the invoicing service (coaching.services.invoicing).

`FakeBilling` keeps price books, the ledger (with its per-session guards and the open-month
rule: an entry whose month is closed lands in the next open one), billing periods and
versioned invoices, like adapters/billing_store.py does on DynamoDB. `FakeSessions` is the
booking side reconciliation and month-to-date read: the (possibly lagging) sessions index, the
sessions' current statuses and the cap counter. `RecordingOutbox` keeps what the fan-outs wrote,
one item per event id, like `coaching.adapters.outbox.commit_events`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from coaching.domain.booking import BookingPolicy
from coaching.domain.errors import AlreadyBilled
from coaching.domain.events import Event
from coaching.domain.invoicing import EntryKind, Invoice, LedgerEntry, UsageFound, usage_entry
from coaching.domain.orgs import Org
from coaching.domain.pricing import Outcome, PriceBook, PriceBookVersionInput, charge_for
from coaching.domain.taxonomy import Program
from coaching.services.invoicing import InvoicingContext

ORG = "org-1"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
PRICE = 9_000  # SCALE 30 min, EUR cents

# ---------------------------------------------------------------------------- test data


def price_version(**overrides: object) -> PriceBookVersionInput:
    fields: dict[str, object] = {
        "effective_from": date(2026, 1, 1),
        "currency": "EUR",
        "session_prices": {"SCALE": {"30": PRICE}},
        "no_show_fee_bps": 5_000,
        "late_cancel_fee_bps": 5_000,
    }
    return PriceBookVersionInput.model_validate({**fields, **overrides})


def price_book(org_id: str = ORG, **overrides: object) -> PriceBook:
    return PriceBook(org_id=org_id).with_version(price_version(**overrides), now=EPOCH, actor="op")


def make_org(
    org_id: str = ORG, *, time_zone: str = "UTC", currency: str = "EUR", booking: BookingPolicy | None = None
) -> Org:
    return Org(
        org_id=org_id,
        name=f"Org {org_id}",
        time_zone=time_zone,
        currency=currency,
        industry="technology",
        min_reporting_group_size=5,
        booking=booking,
        created_at=EPOCH,
        updated_at=EPOCH,
    )


def usage(
    book: PriceBook,
    booking_id: str,
    at: datetime,
    *,
    outcome: Outcome = Outcome.COMPLETED,
    person: str = "p1",
    time_zone: str = "UTC",
    billed_in: str | None = None,
) -> LedgerEntry:
    """A SCALE 30 min usage entry priced by the version in effect on the session's day."""
    return usage_entry(
        org_id=book.org_id,
        booking_id=booking_id,
        person_id=person,
        program=Program.SCALE,
        length_minutes=30,
        outcome=outcome,
        charge=charge_for(book.version_for(at.date()), Program.SCALE, 30, outcome),
        occurred_at=at,
        time_zone=time_zone,
        actor="coach",
        now=at,
        billed_in=billed_in,
    )


# ---------------------------------------------------------------------------- ports


@dataclass
class FakeClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakePage:
    items: list[Org]
    next_cursor: str | None = None


class FakeOrgs:
    """Orgs by id; `list` pages through them in id order, like the platform's org index."""

    def __init__(self, *orgs: Org) -> None:
        self.by_id: dict[str, Org] = {org.org_id: org for org in orgs}
        self.pages_read = 0

    def add(self, org: Org) -> Org:
        self.by_id[org.org_id] = org
        return org

    def get(self, org_id: str) -> Org | None:
        return self.by_id.get(org_id)

    def list(self, *, limit: int, cursor: str | None) -> FakePage:
        self.pages_read += 1
        ordered = sorted(self.by_id.values(), key=lambda org: org.org_id)
        start = int(cursor or 0)
        end = start + limit
        return FakePage(items=ordered[start:end], next_cursor=str(end) if end < len(ordered) else None)


@dataclass
class FakeBilling:
    """Billing in memory. `race` runs once just before the next invoice write, as another writer
    would; `lose_every_write` makes every conditional invoice write fail (a writer that never wins)."""

    books: dict[str, PriceBook] = field(default_factory=dict)
    ledger: dict[tuple[str, str], dict[str, LedgerEntry]] = field(default_factory=dict)
    guards: dict[tuple[str, str, EntryKind], tuple[str, str]] = field(default_factory=dict)
    closed: dict[tuple[str, str], str] = field(default_factory=dict)
    stored: dict[tuple[str, str], tuple[Invoice, int]] = field(default_factory=dict)
    race: Callable[[FakeBilling], None] | None = None
    lose_every_write: bool = False
    saves: list[tuple[str, int | None]] = field(default_factory=list)

    # ------------------------------------------------------------------ test set-up
    def commit_entry(self, entry: LedgerEntry) -> LedgerEntry:
        """What completion's commit does: the guard, and the first open month from the entry's."""
        guard = (entry.org_id, entry.booking_id, entry.kind)
        if guard in self.guards:
            raise AlreadyBilled("this session is already billed", field="booking_id")
        while (entry.org_id, entry.billed_in) in self.closed:
            entry = entry.billed_next_month()
        self.ledger.setdefault((entry.org_id, entry.billed_in), {})[entry.entry_id] = entry
        self.guards[guard] = (entry.billed_in, entry.entry_id)
        return entry

    def drop_entry(self, entry: LedgerEntry) -> None:
        """Lose an entry but keep its guard (a fault reconciliation must find)."""
        del self.ledger[(entry.org_id, entry.billed_in)][entry.entry_id]

    # ------------------------------------------------------------------ price books
    def price_book(self, org_id: str) -> PriceBook | None:
        return self.books.get(org_id)

    def save_price_book(self, book: PriceBook, change: Callable[[PriceBook], PriceBook]) -> PriceBook:
        changed = change(self.books.get(book.org_id, book))
        self.books[book.org_id] = changed
        return changed

    # ------------------------------------------------------------------ ledger
    def entries(self, org_id: str, billed_in: str) -> list[LedgerEntry]:
        return list(self.ledger.get((org_id, billed_in), {}).values())

    def usage_of(self, org_id: str, booking_ids: Collection[str]) -> dict[str, UsageFound]:
        found: dict[str, UsageFound] = {}
        for booking_id in booking_ids:
            pointer = self.guards.get((org_id, booking_id, EntryKind.USAGE))
            if pointer is not None:
                billed_in, entry_id = pointer
                entry = self.ledger.get((org_id, billed_in), {}).get(entry_id)
                found[booking_id] = UsageFound(booking_id, billed_in, entry_id, entry)
        return found

    # ------------------------------------------------------------------ periods
    def close_period(self, org_id: str, period: str, now: datetime) -> str:
        return self.closed.setdefault((org_id, period), now.isoformat())

    def period_closed_at(self, org_id: str, period: str) -> str | None:
        return self.closed.get((org_id, period))

    def last_closed_from(self, org_id: str, period: str) -> str | None:
        months = [month for org, month in self.closed if org == org_id and month >= period]
        return max(months, default=None)

    # ------------------------------------------------------------------ invoices
    def invoice(self, org_id: str, period: str) -> tuple[Invoice, int] | None:
        return self.stored.get((org_id, period))

    def save_invoice(self, invoice: Invoice, version: int | None) -> bool:
        if self.race is not None:
            race, self.race = self.race, None
            race(self)
        self.saves.append((invoice.status.value, version))
        if self.lose_every_write:
            return False
        key = (invoice.org_id, invoice.period)
        current = self.stored.get(key)
        if (None if current is None else current[1]) != version:
            return False
        self.stored[key] = (invoice, (version or 0) + 1)
        return True

    def invoices(self, org_id: str) -> list[Invoice]:
        mine = [invoice for (org, _), (invoice, _) in self.stored.items() if org == org_id]
        return sorted(mine, key=lambda invoice: invoice.period, reverse=True)


@dataclass
class FakeSessions:
    """The sessions index (what `statuses_in` shows, possibly behind), the sessions' current
    statuses, and the booking cap's counter per org month."""

    index: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)
    cap: dict[tuple[str, str], int] = field(default_factory=dict)

    def record(self, org_id: str, period: str, booking_id: str, status: str) -> None:
        self.index.setdefault((org_id, period), {})[booking_id] = status
        self.current[booking_id] = status

    def forget(self, org_id: str, period: str, booking_id: str) -> None:
        self.index.get((org_id, period), {}).pop(booking_id, None)
        self.current.pop(booking_id, None)

    def statuses_in(self, org_id: str, period: str) -> dict[str, str]:
        return dict(self.index.get((org_id, period), {}))

    def current_statuses(self, booking_ids: Collection[str]) -> dict[str, str]:
        return {booking_id: self.current[booking_id] for booking_id in booking_ids if booking_id in self.current}

    def cap_counted(self, org_id: str, period: str) -> int:
        return self.cap.get((org_id, period), 0)


@dataclass
class FakeHeadcount:
    counts: dict[str, int] = field(default_factory=dict)
    default: int = 0

    def active(self, org_id: str) -> int:
        return self.counts.get(org_id, self.default)


@dataclass
class RecordingOutbox:
    """The outbox: one item per event id, the first write kept (a re-run writes nothing twice).
    `fail_after` makes the write fail once that many items are in it, like a run that dies."""

    items: dict[str, Event] = field(default_factory=dict)
    writes: int = 0
    fail_after: int | None = None

    def __call__(self, events: Sequence[Event], /) -> None:
        self.writes += 1
        for event in events:
            if self.fail_after is not None and len(self.items) >= self.fail_after:
                self.fail_after = None
                raise RuntimeError("the outbox write failed")
            self.items.setdefault(event.event_id, event)

    def of_type[E: Event](self, kind: type[E]) -> list[E]:
        return [event for event in self.items.values() if isinstance(event, kind)]


@dataclass
class World:
    """Every fake port of one test, and the context over them."""

    billing: FakeBilling = field(default_factory=FakeBilling)
    orgs: FakeOrgs = field(default_factory=FakeOrgs)
    sessions: FakeSessions = field(default_factory=FakeSessions)
    headcount: FakeHeadcount = field(default_factory=FakeHeadcount)
    outbox: RecordingOutbox = field(default_factory=RecordingOutbox)
    clock: FakeClock = field(default_factory=lambda: FakeClock(EPOCH))

    @property
    def ctx(self) -> InvoicingContext:
        return InvoicingContext(
            billing=self.billing,
            orgs=self.orgs,
            sessions=self.sessions,
            headcount=self.headcount,
            commit_events=self.outbox,
            clock=self.clock,
        )

    def org(
        self,
        org_id: str = ORG,
        *,
        book: PriceBook | None = None,
        time_zone: str = "UTC",
        currency: str = "EUR",
        booking: BookingPolicy | None = None,
    ) -> Org:
        """An org (with `book` as its price book, if given)."""
        org = self.orgs.add(make_org(org_id, time_zone=time_zone, currency=currency, booking=booking))
        if book is not None:
            self.billing.books[org_id] = book
        return org

    def session(
        self, entry: LedgerEntry, *, status: str | None = None, commit: bool = True, period: str | None = None
    ) -> LedgerEntry:
        """A session as completion leaves it: its status in booking, its usage entry committed."""
        self.sessions.record(entry.org_id, period or entry.period, entry.booking_id, status or entry.outcome.value)
        return self.billing.commit_entry(entry) if commit else entry


def committed(billing: FakeBilling, entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    return [billing.commit_entry(entry) for entry in entries]


__all__ = [
    "EPOCH",
    "ORG",
    "PRICE",
    "FakeBilling",
    "FakeClock",
    "FakeHeadcount",
    "FakeOrgs",
    "FakePage",
    "FakeSessions",
    "RecordingOutbox",
    "World",
    "committed",
    "make_org",
    "price_book",
    "price_version",
    "usage",
]
