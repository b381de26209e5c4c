"""The event catalogue: every event the platform puts on its bus, as one typed model each.

Producers build these models and hand them to the store that commits the change; the store
writes them as outbox items in the same DynamoDB transaction (`coaching.adapters.outbox`),
and the table's change stream relays them to the bus. Consumers parse the detail back into
the same model (`parse_detail`), so producer and consumer can never disagree on a shape.

The detail on the bus is the model's fields plus `event_id`, `occurred_at` and `version`.
`event_id` is the platform's own id: a relay may publish one outbox item twice, so every
consumer is idempotent on it, never on EventBridge's per-delivery `id`.

Readers are tolerant (`extra="ignore"`): a newer producer may add optional fields without
breaking an older consumer. A breaking change is a new `version`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from coaching.domain.common import utc_now
from coaching.domain.taxonomy import Level


def new_event_id() -> str:
    return str(uuid.uuid4())


def stable_event_id(*parts: str) -> str:
    """An id derived from what the event is about: a retried producer writes the same event once."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "coaching-event:" + ":".join(parts)))


class Event(BaseModel):
    """Base of every catalogue entry. Subclasses set `source`, `detail_type` and `version`."""

    # Built on first use: every function imports the whole catalogue and uses a few events.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    source: ClassVar[str]
    detail_type: ClassVar[str]
    version: ClassVar[int] = 1
    description: ClassVar[str] = ""

    event_id: str = Field(default_factory=new_event_id)
    occurred_at: datetime = Field(default_factory=utc_now)

    def detail(self) -> dict[str, Any]:
        """The EventBridge detail: the fields as JSON values, with the schema version."""
        return {**self.model_dump(mode="json"), "version": self.version}


# ------------------------------------------------------------------------------ admin

ADMIN = "coaching.admin"


class CoachVettingChanged(Event):
    source = ADMIN
    detail_type = "CoachVettingChanged"
    description = (
        "A coach's vetting status changed (approved, suspended, ...). Matching rebuilds its roster; a suspension "
        "ends the coach's engagements, and each person is offered a re-match."
    )

    coach_id: str
    vetting_status: str
    previous_status: str | None = None


class CoachProfileUpdated(Event):
    source = ADMIN
    detail_type = "CoachProfileUpdated"
    description = "An approved coach's profile changed. Matching rebuilds its roster."

    coach_id: str
    vetting_status: str


# --------------------------------------------------------------------------- matching

MATCHING = "coaching.matching"


class MatchProposed(Event):
    source = MATCHING
    detail_type = "MatchProposed"
    description = "A person was shown a ranked short list of coaches."

    org_id: str
    person_id: str
    match_id: str
    program: str
    trigger: str
    coach_ids: list[str] = []


class EngagementStarted(Event):
    source = MATCHING
    detail_type = "EngagementStarted"
    description = "A person chose a coach (or a cohort launch assigned one): an engagement in a programme began."

    org_id: str
    person_id: str
    match_id: str | None = None  # None for an engagement a cohort launch committed
    engagement_id: str
    coach_id: str
    program: str


class EngagementEnded(Event):
    source = MATCHING
    detail_type = "EngagementEnded"
    description = "An engagement ended (change of coach, ...). Booking cancels its future sessions, unbilled."

    org_id: str
    person_id: str
    engagement_id: str
    coach_id: str
    program: str
    end_reason: str | None = None


# ---------------------------------------------------------------------------- booking

BOOKING = "coaching.booking"


class SessionEvent(Event):
    """What every event about one session carries."""

    org_id: str
    person_id: str
    booking_id: str
    coach_id: str
    program: str
    start: datetime


class SessionBooked(SessionEvent):
    source = BOOKING
    detail_type = "SessionBooked"
    description = "A session was booked into the coach's availability."


class SessionCancelled(SessionEvent):
    source = BOOKING
    detail_type = "SessionCancelled"
    description = "A session was cancelled by the person, the coach or the platform; `late` ones are billed."

    cancelled_by: str
    late: bool = False


class SessionRescheduled(SessionEvent):
    source = BOOKING
    detail_type = "SessionRescheduled"
    description = "A session moved to another time (in place, or as a billed late reschedule)."

    previous_start: datetime
    late: bool = False
    billed: bool = False
    replaces_booking_id: str | None = None


