"""Usage ledger and monthly invoices.

The ledger is append-only: a charge is never edited, a mistake is undone by a reversing entry.
An invoice is a pure function of the entries billed in its period and the price book, so it can
be recomputed and reconciled at any time. Each entry lands in exactly one session, fee, credit
or adjustment line, which keeps those lines equal to the ledger to the last minor unit; volume
tiers and the commitment true-up are the only amounts the invoice adds on top.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, model_validator

from coaching.domain.booking import period_of
from coaching.domain.common import DeferredModel
from coaching.domain.errors import Conflict, InvalidInput
from coaching.domain.pricing import (
    Outcome,
    PriceBook,
    PriceBookVersion,
    UsageCharge,
    charge_amount,
    format_bps,
    format_minor,
    percent_of,
    round_half_up,
)
from coaching.domain.taxonomy import Program

# A billing month, YYYY-MM. Years 2000 to 2999 only: the platform bills nothing earlier, and
# every month in the range has a previous and a next month that Python's dates can represent
# (year 0 or 9999-12 would make the month arithmetic fail instead of refusing the input).
PERIOD_PATTERN = r"^2[0-9]{3}-(0[1-9]|1[0-2])$"  # ASCII digits: `\d` also matches other scripts' digits
PERIOD_DESCRIPTION = "A month as YYYY-MM (years 2000 to 2999)"
_PERIOD = re.compile(PERIOD_PATTERN)
Period = Annotated[str, Field(pattern=PERIOD_PATTERN)]
MAX_REASON_LENGTH = 500


def check_period(period: str, *, field: str = "period") -> str:
    """The period itself, or InvalidInput naming `field` when it is not a month the platform bills."""
    if not _PERIOD.match(period):
        raise InvalidInput(f"{field} must be a month as YYYY-MM from 2000-01 to 2999-12, got {period!r}", field=field)
    return period


def next_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}"


def previous_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return f"{year:04d}-{month:02d}"


class EntryKind(StrEnum):
    USAGE = "usage"
    REVERSAL = "reversal"


class LedgerEntry(DeferredModel):
    """One append-only ledger record. Its id is deterministic, so a retried write is idempotent."""

    entry_id: str
    org_id: str
    booking_id: str
    person_id: str
    kind: EntryKind
    outcome: Outcome
    program: Program
    length_minutes: int
    period: Period  # the month the session was (to be) delivered, org time zone
    billed_in: Period  # the invoice it lands on; later than period means it arrived late
    price_book_version: int
    currency: str
    list_price_minor: int
    fee_bps: int | None
    amount_minor: int  # negative for a reversal
    reverses: str | None = None
    reason: str = ""
    actor: str
    occurred_at: AwareDatetime  # the session's start
    recorded_at: AwareDatetime

    @model_validator(mode="after")
    def _consistent(self) -> LedgerEntry:
        if self.billed_in < self.period:
            raise ValueError("billed_in cannot be before the period the session was delivered in")
        if (self.kind is EntryKind.REVERSAL) != (self.reverses is not None):
            raise ValueError("a reversal, and only a reversal, names the entry it reverses")
        if (self.outcome is Outcome.COMPLETED) != (self.fee_bps is None):
            raise ValueError("fee_bps is set for no-shows and late cancellations only")
        # An amount that disagrees with its own price would make invoice lines lie.
        expected = charge_amount(self.list_price_minor, self.fee_bps)
        if self.amount_minor != (expected if self.kind is EntryKind.USAGE else -expected):
            raise ValueError("amount_minor does not match list_price_minor and fee_bps")
        return self

    def billed_next_month(self) -> LedgerEntry:
        """The same entry on the next month's invoice: the month it was to be billed in is closed."""
        return self.model_copy(update={"billed_in": next_period(self.billed_in)})


def usage_entry(
    *,
    org_id: str,
    booking_id: str,
    person_id: str,
    program: Program,
    length_minutes: int,
    outcome: Outcome,
    charge: UsageCharge,
    occurred_at: datetime,
    time_zone: str,
    actor: str,
    now: datetime,
    billed_in: str | None = None,
) -> LedgerEntry:
    """The usage entry for a session's outcome; billed in its own month unless that invoice is closed."""
    period = period_of(occurred_at, time_zone)
    return LedgerEntry(
        entry_id=f"{booking_id}#{outcome}",
        org_id=org_id,
        booking_id=booking_id,
        person_id=person_id,
        kind=EntryKind.USAGE,
        outcome=outcome,
        program=program,
        length_minutes=length_minutes,
        period=period,
        billed_in=billed_in or period,
        price_book_version=charge.price_book_version,
        currency=charge.currency,
        list_price_minor=charge.list_price_minor,
        fee_bps=charge.fee_bps,
        amount_minor=charge.amount_minor,
        actor=actor,
        occurred_at=occurred_at,
        recorded_at=now,
    )


