"""Booking use cases: open slots, book, cancel, reschedule, list, calendar invite.

The rules of a booking's life live on the entity (`coaching.domain.booking.Booking`); this
module reads through its ports, asks the entity, and hands the result and its events to the
store, which commits both in one transaction (the outbox).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from coaching.auth import Principal, Role
from coaching.domain.availability import AvailabilityPolicy, Interval, open_slots
from coaching.domain.booking import (
    BUCKET_MINUTES,
    HOLDS_MARGIN,
    SESSION_MINUTES,
    Booking,
    BookingPolicy,
    BookingReads,
    BookingRequest,
    BookingState,
    BookingStatus,
    CancelledBy,
    Limits,
    OrgMeter,
    PolicySnapshot,
    RescheduleRequest,
    SessionLocator,
    calendar_invite,
    period_of,
    period_reset,
)
from coaching.domain.coaches import Coach
from coaching.domain.common import Clock, DeferredModel
from coaching.domain.competencies import default_framework
from coaching.domain.engagements import (
    Engagement,
    EngagementStatus,
    require_active_person,
    require_approved_coach,
)
from coaching.domain.errors import AllowanceExhausted, Conflict, InvalidInput, NotFound, PolicyRefused, UsageMoved
from coaching.domain.events import (
    BudgetThresholdReached,
    EngagementEnded,
    Event,
    SessionBooked,
    SessionCancelled,
    SessionEvent,
    SessionRescheduled,
    stable_event_id,
)
from coaching.domain.invoicing import LedgerEntry, usage_entry
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.pricing import NoPriceBook, Outcome, PriceBook, charge_for, format_minor
from coaching.domain.roster import RosterCoach
from coaching.domain.taxonomy import Program
from coaching.ids import new_id

MAX_SLOT_RANGE_DAYS = 31
# A booking that races another across a budget threshold re-reads the counter and tries again.
_USAGE_RETRIES = 5
# Every UTC offset in use lies within these hours, so these instants cover the month a
# session falls in for any org time zone, before the org (and its zone) has been read.
_ZONE_SPREAD_HOURS = (-12, 0, 14)


# ---------------------------------------------------------------------------- ports


class BookingReader(Protocol):
    """Finding one booking: what both booking and completion need to act on a session."""

    def read_booking(self, org_id: str, person_id: str, booking_id: str) -> BookingState | None: ...

    def locate(self, booking_id: str) -> SessionLocator | None: ...

    def locate_for_coach(self, booking_id: str, coach_id: str) -> tuple[SessionLocator | None, Coach | None]:
        """The booking's locator and the calling coach's record, in one round trip."""
        ...


class BookingWriter(Protocol):
    """Writing a booking's new state with its events (and its ledger entry) in one transaction."""

    def end(
        self,
        booking: Booking,
        version: int,
        *,
        release: bool,
        refund: bool,
        entry: LedgerEntry | None,
        events: Sequence[Event],
    ) -> LedgerEntry | None: ...


class BookingPort(BookingReader, BookingWriter, Protocol):
    def read_for_booking(
        self, org_id: str, person_id: str, engagement_id: str, periods: Iterable[str]
    ) -> BookingReads: ...

    def engagement(self, org_id: str, person_id: str, engagement_id: str) -> Engagement | None: ...

    def for_person(self, org_id: str, person_id: str) -> list[Booking]: ...

    def for_coach(self, coach_id: str, start: datetime, end: datetime) -> list[Booking]: ...

    def calendar_holds(self, coach_id: str, start: datetime, end: datetime) -> list[tuple[str, datetime]]:
        """The coach's calendar locks with a bucket starting in [start, end): (what holds it, the bucket's start).
        Group sessions and workshops hold the same locks as 1:1s."""
        ...

    def book(self, booking: Booking, situation: str, limits: Limits, events: Sequence[Event]) -> None: ...

    def move(
        self, old: Booking, new: Booking, version: int, limits: Limits | None, events: Sequence[Event]
    ) -> None: ...

    def replace(
        self,
        old: Booking,
        version: int,
        new: Booking,
        limits: Limits,
        entry: LedgerEntry,
        events: Sequence[Event],
    ) -> LedgerEntry: ...

    def mark_threshold(self, reached: BudgetThresholdReached) -> bool: ...


class RosterPort(Protocol):
    """The approved coaches, as of the roster pointer read with the booking's other inputs."""

    # The pointer is opaque to the service: it comes from the store's read and goes back to the roster.
    def coach(self, pointer: Any, coach_id: str) -> RosterCoach | None: ...


class CoachDirectory(Protocol):
    def get(self, coach_id: str) -> Coach | None: ...


@dataclass
class BookingContext:
    store: BookingPort
    roster: RosterPort
    coaches: CoachDirectory
    clock: Clock


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