class BudgetThresholdReached(Event):
    source = BOOKING
    detail_type = "BudgetThresholdReached"
    description = "An org's monthly session cap or budget reached 80 % or 100 %; fires once per threshold."

    org_id: str
    period: str
    percent: int
    meter: str  # "cap" (sessions) or "budget" (minor units)
    used: int
    cap: int


# ------------------------------------------------------------------------- sessions

SESSIONS = "coaching.sessions"


class SessionCompleted(SessionEvent):
    source = SESSIONS
    detail_type = "SessionCompleted"
    description = "A session reached its outcome (completed or no-show); billing already happened in its commit."

    status: str
    outcome: str
    amount_minor: int | None = None


class SessionCredited(SessionEvent):
    source = SESSIONS
    detail_type = "SessionCredited"
    description = "An operator credited a billed session with a reversing ledger entry."

    status: str
    reason: str
    amount_minor: int


class SessionConfirmed(SessionEvent):
    source = SESSIONS
    detail_type = "SessionConfirmed"
    description = "The person confirmed the coach's record of the session."

    status: str


class SessionDisputed(SessionEvent):
    source = SESSIONS
    detail_type = "SessionDisputed"
    description = "The person disputed the coach's record; an operator resolves it. The reason stays off the bus."

    status: str


class SessionDisputeRejected(SessionEvent):
    source = SESSIONS
    detail_type = "SessionDisputeRejected"
    description = "An operator rejected a person's dispute; the session stays billed."

    status: str
    reason: str


# ------------------------------------------------------------------------- metering

METERING = "coaching.metering"


class InvoiceDue(Event):
    source = METERING
    detail_type = "InvoiceDue"
    description = "The monthly schedule's fan-out: invoice this org for this month."

    org_id: str
    period: str


class ReconciliationDue(Event):
    source = METERING
    detail_type = "ReconciliationDue"
    description = "The daily schedule's fan-out: reconcile this org's ledger with its sessions for a month."

    org_id: str
    period: str


# ------------------------------------------------------------------------------- hr

HR = "coaching.hr"


class PersonPromoted(Event):
    source = HR
    detail_type = "PersonPromoted"
    description = "A person moved up a level. Matching keeps an eligible coach or proposes a re-match."

    org_id: str
    person_id: str
    previous_level: Level
    new_level: Level
    effective_date: str


class PersonTerminated(Event):
    source = HR
    detail_type = "PersonTerminated"
    description = (
        "HR ended a person's employment. Matching ends their active engagements (booking then cancels their future "
        "sessions without billing); the date and the regrettable flag feed the attrition measure."
    )

    org_id: str
    person_id: str
    terminated_on: str
    regrettable: bool


class PersonTransitioned(Event):
    source = HR
    detail_type = "PersonTransitioned"
    description = (
        "A promotion crossed a threshold of the org's transition policy: individual contributor to first-time "
        "manager (the person joined the wait-list of `waitlisted_program`'s next cohort) or manager to senior "
        "leader or executive (`exec_eligible`). `allowances` are the new level's sessions a month per programme."
    )

    org_id: str
    person_id: str
    transition: str
    previous_level: Level
    new_level: Level
    effective_date: str
    waitlisted_program: str | None = None
    exec_eligible: bool = False
    allowances: dict[str, int] = {}


class PersonErased(Event):
    source = HR
    detail_type = "PersonErased"
    description = (
        "A right-to-erasure request anonymised a person: names, email, HR ids, situations and raw HR payloads are "
        "gone. Every service holding personal data of theirs erases it; ledger amounts and published aggregates stay."
    )

    org_id: str
    person_id: str


# ------------------------------------------------------------------------ programmes

PROGRAMMES = "coaching.programmes"


class CohortOpened(Event):
    source = PROGRAMMES
    detail_type = "CohortOpened"
    description = "A GROW cohort opened for enrolment (by an org admin, or because enough people waited)."

    org_id: str
    cohort_id: str
    transition: str
    size: int
    start_date: str
    from_waitlist: bool


