"""Bookings: a session in a coach's real availability, which can never be sold twice.

Overlap is prevented structurally: a booking claims one lock item per 5-minute bucket of
the coach's calendar (the session plus the buffer after it) and of the person's calendar
(the session), all in the transaction that writes the booking. DynamoDB refuses the
transaction if any bucket is taken, so no two bookings can ever overlap, whatever races.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, Field

from coaching.domain.common import DeferredModel, StrictModel
from coaching.domain.taxonomy import Level, Program

BUCKET_MINUTES = 5
# A coach waits this long for the person before recording a no-show.
NO_SHOW_WAIT_MINUTES = 15
# The person may confirm or dispute a recorded outcome for this long.
CONFIRMATION_WINDOW_HOURS = 72
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
    cancelled_by: str | None = None  # "person" or "coach"
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


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> list[str]:
    """RFC 5545 3.1: lines longer than 75 octets continue on the next line after a space."""
    raw = line.encode()
    if len(raw) <= 75:
        return [line]
    parts, current = [], b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not parts else 74):
            parts.append(current.decode())
            current = b""
        current += encoded
    parts.append(current.decode())
    return [parts[0], *(" " + part for part in parts[1:])]


def _offset(delta: timedelta | None) -> str:
    seconds = int((delta or timedelta()).total_seconds())
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    return f"{sign}{seconds // 3600:02d}{seconds % 3600 // 60:02d}"


def _vtimezone(zone_name: str, around: datetime) -> list[str]:
    """A VTIMEZONE with the zone's real transitions in the booking's year and the next.

    Found by scanning hourly offsets, so it is right for any IANA zone without a rule parser.
    """
    zone = ZoneInfo(zone_name)
    start = datetime(around.year, 1, 1, tzinfo=UTC)
    moment, previous = start, start.astimezone(zone).utcoffset()
    lines = ["BEGIN:VTIMEZONE", f"TZID:{zone_name}"]
    transitions = 0
    while moment < datetime(around.year + 2, 1, 1, tzinfo=UTC):
        moment += timedelta(hours=1)
        offset = moment.astimezone(zone).utcoffset()
        if offset != previous:
            local = moment.astimezone(zone).replace(tzinfo=None)
            kind = "DAYLIGHT" if moment.astimezone(zone).dst() else "STANDARD"
            lines += [
                f"BEGIN:{kind}",
                f"DTSTART:{local.strftime('%Y%m%dT%H%M%S')}",
                f"TZOFFSETFROM:{_offset(previous)}",
                f"TZOFFSETTO:{_offset(offset)}",
                f"END:{kind}",
            ]
            previous = offset
            transitions += 1
    if not transitions:  # a zone without DST: one STANDARD block
        lines += [
            "BEGIN:STANDARD",
            f"DTSTART:{start.year}0101T000000",
            f"TZOFFSETFROM:{_offset(previous)}",
            f"TZOFFSETTO:{_offset(previous)}",
            "END:STANDARD",
        ]
    return [*lines, "END:VTIMEZONE"]


def calendar_invite(booking: Booking, *, summary: str, now: datetime) -> str:
    """An RFC 5545 invite in the person's time zone; the UID stays the same across changes."""
    zone = ZoneInfo(booking.person_time_zone)
    local = "%Y%m%dT%H%M%S"
    cancelled = booking.status in {BookingStatus.CANCELLED, BookingStatus.LATE_CANCELLED}
    status = "CANCELLED" if cancelled else "CONFIRMED"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//coaching-platform//booking//EN",
        "CALSCALE:GREGORIAN",
        f"METHOD:{'CANCEL' if status == 'CANCELLED' else 'PUBLISH'}",
        *_vtimezone(booking.person_time_zone, booking.start),
        "BEGIN:VEVENT",
        f"UID:{booking.calendar_uid or booking.booking_id}@coaching-platform",
        f"SEQUENCE:{booking.sequence}",
        f"DTSTAMP:{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}",
        f"DTSTART;TZID={booking.person_time_zone}:{booking.start.astimezone(zone).strftime(local)}",
        f"DTEND;TZID={booking.person_time_zone}:{booking.end.astimezone(zone).strftime(local)}",
        f"SUMMARY:{_ics_text(summary)}",
        f"DESCRIPTION:{_ics_text('Focus: ' + ', '.join(booking.focus_competencies))}",
        f"STATUS:{status}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(folded for line in lines for folded in _fold(line)) + "\r\n"
