"""Context handoff and erasure: what travels with a person to their next coach or programme, and what never does.

A new coach (or programme) sees the person's growth: level history, the focus of each request (their
competency history), and past engagements (programme, dates, coach). What the person said, the situations
they wrote when asking for a match or booking a session, stays in the confidential table and is shown only
when the person consents, per situation or as a whole (`ContextConsent`). Revoking takes effect at once: the
next read sees no situation. The person sees exactly what is shared, and with whom (`SharingView`).

Erasure (`anonymised`, `erased_record`) replaces a person's personal data with placeholders while keeping the
person id that ledger entries and published aggregates refer to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from coaching.domain.assessments import AssessmentResult
from coaching.domain.common import DeferredModel, StrictModel
from coaching.domain.engagements import Engagement, MatchRecord
from coaching.domain.errors import InvalidInput
from coaching.domain.goals import Goal, GoalStatus
from coaching.domain.hr import HrRecord
from coaching.domain.people import LevelChange, Person
from coaching.domain.taxonomy import Level, Program
from coaching.domain.updates import evolved

SituationKind = Literal["match", "booking"]
MAX_SHARED_ITEMS = 500
# What a coach or programme always sees of the person (never what they said): `SharingView.always_shared`.
ALWAYS_SHARED = (
    "name",
    "level",
    "function",
    "title",
    "level_history",
    "focus_history",
    "past_engagements",
    "goals",
    "released_360_results",
)


class SituationRef(StrictModel):
    """One situation: the one written with a match request (`match`) or with a booking (`booking`)."""

    kind: SituationKind
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


class Situation(DeferredModel):
    kind: SituationKind
    id: str
    text: str
    created_at: datetime

    @property
    def ref(self) -> SituationRef:
        return SituationRef(kind=self.kind, id=self.id)


class ConsentChange(StrictModel):
    """The person's consent, replaced whole: every situation, or the ones listed (none: nothing is shared)."""

    share_all_situations: bool = Field(
        default=False, description="Share every situation, including ones written later, with the current coaches."
    )
    situations: Annotated[list[SituationRef], Field(max_length=MAX_SHARED_ITEMS)] = Field(
        default=[], description="The situations shared one by one (ignored when `share_all_situations`)."
    )


class ContextConsent(DeferredModel):
    org_id: str
    person_id: str
    share_all_situations: bool = False
    situations: list[SituationRef] = []
    updated_at: datetime | None = None

    @classmethod
    def none(cls, org_id: str, person_id: str) -> ContextConsent:
        return cls(org_id=org_id, person_id=person_id)

    def changed(self, change: ConsentChange, known: list[Situation], now: datetime) -> ContextConsent:
        """The consent after `change`; every situation named must be one of the person's (422 naming it)."""
        ids = {(s.kind, s.id) for s in known}
        for index, ref in enumerate(change.situations):
            if (ref.kind, ref.id) not in ids:
                raise InvalidInput(f"no {ref.kind} situation {ref.id} of yours", field=f"situations[{index}]")
        unique = list({(r.kind, r.id): r for r in change.situations}.values())
        return evolved(
            self,
            "consent",
            share_all_situations=change.share_all_situations,
            situations=[] if change.share_all_situations else unique,
            updated_at=now,
        )

    def revoked(self, now: datetime) -> ContextConsent:
        return evolved(self, "consent", share_all_situations=False, situations=[], updated_at=now)

    def shares(self, situation: Situation) -> bool:
        return self.share_all_situations or any(
            r.kind == situation.kind and r.id == situation.id for r in self.situations
        )

    @property
    def shares_any(self) -> bool:
        return self.share_all_situations or bool(self.situations)


class FocusEntry(DeferredModel):
    at: datetime
    program: Program
    focus_competencies: list[str]


class PastEngagement(DeferredModel):
    engagement_id: str
    program: Program
    coach_id: str
    start_date: str
    ended_at: datetime | None
    status: str


class Handoff(DeferredModel):
    """What the person's coach (or a programme) sees: their growth, and what they said only with consent."""

    person_id: str
    person_name: str
    level: Level
    function: str
    title: str
    level_history: list[LevelChange]
    focus_history: list[FocusEntry]
    past_engagements: list[PastEngagement]
    goals: list[Goal] = Field(
        default=[], description="The person's development goals (active and achieved) with their check-ins."
    )
    released_360_results: list[AssessmentResult] = Field(
        default=[], description="Their released 360 results, baseline and follow-up (small rater groups withheld)."
    )
    situations_shared: Literal["none", "some", "all"]
    situations: list[Situation] = Field(description="Only the situations the person consented to share.")


