"""Coaches: one global network shared by every org, vetted by platform operators."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema, field_validator, model_validator

from coaching.domain.common import Email, Entity, EntityId, Languages, ShortText, StrictModel, TimeZoneName
from coaching.domain.competencies import default_framework
from coaching.domain.errors import InvalidInput
from coaching.domain.taxonomy import Industry, JobFunction, Level, Program
from coaching.domain.updates import evolved, merged

# Exceptions travel in the roster snapshot, so a coach keeps a bounded list (past dates can go).
MAX_EXCEPTIONS = 200


class VettingStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    SUSPENDED = "suspended"


class RoleHeld(StrictModel):
    """A job the coach has done themselves: the "has done the job" record."""

    level: Level
    function: JobFunction
    industry: Industry
    years: Annotated[int, Field(ge=1, le=50)]


# A wall-clock time in the coach's zone: "HH:MM" (seconds allowed, never an offset or a fraction). Declared as a
# pattern rather than `format: time`, whose RFC 3339 full-time needs an offset that a wall time must not have.
WALL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


def _wall_time_input(value: object) -> object:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and re.fullmatch(WALL_TIME_PATTERN, value.strip()):
        return value.strip()
    raise ValueError("use HH:MM, a wall-clock time in the coach's time zone without an offset")


def _wall_time_text(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


WallTime = Annotated[
    time,
    BeforeValidator(_wall_time_input),
    PlainSerializer(_wall_time_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": WALL_TIME_PATTERN, "examples": ["09:00", "17:30"]}),
]


class AvailabilityRule(StrictModel):
    """A weekly window in the coach's own time zone; weekday 0 is Monday (ISO weekday - 1)."""

    weekday: Annotated[int, Field(ge=0, le=6)]
    start: WallTime
    end: WallTime

    @model_validator(mode="after")
    def _start_before_end(self) -> AvailabilityRule:
        # Wall-clock times in the coach's zone: an offset would be silently ignored later.
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("times are wall-clock times in the coach's time zone; drop the UTC offset")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


# An alias, so the AvailabilityException field called `date` does not shadow its own type.
CalendarDate = date


def check_naive_time(value: time | None) -> time | None:
    # Times are wall times in the coach's zone: an offset on them would be silently ignored.
    if value is not None and value.tzinfo is not None:
        raise ValueError("times are wall-clock times in the coach's time zone; drop the offset")
    return value


class AvailabilityException(StrictModel):
    """A one-off change on a calendar date in the coach's zone.

    "time_off" removes availability: the whole day without a window, else the window. "extra" adds a window that
    day. Extra windows are applied after time off, so an extra window on a day off is still available.
    """

    date: CalendarDate
    kind: Literal["time_off", "extra"]
    start: WallTime | None = None
    end: WallTime | None = None

    @model_validator(mode="after")
    def _window_is_valid(self) -> AvailabilityException:
        check_naive_time(self.start)
        check_naive_time(self.end)
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or neither for a whole day off")
        if self.start is None:
            if self.kind == "extra":
                raise ValueError("an extra window needs a start and an end")
        elif self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


def _check_specialties(values: list[str]) -> list[str]:
    known = default_framework().ids()
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"unknown competencies: {', '.join(unknown)}; use ids from the default framework")
    return list(dict.fromkeys(values))


class CoachFields(StrictModel):
    name: ShortText
    email: Email
    bio: Annotated[str, Field(max_length=2000)] = ""
    languages: Annotated[Languages, Field(min_length=1, max_length=10)]
    time_zone: TimeZoneName
    industries: Annotated[list[Industry], Field(max_length=12)] = []
    functions: Annotated[list[JobFunction], Field(max_length=8)] = []
    roles_held: Annotated[list[RoleHeld], Field(max_length=30)] = []
    specialties: Annotated[list[str], Field(max_length=20)] = []
    certifications: Annotated[list[ShortText], Field(max_length=20)] = []
    operating_experience_years: Annotated[int, Field(ge=0, le=60)]
    paid_coaching_hours: Annotated[int, Field(ge=0, le=100_000)]
    programs: Annotated[list[Program], Field(min_length=1)]
    capacity: Annotated[int, Field(ge=1, le=200)]
    weekly_availability: Annotated[list[AvailabilityRule], Field(max_length=50)] = []
    # Time off and extra hours on calendar dates, in the coach's zone.
    availability_exceptions: Annotated[list[AvailabilityException], Field(max_length=MAX_EXCEPTIONS)] = []
    # Kept free after every session; a multiple of 5 so calendar locks are exact.
    buffer_minutes: Annotated[int, Field(ge=0, le=60, multiple_of=5)] = 10
    min_notice_hours: Annotated[int, Field(ge=0, le=336)] = 12
    horizon_days: Annotated[int, Field(ge=1, le=180)] = 60
    # Orgs the coach works or worked for: never proposed to their colleagues.
    employer_org_ids: Annotated[list[EntityId], Field(max_length=10)] = []

    @field_validator("specialties")
    @classmethod
    def _specialties_known(cls, values: list[str]) -> list[str]:
        return _check_specialties(values)


class CoachCreate(CoachFields):
    pass


