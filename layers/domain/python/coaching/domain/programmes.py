"""The programme catalogue: what each of the four programmes is in one organisation.

SCALE (on-demand 1:1 for every level), GROW (cohorts for a transition such as first-time
management), EXEC (1:1 for senior leaders and executives) and TOGETHER (facilitated team
workshops) share matching, coaches, the calendar, the ledger and the reports. Each org has a
catalogue; the platform ships defaults, and an org admin may change them.

Policy snapshot rule: whatever a cohort, a workshop or a booking decides from the catalogue is
copied onto it when it is made (`ProgrammePolicy`), so changing the catalogue changes only what
is made afterwards, never a booking already made.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, model_validator

from coaching.domain.booking import SESSION_MINUTES, Allowance, BookingPolicy
from coaching.domain.common import DeferredModel, StrictModel
from coaching.domain.errors import Forbidden, InvalidInput
from coaching.domain.taxonomy import Level, Program, Transition
from coaching.domain.updates import evolved

ALL_LEVELS: tuple[Level, ...] = tuple(Level)
# Bounds the platform supports; an org's settings live inside them.
COHORT_MIN_SIZE, COHORT_MAX_SIZE = 6, 20
TEAM_MIN_SIZE, TEAM_MAX_SIZE = 4, 20
WORKSHOP_MIN_MINUTES, WORKSHOP_MAX_MINUTES = 60, 240
MAX_GROUP_SESSIONS = 12


class ProgrammeSettings(StrictModel):
    """One programme in one org. Prices are not here: they come from the org's price book."""

    enabled: bool = True
    eligible_levels: Annotated[list[Level], Field(min_length=1, max_length=len(Level))]
    session_minutes: Annotated[int, Field(ge=15, le=WORKSHOP_MAX_MINUTES)]
    # 1:1 sessions per person per month (SCALE, EXEC, GROW's in-between 1:1s); None: not a 1:1 programme.
    monthly_allowance: Annotated[int, Field(ge=0, le=100)] | None = None
    late_cancel_hours: Annotated[int, Field(ge=0, le=168)] = 24
    # Whether a no-show (and a late cancel) is billed under the price book's fee; False: never billed.
    bill_no_shows: bool = True
    bill_late_cancels: bool = True


class GrowSettings(ProgrammeSettings):
    """GROW: a cohort for a transition, a curriculum of group sessions with 1:1s in between."""

    # The promotion wait-list its cohorts open from (coaching.domain.transitions, filled by the HR integration).
    transition: Transition = Transition.NEW_MANAGER
    weeks: Annotated[int, Field(ge=1, le=26)] = 8
    group_sessions: Annotated[int, Field(ge=1, le=MAX_GROUP_SESSIONS)] = 4
    min_size: Annotated[int, Field(ge=COHORT_MIN_SIZE, le=COHORT_MAX_SIZE)] = COHORT_MIN_SIZE
    max_size: Annotated[int, Field(ge=COHORT_MIN_SIZE, le=COHORT_MAX_SIZE)] = COHORT_MAX_SIZE
    # A cohort opens from the wait-list once this many people wait (at least min_size).
    opens_when_waiting: Annotated[int, Field(ge=COHORT_MIN_SIZE, le=COHORT_MAX_SIZE)] = 8
    # The first group session is this many days after the cohort opens (notice for the participants).
    lead_days: Annotated[int, Field(ge=1, le=60)] = 14

    @model_validator(mode="after")
    def _sizes(self) -> GrowSettings:
        if self.min_size > self.max_size:
            raise ValueError("min_size cannot be above max_size")
        if not self.min_size <= self.opens_when_waiting <= self.max_size:
            raise ValueError("opens_when_waiting must be between min_size and max_size")
        return self


class TogetherSettings(ProgrammeSettings):
    min_participants: Annotated[int, Field(ge=TEAM_MIN_SIZE, le=TEAM_MAX_SIZE)] = TEAM_MIN_SIZE
    max_participants: Annotated[int, Field(ge=TEAM_MIN_SIZE, le=TEAM_MAX_SIZE)] = TEAM_MAX_SIZE
    min_minutes: Annotated[int, Field(ge=WORKSHOP_MIN_MINUTES, le=WORKSHOP_MAX_MINUTES)] = WORKSHOP_MIN_MINUTES
    max_minutes: Annotated[int, Field(ge=WORKSHOP_MIN_MINUTES, le=WORKSHOP_MAX_MINUTES)] = WORKSHOP_MAX_MINUTES

    @model_validator(mode="after")
    def _ranges(self) -> TogetherSettings:
        if self.min_participants > self.max_participants:
            raise ValueError("min_participants cannot be above max_participants")
        if self.min_minutes > self.max_minutes:
            raise ValueError("min_minutes cannot be above max_minutes")
        return self


def _scale() -> ProgrammeSettings:
    return ProgrammeSettings(eligible_levels=list(ALL_LEVELS), session_minutes=30, monthly_allowance=2)


def _grow() -> GrowSettings:
    return GrowSettings(eligible_levels=[Level.FIRST_TIME_MANAGER], session_minutes=60, monthly_allowance=2)


