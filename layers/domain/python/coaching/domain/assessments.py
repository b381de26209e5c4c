"""360 competency assessments on the org's framework: baseline and follow-up.

Raters (manager, peers, direct reports) are invited by single-use links that expire when the round
closes; they answer without an account, the random token in the link being their only credential
(stored hashed). The person rates themselves through their own account.

Release rule (`release_reason`), evaluated on every answer and by the daily schedule:
released when the self-assessment is done and every invited rater answered; or when at least 5
raters answered and 14 days passed; or at 21 days, whatever the answers.

What a result shows (`AssessmentResult.compute`): self alone (it is the person's own); peers and
direct reports each only as a group of at least 3, and a smaller group is neither shown nor folded
into another group or the overall figure; the manager alone only if the org's policy allowed it AND
the manager's invite recorded that they were told so. Only the person and their coach (an active
engagement) ever read a result; aggregates get only the tallies of `coaching.domain.measures`.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from coaching.domain.common import DeferredModel, EntityId, Slug, StrictModel
from coaching.domain.competencies import Framework
from coaching.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from coaching.domain.goals import check_competencies
from coaching.domain.updates import evolved

MIN_GROUP = 3  # a rater group below this is never shown, nor folded into another
QUORUM = 5  # raters answered for the 14-day release
QUORUM_AFTER = timedelta(days=14)
DEADLINE = timedelta(days=21)  # released whatever the answers; links expire then
DEFAULT_FOLLOW_UP_WEEKS = 16
MAX_RATERS = 30
MAX_COMPETENCIES = 12
TOKEN_BYTES = 32


class AssessmentKind(StrEnum):
    BASELINE = "baseline"
    FOLLOW_UP = "follow_up"


class RaterGroup(StrEnum):
    SELF = "self"
    MANAGER = "manager"
    PEER = "peer"
    DIRECT_REPORT = "direct_report"


class AssessmentStatus(StrEnum):
    OPEN = "open"
    RELEASED = "released"


class ReleaseReason(StrEnum):
    COMPLETE = "complete"  # self done and every invited rater answered
    QUORUM = "quorum_after_14_days"  # at least 5 raters answered and 14 days passed
    DEADLINE = "deadline_21_days"


class DevelopmentPolicy(StrictModel):
    """The org's settings for development (org_admin)."""

    show_manager_alone: bool = Field(
        default=False,
        description="Show the manager's 360 rating on its own; a manager invited under this policy is told so.",
    )
    follow_up_weeks: Annotated[int, Field(ge=4, le=104)] = DEFAULT_FOLLOW_UP_WEEKS


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class RaterRequest(StrictModel):
    group: RaterGroup = Field(description="manager, peer or direct_report (the person rates themselves).")

    @model_validator(mode="after")
    def _not_self(self) -> RaterRequest:
        if self.group is RaterGroup.SELF:
            raise ValueError("the person rates themselves through their own account, not by invite")
        return self


class AssessmentRequest(StrictModel):
    kind: AssessmentKind = AssessmentKind.BASELINE
    baseline_id: EntityId | None = Field(default=None, description="The baseline a follow-up compares with.")
    competencies: Annotated[list[Slug], Field(min_length=1, max_length=MAX_COMPETENCIES)] | None = Field(
        default=None, description="Default: the role profile of the person's level, else the first 8 of the framework."
    )
    raters: Annotated[list[RaterRequest], Field(min_length=1, max_length=MAX_RATERS)]

    @model_validator(mode="after")
    def _shape(self) -> AssessmentRequest:
        if (self.kind is AssessmentKind.FOLLOW_UP) != (self.baseline_id is not None):
            raise ValueError("a follow_up names its baseline_id, and only a follow_up does")
        if sum(1 for r in self.raters if r.group is RaterGroup.MANAGER) > 1:
            raise ValueError("at most one manager rates a person")
        return self


Rating = Annotated[int, Field(ge=1, le=5)]