class CohortEnrolled(Event):
    source = PROGRAMMES
    detail_type = "CohortEnrolled"
    description = "A person took a place in a GROW cohort (by an org admin, or from the wait-list)."

    org_id: str
    cohort_id: str
    person_id: str
    source_of: str


class CohortMatched(Event):
    source = PROGRAMMES
    detail_type = "CohortMatched"
    description = (
        "A GROW cohort got its coaches (the optimal assignment solver); each participant's engagement with a cohort "
        "coach started, and the group sessions are on the coaches' calendars."
    )

    org_id: str
    cohort_id: str
    coach_ids: list[str]
    participant_ids: list[str]


class GroupSessionScheduled(Event):
    source = PROGRAMMES
    detail_type = "GroupSessionScheduled"
    description = "A GROW group session is on its coaches' calendars; every participant is invited (calendar.ics)."

    org_id: str
    cohort_id: str
    session_id: str
    coach_ids: list[str]
    participant_ids: list[str]
    start: datetime
    end: datetime


class GroupSessionCompleted(Event):
    source = PROGRAMMES
    detail_type = "GroupSessionCompleted"
    description = "A coach recorded a GROW group session's attendance; billed participants have their usage entries."

    org_id: str
    cohort_id: str
    session_id: str
    attended: int
    no_shows: int
    excused: int
    billed_units: int


class WorkshopBooked(Event):
    source = PROGRAMMES
    detail_type = "WorkshopBooked"
    description = "A TOGETHER workshop was booked with a matched facilitator; every participant is invited."

    org_id: str
    workshop_id: str
    facilitator_id: str
    goal: str
    participants: int
    start: datetime
    end: datetime


class WorkshopEnded(Event):
    source = PROGRAMMES
    detail_type = "WorkshopEnded"
    description = "A TOGETHER workshop was completed, cancelled or late-cancelled; a billable end has its entries."

    org_id: str
    workshop_id: str
    facilitator_id: str
    status: str
    billed_units: int


# ---------------------------------------------------------------------- development

DEVELOPMENT = "coaching.development"


class SessionFeedbackGiven(Event):
    source = DEVELOPMENT
    detail_type = "SessionFeedbackGiven"
    description = (
        "A person gave feedback on one of their completed sessions (once). The scores stay off the bus: they "
        "are in the confidential record and, summed, in the capture tallies of `period` (docs/privacy.md)."
    )

    org_id: str
    person_id: str
    booking_id: str
    program: str
    period: str
    cell_id: str


class GoalSet(Event):
    source = DEVELOPMENT
    detail_type = "GoalSet"
    description = "A person set a development goal on competencies of the org's framework (at most 3 active)."

    org_id: str
    person_id: str
    goal_id: str
    competencies: list[str]
    aim: str
    target_level: str | None = None
    period: str
    cell_id: str


class GoalCheckedIn(Event):
    source = DEVELOPMENT
    detail_type = "GoalCheckedIn"
    description = "A person checked in on a goal; the progress is in the tallies, not on the bus."

    org_id: str
    person_id: str
    goal_id: str
    checked_in_on: str
    next_checkin_on: str
    period: str
    cell_id: str


class GoalClosed(Event):
    source = DEVELOPMENT
    detail_type = "GoalClosed"
    description = "A goal was closed as achieved or abandoned; it no longer counts towards the 3 active."

    org_id: str
    person_id: str
    goal_id: str
    status: str
    period: str
    cell_id: str


class CheckInDue(Event):
    source = DEVELOPMENT
    detail_type = "CheckInDue"
    description = (
        "The daily nudge: a goal's check-in is due today. One event per goal and due date (a stable id), "
        "whatever the number of runs; delivery channels subscribe to it."
    )

    org_id: str
    person_id: str
    goal_id: str
    due_on: str


class FollowUpDue(Event):
    source = DEVELOPMENT
    detail_type = "FollowUpDue"
    description = (
        "A released 360 baseline awaits its follow-up: its date came (`scheduled`, the org's follow_up_weeks after "
        "it, 16 by default) or the person's coaching ended (`programme_ended`). The person opens the follow-up, "
        "which invites the raters; delivery channels subscribe. One event per baseline and reason."
    )

    org_id: str
    person_id: str
    baseline_id: str
    due_on: str
    reason: str


