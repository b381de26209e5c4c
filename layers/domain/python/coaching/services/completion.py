"""Session completion: the coach records the outcome, the person confirms or disputes.

A billable outcome (completed, no-show) is written in the same transaction as its usage
entry, with a deterministic key per session: retries, duplicates and races all end with
exactly one ledger record. Corrections are reversing entries, never edits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from coaching.adapters.billing_store import BillingStore
from coaching.adapters.booking_store import BookingState, BookingStore, read_booking
from coaching.auth import Principal, Role
from coaching.domain.booking import (
    BILLABLE_STATES,
    CONFIRMATION_WINDOW_HOURS,
    NO_SHOW_WAIT_MINUTES,
    Booking,
    BookingStatus,
    Confirmation,
)
from coaching.domain.common import utc_now
from coaching.domain.errors import AlreadyBilled, Conflict, InvalidInput, NotFound
from coaching.domain.invoicing import EntryKind, reversal_of
from coaching.domain.pricing import Outcome
from coaching.events import DomainEvent
from coaching.services.booking import billable_entry, coach_state, own_booking

EVENT_SOURCE = "coaching.sessions"
# A session may run over, but a recorded duration far beyond the booked one is a typo.
MAX_OVERRUN_FACTOR = 3


@dataclass
class CompletionContext:
    store: BookingStore = field(default_factory=BookingStore)
    billing: BillingStore = field(default_factory=BillingStore)
    clock: Any = utc_now


def _event(kind: str, booking: Booking, **extra: Any) -> DomainEvent:
    detail = {
        "org_id": booking.org_id,
        "booking_id": booking.booking_id,
        "person_id": booking.person_id,
        "coach_id": booking.coach_id,
        "program": booking.program.value,
        "status": booking.status.value,
        "start": booking.start.isoformat(),
        **extra,
    }
    return DomainEvent(source=EVENT_SOURCE, detail_type=kind, detail=detail)


def _record(
    caller: Principal, state: BookingState, outcome: Outcome, ctx: CompletionContext, **changes: Any
) -> tuple[Booking, list[DomainEvent]]:
    booking, now = state.booking, ctx.clock()
    status = BookingStatus(outcome.value)
    if booking.status is status:
        # A retry of a call that committed: same answer, and the event again in case the
        # first attempt failed before publishing it (consumers are idempotent per booking).
        return booking, [_event("SessionCompleted", booking, outcome=outcome.value)]
    if booking.status is not BookingStatus.BOOKED:
        raise Conflict(
            f"this session is {booking.status.value.replace('_', ' ')}; it cannot be marked {outcome.value}",
            field="booking_id",
        )
    if outcome is Outcome.NO_SHOW and now < booking.start + timedelta(minutes=NO_SHOW_WAIT_MINUTES):
        raise Conflict(f"wait {NO_SHOW_WAIT_MINUTES} minutes after the start before recording a no-show")
    if outcome is Outcome.COMPLETED and now < booking.start:
        raise Conflict("a session cannot be completed before it starts", field="booking_id")
    final = booking.model_copy(
        update={"status": status, "billable": True, "outcome_at": now, "updated_at": now, **changes}
    )
    return _commit(state, final, outcome, caller, ctx)


def _commit(
    state: BookingState, final: Booking, outcome: Outcome, caller: Principal, ctx: CompletionContext
) -> tuple[Booking, list[DomainEvent]]:
    entry = billable_entry(state, final, outcome, caller.person_id, ctx.clock())
    try:
        committed = ctx.store.end(final, state.version, release=False, refund=False, entry=entry)
    except (AlreadyBilled, Conflict) as lost:
        # Another call for the same session won the race: theirs is the answer if it agrees.
        current = read_booking(final.org_id, final.person_id, final.booking_id)
        if current is not None and current.booking.status is final.status:
            return current.booking, [_event("SessionCompleted", current.booking, outcome=outcome.value)]
        raise Conflict("this session changed at the same time; load it again", field="booking_id") from lost
    amount = committed.amount_minor if committed else 0
    return final, [_event("SessionCompleted", final, outcome=outcome.value, amount_minor=amount)]


def complete(
    caller: Principal, booking_id: str, actual_minutes: int, ctx: CompletionContext
) -> tuple[Booking, list[DomainEvent]]:
    state = coach_state(caller, booking_id, ctx.store)
    booked = int((state.booking.end - state.booking.start).total_seconds() // 60)
    if actual_minutes > booked * MAX_OVERRUN_FACTOR:
        raise InvalidInput(f"a {booked}-minute session cannot have lasted {actual_minutes} minutes",
                           field="actual_minutes")  # fmt: skip
    return _record(caller, state, Outcome.COMPLETED, ctx, actual_minutes=actual_minutes)


def no_show(caller: Principal, booking_id: str, ctx: CompletionContext) -> tuple[Booking, list[DomainEvent]]:
    return _record(caller, coach_state(caller, booking_id, ctx.store), Outcome.NO_SHOW, ctx)


def respond(
    caller: Principal, booking_id: str, confirmation: Confirmation, reason: str, ctx: CompletionContext
) -> tuple[Booking, list[DomainEvent]]:
    """The person confirms or disputes the coach's record, within the window after it."""
    state = own_booking(caller, booking_id)
    booking, now = state.booking, ctx.clock()
    if booking.status not in {BookingStatus.COMPLETED, BookingStatus.NO_SHOW} or booking.outcome_at is None:
        raise Conflict("only a session the coach has recorded can be confirmed or disputed", field="booking_id")
    if booking.confirmation is not None:
        if booking.confirmation is confirmation:
            return booking, []
        raise Conflict(f"this session is already {booking.confirmation.value.replace('_', ' ')}", field="booking_id")
    if now - booking.outcome_at > timedelta(hours=CONFIRMATION_WINDOW_HOURS):
        raise Conflict(f"sessions can be confirmed or disputed for {CONFIRMATION_WINDOW_HOURS} hours after the "
                       "coach records them", field="booking_id")  # fmt: skip
    changed = booking.model_copy(update={"confirmation": confirmation, "dispute_reason": reason, "updated_at": now})
    ctx.store.end(changed, state.version, release=False, refund=False, entry=None)
    kind = "SessionDisputed" if confirmation is Confirmation.DISPUTED else "SessionConfirmed"
    return changed, [_event(kind, changed)]


