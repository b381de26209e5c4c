"""Booking use cases: open slots, book, cancel, list, calendar invite."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from coaching.adapters.booking_store import (
    BookingReads,
    BookingState,
    BookingStore,
    Limits,
    OrgMeter,
    read_booking,
    read_for_booking,
)
from coaching.adapters.dynamo import CoachRepository
from coaching.adapters.roster_store import RosterStore
from coaching.auth import Principal, Role
from coaching.domain.availability import AvailabilityPolicy, Interval, open_slots
from coaching.domain.booking import (
    SESSION_MINUTES,
    Booking,
    BookingPolicy,
    BookingRequest,
    BookingStatus,
    PolicySnapshot,
    RescheduleRequest,
    calendar_invite,
    period_of,
    period_reset,
)
from coaching.domain.common import DeferredModel, utc_now
from coaching.domain.competencies import default_framework
from coaching.domain.engagements import Engagement, EngagementStatus
from coaching.domain.errors import AllowanceExhausted, Conflict, InvalidInput, NotFound, PolicyRefused, UsageMoved
from coaching.domain.events import EngagementEnded
from coaching.domain.invoicing import LedgerEntry, usage_entry
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.pricing import NoPriceBook, Outcome, PriceBook, charge_for, format_minor
from coaching.domain.roster import RosterCoach
from coaching.events import DomainEvent
from coaching.ids import new_id
from coaching.services.roster import RosterCache

EVENT_SOURCE = "coaching.booking"
MAX_SLOT_RANGE_DAYS = 31
THRESHOLDS = (80, 100)
# A booking that races another across a budget threshold re-reads the counter and tries again.
_USAGE_RETRIES = 5
# Every UTC offset in use lies within these hours, so these instants cover the month a
# session falls in for any org time zone, before the org (and its zone) has been read.
_ZONE_SPREAD_HOURS = (-12, 0, 14)


@dataclass
class BookingContext:
    store: BookingStore = field(default_factory=BookingStore)
    coaches: CoachRepository = field(default_factory=CoachRepository)
    roster: RosterCache = field(default_factory=lambda: RosterCache(RosterStore()))
    clock: Any = utc_now


@dataclass(frozen=True, slots=True)
class _Bookable:
    engagement: Engagement
    coach: RosterCoach
    org: Org
    person: Person
    reads: BookingReads


class SlotView(DeferredModel):
    start: datetime
    end: datetime
    start_utc: datetime


def _busy(bookings: list[Booking]) -> list[Interval]:
    return [Interval(b.start, b.end) for b in bookings if b.status is BookingStatus.BOOKED]


def _bookable(caller: Principal, engagement_id: str, ctx: BookingContext, periods: frozenset[str]) -> _Bookable:
    """The caller's active engagement and its coach, org and person, from one BatchGetItem."""
    org_id = caller.require_org(Role.EMPLOYEE)
    reads = read_for_booking(org_id, caller.person_id, engagement_id, periods)
    if reads.engagement is None or reads.org is None or reads.person is None:
        raise NotFound(f"engagement {engagement_id} not found")
    engagement = reads.engagement[0]
    if engagement.status is not EngagementStatus.ACTIVE:
        raise Conflict("this engagement has ended; book with your current coach", field="engagement_id")
    # The roster holds approved coaches only: a suspended coach takes no new sessions.
    coach = ctx.roster.coach(reads.roster_pointer, engagement.coach_id)
    if coach is None:
        raise Conflict("this coach is not taking sessions now", field="engagement_id")
    return _Bookable(engagement, coach, reads.org, reads.person, reads)


def _periods_around(moment: datetime) -> frozenset[str]:
    return frozenset(
        (moment + timedelta(hours=hours)).astimezone(UTC).strftime("%Y-%m") for hours in _ZONE_SPREAD_HOURS
    )


