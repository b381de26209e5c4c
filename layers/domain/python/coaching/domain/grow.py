"""GROW cohorts: a group of people in the same transition, a curriculum of group sessions with the
cohort's coaches, and 1:1s with the same coaches in between (through the ordinary booking).

A group session blocks its coaches' calendars with the same 5-minute lock items as a 1:1
(`coaching.domain.booking.buckets`), so a group session and a 1:1 can never overlap, whichever
is written first and whatever races. Attendance is recorded per participant, and each
participant's session is one billable unit with its own deterministic id, locator and ledger
guard: billed exactly once, reconciled like a 1:1.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, Field, model_validator

from coaching.domain.booking import buckets
from coaching.domain.common import DeferredModel, LanguageCode, StrictModel
from coaching.domain.errors import Conflict, InvalidInput
from coaching.domain.programmes import (
    COHORT_MAX_SIZE,
    COHORT_MIN_SIZE,
    MAX_GROUP_SESSIONS,
    GrowSettings,
    ProgrammePolicy,
)
from coaching.domain.taxonomy import Program, Transition

# One coach for up to this many participants; a larger cohort gets a second coach.
PARTICIPANTS_PER_COACH = 10
# Group sessions start on the hour or half hour in the org's time zone.
DEFAULT_SESSION_HOUR = 10
# A coach waits this long before recording absences.
ATTENDANCE_WAIT_MINUTES = 15

PersonId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


class CohortStatus(StrEnum):
    FORMING = "forming"  # enrolling; no coach yet
    MATCHED = "matched"  # coaches assigned, group sessions on their calendars, 1:1s bookable
    COMPLETED = "completed"


class AttendanceMark(StrEnum):
    ATTENDED = "attended"
    NO_SHOW = "no_show"  # billed under the programme's no-show policy
    EXCUSED = "excused"  # told the coach in time: never billed


class PlannedSession(StrictModel):
    """One group session of the curriculum: when, and which framework competencies it covers."""

    start: AwareDatetime
    competencies: Annotated[list[str], Field(min_length=1, max_length=5)]


class GrowCohortRequest(StrictModel):
    """An org admin opens a cohort by hand (the wait-list opens them on its own)."""

    transition: Transition = Transition.NEW_MANAGER
    size: Annotated[int, Field(ge=COHORT_MIN_SIZE, le=COHORT_MAX_SIZE)]
    language: LanguageCode
    start_date: date
    curriculum: Annotated[list[PlannedSession], Field(min_length=1, max_length=MAX_GROUP_SESSIONS)] | None = None

    @model_validator(mode="after")
    def _dates(self) -> GrowCohortRequest:
        if self.curriculum:
            starts = [s.start.astimezone(UTC) for s in self.curriculum]
            if starts != sorted(starts) or len(set(starts)) != len(starts):
                raise ValueError("curriculum sessions must be in strictly ascending order of start")
        return self


class EnrolRequest(StrictModel):
    person_id: PersonId


class WaitRequest(StrictModel):
    person_id: PersonId


class AttendanceRequest(StrictModel):
    """The coach's record of a group session: every participant, once, with what happened."""

    attendance: Annotated[dict[PersonId, AttendanceMark], Field(min_length=1, max_length=COHORT_MAX_SIZE)]