class CoachUpdate(StrictModel):
    name: ShortText | None = None
    email: Email | None = None
    bio: Annotated[str, Field(max_length=2000)] | None = None
    languages: Annotated[Languages, Field(min_length=1, max_length=10)] | None = None
    time_zone: TimeZoneName | None = None
    industries: Annotated[list[Industry], Field(max_length=12)] | None = None
    functions: Annotated[list[JobFunction], Field(max_length=8)] | None = None
    roles_held: Annotated[list[RoleHeld], Field(max_length=30)] | None = None
    specialties: Annotated[list[str], Field(max_length=20)] | None = None
    certifications: Annotated[list[ShortText], Field(max_length=20)] | None = None
    operating_experience_years: Annotated[int, Field(ge=0, le=60)] | None = None
    paid_coaching_hours: Annotated[int, Field(ge=0, le=100_000)] | None = None
    programs: Annotated[list[Program], Field(min_length=1)] | None = None
    capacity: Annotated[int, Field(ge=1, le=200)] | None = None
    weekly_availability: Annotated[list[AvailabilityRule], Field(max_length=50)] | None = None
    availability_exceptions: Annotated[list[AvailabilityException], Field(max_length=MAX_EXCEPTIONS)] | None = None
    buffer_minutes: Annotated[int, Field(ge=0, le=60, multiple_of=5)] | None = None
    min_notice_hours: Annotated[int, Field(ge=0, le=336)] | None = None
    horizon_days: Annotated[int, Field(ge=1, le=180)] | None = None
    employer_org_ids: Annotated[list[EntityId], Field(max_length=10)] | None = None

    @field_validator("specialties")
    @classmethod
    def _specialties_known(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _check_specialties(values)


class VettingDecision(StrictModel):
    status: VettingStatus
    reason: Annotated[str, Field(max_length=500)] = ""


class VettingEntry(Entity):
    status: VettingStatus
    reason: str = ""
    actor: str
    at: datetime


class Coach(Entity):
    coach_id: str
    name: str
    email: str
    bio: str = ""
    languages: list[str]
    time_zone: str
    industries: list[Industry] = []
    functions: list[JobFunction] = []
    roles_held: list[RoleHeld] = []
    specialties: list[str] = []
    certifications: list[str] = []
    operating_experience_years: int
    paid_coaching_hours: int
    programs: list[Program]
    capacity: int
    weekly_availability: list[AvailabilityRule] = []
    availability_exceptions: list[AvailabilityException] = []
    buffer_minutes: int = 10
    min_notice_hours: int = 12
    horizon_days: int = 60
    employer_org_ids: list[str] = []
    vetting_status: VettingStatus = VettingStatus.PENDING
    vetting_history: list[VettingEntry] = []
    created_at: datetime
    updated_at: datetime

    @classmethod
    def create(cls, coach_id: str, profile: CoachCreate, now: datetime) -> Coach:
        """A new coach joins the network pending vetting."""
        return cls(coach_id=coach_id, created_at=now, updated_at=now, **profile.model_dump())

    @property
    def is_approved(self) -> bool:
        return self.vetting_status is VettingStatus.APPROVED

    @property
    def last_decision_changed_status(self) -> bool:
        """Whether the latest vetting decision moved the status (a coach starts pending)."""
        statuses = [VettingStatus.PENDING, *(entry.status for entry in self.vetting_history)]
        return len(statuses) > 1 and statuses[-1] is not statuses[-2]

    def updated(self, changes: CoachUpdate, now: datetime, thresholds: VettingThresholds) -> Coach:
        """The profile with the fields sent, validated whole; an approved coach stays above the bar."""
        coach = merged(self, changes, "coach", updated_at=now)
        if coach.is_approved:
            # The approval rule is an invariant, not a one-off gate.
            thresholds.check(coach)
        return coach

    def vetted(self, decision: VettingDecision, actor: str, now: datetime, thresholds: VettingThresholds) -> Coach:
        """An operator's vetting decision, recorded in the history; approval needs the thresholds."""
        if decision.status is VettingStatus.APPROVED:
            thresholds.check(self)
        entry = VettingEntry(status=decision.status, reason=decision.reason, actor=actor, at=now)
        return evolved(
            self,
            "coach",
            vetting_status=decision.status,
            vetting_history=[*self.vetting_history, entry],
            updated_at=now,
        )


@dataclass(frozen=True, slots=True)
class VettingThresholds:
    """What an approved coach must have: years running teams and paid coaching hours."""

    min_operating_years: int
    min_paid_coaching_hours: int

    def check(self, coach: Coach) -> None:
        check_vetting_thresholds(coach, min_years=self.min_operating_years, min_hours=self.min_paid_coaching_hours)


def check_vetting_thresholds(coach: Coach, *, min_years: int, min_hours: int) -> None:
    """An approved coach has run teams for years and coached for hundreds of paid hours."""
    if coach.operating_experience_years < min_years:
        raise InvalidInput(
            f"an approved coach needs at least {min_years} years of operating experience "
            f"(this coach has {coach.operating_experience_years})",
            field="operating_experience_years",
        )
    if coach.paid_coaching_hours < min_hours:
        raise InvalidInput(
            f"an approved coach needs at least {min_hours} paid coaching hours "
            f"(this coach has {coach.paid_coaching_hours})",
            field="paid_coaching_hours",
        )