def slots(caller: Principal, engagement_id: str, start: datetime, end: datetime, ctx: BookingContext) -> list[SlotView]:
    """Open slots with the person's coach, in the person's time zone."""
    if end <= start:
        raise InvalidInput("'to' must be after 'from'", field="to")
    if end - start > timedelta(days=MAX_SLOT_RANGE_DAYS):
        raise InvalidInput(f"ask for at most {MAX_SLOT_RANGE_DAYS} days at a time", field="to")
    found = _bookable(caller, engagement_id, ctx, frozenset())
    busy = _busy(ctx.store.for_coach(found.coach.coach_id, start, end))
    length = SESSION_MINUTES[found.engagement.program]
    offered = open_slots(
        AvailabilityPolicy.from_coach(found.coach), busy, length, start, end, ctx.clock(), found.person.time_zone
    )
    return [SlotView(start=s.start, end=s.end, start_utc=s.start_utc) for s in offered]


def _offered(coach: RosterCoach, start: datetime, length: int, now: datetime, zone: str) -> bool:
    # The slot must be one the coach offers (rules, exceptions, notice, horizon, grid); overlap
    # with other bookings is left to the calendar locks, which decide races exactly.
    offered = open_slots(
        AvailabilityPolicy.from_coach(coach), [], length, start, start + timedelta(minutes=1), now, zone
    )
    return bool(offered) and offered[0].start_utc == start


def book(caller: Principal, request: BookingRequest, ctx: BookingContext) -> tuple[Booking, list[DomainEvent]]:
    """Two DynamoDB round trips: one BatchGetItem of every input, one transaction of every write."""
    unknown = [c for c in request.focus_competencies if c not in default_framework().ids()]
    if unknown:
        raise InvalidInput(f"unknown competencies: {', '.join(unknown)}", field="focus_competencies")
    now = ctx.clock()
    start = request.start.astimezone(UTC)
    found = _bookable(caller, request.engagement_id, ctx, _periods_around(start))
    engagement, coach, org, person = found.engagement, found.coach, found.org, found.person
    length = SESSION_MINUTES[engagement.program]
    if request.length_minutes is not None and request.length_minutes != length:
        raise InvalidInput(f"{engagement.program.value} sessions last {length} minutes", field="length_minutes")
    if not _offered(coach, start, length, now, person.time_zone):
        raise InvalidInput(
            "that time is not in the coach's availability (or is too soon or too far ahead)", field="start"
        )
    price = _require_price(found.reads.price_book, engagement.program, length, start, org.time_zone)
    policy = org.booking or BookingPolicy()
    period = period_of(start, org.time_zone)
    allowance = policy.allowances.get(engagement.program)
    limit = allowance.for_level(person.level) if allowance else 0
    if limit == 0:
        raise PolicyRefused(f"your organisation offers no {engagement.program.value} sessions to book", field="program")
    places = found.reads.free_places(policy.max_upcoming, now)
    if not places:
        raise PolicyRefused(
            f"you already have {policy.max_upcoming} upcoming sessions; book the next after one has taken place",
            field="start",
            details={"rule": "max_upcoming"},
        )
    booking = Booking(
        booking_id=new_id(),
        org_id=org.org_id,
        person_id=person.person_id,
        coach_id=coach.coach_id,
        engagement_id=engagement.engagement_id,
        program=engagement.program,
        start=start,
        end=start + timedelta(minutes=length),
        person_time_zone=person.time_zone,
        coach_time_zone=coach.time_zone,
        buffer_minutes=coach.buffer_minutes,
        focus_competencies=list(request.focus_competencies),
        policy=PolicySnapshot(
            late_cancel_hours=policy.late_cancel_hours,
            allowance_period=period,
            counted_against_cap=policy.monthly_session_cap is not None,
            budget_minor=price if policy.monthly_budget_minor is not None else 0,
            free_late_reschedules=policy.free_late_reschedules,
        ),
        upcoming_slot=places[0],
        created_at=now,
        updated_at=now,
    )
    limits = Limits(limit, now, _meters(policy, booking, found.reads.org_usage))
    limits = _with_retries(lambda lim: ctx.store.book(booking, request.situation, lim), limits, booking, policy, org)
    return booking, [_event("SessionBooked", booking), *_thresholds(booking, limits, ctx)]