@dataclass(frozen=True, slots=True)
class UsageFound:
    """Where a session's usage guard points, and the entry found there (None: the guard dangles)."""

    booking_id: str
    billed_in: str
    entry_id: str
    entry: LedgerEntry | None

    @property
    def where(self) -> str:
        return f"{self.billed_in}/{self.entry_id}"


def reversal_of(entry: LedgerEntry, *, reason: str, actor: str, billed_in: str, now: datetime) -> LedgerEntry:
    """The entry that cancels `entry` exactly: same session, opposite amount."""
    if entry.kind is EntryKind.REVERSAL:
        raise InvalidInput(f"{entry.entry_id} is itself a reversal; record a new usage entry instead", field="entry_id")
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"a reversal needs a reason of 1 to {MAX_REASON_LENGTH} characters", field="reason")
    if not _PERIOD.match(billed_in) or billed_in < entry.billed_in:
        # Crediting an invoice before the one that charged would credit what was never billed.
        raise InvalidInput(f"billed_in must be a YYYY-MM period from {entry.billed_in} on", field="billed_in")
    return entry.model_copy(
        update={
            "entry_id": f"{entry.entry_id}#reversal",
            "kind": EntryKind.REVERSAL,
            "amount_minor": -entry.amount_minor,
            "reverses": entry.entry_id,
            "reason": reason,
            "actor": actor,
            "billed_in": billed_in,
            "recorded_at": now,
        }
    )


# ---------------------------------------------------------------------------- invoice model


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    FINALISED = "finalised"


class LineKind(StrEnum):
    SESSION = "session"
    FEE = "fee"
    CREDIT = "credit"
    TIER_DISCOUNT = "tier_discount"
    ADJUSTMENT = "adjustment"
    COMMITMENT_TRUE_UP = "commitment_true_up"


_LINE_ORDER = {kind: rank for rank, kind in enumerate(LineKind)}
_PROGRAM_ORDER = {program: rank for rank, program in enumerate(Program)}
# Lines that mirror ledger entries one-to-one; the rest are computed by the invoice.
LEDGER_LINE_KINDS = frozenset({LineKind.SESSION, LineKind.FEE, LineKind.CREDIT, LineKind.ADJUSTMENT})


class InvoiceLine(DeferredModel):
    kind: LineKind
    description: str
    program: Program | None = None
    length_minutes: int | None = None
    quantity: int
    unit_amount_minor: int | None = None
    amount_minor: int
    period: str | None = None  # adjustments only: the month the session was delivered


class InvoiceSummary(DeferredModel):
    """What the CFO reads: usage, unit costs and the comparison with per-seat licences."""

    active_participants: int
    sessions_delivered: int
    cost_per_session_minor: int | None
    cost_per_active_participant_minor: int | None
    eligible_headcount: int
    seat_price_minor: int | None
    per_seat_cost_minor: int | None
    difference_vs_seats_minor: int | None  # positive: usage billing cost less than seats would have


class Invoice(DeferredModel):
    invoice_id: str
    org_id: str
    period: str
    currency: str
    status: InvoiceStatus = InvoiceStatus.DRAFT
    price_book_version: int
    lines: list[InvoiceLine]
    ledger_total_minor: int
    total_minor: int
    entry_count: int
    summary: InvoiceSummary
    created_at: datetime
    finalised_at: datetime | None = None

    def amount_of(self, *kinds: LineKind) -> int:
        return sum(line.amount_minor for line in self.lines if line.kind in kinds)

    def finalised(self, *, now: datetime) -> Invoice:
        """Draft -> finalised. A finalised invoice never changes: later entries for its period
        are billed on a later invoice as adjustments."""
        if self.status is InvoiceStatus.FINALISED:
            raise Conflict(f"the invoice for {self.period} is already finalised and cannot change", field="period")
        return self.model_copy(update={"status": InvoiceStatus.FINALISED, "finalised_at": now})

    def replaced_by(self, fresh: Invoice) -> bool:
        """Whether a fresh computation of this invoice must be stored over it: only a draft is
        redrawn, and only when something changed (an unchanged draft is never rewritten)."""
        if (fresh.org_id, fresh.period) != (self.org_id, self.period):
            raise ValueError(f"invoice {fresh.invoice_id} cannot replace invoice {self.invoice_id}")
        return self.status is InvoiceStatus.DRAFT and fresh.model_dump_json() != self.model_dump_json()


