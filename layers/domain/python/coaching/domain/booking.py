"""Bookings: a session in a coach's real availability, which can never be sold twice.

Overlap is prevented structurally: a booking claims one lock item per 5-minute bucket of
the coach's calendar (the session plus the buffer after it) and of the person's calendar
(the session), all in the transaction that writes the booking. DynamoDB refuses the
transaction if any bucket is taken, so no two bookings can ever overlap, whatever races.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, Field, model_validator

from coaching.domain.common import DeferredModel, StrictModel
from coaching.domain.errors import Conflict, InvalidInput
from coaching.domain.taxonomy import Level, Program

if TYPE_CHECKING:  # these modules import this one: annotations only
    from coaching.domain.engagements import Engagement
    from coaching.domain.orgs import Org
    from coaching.domain.people import Person
    from coaching.domain.pricing import PriceBook

BUCKET_MINUTES = 5
# A coach waits this long for the person before recording a no-show.
NO_SHOW_WAIT_MINUTES = 15
# The person may confirm or dispute a recorded outcome for this long.
CONFIRMATION_WINDOW_HOURS = 72
# A session may run over, but a recorded duration far beyond the booked one is a typo.
MAX_OVERRUN_FACTOR = 3
# The most upcoming sessions an org may allow a person: bounds the places a booking reads.
MAX_UPCOMING_LIMIT = 20
# Session length per program: SCALE is a focused half hour, EXEC a full hour.
SESSION_MINUTES: dict[Program, int] = {
    Program.SCALE: 30,
    Program.GROW: 45,
    Program.EXEC: 60,
    Program.TOGETHER: 60,
}


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"  # free (early, or by the coach): the allowance unit came back
    LATE_CANCELLED = "late_cancelled"  # inside the window: billable, the unit stays used
    COMPLETED = "completed"  # delivered: billable
    NO_SHOW = "no_show"  # the person did not come: billable under the org's fee


# Final states that bill; each has exactly one usage entry in the ledger.
BILLABLE_STATES = frozenset({BookingStatus.LATE_CANCELLED, BookingStatus.COMPLETED, BookingStatus.NO_SHOW})


class Confirmation(StrEnum):
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"
    DISPUTE_UPHELD = "dispute_upheld"  # credited with a reversing entry
    DISPUTE_REJECTED = "dispute_rejected"


class Allowance(StrictModel):
    """Sessions per person per calendar month (org time zone), optionally per level."""

    sessions: Annotated[int, Field(ge=0, le=100)]
    by_level: dict[Level, Annotated[int, Field(ge=0, le=100)]] = {}

    def for_level(self, level: Level) -> int:
        return self.by_level.get(level, self.sessions)


def _default_allowances() -> dict[Program, Allowance]:
    return {
        Program.SCALE: Allowance(sessions=2),
        Program.GROW: Allowance(sessions=4),
        Program.EXEC: Allowance(sessions=4),
        Program.TOGETHER: Allowance(sessions=2),
    }


class BookingPolicy(StrictModel):
    """The structure that prevents sprawl; snapshotted onto every booking."""

    allowances: dict[Program, Allowance] = Field(default_factory=_default_allowances)
    max_upcoming: Annotated[int, Field(ge=1, le=MAX_UPCOMING_LIMIT)] = 3
    monthly_session_cap: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    # A monthly coaching budget in the org's currency (minor units), counted at list price.
    monthly_budget_minor: Annotated[int, Field(ge=1, le=10**12)] | None = None
    late_cancel_hours: Annotated[int, Field(ge=0, le=168)] = 24
    # Reschedules inside the late-cancel window that are not billed as a late cancel, per booking.
    free_late_reschedules: Annotated[int, Field(ge=0, le=3)] = 0


class PolicySnapshot(DeferredModel):
    late_cancel_hours: int
    allowance_period: str  # "2026-12": the month the session counts against, org time zone
    counted_against_cap: bool = False
    budget_minor: int = 0  # what this booking counts against the org's money budget
    free_late_reschedules: int = 0


def period_of(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m")


def period_reset(period: str, zone: str) -> datetime:
    """When a monthly allowance resets: the first instant of the next month, org time zone."""
    year, month = (int(part) for part in period.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=ZoneInfo(zone))


class BookingRequest(StrictModel):
    engagement_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
    start: AwareDatetime
    length_minutes: Annotated[int, Field(ge=15, le=120)] | None = None
    focus_competencies: Annotated[list[str], Field(min_length=1, max_length=5)]
    situation: Annotated[str, Field(min_length=10, max_length=2000)]


class CancelRequest(StrictModel):
    reason: Annotated[str, Field(max_length=500)] = ""


class RescheduleRequest(StrictModel):
    start: AwareDatetime


class CompletionRequest(StrictModel):
    actual_minutes: Annotated[int, Field(ge=1, le=240)]


class DisputeRequest(StrictModel):
    reason: Annotated[str, Field(min_length=10, max_length=500)]


class DisputeResolution(StrictModel):
    upheld: bool
    reason: Annotated[str, Field(min_length=3, max_length=500)]


class CreditRequest(StrictModel):
    reason: Annotated[str, Field(min_length=3, max_length=500)]


class CancelledBy(StrEnum):
    PERSON = "person"
    COACH = "coach"
    PLATFORM = "platform"  # the engagement ended: never billed, the unit comes back


ENGAGEMENT_ENDED_REASON = "the engagement with this coach ended"
LATE_RESCHEDULE_REASON = "rescheduled inside the late-cancel window"
_PLATFORM_REASONS = frozenset({ENGAGEMENT_ENDED_REASON, LATE_RESCHEDULE_REASON})


# A session and its state machine. Every change is a method that checks its rule and returns a new,
# validated booking (or raises a domain error naming the rule). A comment, not a docstring: the
# docstring would become the API schema's description.
class Booking(DeferredModel):
    booking_id: str
    org_id: str
    person_id: str
    coach_id: str
    engagement_id: str
    program: Program
    start: datetime  # UTC
    end: datetime  # UTC
    person_time_zone: str
    coach_time_zone: str
    buffer_minutes: int
    focus_competencies: list[str]
    policy: PolicySnapshot
    upcoming_slot: int  # which of the person's upcoming-session places this booking holds
    billable: bool = False  # a late cancel is billed under the org's policy
    status: BookingStatus = BookingStatus.BOOKED
    sequence: int = 0  # ICS SEQUENCE: bumps on every change so calendars update in place
    cancelled_by: str | None = None  # "person", "coach" or "platform"
    cancel_reason: str = ""
    reschedules: int = 0
    # A billed late reschedule makes a new booking; it keeps the calendar UID and the situation.
    calendar_uid: str | None = None
    situation_booking_id: str | None = None
    rescheduled_from: str | None = None
    late_reschedules: int = 0  # reschedules inside the late-cancel window
    actual_minutes: int | None = None
    outcome_at: datetime | None = None  # when the coach recorded completed or no-show
    confirmation: Confirmation | None = None
    dispute_reason: str = ""
    credited: bool = False  # a reversing ledger entry credits this session
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="after")
    def _consistent(self) -> Booking:
        if self.end <= self.start:
            raise ValueError("a session must end after it starts")
        if self.credited and self.status not in BILLABLE_STATES:
            raise ValueError("only a billed session can be credited")
        return self

    # ------------------------------------------------------------------ reading

    @property
    def length_minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    def is_late(self, now: datetime) -> bool:
        """Inside the late-cancel window snapshotted when it was booked."""
        return self.start - now < timedelta(hours=self.policy.late_cancel_hours)

    def _changed(self, **changes: object) -> Booking:
        return Booking.model_validate(self.model_dump() | changes)

    def _require_upcoming(self, now: datetime, action: str) -> None:
        if self.status is not BookingStatus.BOOKED:
            raise Conflict(f"this booking is already {self.status.value.replace('_', ' ')}", field="booking_id")
        if self.start <= now:
            raise Conflict(f"a session that has started cannot be {action}", field="booking_id")

    # ------------------------------------------------------------------ before the session

    def cancel(self, by: CancelledBy, reason: str, now: datetime) -> Booking:
        """Free until the late-cancel window; the person's cancel inside it is billed and keeps
        the unit used. A coach's or the platform's cancel is never billed, however late."""
        self._require_upcoming(now, "cancelled")
        late = by is CancelledBy.PERSON and self.is_late(now)
        return self._changed(
            status=BookingStatus.LATE_CANCELLED if late else BookingStatus.CANCELLED,
            billable=late,
            cancelled_by=by.value,
            cancel_reason=reason,
            sequence=self.sequence + 1,
            updated_at=now,
        )

    def end_with_engagement(self, now: datetime) -> Booking:
        """The engagement ended: the platform cancels this future session, unbilled."""
        return self.cancel(CancelledBy.PLATFORM, ENGAGEMENT_ENDED_REASON, now)

    def reschedule(self, start: datetime, *, org_time_zone: str, now: datetime, replacement_id: str) -> Reschedule:
        """Move the session; the calendar UID stays, the SEQUENCE goes up.

        Outside the late-cancel window, or inside it while the free late reschedules last, the
        booking moves in place. Otherwise the old session ends as a billed late cancel and a
        replacement (`replacement_id`, same calendar UID and situation) takes over.
        """
        self._require_upcoming(now, "rescheduled")
        start = start.astimezone(UTC)
        if start == self.start:
            raise InvalidInput("that is the session's current time", field="start")
        late = self.is_late(now)
        moved = {
            "start": start,
            "end": start + timedelta(minutes=self.length_minutes),
            "policy": PolicySnapshot.model_validate(
                self.policy.model_dump() | {"allowance_period": period_of(start, org_time_zone)}
            ),
            "sequence": self.sequence + 1,
            "reschedules": self.reschedules + 1,
            "updated_at": now,
        }
        if not late or self.late_reschedules < self.policy.free_late_reschedules:
            in_place = self._changed(**moved, late_reschedules=self.late_reschedules + int(late))
            return Reschedule(booking=in_place, ended=None, late=late)
        ended = self._changed(
            status=BookingStatus.LATE_CANCELLED,
            billable=True,
            cancelled_by=CancelledBy.PERSON.value,
            cancel_reason=LATE_RESCHEDULE_REASON,
            sequence=self.sequence + 1,
            updated_at=now,
        )
        replacement = self._changed(
            **moved,
            booking_id=replacement_id,
            calendar_uid=self.calendar_uid or self.booking_id,
            situation_booking_id=self.situation_booking_id or self.booking_id,
            rescheduled_from=self.booking_id,
            late_reschedules=self.late_reschedules + 1,
            created_at=now,
        )
        return Reschedule(booking=replacement, ended=ended, late=True)

    # ------------------------------------------------------------------ the outcome

    def complete(self, actual_minutes: int, now: datetime) -> Booking:
        """The coach records the session as delivered, once it has started, with a plausible length.

        Idempotent: a session already completed is returned unchanged (a retried call)."""
        booked = self.length_minutes
        if not 1 <= actual_minutes <= booked * MAX_OVERRUN_FACTOR:
            raise InvalidInput(
                f"a {booked}-minute session cannot have lasted {actual_minutes} minutes", field="actual_minutes"
            )
        if self.status is BookingStatus.COMPLETED:
            return self
        self._require_outcome_open(BookingStatus.COMPLETED)
        if now < self.start:
            raise Conflict("a session cannot be completed before it starts", field="booking_id")
        return self._changed(
            status=BookingStatus.COMPLETED, billable=True, actual_minutes=actual_minutes, outcome_at=now, updated_at=now
        )

    def no_show(self, now: datetime) -> Booking:
        """The person did not come: recordable once the coach has waited after the start.

        Idempotent: a session already marked a no-show is returned unchanged."""
        if self.status is BookingStatus.NO_SHOW:
            return self
        self._require_outcome_open(BookingStatus.NO_SHOW)
        if now < self.start + timedelta(minutes=NO_SHOW_WAIT_MINUTES):
            raise Conflict(
                f"wait {NO_SHOW_WAIT_MINUTES} minutes after the start before recording a no-show", field="booking_id"
            )
        return self._changed(status=BookingStatus.NO_SHOW, billable=True, outcome_at=now, updated_at=now)

    def _require_outcome_open(self, outcome: BookingStatus) -> None:
        if self.status is not BookingStatus.BOOKED:
            raise Conflict(
                f"this session is {self.status.value.replace('_', ' ')}; it cannot be marked {outcome.value}",
                field="booking_id",
            )

    # ------------------------------------------------------------------ after the outcome

    def confirm(self, now: datetime) -> Booking:
        return self._respond(Confirmation.CONFIRMED, "", now)

    def dispute(self, reason: str, now: datetime) -> Booking:
        return self._respond(Confirmation.DISPUTED, reason, now)

    def _respond(self, confirmation: Confirmation, reason: str, now: datetime) -> Booking:
        """The person confirms or disputes the coach's record within the window after it.

        Idempotent: the same answer again returns the booking unchanged."""
        if self.status not in {BookingStatus.COMPLETED, BookingStatus.NO_SHOW} or self.outcome_at is None:
            raise Conflict("only a session the coach has recorded can be confirmed or disputed", field="booking_id")
        if self.confirmation is not None:
            if self.confirmation is confirmation:
                return self
            raise Conflict(f"this session is already {self.confirmation.value.replace('_', ' ')}", field="booking_id")
        if now - self.outcome_at > timedelta(hours=CONFIRMATION_WINDOW_HOURS):
            raise Conflict(
                f"sessions can be confirmed or disputed for {CONFIRMATION_WINDOW_HOURS} hours after the coach "
                "records them",
                field="booking_id",
            )
        return self._changed(confirmation=confirmation, dispute_reason=reason, updated_at=now)

    def without_personal_text(self) -> Booking:
        """The booking once its person is erased: the reasons people wrote (a cancel, a dispute) are dropped.

        The platform's own reasons name no one and stay, so the record still says why a session ended. Not a
        change of the session: the calendar's SEQUENCE and `updated_at` are left alone."""
        kept = self.cancel_reason if self.cancel_reason in _PLATFORM_REASONS else ""
        if (kept, "") == (self.cancel_reason, self.dispute_reason):
            return self
        return self.model_copy(update={"cancel_reason": kept, "dispute_reason": ""})

    def resolve_dispute(self, *, upheld: bool, now: datetime) -> Booking:
        """An operator's ruling on a dispute. An upheld one is then credited (`credit`)."""
        if self.confirmation is not Confirmation.DISPUTED:
            raise Conflict("this session is not disputed", field="booking_id")
        ruling = Confirmation.DISPUTE_UPHELD if upheld else Confirmation.DISPUTE_REJECTED
        return self._changed(confirmation=ruling, updated_at=now)

    def credit(self, now: datetime) -> Booking:
        """A billed session credited by a reversing ledger entry; at most once."""
        if self.status not in BILLABLE_STATES:
            raise Conflict("only a billed session can be credited", field="booking_id")
        if self.credited:
            raise Conflict("this session is already credited", field="booking_id")
        return self._changed(credited=True, updated_at=now)