class AnswerRequest(StrictModel):
    ratings: Annotated[dict[Slug, Rating], Field(min_length=1, max_length=MAX_COMPETENCIES)] = Field(
        description="A rating 1-5 for every competency of the assessment."
    )


class RaterAnswerRequest(AnswerRequest):
    token: Annotated[str, Field(min_length=20, max_length=200, description="The token of the invite link.")]


class Invite(DeferredModel):
    rater_id: str
    group: RaterGroup
    token_hash: str
    answered_at: datetime | None = None
    # The manager was told their rating may be shown on its own (recorded when invited).
    shown_alone_notice: bool = False


class IssuedInvite(DeferredModel):
    """An invite as answered once, at creation: the link token is never stored nor shown again."""

    rater_id: str
    group: RaterGroup
    token: str
    expires_at: datetime
    shown_alone_notice: bool


class Assessment(DeferredModel):
    assessment_id: str
    org_id: str
    person_id: str
    kind: AssessmentKind
    baseline_id: str | None = None
    competencies: list[str]
    invites: list[Invite]
    show_manager_alone: bool
    opened_at: datetime
    self_answered_at: datetime | None = None
    status: AssessmentStatus = AssessmentStatus.OPEN
    released_at: datetime | None = None
    release_reason: ReleaseReason | None = None
    follow_up_weeks: int = DEFAULT_FOLLOW_UP_WEEKS

    @classmethod
    def open(
        cls,
        org_id: str,
        person_id: str,
        request: AssessmentRequest,
        competencies: Sequence[str],
        framework: Framework,
        policy: DevelopmentPolicy,
        now: datetime,
    ) -> tuple[Assessment, list[IssuedInvite]]:
        check_competencies(competencies, framework, "competencies")
        expires = now + DEADLINE
        issued: list[IssuedInvite] = []
        invites: list[Invite] = []
        for rater in request.raters:
            token = new_token()
            notice = rater.group is RaterGroup.MANAGER and policy.show_manager_alone
            rater_id = str(uuid.uuid4())
            invites.append(Invite(rater_id=rater_id, group=rater.group, token_hash=hash_token(token),
                                  shown_alone_notice=notice))  # fmt: skip
            issued.append(IssuedInvite(rater_id=rater_id, group=rater.group, token=token, expires_at=expires,
                                       shown_alone_notice=notice))  # fmt: skip
        assessment = cls(
            assessment_id=str(uuid.uuid4()),
            org_id=org_id,
            person_id=person_id,
            kind=request.kind,
            baseline_id=request.baseline_id,
            competencies=list(dict.fromkeys(competencies)),
            invites=invites,
            show_manager_alone=policy.show_manager_alone,
            opened_at=now,
            follow_up_weeks=policy.follow_up_weeks,
        )
        return assessment, issued

    @property
    def closes_at(self) -> datetime:
        return self.opened_at + DEADLINE

    @property
    def follow_up_due_on(self) -> date | None:
        if self.kind is not AssessmentKind.BASELINE:
            return None
        return (self.opened_at + timedelta(weeks=self.follow_up_weeks)).date()

    def answered(self) -> int:
        """Invited raters who answered (self not included)."""
        return sum(1 for invite in self.invites if invite.answered_at is not None)

    def release_reason_at(self, now: datetime) -> ReleaseReason | None:
        """Why the result is released at `now`, or None while it stays closed (the release rule)."""
        if self.status is AssessmentStatus.RELEASED:
            return self.release_reason
        if self.self_answered_at is not None and all(i.answered_at is not None for i in self.invites):
            return ReleaseReason.COMPLETE
        if self.answered() >= QUORUM and now >= self.opened_at + QUORUM_AFTER:
            return ReleaseReason.QUORUM
        if now >= self.closes_at:
            return ReleaseReason.DEADLINE
        return None

    def _check_answer(self, ratings: Mapping[str, int], now: datetime) -> None:
        if self.status is not AssessmentStatus.OPEN or now >= self.closes_at:
            raise Conflict("this assessment is closed", field="assessment_id")
        missing = [c for c in self.competencies if c not in ratings]
        extra = sorted(set(ratings) - set(self.competencies))
        if extra:
            raise InvalidInput(f"{extra[0]!r} is not a competency of this assessment", field=f"ratings.{extra[0]}")
        if missing:
            raise InvalidInput(f"rate every competency; {missing[0]!r} is missing", field=f"ratings.{missing[0]}")

    def answer_self(self, ratings: Mapping[str, int], now: datetime) -> Assessment:
        self._check_answer(ratings, now)
        if self.self_answered_at is not None:
            raise Conflict("the self-assessment is already done", field="assessment_id")
        return evolved(self, "assessment", self_answered_at=now)

    def invite_for(self, token: str) -> Invite:
        digest = hash_token(token)
        for invite in self.invites:
            if secrets.compare_digest(invite.token_hash, digest):
                return invite
        raise NotFound("this link is not valid")

    def answer_invite(self, token: str, ratings: Mapping[str, int], now: datetime) -> tuple[Assessment, Invite]:
        invite = self.invite_for(token)
        if invite.answered_at is not None:
            raise Conflict("this link was already used", field="token")
        if now >= self.closes_at:
            raise Forbidden("this link has expired")
        self._check_answer(ratings, now)
        answered = invite.model_copy(update={"answered_at": now})
        invites = [answered if i.rater_id == invite.rater_id else i for i in self.invites]
        return evolved(self, "assessment", invites=invites), answered

    def release(self, now: datetime) -> Assessment | None:
        """The released assessment if the rule releases it now, else None."""
        if self.status is AssessmentStatus.RELEASED:
            return None
        reason = self.release_reason_at(now)
        if reason is None:
            return None
        return evolved(self, "assessment", status=AssessmentStatus.RELEASED, released_at=now, release_reason=reason)


