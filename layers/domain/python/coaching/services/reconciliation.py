"""Reconciliation: the sessions, the ledger and the invoice of one org month checked against each other, on
demand (finance, operators) and daily for every org (a ``ReconciliationDue`` per org and month through the
outbox, one id per org, month and day). The invoice run itself is `coaching.services.invoicing`, whose context
and ports this module shares.
"""

from __future__ import annotations

from datetime import UTC, datetime

from coaching.auth import Principal, Role
from coaching.domain.booking import BILLABLE_STATES, period_of
from coaching.domain.common import DeferredModel
from coaching.domain.events import Event, ReconciliationDue, stable_event_id
from coaching.domain.invoicing import (
    EntryKind,
    InvoiceStatus,
    LedgerEntry,
    UsageFound,
    check_period,
    previous_period,
    reconcile_invoice,
)
from coaching.domain.orgs import Org
from coaching.domain.pricing import NoPriceBook
from coaching.services.invoicing import (
    FanOut,
    InvoicingContext,
    authorise,
    fan_out,
    org_of,
    priced,
)

__all__ = ["ReconciliationReport", "on_reconciliation_due", "reconcile", "reconcile_for", "reconciliation_due",
           "run_daily_reconciliation"]  # fmt: skip


class ReconciliationReport(DeferredModel):
    """Sessions, ledger and invoice of one org month checked against each other."""

    org_id: str
    period: str
    sessions: int  # every session of the month, whatever its status
    billable_sessions: int  # completed, no-show or late-cancelled
    usage_entries_found: int  # billable sessions whose usage entry exists (in any billing month)
    ledger_entries: int  # entries billed in this month (its own, late ones, reversals)
    invoice_status: InvoiceStatus | None
    differences: list[str]


def reconciliation_due(org_id: str, period: str, now: datetime) -> ReconciliationDue:
    """The daily run's event for one org month: one id per org, month and (UTC) day of the run."""
    day = now.astimezone(UTC).date().isoformat()
    event_id = stable_event_id(ReconciliationDue.detail_type, org_id, period, day)
    return ReconciliationDue(event_id=event_id, occurred_at=now, org_id=org_id, period=period)


# ---------------------------------------------------------------------------- reconciliation

_BILLABLE = frozenset(status.value for status in BILLABLE_STATES)


def _session_problem(org_id: str, period: str, booking_id: str, status: str, usage: UsageFound | None) -> str | None:
    """What is wrong between one session and its usage entry, or None."""
    if status not in _BILLABLE:
        return f"session {booking_id} is {status} (not billable) but has usage entry {usage.where}" if usage else None
    if usage is None:
        return f"session {booking_id} is {status} but has no usage entry in the ledger"
    entry, where = usage.entry, usage.where
    if entry is None:
        return f"session {booking_id}: its usage guard points to entry {where}, which does not exist"
    if entry.booking_id != booking_id or entry.kind is not EntryKind.USAGE or entry.org_id != org_id:
        return f"session {booking_id}: usage entry {where} belongs to another session or org"
    if entry.outcome.value != status:
        return f"session {booking_id} is {status} but its usage entry {where} bills {entry.outcome}"
    if entry.period != period:
        return f"session {booking_id} counts in {period} but its usage entry is for {entry.period}"
    return None


def _session_differences(
    ctx: InvoicingContext, org_id: str, period: str, statuses: dict[str, str], usage: dict[str, UsageFound]
) -> list[str]:
    """Check every session; a session that looks wrong is checked again on its current status.

    The sessions index is eventually consistent: a session completed a moment ago may still
    show its old status there while its (transactional) usage entry already exists.
    """
    suspects = [b for b, status in statuses.items() if _session_problem(org_id, period, b, status, usage.get(b))]
    if suspects:
        statuses.update(ctx.sessions.current_statuses(suspects))
    problems = (_session_problem(org_id, period, b, statuses[b], usage.get(b)) for b in sorted(suspects))
    return [problem for problem in problems if problem]