class RoleProfileSet(Event):
    source = DEVELOPMENT
    detail_type = "RoleProfileSet"
    description = "An org_admin set the competencies and observable behaviours of a role (level)."

    org_id: str
    level: str
    competencies: list[str]


class DevelopmentPolicySet(Event):
    source = DEVELOPMENT
    detail_type = "DevelopmentPolicySet"
    description = "An org_admin changed the development policy (manager shown alone in 360s, follow-up weeks)."

    org_id: str
    show_manager_alone: bool
    follow_up_weeks: int


class AssessmentOpened(Event):
    source = DEVELOPMENT
    detail_type = "AssessmentOpened"
    description = "A 360 round (baseline or follow-up) opened; raters were invited by single-use links."

    org_id: str
    person_id: str
    assessment_id: str
    kind: str
    raters_invited: int
    closes_at: datetime


class AssessmentAnswered(Event):
    source = DEVELOPMENT
    detail_type = "AssessmentAnswered"
    description = "One rater (or the person, group `self`) answered a 360; the ratings stay confidential."

    org_id: str
    person_id: str
    assessment_id: str
    group: str


class AssessmentReleased(Event):
    source = DEVELOPMENT
    detail_type = "AssessmentReleased"
    description = (
        "A 360 result was released under the release rule (`reason`). Only the person and their coach read "
        "it; the growth and manager-effectiveness sums went to the tallies of `period`."
    )

    org_id: str
    person_id: str
    assessment_id: str
    kind: str
    reason: str
    period: str
    cell_id: str


# ------------------------------------------------------------------------- reports

REPORTS = "coaching.reports"


class ReportDue(Event):
    source = REPORTS
    detail_type = "ReportDue"
    description = (
        "The monthly schedule's fan-out, after the org's month was rebuilt from source: write this org's "
        "report artefacts (HTML and CSVs) for this month. Carries no figure."
    )

    org_id: str
    period: str


# ------------------------------------------------------------------------- catalogue

CATALOGUE: tuple[type[Event], ...] = (
    CoachVettingChanged,
    CoachProfileUpdated,
    MatchProposed,
    EngagementStarted,
    EngagementEnded,
    SessionBooked,
    SessionCancelled,
    SessionRescheduled,
    BudgetThresholdReached,
    SessionCompleted,
    SessionConfirmed,
    SessionDisputed,
    SessionCredited,
    SessionDisputeRejected,
    InvoiceDue,
    ReconciliationDue,
    PersonPromoted,
    PersonTerminated,
    PersonTransitioned,
    PersonErased,
    CohortOpened,
    CohortEnrolled,
    CohortMatched,
    GroupSessionScheduled,
    GroupSessionCompleted,
    WorkshopBooked,
    WorkshopEnded,
    SessionFeedbackGiven,
    GoalSet,
    GoalCheckedIn,
    GoalClosed,
    CheckInDue,
    FollowUpDue,
    RoleProfileSet,
    DevelopmentPolicySet,
    AssessmentOpened,
    AssessmentAnswered,
    AssessmentReleased,
    ReportDue,
)

BY_TYPE: Mapping[str, type[Event]] = {event.detail_type: event for event in CATALOGUE}


class UnknownEvent(ValueError):
    """A detail-type or source the catalogue does not know: the bus retries, then dead-letters it."""


def event_type(detail_type: str, source: str | None = None) -> type[Event]:
    model = BY_TYPE.get(detail_type)
    if model is None:
        raise UnknownEvent(f"no event {detail_type!r} in the catalogue")
    if source is not None and source != model.source:
        raise UnknownEvent(f"{detail_type} comes from {model.source}, not {source!r}")
    return model


def parse_detail(detail_type: str, source: str | None, detail: Mapping[str, Any]) -> Event:
    """The typed event for a bus delivery; raises UnknownEvent or pydantic's ValidationError."""
    return event_type(detail_type, source).model_validate(detail)


def detail_types(events: Iterable[type[Event]]) -> list[str]:
    return sorted(event.detail_type for event in events)