class Recipient(DeferredModel):
    coach_id: str
    engagement_id: str
    program: Program
    since: str


class SharingView(DeferredModel):
    """Exactly what the person's coaches see of them, and who they are."""

    person_id: str
    recipients: list[Recipient] = Field(description="The coaches of the person's active engagements.")
    always_shared: list[str] = Field(description="What every recipient sees: the person's growth, never content.")
    consent: ContextConsent
    situations_shared: list[Situation]
    situations_not_shared: list[SituationRef]


def focus_history(matches: list[MatchRecord]) -> list[FocusEntry]:
    return [
        FocusEntry(at=m.created_at, program=m.program, focus_competencies=m.focus_competencies)
        for m in sorted(matches, key=lambda m: m.created_at)
    ]


def past_engagements(engagements: list[Engagement], current: str | None = None) -> list[PastEngagement]:
    return [
        PastEngagement(
            engagement_id=e.engagement_id,
            program=e.program,
            coach_id=e.coach_id,
            start_date=e.start_date,
            ended_at=e.ended_at,
            status=e.status.value,
        )
        for e in sorted(engagements, key=lambda e: e.created_at)
        if e.engagement_id != current
    ]


def handoff(
    person: Person,
    matches: list[MatchRecord],
    engagements: list[Engagement],
    situations: list[Situation],
    consent: ContextConsent,
    current_engagement: str | None = None,
    goals: list[Goal] | None = None,
    results: list[AssessmentResult] | None = None,
) -> Handoff:
    shared = sorted((s for s in situations if consent.shares(s)), key=lambda s: s.created_at)
    level = "all" if consent.share_all_situations else ("some" if shared else "none")
    return Handoff(
        person_id=person.person_id,
        person_name=person.name,
        level=person.level,
        function=person.function.value,
        title=person.title,
        level_history=person.level_history,
        focus_history=focus_history(matches),
        past_engagements=past_engagements(engagements, current_engagement),
        # An abandoned goal is the person's to drop: the next coach starts from what they still pursue or reached.
        goals=sorted((g for g in goals or [] if g.status is not GoalStatus.ABANDONED), key=lambda g: g.created_at),
        released_360_results=sorted(results or [], key=lambda r: r.released_at),
        situations_shared=level,
        situations=shared,
    )


def sharing_view(
    person: Person, engagements: list[Engagement], situations: list[Situation], consent: ContextConsent
) -> SharingView:
    ordered = sorted(situations, key=lambda s: s.created_at)
    return SharingView(
        person_id=person.person_id,
        recipients=[
            Recipient(coach_id=e.coach_id, engagement_id=e.engagement_id, program=e.program, since=e.start_date)
            for e in engagements
            if e.is_active
        ],
        always_shared=list(ALWAYS_SHARED),
        consent=consent,
        situations_shared=[s for s in ordered if consent.shares(s)],
        situations_not_shared=[s.ref for s in ordered if not consent.shares(s)],
    )


# ------------------------------------------------------------------------------ erasure

ERASED_NAME = "Erased person"


def anonymised(person: Person, now: datetime) -> Person:
    """The person without personal data: the id, level and function stay (ledger entries and published
    aggregates count them), names, email, HR id, manager, place and titles go. Erasing twice changes nothing."""
    if person.erased_at is not None:
        return person
    return evolved(
        person,
        "person",
        name=ERASED_NAME,
        email=f"erased-{person.person_id}@erased.invalid",
        external_hr_id="",
        department="",
        location="",
        manager_id=None,
        title="",
        level_history=[evolved(change, "level change", title="") for change in person.level_history],
        active=False,
        erased_at=now,
        updated_at=now,
    )


def erased_record(org_id: str, person_id: str) -> HrRecord:
    """The HR record an erased person keeps: no HR data, and `erased`, so a later HR event cannot re-create them."""
    return HrRecord(org_id=org_id, person_id=person_id, external_hr_id="", erased=True)


class ErasureReport(DeferredModel):
    org_id: str
    person_id: str
    erased_at: datetime
    situations_deleted: int
    payloads_redacted: int
    waitlist_entries_removed: int
    # Goals, session feedback, raters' answers and released 360 results: the tallies they fed stay as they are.
    development_records_deleted: int = 0
    # Bookings whose cancel or dispute reason (words someone wrote about the session) was dropped.
    booking_reasons_erased: int = 0