def invoice_id_for(org_id: str, period: str) -> str:
    return f"{org_id}-{period}"


def finalise(invoice: Invoice, *, now: datetime) -> Invoice:
    """Close the invoice (see `Invoice.finalised`)."""
    return invoice.finalised(now=now)


# ---------------------------------------------------------------------------- computation


def first_day(period: str) -> date:
    """The 1st of the month: the day whose price book version prices the whole month."""
    year, month = (int(part) for part in period.split("-"))
    return date(year, month, 1)


def _item(outcome: Outcome, program: Program, length: int, fee_bps: int | None) -> str:
    if outcome is Outcome.COMPLETED:
        return f"{program} {length} min session"
    label = "No-show fee" if outcome is Outcome.NO_SHOW else "Late-cancellation fee"
    return f"{label} {format_bps(fee_bps or 0)} — {program} {length} min"


def _checked_entries(org_id: str, period: str, entries: Iterable[LedgerEntry], currency: str) -> list[LedgerEntry]:
    checked: list[LedgerEntry] = []
    seen: set[str] = set()
    for entry in entries:
        if entry.org_id != org_id:
            raise ValueError(f"entry {entry.entry_id} belongs to org {entry.org_id}, not {org_id}")
        if entry.billed_in != period:
            raise ValueError(f"entry {entry.entry_id} is billed in {entry.billed_in}, not {period}")
        if entry.currency != currency:
            raise ValueError(f"entry {entry.entry_id} is in {entry.currency}; the price book is in {currency}")
        if entry.entry_id in seen:
            # Ids are deterministic, so a repeat is a double write, never a second charge.
            raise ValueError(f"entry {entry.entry_id} appears twice")
        seen.add(entry.entry_id)
        checked.append(entry)
    by_id = {entry.entry_id: entry for entry in checked}
    for entry in checked:
        if entry.kind is EntryKind.REVERSAL and entry.period == period:
            # A same-month reversal credits a charge on this very invoice; it must be here.
            target = by_id.get(entry.reverses or "")
            if target is None or target.kind is not EntryKind.USAGE or target.amount_minor != -entry.amount_minor:
                raise ValueError(f"reversal {entry.entry_id} does not match a usage entry on this invoice")
    # Sorted once, so every grouping below sees the same order whatever order came in.
    return sorted(checked, key=lambda e: e.entry_id)


def _group_key(e: LedgerEntry, period: str) -> tuple[LineKind, *tuple[object, ...]]:
    """The line an entry lands on; the key's first element is the line kind."""
    if e.period < period:
        reason = e.reason if e.kind is EntryKind.REVERSAL else ""
        return (
            LineKind.ADJUSTMENT,
            e.period,
            e.kind,
            e.outcome,
            e.program,
            e.length_minutes,
            e.fee_bps,
            e.amount_minor,
            reason,
        )
    if e.kind is EntryKind.REVERSAL:
        return (LineKind.CREDIT, e.outcome, e.program, e.length_minutes, e.fee_bps, e.amount_minor, e.reason)
    if e.outcome is Outcome.COMPLETED:
        return (LineKind.SESSION, e.program, e.length_minutes, e.list_price_minor)
    return (LineKind.FEE, e.outcome, e.program, e.length_minutes, e.fee_bps, e.amount_minor)