# ---------------------------------------------------------------------------- shared with completion


def own_booking(caller: Principal, booking_id: str, store: BookingReader) -> BookingState:
    """One of the calling employee's bookings (with its org and price book); another's is a 404."""
    org_id = caller.require_org(Role.EMPLOYEE)
    state = store.read_booking(org_id, caller.person_id, booking_id)
    if state is None:
        raise NotFound(f"booking {booking_id} not found")
    return state


def coach_booking(caller: Principal, booking_id: str, store: BookingReader) -> BookingState:
    """A booking of the calling coach's, found through its locator; another coach's is a 404.

    Only an approved coach gets one: the coach's record is read with the locator, and a
    suspended coach is refused (403) whatever the id.
    """
    caller.require(Role.COACH)
    locator, coach = store.locate_for_coach(booking_id, caller.person_id)
    if coach is not None:
        require_approved_coach(caller.person_id, coach)
    if locator is None or locator.coach_id != caller.person_id:
        raise NotFound(f"session {booking_id} not found")
    require_approved_coach(caller.person_id, coach)  # a token naming no coach record
    state = store.read_booking(locator.org_id, locator.person_id, booking_id)
    if state is None:
        raise NotFound(f"session {booking_id} not found")
    return state


def billable_entry(state: BookingState, booking: Booking, outcome: Outcome, actor: str, now: datetime) -> LedgerEntry:
    """The usage entry for a session's billable outcome, priced by the version in force on its date."""
    if state.price_book is None:
        raise Conflict("the organisation has no price book; an operator must set one", field="price_book")
    zone = state.org.time_zone
    version = state.price_book.version_for(booking.start.astimezone(ZoneInfo(zone)).date())
    length = booking.length_minutes
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


# ---------------------------------------------------------------------------- events


def session_event[E: SessionEvent](kind: type[E], booking: Booking, now: datetime, *id_parts: str, **fields: Any) -> E:
    """An event about one session, its id stable per booking (and `id_parts`): a retried commit writes it once."""
    return kind(
        event_id=stable_event_id(kind.detail_type, booking.booking_id, *id_parts),
        occurred_at=now,
        org_id=booking.org_id,
        person_id=booking.person_id,
        booking_id=booking.booking_id,
        coach_id=booking.coach_id,
        program=booking.program.value,
        start=booking.start,
        **fields,
    )


def _cancelled(booking: Booking, now: datetime) -> SessionCancelled:
    late = booking.status is BookingStatus.LATE_CANCELLED
    return session_event(SessionCancelled, booking, now, cancelled_by=booking.cancelled_by or "", late=late)


def _rescheduled(moved: Booking, previous: Booking, *, late: bool, billed: bool, now: datetime) -> SessionRescheduled:
    replaces = previous.booking_id if billed else None
    return session_event(SessionRescheduled, moved, now, str(moved.sequence), previous_start=previous.start, late=late,
                         billed=billed, replaces_booking_id=replaces)  # fmt: skip


def _thresholds(booking: Booking, limits: Limits, ctx: BookingContext, now: datetime) -> None:
    """BudgetThresholdReached at 80 % and 100 % of a cap or budget, once each per org and month.

    Only the booking whose transaction moved a meter over a threshold gets here (its condition
    proved it); the marker, written with its event, keeps a threshold crossed again after
    cancellations from firing twice.
    """
    period = booking.policy.allowance_period
    for meter in limits.meters:
        for percent in meter.crossed_percents():
            ctx.store.mark_threshold(
                BudgetThresholdReached(
                    event_id=stable_event_id(
                        BudgetThresholdReached.detail_type, booking.org_id, meter.rule, period, str(percent)
                    ),
                    occurred_at=now,
                    org_id=booking.org_id,
                    period=period,
                    percent=percent,
                    meter=meter.rule,
                    used=meter.seen + meter.step,
                    cap=meter.cap,
                )
            )


# ---------------------------------------------------------------------------- slots and booking


def _busy(bookings: list[Booking]) -> list[Interval]:
    return [Interval(b.start, b.end) for b in bookings if b.status is BookingStatus.BOOKED]


def _held(holds: list[tuple[str, datetime]], bookings: list[Booking]) -> list[Interval]:
    """What else holds the coach's calendar (a group session, a workshop: anything not one of these 1:1s),
    bucket by bucket, so the open slots never offer a time the locks would refuse."""
    ours = {b.booking_id for b in bookings}
    return [Interval(at, at + timedelta(minutes=BUCKET_MINUTES)) for ref, at in holds if ref not in ours]