class Reschedule(NamedTuple):
    """What a reschedule does: `booking` is the moved booking, or the replacement when `ended`
    (the old one, late-cancelled and billed) is set."""

    booking: Booking
    ended: Booking | None
    late: bool

    @property
    def billed(self) -> bool:
        return self.ended is not None


# ---------------------------------------------------------------------------- what a decision reads
# Value objects are NamedTuples: every function imports this module, and a NamedTuple class costs
# a tenth of a frozen dataclass's at import (cold start).


class SessionLocator(NamedTuple):
    """Where a booking lives, for callers who know only its id (its coach, operators)."""

    org_id: str
    person_id: str
    coach_id: str
    status: str


class BookingReads(NamedTuple):
    """Everything a booking decision needs, read in one round trip."""

    engagement: tuple[Engagement, int] | None
    org: Org | None
    person: Person | None
    # The roster pointer read with the rest: opaque here, the roster port resolves a coach from it.
    roster_pointer: object | None
    # Upcoming place number -> (booking id, ends at ISO UTC) for every place in use or used.
    places: dict[int, tuple[str, str]]
    # The org's monthly meters, by (rule, period): sessions ("cap") and money ("budget").
    org_usage: dict[tuple[str, str], int]
    price_book: PriceBook | None = None

    def free_places(self, count: int, now: datetime) -> list[int]:
        """Places never used or whose session has ended, lowest first."""
        cutoff = now.astimezone(UTC).isoformat()
        taken = {place for place, (_, ends_at) in self.places.items() if ends_at >= cutoff}
        return [place for place in range(1, count + 1) if place not in taken]


