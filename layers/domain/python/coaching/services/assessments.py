"""360 rounds: open with one-time rater links, answer (self with an account, raters by link), release.

The release rule (`Assessment.release_reason_at`) is evaluated after every answer and by the daily
schedule. A release commits the result (confidential table), the round's new state, the capture tally
(growth for a follow-up, manager effectiveness from direct reports) and `AssessmentReleased` together. The
tally's cell carries the programme and GROW cohort the person was in at the release
(`coaching.domain.rollups.growth_attribution`), so the reports break growth down by programme and cohort.
Only the person and a coach with an active engagement with them read a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel

from coaching.auth import Principal, Role
from coaching.domain.assessments import (
    Assessment,
    AssessmentKind,
    AssessmentRequest,
    AssessmentResult,
    AssessmentStatus,
    DevelopmentPolicy,
    FollowUpReason,
    Growth,
    IssuedInvite,
    RaterAnswer,
    RaterGroup,
    awaiting_follow_up,
    hash_token,
)
from coaching.domain.common import Clock, DeferredModel
from coaching.domain.engagements import Engagement
from coaching.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from coaching.domain.events import (
    AssessmentAnswered,
    AssessmentOpened,
    AssessmentReleased,
    EngagementEnded,
    Event,
    FollowUpDue,
    stable_event_id,
)
from coaching.domain.goals import RoleProfile
from coaching.domain.grow import Cohort, GroupSession
from coaching.domain.measures import TallyDelta, assessment_delta, dimensions_of, period_of
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.rollups import growth_attribution
from coaching.services.goals import OrgPersonReader, framework_of

DEFAULT_COMPETENCIES = 8


@dataclass(frozen=True, slots=True)
class InviteRef:
    org_id: str
    person_id: str
    assessment_id: str


class Participation(DeferredModel):
    """Where a person has been coached: their engagements and GROW cohorts (with the cohorts' group sessions)."""

    engagements: list[Engagement] = []
    cohorts: list[Cohort] = []
    group_sessions: list[GroupSession] = []


class AssessmentPort(OrgPersonReader, Protocol):
    def policy(self, org_id: str) -> DevelopmentPolicy: ...

    def participation(self, org_id: str, person_id: str) -> Participation: ...

    def role_profile(self, org_id: str, level: str) -> RoleProfile | None: ...

    def open_assessment(self, assessment: Assessment, events: Sequence[Event]) -> None: ...

    def assessment(self, org_id: str, person_id: str, assessment_id: str) -> tuple[Assessment, int] | None: ...

    def invite(self, token_hash: str) -> InviteRef | None: ...

    def record_answer(self, assessment: Assessment, version: int, answer: RaterAnswer, events: Sequence[Event]) -> None:
        """Raises Conflict when the round changed since it was read (or this rater already answered)."""
        ...

    def answers(self, org_id: str, person_id: str, assessment_id: str) -> list[RaterAnswer]: ...

    def release(
        self, assessment: Assessment, version: int, result: AssessmentResult, delta: TallyDelta, events: Sequence[Event]
    ) -> None: ...

    def result(self, org_id: str, person_id: str, assessment_id: str) -> AssessmentResult | None: ...

    def results(self, org_id: str, person_id: str) -> list[AssessmentResult]: ...

    def open_assessments(self) -> list[tuple[str, str, str]]:
        """(org, person, assessment) of every round still open, oldest first."""
        ...

    def coach_engaged(self, org_id: str, person_id: str, coach_id: str) -> bool: ...

    def rounds(self, org_id: str, person_id: str) -> list[Assessment]:
        """Every 360 round of the person, open or released, baselines and follow-ups."""
        ...

    def baselines_due(self, first: date, last: date) -> list[tuple[str, str]]:
        """(org, person) of every released baseline whose follow-up date falls in [first, last]."""
        ...

    def commit_events(self, events: Sequence[Event]) -> None:
        """Events of no state change of their own; one already committed (a stable id) is kept."""
        ...


@dataclass(frozen=True, slots=True)
class AssessmentContext:
    store: AssessmentPort
    clock: Clock


class AssessmentView(DeferredModel):
    """What the person (or their coach) sees of a round: counts, never who answered what."""

    assessment_id: str
    kind: AssessmentKind
    baseline_id: str | None
    status: AssessmentStatus
    competencies: list[str]
    raters_invited: int
    raters_answered: int
    self_answered: bool
    opened_at: datetime
    closes_at: datetime
    released_at: datetime | None
    release_reason: str | None
    follow_up_due_on: str | None

    @classmethod
    def of(cls, a: Assessment) -> AssessmentView:
        due = a.follow_up_due_on
        return cls(
            assessment_id=a.assessment_id, kind=a.kind, baseline_id=a.baseline_id, status=a.status,
            competencies=a.competencies, raters_invited=len(a.invites), raters_answered=a.answered(),
            self_answered=a.self_answered_at is not None, opened_at=a.opened_at, closes_at=a.closes_at,
            released_at=a.released_at, release_reason=a.release_reason.value if a.release_reason else None,
            follow_up_due_on=due.isoformat() if due else None,
        )  # fmt: skip


class OpenedAssessment(BaseModel):
    assessment: AssessmentView
    invites: list[IssuedInvite]


class RaterView(BaseModel):
    """What a rater's link shows: the competencies to rate and until when; never whose round beyond that."""

    assessment_id: str
    group: RaterGroup
    competencies: list[str]
    closes_at: datetime
    answered: bool


def _person(caller: Principal, ctx: AssessmentContext) -> tuple[Org, Person]:
    org_id = caller.require_org(Role.EMPLOYEE)
    org, person = ctx.store.org_and_person(org_id, caller.person_id)
    if org is None or person is None:
        raise NotFound("the caller is not a person of this organisation")
    return org, person


def open_round(caller: Principal, request: AssessmentRequest, ctx: AssessmentContext) -> OpenedAssessment:
    """Open a baseline or follow-up; the answer carries each rater's link token, shown this once."""
    org, person = _person(caller, ctx)
    if request.baseline_id is not None:
        found = ctx.store.assessment(org.org_id, person.person_id, request.baseline_id)
        if found is None or found[0].kind is not AssessmentKind.BASELINE:
            raise NotFound(f"baseline {request.baseline_id} not found", field="baseline_id")
        if found[0].status is not AssessmentStatus.RELEASED:
            raise InvalidInput("a follow-up compares with a released baseline", field="baseline_id")
        competencies = found[0].competencies
    elif request.competencies:
        competencies = list(request.competencies)
    else:
        profile = ctx.store.role_profile(org.org_id, person.level.value)
        framework_ids = [c.id for c in framework_of(org).competencies]
        competencies = [c.competency for c in profile.competencies] if profile else framework_ids[:DEFAULT_COMPETENCIES]
    now = ctx.clock()
    assessment, invites = Assessment.open(org.org_id, person.person_id, request, competencies[:12],
                                          framework_of(org), ctx.store.policy(org.org_id), now)  # fmt: skip
    event = AssessmentOpened(occurred_at=now, org_id=org.org_id, person_id=person.person_id,
                             assessment_id=assessment.assessment_id, kind=assessment.kind.value,
                             raters_invited=len(invites), closes_at=assessment.closes_at)  # fmt: skip
    ctx.store.open_assessment(assessment, [event])
    return OpenedAssessment(assessment=AssessmentView.of(assessment), invites=invites)


def _readable(caller: Principal, org_id: str, person_id: str, ctx: AssessmentContext) -> None:
    """The person themselves, or a coach with an active engagement with them; nobody else, ever."""
    if caller.has(Role.EMPLOYEE) and caller.org_id == org_id and caller.person_id == person_id:
        return
    if caller.has(Role.COACH) and ctx.store.coach_engaged(org_id, person_id, caller.person_id):
        return
    raise NotFound("no such assessment for this caller")


def view(caller: Principal, org_id: str, person_id: str, assessment_id: str, ctx: AssessmentContext) -> AssessmentView:
    _readable(caller, org_id, person_id, ctx)
    found = ctx.store.assessment(org_id, person_id, assessment_id)
    if found is None:
        raise NotFound(f"assessment {assessment_id} not found", field="assessment_id")
    return AssessmentView.of(found[0])


def answer_self(
    caller: Principal, assessment_id: str, ratings: dict[str, int], ctx: AssessmentContext
) -> AssessmentView:
    org_id = caller.require_org(Role.EMPLOYEE)
    found = ctx.store.assessment(org_id, caller.person_id, assessment_id)
    if found is None:
        raise NotFound(f"assessment {assessment_id} not found", field="assessment_id")
    assessment, version = found
    now = ctx.clock()
    answered = assessment.answer_self(ratings, now)
    answer = RaterAnswer(org_id=org_id, person_id=caller.person_id, assessment_id=assessment_id, rater_id="self",
                         group=RaterGroup.SELF, ratings=dict(ratings), answered_at=now)  # fmt: skip
    ctx.store.record_answer(answered, version, answer, [_answered(answered, RaterGroup.SELF, now)])
    return AssessmentView.of(release_if_due(answered, version + 1, ctx) or answered)


def rater_view(token: str, ctx: AssessmentContext) -> RaterView:
    assessment, _ = _by_token(token, ctx)
    invite = assessment.invite_for(token)
    if ctx.clock() >= assessment.closes_at:
        raise Forbidden("this link has expired")
    return RaterView(assessment_id=assessment.assessment_id, group=invite.group, competencies=assessment.competencies,
                     closes_at=assessment.closes_at, answered=invite.answered_at is not None)  # fmt: skip


def answer_by_link(token: str, ratings: dict[str, int], ctx: AssessmentContext) -> RaterView:
    """A rater answers without an account: the link's token is the only credential, and works once."""
    assessment, version = _by_token(token, ctx)
    now = ctx.clock()
    answered, invite = assessment.answer_invite(token, ratings, now)
    answer = RaterAnswer(org_id=assessment.org_id, person_id=assessment.person_id,
                         assessment_id=assessment.assessment_id, rater_id=invite.rater_id, group=invite.group,
                         ratings=dict(ratings), answered_at=now)  # fmt: skip
    try:
        ctx.store.record_answer(answered, version, answer, [_answered(answered, invite.group, now)])
    except Conflict:
        # Another rater answered at the same moment: apply this answer to the fresh round once more.
        assessment, version = _by_token(token, ctx)
        answered, invite = assessment.answer_invite(token, ratings, ctx.clock())
        ctx.store.record_answer(answered, version, answer, [_answered(answered, invite.group, now)])
    release_if_due(answered, version + 1, ctx)
    return RaterView(assessment_id=answered.assessment_id, group=invite.group, competencies=answered.competencies,
                     closes_at=answered.closes_at, answered=True)  # fmt: skip


def _by_token(token: str, ctx: AssessmentContext) -> tuple[Assessment, int]:
    ref = ctx.store.invite(hash_token(token))
    found = ctx.store.assessment(ref.org_id, ref.person_id, ref.assessment_id) if ref else None
    if found is None:
        raise NotFound("this link is not valid", field="token")
    return found


def _answered(assessment: Assessment, group: RaterGroup, now: datetime) -> AssessmentAnswered:
    return AssessmentAnswered(occurred_at=now, org_id=assessment.org_id, person_id=assessment.person_id,
                              assessment_id=assessment.assessment_id, group=group.value)  # fmt: skip


def release_if_due(assessment: Assessment, version: int, ctx: AssessmentContext) -> Assessment | None:
    """Release the round if the rule says so now; None if it stays closed (or another call released it)."""
    now = ctx.clock()
    released = assessment.release(now)
    if released is None:
        return None
    answers = ctx.store.answers(assessment.org_id, assessment.person_id, assessment.assessment_id)
    result = AssessmentResult.compute(released, answers)
    _, person = ctx.store.org_and_person(assessment.org_id, assessment.person_id)
    if person is None:
        return None
    growth: tuple[float, float] | None = None
    if released.baseline_id is not None:
        baseline = ctx.store.result(released.org_id, released.person_id, released.baseline_id)
        if baseline and baseline.others_overall is not None and result.others_overall is not None:
            growth = (baseline.others_overall, result.others_overall)
    reports = result.group(RaterGroup.DIRECT_REPORT)
    manager_score = round(sum(reports.scores.values()) / len(reports.scores), 2) if reports.shown else None
    # The programme and GROW cohort the person was in at this release: a follow-up's growth counts for them.
    where = ctx.store.participation(released.org_id, released.person_id)
    programme, cohort = growth_attribution(released.person_id, where.engagements, where.cohorts,
                                           where.group_sessions, now)  # fmt: skip
    dims = dimensions_of(person, programme, now, grow_cohort=cohort)
    delta = assessment_delta(released.org_id, dims, now, growth=growth, manager_score=manager_score)
    event = AssessmentReleased(
        event_id=stable_event_id("assessment-released", released.org_id, released.assessment_id),
        occurred_at=now, org_id=released.org_id, person_id=released.person_id,
        assessment_id=released.assessment_id, kind=released.kind.value,
        reason=str(released.release_reason), period=period_of(now), cell_id=dims.cell_id(),
    )  # fmt: skip
    try:
        ctx.store.release(released, version, result, delta, [event])
    except Conflict:
        return None  # released (or answered) by a concurrent call: theirs stands
    return released


def release_due(ctx: AssessmentContext) -> int:
    """The daily schedule: release every open round the rule releases by now (14 and 21 days)."""
    released = 0
    for org_id, person_id, assessment_id in ctx.store.open_assessments():
        found = ctx.store.assessment(org_id, person_id, assessment_id)
        if found is not None and release_if_due(found[0], found[1], ctx) is not None:
            released += 1
    return released


def result(
    caller: Principal, org_id: str, person_id: str, assessment_id: str, ctx: AssessmentContext
) -> AssessmentResult:
    _readable(caller, org_id, person_id, ctx)
    found = ctx.store.result(org_id, person_id, assessment_id)
    if found is None:
        raise NotFound(f"assessment {assessment_id} has no released result", field="assessment_id")
    return found


def growth(caller: Principal, org_id: str, person_id: str, ctx: AssessmentContext) -> list[Growth]:
    """Before and after: each released baseline with its released follow-up, if any."""
    _readable(caller, org_id, person_id, ctx)
    results = ctx.store.results(org_id, person_id)
    follow_ups = {r.baseline_id: r for r in results if r.kind is AssessmentKind.FOLLOW_UP and r.baseline_id}
    return [Growth.between(r, follow_ups.get(r.assessment_id)) for r in results if r.kind is AssessmentKind.BASELINE]


# A daily run that failed for a few days still nudges the baselines that came due meanwhile (the ids are stable).
FOLLOW_UP_LOOKBACK_DAYS = 7


def _follow_up_due(baseline: Assessment, reason: FollowUpReason, now: datetime) -> FollowUpDue:
    due_on = baseline.follow_up_due_on if reason is FollowUpReason.SCHEDULED else now.date()
    return FollowUpDue(
        event_id=stable_event_id("follow-up-due", baseline.org_id, baseline.assessment_id, reason.value),
        occurred_at=now, org_id=baseline.org_id, person_id=baseline.person_id,
        baseline_id=baseline.assessment_id, due_on=(due_on or now.date()).isoformat(), reason=reason.value,
    )  # fmt: skip


def nudge_follow_ups(today: date, ctx: AssessmentContext) -> list[FollowUpDue]:
    """The daily schedule: one FollowUpDue per released baseline whose follow-up date has come and that has no
    follow-up yet (the org's follow_up_weeks after it, 16 by default)."""
    now = ctx.clock()
    events = [
        _follow_up_due(baseline, FollowUpReason.SCHEDULED, now)
        for org_id, person_id in ctx.store.baselines_due(today - timedelta(days=FOLLOW_UP_LOOKBACK_DAYS), today)
        for baseline in awaiting_follow_up(ctx.store.rounds(org_id, person_id), now, FollowUpReason.SCHEDULED)
    ]
    ctx.store.commit_events(events)
    return events


def on_engagement_ended(event: EngagementEnded, ctx: AssessmentContext) -> list[FollowUpDue]:
    """The end of a programme: when the person's last engagement ends (not a change of coach, which starts the
    next one in the same transaction) and they are still with the org, a baseline at least 4 weeks old is due
    its follow-up now rather than at its date. Idempotent: the ids are stable."""
    _, person = ctx.store.org_and_person(event.org_id, event.person_id)
    if person is None or not person.active:
        return []  # left the organisation (or erased): nobody to measure
    if any(e.is_active for e in ctx.store.participation(event.org_id, event.person_id).engagements):
        return []
    now = ctx.clock()
    rounds = ctx.store.rounds(event.org_id, event.person_id)
    events = [_follow_up_due(b, FollowUpReason.PROGRAMME_ENDED, now)
              for b in awaiting_follow_up(rounds, now, FollowUpReason.PROGRAMME_ENDED)]  # fmt: skip
    ctx.store.commit_events(events)
    return events