def _grouped_lines(entries: list[LedgerEntry], period: str) -> list[InvoiceLine]:
    groups: dict[tuple[LineKind, *tuple[object, ...]], list[LedgerEntry]] = defaultdict(list)
    for entry in entries:
        groups[_group_key(entry, period)].append(entry)

    lines: list[InvoiceLine] = []
    for key, members in groups.items():
        kind: LineKind = key[0]
        first = members[0]
        item = _item(first.outcome, first.program, first.length_minutes, first.fee_bps)
        line_period: str | None = None
        unit = first.amount_minor
        if kind is LineKind.SESSION:
            description, unit = f"{first.program} {first.length_minutes} min sessions", first.list_price_minor
        elif kind is LineKind.FEE:
            description = item
        elif kind is LineKind.CREDIT:
            description = f"Credit: {first.reason} ({item})"
        else:
            line_period = first.period
            when = "delivered" if first.outcome is Outcome.COMPLETED else "scheduled"
            if first.kind is EntryKind.USAGE:
                description = f"Adjustment: {item} {when} {first.period} (late)"
            else:
                description = f"Adjustment: credit {first.reason} ({item} {when} {first.period})"
        lines.append(
            InvoiceLine(
                kind=kind,
                description=description,
                program=first.program,
                length_minutes=first.length_minutes,
                quantity=len(members),
                unit_amount_minor=unit,
                amount_minor=sum(e.amount_minor for e in members),
                period=line_period,
            )
        )
    return lines


def _delivered(entries: list[LedgerEntry], period: str) -> list[LedgerEntry]:
    """The period's completed sessions that still stand: not reversed on this invoice."""
    reversed_ids = {e.reverses for e in entries if e.kind is EntryKind.REVERSAL}
    delivered = [
        e
        for e in entries
        if e.kind is EntryKind.USAGE
        and e.outcome is Outcome.COMPLETED
        and e.period == period
        and e.entry_id not in reversed_ids
    ]
    return sorted(delivered, key=lambda e: (e.occurred_at, e.entry_id))


def _tier_lines(delivered: list[LedgerEntry], version: PriceBookVersion) -> list[InvoiceLine]:
    """Graduated: session n gets the discount of the highest tier starting at or before n."""
    tiers = sorted(version.tiers, key=lambda t: t.from_session)
    counts: dict[int, int] = defaultdict(int)
    discounts: dict[int, int] = defaultdict(int)
    for n, entry in enumerate(delivered, start=1):
        tier = next((t for t in reversed(tiers) if t.from_session <= n), None)
        if tier is None:
            continue
        counts[tier.from_session] += 1
        # Per session, so the discount is exact whatever mix of prices the tier covers.
        discounts[tier.from_session] += percent_of(entry.amount_minor, tier.discount_bps)
    return [
        InvoiceLine(
            kind=LineKind.TIER_DISCOUNT,
            description=f"Volume tier from session {tier.from_session}: -{format_bps(tier.discount_bps)}",
            quantity=counts[tier.from_session],
            amount_minor=-discounts[tier.from_session],
        )
        for tier in tiers
        if discounts[tier.from_session]
    ]


def _line_order(line: InvoiceLine) -> tuple[int, str, int, int, str, int, int, int]:
    return (
        _LINE_ORDER[line.kind],
        line.period or "",
        _PROGRAM_ORDER[line.program] if line.program else -1,
        line.length_minutes or 0,
        line.description,
        line.unit_amount_minor or 0,
        line.amount_minor,
        line.quantity,
    )