def _exec() -> ProgrammeSettings:
    return ProgrammeSettings(
        eligible_levels=[Level.SENIOR_LEADER, Level.EXECUTIVE], session_minutes=60, monthly_allowance=4
    )


def _together() -> TogetherSettings:
    return TogetherSettings(
        eligible_levels=[Level.FIRST_TIME_MANAGER, Level.MANAGER, Level.SENIOR_LEADER, Level.EXECUTIVE],
        session_minutes=120,
        late_cancel_hours=72,
    )


class CatalogueInput(StrictModel):
    """What an org admin puts: every programme, whole (a GET's body is a valid PUT)."""

    SCALE: ProgrammeSettings = Field(default_factory=_scale)
    GROW: GrowSettings = Field(default_factory=_grow)
    EXEC: ProgrammeSettings = Field(default_factory=_exec)
    TOGETHER: TogetherSettings = Field(default_factory=_together)


class ProgrammeCatalogue(CatalogueInput):
    """An org's catalogue as stored; the shipped defaults when the org never changed it."""

    org_id: str
    updated_at: datetime | None = None
    updated_by: str | None = None

    @classmethod
    def defaults(cls, org_id: str) -> ProgrammeCatalogue:
        return cls(org_id=org_id)

    def changed(self, new: CatalogueInput, *, actor: str, now: datetime) -> ProgrammeCatalogue:
        # A 1:1 programme's session is the platform's length (slots, price book lines and invites are built on
        # it): refused rather than stored as a setting nothing would follow.
        for program in (Program.SCALE, Program.EXEC):
            minutes = getattr(new, program.value).session_minutes
            if minutes != SESSION_MINUTES[program]:
                raise InvalidInput(
                    f"{program.value} sessions are {SESSION_MINUTES[program]} minutes on this platform",
                    field=f"{program.value}.session_minutes",
                )
        return ProgrammeCatalogue.model_validate(
            new.model_dump() | {"org_id": self.org_id, "updated_at": now, "updated_by": actor}
        )

    def booking_policy(self, current: BookingPolicy) -> BookingPolicy:
        """The org's 1:1 booking policy with this catalogue's monthly allowances (per-level overrides kept)."""
        allowances = dict(current.allowances)
        for program in Program:
            allowance = self.settings(program).monthly_allowance
            if allowance is not None:
                kept = allowances.get(program)
                allowances[program] = Allowance(sessions=allowance, by_level=kept.by_level if kept else {})
        return evolved(current, "booking", allowances=allowances)

    def settings(self, program: Program) -> ProgrammeSettings:
        found: ProgrammeSettings = getattr(self, program.value)
        return found

    def require_open_to(self, program: Program, level: Level, *, who: str = "this person") -> ProgrammeSettings:
        """The programme's settings if it is enabled and open to `level`; PolicyRefused-like errors otherwise."""
        settings = self.settings(program)
        if not settings.enabled:
            raise Forbidden(f"your organisation has not enabled {program.value}", field="program")
        if level not in settings.eligible_levels:
            levels = ", ".join(lv.value for lv in settings.eligible_levels)
            raise InvalidInput(f"{program.value} is for {levels}; {who} is {level.value}", field="person_id")
        return settings


class ProgrammePolicy(DeferredModel):
    """What a cohort or workshop snapshots from the catalogue when it is made (the policy snapshot rule)."""

    program: Program
    session_minutes: int
    late_cancel_hours: int
    bill_no_shows: bool
    bill_late_cancels: bool

    @classmethod
    def of(cls, program: Program, settings: ProgrammeSettings, session_minutes: int | None = None) -> ProgrammePolicy:
        return cls(
            program=program,
            session_minutes=session_minutes or settings.session_minutes,
            late_cancel_hours=settings.late_cancel_hours,
            bill_no_shows=settings.bill_no_shows,
            bill_late_cancels=settings.bill_late_cancels,
        )


_READABLE_LEVELS = {
    Level.INDIVIDUAL_CONTRIBUTOR: "individual contributors",
    Level.FIRST_TIME_MANAGER: "first-time managers",
    Level.MANAGER: "managers",
    Level.SENIOR_LEADER: "senior leaders",
    Level.EXECUTIVE: "executives",
}


def _readable(levels: list[Level]) -> str:
    names = [_READABLE_LEVELS[level] for level in levels]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def require_eligible(catalogue: ProgrammeCatalogue, program: Program, level: Level) -> ProgrammeSettings:
    """A person asking to be matched into `program`: it is enabled in their org and open to their level,
    per the org's catalogue; otherwise a refusal naming the rule (field `program`)."""
    settings = catalogue.settings(program)
    if not settings.enabled:
        raise Forbidden(f"your organisation has not enabled {program.value}", field="program")
    if level not in settings.eligible_levels:
        raise InvalidInput(
            f"{program.value} coaching is for {_readable(settings.eligible_levels)} in your organisation; "
            f"you are {_READABLE_LEVELS[level].removesuffix('s')}",
            field="program",
            details={"eligible_levels": [lv.value for lv in settings.eligible_levels], "level": level.value},
        )
    return settings