def _org_session(caller: Principal, org_id: str, booking_id: str, ctx: CompletionContext) -> BookingState:
    caller.require(Role.OPERATOR)
    locator = ctx.store.locate(booking_id)
    state = read_booking(org_id, locator.person_id, booking_id) if locator and locator.org_id == org_id else None
    if state is None:
        raise NotFound(f"session {booking_id} not found")
    return state


def _credit(
    state: BookingState, updated: Booking, reason: str, caller: Principal, ctx: CompletionContext
) -> tuple[Booking, list[DomainEvent]]:
    """A reversing entry for the session's usage, atomically with the booking's new state."""
    usage = ctx.billing.entry(updated.org_id, updated.booking_id, EntryKind.USAGE)
    if usage is None:
        raise Conflict("this session has no usage to credit", field="booking_id")
    now = ctx.clock()
    reversal = reversal_of(usage, reason=reason, actor=caller.person_id, billed_in=usage.billed_in, now=now)
    credited = updated.model_copy(update={"credited": True, "updated_at": now})
    try:
        ctx.store.end(credited, state.version, release=False, refund=False, entry=reversal)
    except AlreadyBilled as done:
        raise Conflict("this session is already credited", field="booking_id") from done
    return credited, [_event("SessionCredited", credited, reason=reason, amount_minor=-usage.amount_minor)]


def resolve_dispute(
    caller: Principal, org_id: str, booking_id: str, upheld: bool, reason: str, ctx: CompletionContext
) -> tuple[Booking, list[DomainEvent]]:
    state = _org_session(caller, org_id, booking_id, ctx)
    booking = state.booking
    if booking.confirmation is not Confirmation.DISPUTED:
        raise Conflict("this session is not disputed", field="booking_id")
    if not upheld:
        rejected = booking.model_copy(update={"confirmation": Confirmation.DISPUTE_REJECTED, "updated_at": ctx.clock()})
        ctx.store.end(rejected, state.version, release=False, refund=False, entry=None)
        return rejected, [_event("SessionDisputeRejected", rejected, reason=reason)]
    upheld_booking = booking.model_copy(update={"confirmation": Confirmation.DISPUTE_UPHELD})
    return _credit(state, upheld_booking, f"dispute upheld: {reason}", caller, ctx)


def credit(
    caller: Principal, org_id: str, booking_id: str, reason: str, ctx: CompletionContext
) -> tuple[Booking, list[DomainEvent]]:
    state = _org_session(caller, org_id, booking_id, ctx)
    if state.booking.status not in BILLABLE_STATES:
        raise Conflict("only a billed session can be credited", field="booking_id")
    if state.booking.credited:
        raise Conflict("this session is already credited", field="booking_id")
    return _credit(state, state.booking, reason, caller, ctx)