def _orphans(ctx: InvoicingContext, entries: list[LedgerEntry], period: str, statuses: dict[str, str]) -> list[str]:
    """Usage entries billed in the month whose session is nowhere to be found.

    The month's own entries must belong to its sessions; a late entry (an earlier month's
    session) is checked against that month when it is reconciled, so here only its existence.
    """
    differences: list[str] = []
    late: dict[str, str] = {}
    for entry in entries:
        if entry.kind is not EntryKind.USAGE:
            continue
        if entry.period != period:
            late[entry.booking_id] = entry.entry_id
        elif entry.booking_id not in statuses:
            differences.append(
                f"usage entry {entry.entry_id} bills session {entry.booking_id}, "
                f"which is not among the sessions of {period}"
            )
    if late:
        existing = ctx.sessions.current_statuses(list(late))
        differences += [
            f"late usage entry {entry_id} billed in {period} bills session {booking_id}, which does not exist"
            for booking_id, entry_id in sorted(late.items())
            if booking_id not in existing
        ]
    return differences


def reconcile(org_id: str, period: str, ctx: InvoicingContext) -> ReconciliationReport:
    """Every billable session has exactly one usage entry, no other session has one, and the
    month's invoice (if drawn) equals a recomputation from the entries billed in the month.

    The invoice is recomputed with the headcount it was drawn with: headcount is a snapshot
    taken at the run, not a ledger fact, so people joining later are not a difference.
    """
    check_period(period)
    statuses = ctx.sessions.statuses_in(org_id, period)
    usage = ctx.billing.usage_of(org_id, list(statuses))
    differences = _session_differences(ctx, org_id, period, statuses, usage)
    entries = list(ctx.billing.entries(org_id, period))
    differences += _orphans(ctx, entries, period, statuses)

    stored = ctx.billing.invoice(org_id, period)
    book = ctx.billing.price_book(org_id)
    if stored is not None:
        invoice = stored[0]
        if book is None:
            differences.append(f"invoice {invoice.invoice_id} exists but the organisation has no price book")
        else:
            found_in_invoice = reconcile_invoice(invoice, entries, book, invoice.summary.eligible_headcount)
            differences += [f"invoice {invoice.invoice_id}: {difference}" for difference in found_in_invoice]
    else:
        closed_at = ctx.billing.period_closed_at(org_id, period)
        if closed_at is not None:
            differences.append(f"{period} was closed at {closed_at} but has no invoice")
        if entries:
            try:
                priced(book, org_id, period)
            except NoPriceBook as exc:
                differences.append(
                    f"{len(entries)} ledger entries are billed in {period} but cannot be invoiced: {exc.message}"
                )
    billable = [booking_id for booking_id, status in statuses.items() if status in _BILLABLE]
    found = [usage[booking_id] for booking_id in billable if booking_id in usage]
    return ReconciliationReport(
        org_id=org_id,
        period=period,
        sessions=len(statuses),
        billable_sessions=len(billable),
        usage_entries_found=sum(1 for pointer in found if pointer.entry is not None),
        ledger_entries=len(entries),
        invoice_status=None if stored is None else stored[0].status,
        differences=differences,
    )


def reconcile_for(caller: Principal, org_id: str, period: str, ctx: InvoicingContext) -> ReconciliationReport:
    """On-demand reconciliation (operators, the org's finance)."""
    authorise(caller, org_id, Role.FINANCE)
    org_of(ctx, org_id)
    return reconcile(org_id, period, ctx)


def run_daily_reconciliation(now: datetime, ctx: InvoicingContext) -> FanOut:
    """One ReconciliationDue for every org's previous and current month (its own time zone),
    through the outbox. A re-run the same day builds the same ids and writes nothing twice."""

    def events_of(org: Org) -> list[Event]:
        current = period_of(now, org.time_zone)
        return [reconciliation_due(org.org_id, period, now) for period in (previous_period(current), current)]

    orgs, events = fan_out(ctx, events_of)
    return FanOut(kind=ReconciliationDue.detail_type, period=None, orgs=orgs, events=events)


def on_reconciliation_due(event: ReconciliationDue, ctx: InvoicingContext) -> ReconciliationReport:
    return reconcile(event.org_id, check_period(event.period), ctx)