def _bookable(
    caller: Principal, engagement_id: str, ctx: BookingContext, periods: frozenset[str], *, to_book: bool = True
) -> _Bookable:
    """The caller's active engagement and its coach, org and person, from one read.

    `to_book`: the caller is about to book (or move) a session on the org's bill, which only an
    active member of the org may do.
    """
    org_id = caller.require_org(Role.EMPLOYEE)
    reads = ctx.store.read_for_booking(org_id, caller.person_id, engagement_id, periods)
    if reads.engagement is None or reads.org is None or reads.person is None:
        raise NotFound(f"engagement {engagement_id} not found")
    if to_book:
        require_active_person(reads.person)
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
    found = _bookable(caller, engagement_id, ctx, frozenset(), to_book=False)
    bookings = ctx.store.for_coach(found.coach.coach_id, start, end)
    holds = ctx.store.calendar_holds(found.coach.coach_id, start - HOLDS_MARGIN, end + HOLDS_MARGIN)
    busy = _busy(bookings) + _held(holds, bookings)
    length = SESSION_MINUTES[found.engagement.program]
    offered = open_slots(
        AvailabilityPolicy.from_coach(found.coach), busy, length, start, end, ctx.clock(), found.person.time_zone
    )
    return [SlotView(start=s.start, end=s.end, start_utc=s.start_utc) for s in offered]


def _require_offered(coach: RosterCoach, start: datetime, length: int, now: datetime, zone: str) -> None:
    """The slot must be one the coach offers (rules, exceptions, notice, horizon, grid); overlap
    with other bookings is left to the calendar locks, which decide races exactly."""
    offered = open_slots(
        AvailabilityPolicy.from_coach(coach), [], length, start, start + timedelta(minutes=1), now, zone
    )
    if not offered or offered[0].start_utc != start:
        raise InvalidInput(
            "that time is not in the coach's availability (or is too soon or too far ahead)", field="start"
        )


def _allowance(policy: BookingPolicy, program: Program, person: Person) -> int:
    allowance = policy.allowances.get(program)
    return allowance.for_level(person.level) if allowance else 0


def book(caller: Principal, request: BookingRequest, ctx: BookingContext) -> Booking:
    """Two round trips: one read of every input, one transaction of every write and SessionBooked."""
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
    _require_offered(coach, start, length, now, person.time_zone)
    price = _require_price(found.reads.price_book, engagement.program, length, start, org.time_zone)
    policy = org.booking or BookingPolicy()
    limit = _allowance(policy, engagement.program, person)
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
            allowance_period=period_of(start, org.time_zone),
            counted_against_cap=policy.monthly_session_cap is not None,
            budget_minor=price if policy.monthly_budget_minor is not None else 0,
            free_late_reschedules=policy.free_late_reschedules,
        ),
        upcoming_slot=places[0],
        created_at=now,
        updated_at=now,
    )
    events = [session_event(SessionBooked, booking, now)]
    limits = Limits(limit, now, _meters(policy, booking, found.reads.org_usage))
    limits = _with_retries(lambda lim: ctx.store.book(booking, request.situation, lim, events), limits, booking,
                           policy, org)  # fmt: skip
    _thresholds(booking, limits, ctx, now)
    return booking


def _with_retries(
    commit: Callable[[Limits], object], limits: Limits, booking: Booking, policy: BookingPolicy, org: Org
) -> Limits:
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
        meters.append(OrgMeter.of("cap", policy.monthly_session_cap, usage.get(("cap", period), 0), 1))
    if booking.policy.budget_minor and policy.monthly_budget_minor is not None:
        seen = usage.get(("budget", period), 0)
        meters.append(OrgMeter.of("budget", policy.monthly_budget_minor, seen, booking.policy.budget_minor))
    return tuple(meters)


def _require_price(book: PriceBook | None, program: Program, length: int, start: datetime, zone: str) -> int:
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


# ---------------------------------------------------------------------------- reading bookings


def get_booking(caller: Principal, booking_id: str, ctx: BookingContext) -> Booking:
    return own_booking(caller, booking_id, ctx.store).booking


def list_bookings(caller: Principal, ctx: BookingContext) -> list[Booking]:
    org_id = caller.require_org(Role.EMPLOYEE)
    return sorted(ctx.store.for_person(org_id, caller.person_id), key=lambda b: b.start)


def coach_sessions(caller: Principal, start: datetime, end: datetime, ctx: BookingContext) -> list[Booking]:
    """The calling coach's sessions overlapping [start, end); an approved coach's only."""
    caller.require(Role.COACH)
    require_approved_coach(caller.person_id, ctx.coaches.get(caller.person_id))
    if end <= start or end - start > timedelta(days=MAX_SLOT_RANGE_DAYS):
        raise InvalidInput(f"'to' must be after 'from' and at most {MAX_SLOT_RANGE_DAYS} days later", field="to")
    return [b for b in ctx.store.for_coach(caller.person_id, start, end) if b.end > start and b.start < end]