class BookingState(NamedTuple):
    """A booking with what changing it needs: its version, its org and the org's price book."""

    booking: Booking
    version: int
    org: Org
    price_book: PriceBook | None


# ---------------------------------------------------------------------------- org meters

# An org's monthly cap or budget announces these percentages, once each per month.
THRESHOLDS = (80, 100)


def threshold_values(cap: int) -> tuple[int, ...]:
    """The meter values at which 80 % and 100 % of the cap are reached (rounded up)."""
    return tuple(sorted({-(-cap * percent // 100) for percent in THRESHOLDS}))


class OrgMeter(NamedTuple):
    """One of the org's monthly counters under a cap, as read before the booking transaction.

    `step` is what this booking adds: 1 session, or the session's list price in minor units.
    `thresholds` are the counter values at 80 % and 100 % of the cap.
    """

    rule: str  # "cap" (sessions) or "budget" (money)
    cap: int
    seen: int
    step: int
    thresholds: tuple[int, ...]

    @classmethod
    def of(cls, rule: str, cap: int, seen: int, step: int) -> OrgMeter:
        return cls(rule, cap, seen, step, threshold_values(cap))

    def crossed(self) -> tuple[int, ...]:
        if self.seen + self.step > self.cap:
            return ()  # no room: this booking is refused, it crosses nothing
        return tuple(t for t in self.thresholds if self.seen < t <= self.seen + self.step)

    def crossed_percents(self) -> list[int]:
        """The thresholds this booking crosses, as percentages (the first percentage for a value)."""
        return [next(p for p in THRESHOLDS if -(-self.cap * p // 100) == value) for value in self.crossed()]

    def admits(self, used: int | None) -> bool:
        """The condition the booking transaction puts on the stored counter (None: absent = 0).

        Room for this booking; and either exactly the value read (this booking crosses a
        threshold, so it must know it is the one) or clear of every threshold's approach (so it
        crosses none). Exactly one booking moves the counter over each threshold, and knows it.
        """
        value = used or 0
        if self.crossed():
            return value == self.seen
        room = value <= self.cap - self.step
        return room and all(value < t - self.step or value >= t for t in self.thresholds)


class Limits(NamedTuple):
    """What the booking transaction enforces: the person's allowance and the org's meters."""

    allowance: int
    now: datetime
    meters: tuple[OrgMeter, ...] = ()

    def with_seen(self, rule: str, seen: int) -> Limits:
        meters = tuple(m._replace(seen=seen) if m.rule == rule else m for m in self.meters)
        return self._replace(meters=meters)


def buckets(start: datetime, end: datetime) -> list[str]:
    """The 5-minute UTC buckets [start, end) touches, as sortable keys."""
    moment = start.astimezone(UTC).replace(second=0, microsecond=0)
    moment -= timedelta(minutes=moment.minute % BUCKET_MINUTES)
    keys: list[str] = []
    while moment < end:
        keys.append(moment.strftime("%Y%m%dT%H%MZ"))
        moment += timedelta(minutes=BUCKET_MINUTES)
    return keys


def coach_buckets(booking: Booking) -> list[str]:
    # The buffer is claimed after each session only; with every session doing the same,
    # two sessions end up at least one buffer apart, exactly what open slots require.
    return buckets(booking.start, booking.end + timedelta(minutes=booking.buffer_minutes))


def person_buckets(booking: Booking) -> list[str]:
    return buckets(booking.start, booking.end)


# ---------------------------------------------------------------------------- calendar invite

PRODID = "-//coaching-platform//booking//EN"
CALENDAR_UID_DOMAIN = "coaching-platform"


def calendar_invite(booking: Booking, *, summary: str, now: datetime) -> str:
    """An RFC 5545 invite in the person's time zone; the UID stays the same across changes.

    Built with the `icalendar` package, imported here rather than at module import: only this
    route needs it, and it would add tens of milliseconds to every booking function cold start.
    """
    from icalendar import Calendar, Event, Timezone

    zone = ZoneInfo(booking.person_time_zone)
    cancelled = booking.status in {BookingStatus.CANCELLED, BookingStatus.LATE_CANCELLED}
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    # The zone's real transitions in the booking's year and the next, from the tz database.
    calendar.add_component(
        Timezone.from_tzinfo(
            zone,
            tzid=booking.person_time_zone,
            first_date=date(booking.start.year, 1, 1),
            last_date=date(booking.start.year + 1, 12, 31),
        )
    )
    event = Event()
    event.add("uid", f"{booking.calendar_uid or booking.booking_id}@{CALENDAR_UID_DOMAIN}")
    event.add("sequence", booking.sequence)
    event.add("dtstamp", now.astimezone(UTC))
    # Wall-clock times with the zone's TZID, which the VTIMEZONE above describes (UTC: the Z form).
    event.add("dtstart", booking.start.astimezone(zone))
    event.add("dtend", booking.end.astimezone(zone))
    # The library escapes text values: a line break of any kind (a bare CR too) becomes an escaped `\n`,
    # so no value can end its content line early and smuggle in a property.
    event.add("summary", summary)
    event.add("description", "Focus: " + ", ".join(booking.focus_competencies))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    text: bytes = calendar.to_ical()
    return text.decode()


def bucket_start(bucket: str) -> datetime:
    """The UTC instant a bucket id (`YYYYMMDDTHHMMZ`, see `buckets`) starts at."""
    return datetime.strptime(bucket, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


# Calendar holds are read this far around a slots window: longer than any session with its buffer.
HOLDS_MARGIN = timedelta(hours=6)