def compute_invoice(
    *,
    org_id: str,
    period: str,
    entries: Iterable[LedgerEntry],
    price_book: PriceBook,
    eligible_headcount: int,
    now: datetime,
) -> Invoice:
    """The invoice for `period` from every ledger entry billed in it. Deterministic in its inputs."""
    if price_book.org_id != org_id:
        raise ValueError(f"the price book belongs to org {price_book.org_id}, not {org_id}")
    if eligible_headcount < 0:
        raise ValueError("eligible_headcount cannot be negative")
    if not _PERIOD.match(period):
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    version = price_book.version_for(first_day(period))
    currency = version.currency
    checked = _checked_entries(org_id, period, entries, currency)

    lines = _grouped_lines(checked, period)
    delivered = _delivered(checked, period)
    lines += _tier_lines(delivered, version)
    commitment = version.monthly_commitment_minor
    if commitment is not None:
        # Late adjustments belong to their own months, so they neither fill nor dent this one.
        own_net = sum(line.amount_minor for line in lines if line.kind is not LineKind.ADJUSTMENT)
        if own_net < commitment:
            shortfall = commitment - own_net
            lines.append(
                InvoiceLine(
                    kind=LineKind.COMMITMENT_TRUE_UP,
                    description=f"Monthly commitment true-up to {format_minor(commitment, currency)} {currency}",
                    quantity=1,
                    unit_amount_minor=shortfall,
                    amount_minor=shortfall,
                )
            )
    lines.sort(key=_line_order)

    total = sum(line.amount_minor for line in lines)
    sessions = len(delivered)
    participants = len({e.person_id for e in delivered})
    seat_price = version.seat_price_minor
    per_seat = None if seat_price is None else eligible_headcount * seat_price
    summary = InvoiceSummary(
        active_participants=participants,
        sessions_delivered=sessions,
        cost_per_session_minor=round_half_up(total, sessions) if sessions else None,
        cost_per_active_participant_minor=round_half_up(total, participants) if participants else None,
        eligible_headcount=eligible_headcount,
        seat_price_minor=seat_price,
        per_seat_cost_minor=per_seat,
        difference_vs_seats_minor=None if per_seat is None else per_seat - total,
    )
    return Invoice(
        invoice_id=invoice_id_for(org_id, period),
        org_id=org_id,
        period=period,
        currency=currency,
        status=InvoiceStatus.DRAFT,
        price_book_version=version.version,
        lines=lines,
        ledger_total_minor=sum(e.amount_minor for e in checked),
        total_minor=total,
        entry_count=len(checked),
        summary=summary,
        created_at=now,
    )


# ---------------------------------------------------------------------------- export and checks

CSV_HEADER = (
    "kind",
    "description",
    "program",
    "length_minutes",
    "period",
    "quantity",
    "unit_amount",
    "amount",
    "currency",
)
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value: str) -> str:
    # Spreadsheets run a cell starting with these as a formula; the apostrophe keeps it text.
    return f"'{value}" if value.startswith(_FORMULA_PREFIXES) else value


def invoice_csv(invoice: Invoice) -> str:
    """The invoice lines as CSV; amounts are exact decimal strings in the invoice currency."""
    currency = invoice.currency
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for line in invoice.lines:
        writer.writerow(
            [
                _text_cell(line.kind),
                _text_cell(line.description),
                _text_cell(line.program or ""),
                "" if line.length_minutes is None else line.length_minutes,
                _text_cell(line.period or ""),
                line.quantity,
                "" if line.unit_amount_minor is None else format_minor(line.unit_amount_minor, currency),
                format_minor(line.amount_minor, currency),
                _text_cell(currency),
            ]
        )
    total = format_minor(invoice.total_minor, currency)
    writer.writerow(["TOTAL", "Total", "", "", _text_cell(invoice.period), "", "", total, _text_cell(currency)])
    return buffer.getvalue()


def reconcile_invoice(
    invoice: Invoice, entries: Iterable[LedgerEntry], price_book: PriceBook, eligible_headcount: int
) -> list[str]:
    """Recompute the invoice from the ledger; every difference found, or [] when it reconciles."""
    try:
        fresh = compute_invoice(
            org_id=invoice.org_id,
            period=invoice.period,
            entries=entries,
            price_book=price_book,
            eligible_headcount=eligible_headcount,
            now=invoice.created_at,
        )
    except (ValueError, InvalidInput) as exc:
        return [f"the ledger cannot be invoiced: {exc}"]
    currency = invoice.currency
    differences: list[str] = []
    if fresh.currency != invoice.currency:
        differences.append(f"currency: invoice {invoice.currency}, ledger {fresh.currency}")
    if fresh.price_book_version != invoice.price_book_version:
        differences.append(f"price book version: invoice {invoice.price_book_version}, now {fresh.price_book_version}")
    if fresh.entry_count != invoice.entry_count:
        differences.append(f"entry count: invoice {invoice.entry_count}, ledger {fresh.entry_count}")
    if fresh.ledger_total_minor != invoice.ledger_total_minor:
        differences.append(
            f"ledger total: invoice {format_minor(invoice.ledger_total_minor, currency)}, "
            f"ledger {format_minor(fresh.ledger_total_minor, currency)} {currency}"
        )
    if fresh.total_minor != invoice.total_minor:
        differences.append(
            f"total: invoice {format_minor(invoice.total_minor, currency)}, "
            f"recomputed {format_minor(fresh.total_minor, currency)} {currency}"
        )
    if not differences and fresh.lines != invoice.lines:
        differences.append("lines differ from the recomputed invoice although the totals agree")
    return differences
