"""Session completion: the coach records the outcome, the person confirms or disputes.

A billable outcome (completed, no-show) is written in the same transaction as its usage
entry, with a deterministic key per session: retries, duplicates and races all end with
exactly one ledger record. Corrections are reversing entries, never edits. The rules are the
booking's own (`coaching.domain.booking.Booking`); events commit with the change (outbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from coaching.auth import Principal, Role
from coaching.domain.booking import Booking, BookingState
from coaching.domain.common import Clock
from coaching.domain.errors import AlreadyBilled, Conflict, NotFound
from coaching.domain.events import (
    SessionCompleted,
    SessionConfirmed,
    SessionCredited,
    SessionDisputed,
    SessionDisputeRejected,
)
from coaching.domain.invoicing import EntryKind, LedgerEntry, reversal_of
from coaching.domain.pricing import Outcome
from coaching.services.booking import (
    BookingReader,
    BookingWriter,
    billable_entry,
    coach_booking,
    own_booking,
    session_event,
)


class CompletionStore(BookingReader, BookingWriter, Protocol):
    """Find a session and write its outcome (with its ledger entry and events) in one transaction."""


class LedgerReader(Protocol):
    def entry(self, org_id: str, booking_id: str, kind: EntryKind) -> LedgerEntry | None: ...


@dataclass
class CompletionContext:
    store: CompletionStore
    billing: LedgerReader
    clock: Clock


def _completed(booking: Booking, outcome: Outcome, amount_minor: int, now: datetime) -> SessionCompleted:
    return session_event(SessionCompleted, booking, now, status=booking.status.value, outcome=outcome.value,
                         amount_minor=amount_minor)  # fmt: skip


def _record(
    caller: Principal, state: BookingState, final: Booking, outcome: Outcome, ctx: CompletionContext
) -> Booking:
    """Commit a recorded outcome with its usage entry and SessionCompleted, exactly once."""
    if final.status is state.booking.status:
        return state.booking  # a retry of a call that committed: same answer, nothing written again
    now = ctx.clock()
    entry = billable_entry(state, final, outcome, caller.person_id, now)
    event = _completed(final, outcome, entry.amount_minor, now)
    try:
        ctx.store.end(final, state.version, release=False, refund=False, entry=entry, events=[event])
    except (AlreadyBilled, Conflict) as lost:
        # Another call for the same session won the race: theirs is the answer if it agrees.
        current = ctx.store.read_booking(final.org_id, final.person_id, final.booking_id)
        if current is not None and current.booking.status is final.status:
            return current.booking
        raise Conflict("this session changed at the same time; load it again", field="booking_id") from lost
    return final


def complete(caller: Principal, booking_id: str, actual_minutes: int, ctx: CompletionContext) -> Booking:
    state = coach_booking(caller, booking_id, ctx.store)
    final = state.booking.complete(actual_minutes, ctx.clock())
    return _record(caller, state, final, Outcome.COMPLETED, ctx)


def no_show(caller: Principal, booking_id: str, ctx: CompletionContext) -> Booking:
    state = coach_booking(caller, booking_id, ctx.store)
    final = state.booking.no_show(ctx.clock())
    return _record(caller, state, final, Outcome.NO_SHOW, ctx)


def _answer(caller: Principal, booking_id: str, ctx: CompletionContext, dispute_reason: str | None) -> Booking:
    state = own_booking(caller, booking_id, ctx.store)
    now = ctx.clock()
    booking = state.booking
    changed = booking.confirm(now) if dispute_reason is None else booking.dispute(dispute_reason, now)
    if changed.confirmation is booking.confirmation:
        return booking  # the same answer again
    kind = SessionConfirmed if dispute_reason is None else SessionDisputed
    # What the person wrote stays in the booking; the bus only learns that they answered.
    answered = session_event(kind, changed, now, status=changed.status.value)
    ctx.store.end(changed, state.version, release=False, refund=False, entry=None, events=[answered])
    return changed


def confirm(caller: Principal, booking_id: str, ctx: CompletionContext) -> Booking:
    """The person confirms the coach's record, within the window after it."""
    return _answer(caller, booking_id, ctx, None)


def dispute(caller: Principal, booking_id: str, reason: str, ctx: CompletionContext) -> Booking:
    """The person disputes the coach's record, within the window after it."""
    return _answer(caller, booking_id, ctx, reason)


def _org_session(caller: Principal, org_id: str, booking_id: str, ctx: CompletionContext) -> BookingState:
    caller.require(Role.OPERATOR)
    locator = ctx.store.locate(booking_id)
    state = (
        ctx.store.read_booking(org_id, locator.person_id, booking_id) if locator and locator.org_id == org_id else None
    )
    if state is None:
        raise NotFound(f"session {booking_id} not found")
    return state


def _credit(state: BookingState, ruled: Booking, reason: str, caller: Principal, ctx: CompletionContext) -> Booking:
    """A reversing entry for the session's usage, atomically with the booking's new state."""
    now = ctx.clock()
    credited = ruled.credit(now)
    usage = ctx.billing.entry(credited.org_id, credited.booking_id, EntryKind.USAGE)
    if usage is None:
        raise Conflict("this session has no usage to credit", field="booking_id")
    reversal = reversal_of(usage, reason=reason, actor=caller.person_id, billed_in=usage.billed_in, now=now)
    event = session_event(SessionCredited, credited, now, status=credited.status.value, reason=reason,
                          amount_minor=-usage.amount_minor)  # fmt: skip
    try:
        ctx.store.end(credited, state.version, release=False, refund=False, entry=reversal, events=[event])
    except AlreadyBilled as done:
        raise Conflict("this session is already credited", field="booking_id") from done
    return credited


def resolve_dispute(
    caller: Principal, org_id: str, booking_id: str, upheld: bool, reason: str, ctx: CompletionContext
) -> Booking:
    """Uphold (credit with a reversing entry) or reject a person's dispute."""
    state = _org_session(caller, org_id, booking_id, ctx)
    now = ctx.clock()
    ruled = state.booking.resolve_dispute(upheld=upheld, now=now)
    if upheld:
        return _credit(state, ruled, f"dispute upheld: {reason}", caller, ctx)
    rejected = session_event(SessionDisputeRejected, ruled, now, status=ruled.status.value, reason=reason)
    ctx.store.end(ruled, state.version, release=False, refund=False, entry=None, events=[rejected])
    return ruled


def credit(caller: Principal, org_id: str, booking_id: str, reason: str, ctx: CompletionContext) -> Booking:
    """Credit a billed session with a reversing ledger entry (an operator's correction)."""
    state = _org_session(caller, org_id, booking_id, ctx)
    return _credit(state, state.booking, reason, caller, ctx)