def _with_retries(commit: Any, limits: Limits, booking: Booking, policy: BookingPolicy, org: Org) -> Limits:
    """Commit; when a meter moved under us but has room, retry with the value now read."""
    for attempt in range(_USAGE_RETRIES):
        try:
            commit(limits)
            return limits
        except AllowanceExhausted as refusal:
            raise _explain(refusal.message, booking, limits.allowance, policy, org) from refusal
        except UsageMoved as moved:
            if attempt == _USAGE_RETRIES - 1:
                raise
            limits = limits.with_seen(moved.rule, moved.used)
    return limits


def _meters(policy: BookingPolicy, booking: Booking, usage: dict[tuple[str, str], int]) -> tuple[OrgMeter, ...]:
    """The org meters this booking counts against: sessions under the cap, money under the budget."""
    period = booking.policy.allowance_period
    meters = []
    if booking.policy.counted_against_cap and policy.monthly_session_cap is not None:
        cap = policy.monthly_session_cap
        meters.append(OrgMeter("cap", cap, usage.get(("cap", period), 0), 1, _threshold_values(cap)))
    if booking.policy.budget_minor and policy.monthly_budget_minor is not None:
        budget = policy.monthly_budget_minor
        seen = usage.get(("budget", period), 0)
        meters.append(OrgMeter("budget", budget, seen, booking.policy.budget_minor, _threshold_values(budget)))
    return tuple(meters)


def _require_price(book: PriceBook | None, program: Any, length: int, start: datetime, zone: str) -> int:
    """A session that could not be billed is not booked: the guardrail runs before anything is held."""
    try:
        version = (book or PriceBook(org_id="", versions=[])).version_for(start.astimezone(ZoneInfo(zone)).date())
    except NoPriceBook as missing:
        raise PolicyRefused(
            "your organisation has no price in effect for this session; ask your administrator",
            field="program",
            details={"rule": "unpriced"},
        ) from missing
    price = version.price_of(program, length)
    if price is None:
        raise PolicyRefused(
            f"your organisation's price book has no price for {program.value} {length}-minute sessions",
            field="program",
            details={"rule": "unpriced"},
        )
    return price