def invite(caller: Principal, booking_id: str, ctx: BookingContext) -> str:
    booking = get_booking(caller, booking_id, ctx)
    coach = ctx.coaches.get(booking.coach_id)
    summary = f"Coaching session with {coach.name}" if coach else "Coaching session"
    return calendar_invite(booking, summary=summary, now=ctx.clock())


# ---------------------------------------------------------------------------- changes


def cancel(caller: Principal, booking_id: str, reason: str, ctx: BookingContext) -> Booking:
    """Free until the late-cancel window snapshotted on the booking; inside it, billed (with
    its usage entry in the same transaction) and the allowance unit stays used."""
    state = own_booking(caller, booking_id, ctx.store)
    now = ctx.clock()
    cancelled = state.booking.cancel(CancelledBy.PERSON, reason, now)
    late = cancelled.billable
    entry = billable_entry(state, cancelled, Outcome.LATE_CANCELLED, caller.person_id, now) if late else None
    ctx.store.end(
        cancelled, state.version, release=True, refund=not late, entry=entry, events=[_cancelled(cancelled, now)]
    )
    return cancelled


def coach_cancel(caller: Principal, booking_id: str, reason: str, ctx: BookingContext) -> Booking:
    """A coach's cancellation is never billed, however late, and the person's unit comes back."""
    state = coach_booking(caller, booking_id, ctx.store)
    now = ctx.clock()
    cancelled = state.booking.cancel(CancelledBy.COACH, reason, now)
    ctx.store.end(cancelled, state.version, release=True, refund=True, entry=None, events=[_cancelled(cancelled, now)])
    return cancelled


def reschedule(caller: Principal, booking_id: str, request: RescheduleRequest, ctx: BookingContext) -> Booking:
    """Move a session (the entity decides: in place, or a billed replacement with the same UID)."""
    state = own_booking(caller, booking_id, ctx.store)
    old, now = state.booking, ctx.clock()
    plan = old.reschedule(request.start, org_time_zone=state.org.time_zone, now=now, replacement_id=new_id())
    moved = plan.booking
    found = _bookable(caller, old.engagement_id, ctx, _periods_around(moved.start))
    _require_offered(found.coach, moved.start, moved.length_minutes, now, found.person.time_zone)
    policy = found.org.booking or BookingPolicy()
    limit = _allowance(policy, old.program, found.person)
    events: list[Event] = [_rescheduled(moved, old, late=plan.late, billed=plan.billed, now=now)]
    if plan.ended is None:
        if moved.policy.allowance_period == old.policy.allowance_period:
            ctx.store.move(old, moved, state.version, None, events)
            return moved
        # The unit (and the org meters) move to the new month.
        limits = Limits(limit, now, _meters(policy, moved, found.reads.org_usage))
        limits = _with_retries(lambda lim: ctx.store.move(old, moved, state.version, lim, events), limits, moved,
                               policy, found.org)  # fmt: skip
        _thresholds(moved, limits, ctx, now)
        return moved
    ended = plan.ended
    entry = billable_entry(state, ended, Outcome.LATE_CANCELLED, caller.person_id, now)
    limits = Limits(limit, now, _meters(policy, moved, found.reads.org_usage))
    limits = _with_retries(lambda lim: ctx.store.replace(ended, state.version, moved, lim, entry, events), limits,
                           moved, policy, found.org)  # fmt: skip
    _thresholds(moved, limits, ctx, now)
    return moved


def on_engagement_ended(ended: EngagementEnded, ctx: BookingContext) -> list[Booking]:
    """Cancel the ended engagement's future sessions: never billed, units back.

    The event is a hint, not a fact: the engagement is read again and nothing happens unless it
    has really ended. Idempotent: a redelivered event finds those sessions already cancelled.
    """
    engagement = ctx.store.engagement(ended.org_id, ended.person_id, ended.engagement_id)
    if engagement is None or engagement.status is not EngagementStatus.ENDED:
        return []
    now = ctx.clock()
    cancelled: list[Booking] = []
    for upcoming in ctx.store.for_person(engagement.org_id, engagement.person_id):
        if upcoming.engagement_id != engagement.engagement_id or upcoming.status is not BookingStatus.BOOKED:
            continue
        if upcoming.start <= now:
            continue  # started or past: the coach records its outcome
        state = ctx.store.read_booking(engagement.org_id, engagement.person_id, upcoming.booking_id)
        if state is None or state.booking.status is not BookingStatus.BOOKED:
            continue
        over = state.booking.end_with_engagement(now)
        try:
            ctx.store.end(over, state.version, release=True, refund=True, entry=None, events=[_cancelled(over, now)])
        except Conflict:
            continue  # changed meanwhile (the person cancelled it): nothing left to do
        cancelled.append(over)
    return cancelled