def default_curriculum(
    settings: GrowSettings, start_date: date, zone: str, competencies: list[str]
) -> list[PlannedSession]:
    """`settings.group_sessions` sessions spread evenly over `settings.weeks`, at 10:00 in the org's zone,
    each covering the next framework competency in turn."""
    count = settings.group_sessions
    spacing = max(1, settings.weeks * 7 // count)
    local = ZoneInfo(zone)
    planned = []
    for index in range(count):
        day = start_date + timedelta(days=index * spacing)
        start = datetime.combine(day, time(DEFAULT_SESSION_HOUR), tzinfo=local)
        planned.append(PlannedSession(start=start, competencies=[competencies[index % len(competencies)]]))
    return planned


def coaches_needed(size: int) -> int:
    return -(-size // PARTICIPANTS_PER_COACH)


class Cohort(DeferredModel):
    cohort_id: str
    org_id: str
    program: Program = Program.GROW
    transition: str
    size: int
    language: str
    start_date: date
    curriculum: list[PlannedSession]
    policy: ProgrammePolicy
    status: CohortStatus = CohortStatus.FORMING
    coach_ids: list[str] = []
    opened_from_waitlist: bool = False
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="after")
    def _consistent(self) -> Cohort:
        if not COHORT_MIN_SIZE <= self.size <= COHORT_MAX_SIZE:
            raise ValueError(f"a cohort has {COHORT_MIN_SIZE} to {COHORT_MAX_SIZE} places")
        return self

    @classmethod
    def open(
        cls,
        *,
        cohort_id: str,
        org_id: str,
        request: GrowCohortRequest,
        curriculum: list[PlannedSession],
        policy: ProgrammePolicy,
        known_competencies: set[str],
        now: datetime,
        from_waitlist: bool = False,
    ) -> Cohort:
        unknown = sorted({c for s in curriculum for c in s.competencies} - known_competencies)
        if unknown:
            raise InvalidInput(f"unknown competencies: {', '.join(unknown)}", field="curriculum")
        if curriculum[0].start <= now:
            raise InvalidInput("the first group session must be in the future", field="curriculum")
        return cls(
            cohort_id=cohort_id,
            org_id=org_id,
            transition=request.transition,
            size=request.size,
            language=request.language,
            start_date=request.start_date,
            curriculum=curriculum,
            policy=policy,
            opened_from_waitlist=from_waitlist,
            created_at=now,
            updated_at=now,
        )

    def require_forming(self) -> None:
        if self.status is not CohortStatus.FORMING:
            raise Conflict(f"this cohort is {self.status.value}; it no longer enrols", field="cohort_id")

    def matched_to(self, coach_ids: list[str], now: datetime) -> Cohort:
        self.require_forming()
        if len(coach_ids) != len(set(coach_ids)) or not coach_ids:
            raise Conflict("a cohort needs distinct coaches", field="coach_ids")
        return Cohort.model_validate(
            self.model_dump() | {"status": CohortStatus.MATCHED, "coach_ids": coach_ids, "updated_at": now}
        )

    def session_id(self, index: int) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"grow:{self.cohort_id}:session:{index}"))

    def engagement_id(self, person_id: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"grow:{self.cohort_id}:engagement:{person_id}"))

    def coach_for(self, position: int) -> str:
        """The cohort coach a participant has their 1:1s with: participants are shared out in turn."""
        return self.coach_ids[position % len(self.coach_ids)]


class GroupSessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"


def participant_unit_id(session_id: str, person_id: str) -> str:
    """The billable unit of one participant in one group session: its locator and ledger guard key."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"grow-unit:{session_id}:{person_id}"))


class GroupSession(DeferredModel):
    session_id: str
    cohort_id: str
    org_id: str
    index: int
    program: Program = Program.GROW
    start: datetime  # UTC
    end: datetime  # UTC
    time_zone: str  # the org's: the invite's zone
    buffer_minutes: int
    coach_ids: list[str]
    participants: list[str]
    competencies: list[str]
    policy: ProgrammePolicy
    status: GroupSessionStatus = GroupSessionStatus.SCHEDULED
    attendance: dict[str, AttendanceMark] = {}
    sequence: int = 0
    completed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def length_minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    def coach_buckets(self) -> list[str]:
        """The same buckets a 1:1 of the same times would claim: the session and the buffer after it."""
        return buckets(self.start, self.end + timedelta(minutes=self.buffer_minutes))

    def unit_id(self, person_id: str) -> str:
        return participant_unit_id(self.session_id, person_id)

    def record(self, attendance: dict[str, AttendanceMark], now: datetime) -> GroupSession:
        """The coach records every participant once the session has run; the same record again is a no-op."""
        if self.status is GroupSessionStatus.COMPLETED:
            if attendance == self.attendance:
                return self
            raise Conflict("attendance of this group session is already recorded", field="attendance")
        if now < self.start + timedelta(minutes=ATTENDANCE_WAIT_MINUTES):
            raise Conflict(
                f"record attendance from {ATTENDANCE_WAIT_MINUTES} minutes after the start", field="attendance"
            )
        unknown = sorted(set(attendance) - set(self.participants))
        if unknown:
            raise InvalidInput(f"not in this cohort: {', '.join(unknown)}", field="attendance")
        missing = sorted(set(self.participants) - set(attendance))
        if missing:
            raise InvalidInput(f"record every participant; missing: {', '.join(missing)}", field="attendance")
        return GroupSession.model_validate(
            self.model_dump()
            | {
                "status": GroupSessionStatus.COMPLETED,
                "attendance": attendance,
                "completed_at": now,
                "updated_at": now,
            }
        )

    def billed_marks(self) -> dict[str, AttendanceMark]:
        """Who is billed, under the policy snapshotted when the cohort opened."""
        return {
            person: mark
            for person, mark in self.attendance.items()
            if mark is AttendanceMark.ATTENDED or (mark is AttendanceMark.NO_SHOW and self.policy.bill_no_shows)
        }


class WaitEntry(DeferredModel):
    """A person waiting for a GROW cohort of their transition (from a promotion, or put there by an admin)."""

    org_id: str
    person_id: str
    transition: str
    language: str
    source: str  # "promotion" or "admin"
    since: datetime


class Enrolment(DeferredModel):
    cohort_id: str
    org_id: str
    person_id: str
    enrolled_at: datetime
    source: str  # "admin" or "waitlist"