# A follow-up sooner than this after its baseline measures noise, not growth (the policy's shortest interval).
MIN_FOLLOW_UP = timedelta(weeks=4)


class FollowUpReason(StrEnum):
    SCHEDULED = "scheduled"  # the baseline's follow-up date (the org's follow_up_weeks after it) has come
    PROGRAMME_ENDED = "programme_ended"  # the person's coaching ended with no engagement left


def awaiting_follow_up(rounds: Sequence[Assessment], now: datetime, reason: FollowUpReason) -> list[Assessment]:
    """The person's released baselines that a follow-up should now measure against, oldest first.

    A baseline that already has a follow-up (open or released) awaits nothing. On schedule, its follow-up date
    must have come; at the end of a programme, MIN_FOLLOW_UP must have passed since it opened."""
    followed = {r.baseline_id for r in rounds if r.kind is AssessmentKind.FOLLOW_UP}
    due = []
    for r in rounds:
        if r.kind is not AssessmentKind.BASELINE or r.status is not AssessmentStatus.RELEASED:
            continue
        if r.assessment_id in followed:
            continue
        if reason is FollowUpReason.SCHEDULED:
            ready = r.follow_up_due_on is not None and r.follow_up_due_on <= now.date()
        else:
            ready = now - r.opened_at >= MIN_FOLLOW_UP
        if ready:
            due.append(r)
    return sorted(due, key=lambda r: r.opened_at)


class RaterAnswer(DeferredModel):
    """One rater's ratings (confidential table); `rater_id` is "self" for the person's own."""

    org_id: str
    person_id: str
    assessment_id: str
    rater_id: str
    group: RaterGroup
    ratings: dict[str, int]
    answered_at: datetime


class GroupScores(DeferredModel):
    group: RaterGroup
    responses: int
    shown: bool
    scores: dict[str, float] = {}  # competency -> mean, only when shown
    withheld_because: str | None = None