def billable_entry(state: BookingState, booking: Booking, outcome: Outcome, actor: str, now: datetime) -> LedgerEntry:
    """The usage entry for a session's billable outcome, priced by the version in force on its date."""
    if state.price_book is None:
        raise Conflict("the organisation has no price book; an operator must set one", field="price_book")
    zone = state.org.time_zone
    version = state.price_book.version_for(booking.start.astimezone(ZoneInfo(zone)).date())
    length = int((booking.end - booking.start).total_seconds() // 60)
    return usage_entry(
        org_id=booking.org_id,
        booking_id=booking.booking_id,
        person_id=booking.person_id,
        program=booking.program,
        length_minutes=length,
        outcome=outcome,
        charge=charge_for(version, booking.program, length, outcome),
        occurred_at=booking.start,
        time_zone=zone,
        actor=actor,
        now=now,
    )


def _threshold_values(cap: int) -> tuple[int, ...]:
    """The meter values at which 80 % and 100 % of the cap are reached (rounded up)."""
    return tuple(sorted({-(-cap * percent // 100) for percent in THRESHOLDS}))


def _explain(rule: str, booking: Booking, limit: int, policy: BookingPolicy, org: Org) -> PolicyRefused:
    period = booking.policy.allowance_period
    reset = period_reset(period, org.time_zone)
    details = {"rule": rule, "period": period, "resets_at": reset.isoformat()}
    resets = f"resets on {reset.date().isoformat()}"
    until = f"it {resets}"
    if rule == "allowance":
        message = f"you have used your {limit} {booking.program.value} sessions for {period}; the allowance {resets}"
    elif rule == "budget":
        budget = format_minor(policy.monthly_budget_minor or 0, org.currency)
        message = f"your organisation has used its coaching budget of {budget} {org.currency} for {period}; {until}"
    else:
        message = (
            f"your organisation has reached its cap of {policy.monthly_session_cap} sessions for {period}; {until}"
        )
    return PolicyRefused(message, field="program", details=details)


def _thresholds(booking: Booking, limits: Limits, ctx: BookingContext) -> list[DomainEvent]:
    """BudgetThresholdReached at 80 % and 100 % of a cap or budget, once each per org and month.

    Only the booking whose transaction moved a meter over a threshold gets here (its
    condition proved it); the marker keeps a threshold crossed again after cancellations
    from firing twice.
    """
    period = booking.policy.allowance_period
    events = []
    for meter in limits.meters:
        reached = meter.seen + meter.step
        for threshold in meter.crossed():
            percent = next(p for p in THRESHOLDS if -(-meter.cap * p // 100) == threshold)
            if ctx.store.mark_threshold(booking.org_id, meter.rule, period, percent):
                detail = {"org_id": booking.org_id, "period": period, "percent": percent, "meter": meter.rule,
                          "used": reached, "cap": meter.cap}  # fmt: skip
                if meter.rule == "cap":
                    detail |= {"sessions": reached}
                events.append(DomainEvent(source=EVENT_SOURCE, detail_type="BudgetThresholdReached", detail=detail))
    return events


def _event(kind: str, booking: Booking, **extra: Any) -> DomainEvent:
    detail = {
        "org_id": booking.org_id,
        "booking_id": booking.booking_id,
        "coach_id": booking.coach_id,
        "program": booking.program.value,
        "start": booking.start.isoformat(),
        **extra,
    }
    return DomainEvent(source=EVENT_SOURCE, detail_type=kind, detail=detail)


def own_booking(caller: Principal, booking_id: str) -> BookingState:
    """One of the calling employee's bookings (with its org and price book); another's is a 404."""
    org_id = caller.require_org(Role.EMPLOYEE)
    state = read_booking(org_id, caller.person_id, booking_id)
    if state is None:
        raise NotFound(f"booking {booking_id} not found")
    return state


def get_booking(caller: Principal, booking_id: str, ctx: BookingContext) -> Booking:
    return own_booking(caller, booking_id).booking


def list_bookings(caller: Principal, ctx: BookingContext) -> list[Booking]:
    org_id = caller.require_org(Role.EMPLOYEE)
    return sorted(ctx.store.for_person(org_id, caller.person_id), key=lambda b: b.start)


def _require_upcoming(booking: Booking, now: datetime, action: str) -> None:
    if booking.status is not BookingStatus.BOOKED:
        raise Conflict(f"this booking is already {booking.status.value.replace('_', ' ')}", field="booking_id")
    if booking.start <= now:
        raise Conflict(f"a session that has started cannot be {action}", field="booking_id")


def _is_late(booking: Booking, now: datetime) -> bool:
    return booking.start - now < timedelta(hours=booking.policy.late_cancel_hours)


def cancel(caller: Principal, booking_id: str, reason: str, ctx: BookingContext) -> tuple[Booking, list[DomainEvent]]:
    """Free until the late-cancel window snapshotted on the booking; inside it, billed (with
    its usage entry in the same transaction) and the allowance unit stays used."""
    state = own_booking(caller, booking_id)
    booking, now = state.booking, ctx.clock()
    _require_upcoming(booking, now, "cancelled")
    late = _is_late(booking, now)
    cancelled = booking.model_copy(
        update={
            "status": BookingStatus.LATE_CANCELLED if late else BookingStatus.CANCELLED,
            "billable": late,
            "cancelled_by": "person",
            "cancel_reason": reason,
            "sequence": booking.sequence + 1,
            "updated_at": now,
        }
    )
    entry = billable_entry(state, cancelled, Outcome.LATE_CANCELLED, caller.person_id, now) if late else None
    ctx.store.end(cancelled, state.version, release=True, refund=not late, entry=entry)
    return cancelled, [_event("SessionCancelled", cancelled, cancelled_by="person", late=late)]


def coach_state(caller: Principal, booking_id: str, store: BookingStore) -> BookingState:
    """A booking of the calling coach's, found through its locator; another coach's is a 404."""
    caller.require(Role.COACH)
    locator = store.locate(booking_id)
    if locator is None or locator.coach_id != caller.person_id:
        raise NotFound(f"session {booking_id} not found")
    state = read_booking(locator.org_id, locator.person_id, booking_id)
    if state is None:
        raise NotFound(f"session {booking_id} not found")
    return state


def coach_cancel(
    caller: Principal, booking_id: str, reason: str, ctx: BookingContext
) -> tuple[Booking, list[DomainEvent]]:
    """A coach's cancellation is never billed, however late, and the person's unit comes back."""
    state = coach_state(caller, booking_id, ctx.store)
    booking, now = state.booking, ctx.clock()
    _require_upcoming(booking, now, "cancelled")
    cancelled = booking.model_copy(
        update={
            "status": BookingStatus.CANCELLED,
            "cancelled_by": "coach",
            "cancel_reason": reason,
            "sequence": booking.sequence + 1,
            "updated_at": now,
        }
    )
    ctx.store.end(cancelled, state.version, release=True, refund=True, entry=None)
    return cancelled, [_event("SessionCancelled", cancelled, cancelled_by="coach", late=False)]


def coach_sessions(caller: Principal, start: datetime, end: datetime, ctx: BookingContext) -> list[Booking]:
    caller.require(Role.COACH)
    if end <= start or end - start > timedelta(days=MAX_SLOT_RANGE_DAYS):
        raise InvalidInput(f"'to' must be after 'from' and at most {MAX_SLOT_RANGE_DAYS} days later", field="to")
    return [b for b in ctx.store.for_coach(caller.person_id, start, end) if b.end > start and b.start < end]


def reschedule(
    caller: Principal, booking_id: str, request: RescheduleRequest, ctx: BookingContext
) -> tuple[Booking, list[DomainEvent]]:
    """Move a session; the calendar UID stays, the SEQUENCE goes up.

    Outside the late-cancel window, or inside it while the org's free late reschedules last,
    the booking moves in place. Otherwise the reschedule counts as a late cancel: the old
    session is billed as one and a new booking (same calendar UID) takes a fresh unit.
    """
    state = own_booking(caller, booking_id)
    old, now = state.booking, ctx.clock()
    _require_upcoming(old, now, "rescheduled")
    start = request.start.astimezone(UTC)
    if start == old.start:
        raise InvalidInput("that is the session's current time", field="start")
    found = _bookable(caller, old.engagement_id, ctx, _periods_around(start))
    length = int((old.end - old.start).total_seconds() // 60)
    if not _offered(found.coach, start, length, now, found.person.time_zone):
        raise InvalidInput(
            "that time is not in the coach's availability (or is too soon or too far ahead)", field="start"
        )
    late = _is_late(old, now)
    free = not late or old.late_reschedules < old.policy.free_late_reschedules
    policy = found.org.booking or BookingPolicy()
    period = period_of(start, found.org.time_zone)
    allowance = policy.allowances.get(old.program)
    limit = allowance.for_level(found.person.level) if allowance else 0
    moved_policy = old.policy.model_copy(update={"allowance_period": period})
    if free:
        moved = old.model_copy(
            update={
                "start": start,
                "end": start + timedelta(minutes=length),
                "policy": moved_policy,
                "sequence": old.sequence + 1,
                "reschedules": old.reschedules + 1,
                "late_reschedules": old.late_reschedules + int(late),
                "updated_at": now,
            }
        )
        if period == old.policy.allowance_period:
            ctx.store.move(old, moved, state.version, None)
            limits = Limits(limit, now)
        else:  # the unit (and the org meters) move to the new month
            limits = Limits(limit, now, _meters(policy, moved, found.reads.org_usage))
            limits = _with_retries(lambda lim: ctx.store.move(old, moved, state.version, lim), limits, moved, policy,
                                   found.org)  # fmt: skip
        event = _event("SessionRescheduled", moved, previous_start=old.start.isoformat(), late=late, billed=False)
        return moved, [event, *_thresholds(moved, limits, ctx)]
    ended = old.model_copy(
        update={
            "status": BookingStatus.LATE_CANCELLED,
            "billable": True,
            "cancelled_by": "person",
            "cancel_reason": "rescheduled inside the late-cancel window",
            "sequence": old.sequence + 1,
            "updated_at": now,
        }
    )
    replacement = old.model_copy(
        update={
            "booking_id": new_id(),
            "start": start,
            "end": start + timedelta(minutes=length),
            "policy": moved_policy,
            "calendar_uid": old.calendar_uid or old.booking_id,
            "situation_booking_id": old.situation_booking_id or old.booking_id,
            "rescheduled_from": old.booking_id,
            "sequence": old.sequence + 1,
            "reschedules": old.reschedules + 1,
            "late_reschedules": old.late_reschedules + 1,
            "created_at": now,
            "updated_at": now,
        }
    )
    entry = billable_entry(state, ended, Outcome.LATE_CANCELLED, caller.person_id, now)
    limits = Limits(limit, now, _meters(policy, replacement, found.reads.org_usage))
    limits = _with_retries(lambda lim: ctx.store.replace(ended, state.version, replacement, lim, entry), limits,
                           replacement, policy, found.org)  # fmt: skip
    event = _event(
        "SessionRescheduled", replacement, previous_start=old.start.isoformat(), late=True, billed=True,
        replaces_booking_id=old.booking_id,
    )  # fmt: skip
    return replacement, [event, *_thresholds(replacement, limits, ctx)]


def on_engagement_ended(ended: EngagementEnded, ctx: BookingContext) -> list[DomainEvent]:
    """Cancel the ended engagement's future sessions: never billed, units back.

    Idempotent: a redelivered event finds those sessions already cancelled and does nothing.
    """
    now = ctx.clock()
    events: list[DomainEvent] = []
    for upcoming in ctx.store.for_person(ended.org_id, ended.person_id):
        if upcoming.engagement_id != ended.engagement_id or upcoming.status is not BookingStatus.BOOKED:
            continue
        if upcoming.start <= now:
            continue  # started or past: the coach records its outcome
        state = read_booking(ended.org_id, ended.person_id, upcoming.booking_id)
        if state is None or state.booking.status is not BookingStatus.BOOKED:
            continue
        cancelled = state.booking.model_copy(
            update={
                "status": BookingStatus.CANCELLED,
                "cancelled_by": "platform",
                "cancel_reason": "the engagement with this coach ended",
                "sequence": state.booking.sequence + 1,
                "updated_at": now,
            }
        )
        try:
            ctx.store.end(cancelled, state.version, release=True, refund=True, entry=None)
        except Conflict:
            continue  # changed meanwhile (the person cancelled it): nothing left to do
        events.append(_event("SessionCancelled", cancelled, cancelled_by="platform", late=False))
    return events


def invite(caller: Principal, booking_id: str, ctx: BookingContext) -> str:
    booking = get_booking(caller, booking_id, ctx)
    coach = ctx.coaches.get(booking.coach_id)
    summary = f"Coaching session with {coach.name}" if coach else "Coaching session"
    return calendar_invite(booking, summary=summary, now=ctx.clock())