class AssessmentResult(DeferredModel):
    """What the person and their coach see once released (confidential table)."""

    org_id: str
    person_id: str
    assessment_id: str
    kind: AssessmentKind
    baseline_id: str | None = None
    competencies: list[str]
    released_at: datetime
    release_reason: ReleaseReason
    groups: list[GroupScores]
    # Mean of the shown rater groups (self excluded), per competency and overall.
    others: dict[str, float] = {}
    others_overall: float | None = None
    self_overall: float | None = None

    @classmethod
    def compute(cls, assessment: Assessment, answers: Sequence[RaterAnswer]) -> AssessmentResult:
        if assessment.status is not AssessmentStatus.RELEASED or assessment.released_at is None:
            raise Conflict("the assessment is not released", field="assessment_id")
        notified_manager = any(i.group is RaterGroup.MANAGER and i.shown_alone_notice for i in assessment.invites)
        by_group: dict[RaterGroup, list[RaterAnswer]] = {group: [] for group in RaterGroup}
        for answer in answers:
            by_group[answer.group].append(answer)
        groups: list[GroupScores] = []
        shown_others: list[RaterAnswer] = []
        for group, members in by_group.items():
            if group is RaterGroup.SELF:
                shown, why = bool(members), None if members else "not answered"
            elif group is RaterGroup.MANAGER:
                allowed = assessment.show_manager_alone and notified_manager
                shown = bool(members) and allowed
                why = None if shown else ("not answered" if not members else "the manager is not shown alone")
            else:
                shown = len(members) >= MIN_GROUP
                why = None if shown else f"fewer than {MIN_GROUP} responses"
            scores = _means(members, assessment.competencies) if shown else {}
            groups.append(GroupScores(group=group, responses=len(members), shown=shown, scores=scores,
                                      withheld_because=why))  # fmt: skip
            if shown and group is not RaterGroup.SELF:
                shown_others.extend(members)
        others = _means(shown_others, assessment.competencies)
        self_scores = _means(by_group[RaterGroup.SELF], assessment.competencies)
        return cls(
            org_id=assessment.org_id,
            person_id=assessment.person_id,
            assessment_id=assessment.assessment_id,
            kind=assessment.kind,
            baseline_id=assessment.baseline_id,
            competencies=assessment.competencies,
            released_at=assessment.released_at,
            release_reason=assessment.release_reason or ReleaseReason.DEADLINE,
            groups=groups,
            others=others,
            others_overall=_overall(others),
            self_overall=_overall(self_scores),
        )

    def group(self, group: RaterGroup) -> GroupScores:
        return next(g for g in self.groups if g.group is group)


def _means(answers: Sequence[RaterAnswer], competencies: Sequence[str]) -> dict[str, float]:
    if not answers:
        return {}
    return {c: round(sum(a.ratings[c] for a in answers) / len(answers), 2) for c in competencies}


def _overall(scores: Mapping[str, float]) -> float | None:
    return round(sum(scores.values()) / len(scores), 2) if scores else None


class Growth(DeferredModel):
    """Before and after, for the person and their coach: the follow-up against its baseline."""

    baseline: AssessmentResult
    follow_up: AssessmentResult | None = None
    change: dict[str, float] = {}  # competency -> points (others' mean), where both sides are shown
    change_overall: float | None = None
    change_percent: float | None = None

    @classmethod
    def between(cls, baseline: AssessmentResult, follow_up: AssessmentResult | None) -> Growth:
        if follow_up is None:
            return cls(baseline=baseline)
        change = {c: round(follow_up.others[c] - baseline.others[c], 2)
                  for c in baseline.competencies if c in follow_up.others and c in baseline.others}  # fmt: skip
        overall = percent = None
        if baseline.others_overall is not None and follow_up.others_overall is not None:
            overall = round(follow_up.others_overall - baseline.others_overall, 2)
            percent = round(100 * overall / baseline.others_overall, 1)
        return cls(baseline=baseline, follow_up=follow_up, change=change, change_overall=overall,
                   change_percent=percent)  # fmt: skip
