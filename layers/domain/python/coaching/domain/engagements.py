"""Match requests and engagements: who is matched to whom, in which programme, and since when.

Both change state only through their methods, which check the rule and return the new,
validated entity or raise the domain error that names the rule broken.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from coaching.domain.coaches import Coach
from coaching.domain.common import DeferredModel
from coaching.domain.competencies import default_framework
from coaching.domain.errors import Conflict, Forbidden, InvalidInput
from coaching.domain.matching import History, Proposal
from coaching.domain.people import Person
from coaching.domain.taxonomy import Level, Program
from coaching.domain.updates import evolved

# Who ended an engagement: the person (change of coach: that coach is never proposed to them
# again) or the platform (replaced by a re-match, or the coach was suspended).
EndedBy = Literal["person", "platform"]
MatchTrigger = Literal["request", "change", "promotion", "coach_suspended"]
# Why the platform ends a suspended coach's engagements (the re-match's trigger names it too).
COACH_SUSPENDED = "coach suspended"


class MatchStatus(StrEnum):
    PROPOSED = "proposed"
    CHOSEN = "chosen"
    EXHAUSTED = "exhausted"


class EngagementStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


def _unique(*groups: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for group in groups for item in group))


class MatchRecord(DeferredModel):
    match_id: str
    org_id: str
    person_id: str
    program: Program
    focus_competencies: list[str]
    preferred_languages: list[str] = []
    trigger: str = "request"  # request | change | promotion | coach_suspended
    level: Level | None = None  # set when made for a level the person record does not show yet
    replaces_engagement_id: str | None = None
    status: MatchStatus = MatchStatus.PROPOSED
    proposals: list[Proposal] = []
    shown: list[str] = []
    declined: list[str] = []
    engagement_id: str | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def propose(
        cls,
        *,
        match_id: str,
        org_id: str,
        person_id: str,
        program: Program,
        focus_competencies: Sequence[str],
        proposals: Sequence[Proposal],
        now: datetime,
        preferred_languages: Sequence[str] = (),
        trigger: MatchTrigger = "request",
        level: Level | None = None,
        replaces_engagement_id: str | None = None,
    ) -> MatchRecord:
        """A new request showing `proposals`, best first."""
        if not proposals:
            raise InvalidInput("a match shows at least one coach", field="proposals")
        shown = [p.coach_id for p in proposals]
        if len(set(shown)) != len(shown):
            raise InvalidInput("a match never shows the same coach twice", field="proposals")
        return cls(
            match_id=match_id,
            org_id=org_id,
            person_id=person_id,
            program=program,
            focus_competencies=list(focus_competencies),
            preferred_languages=list(preferred_languages),
            trigger=trigger,
            level=level,
            replaces_engagement_id=replaces_engagement_id,
            proposals=list(proposals),
            shown=shown,
            created_at=now,
            updated_at=now,
        )

    @property
    def is_open(self) -> bool:
        return self.status is MatchStatus.PROPOSED

    @property
    def proposed_ids(self) -> list[str]:
        return [p.coach_id for p in self.proposals]

    def not_to_show_again(self) -> frozenset[str]:
        """Every coach this match has shown or that was declined: the next list comes from the others."""
        return frozenset([*self.declined, *self.shown, *self.proposed_ids])

    def _require_open(self, refusal: str) -> None:
        if not self.is_open:
            raise Conflict(refusal.format(status=self.status.value), field="match_id")

    def check_declinable(self) -> None:
        """Only an open match can be declined (raises Conflict otherwise)."""
        self._require_open("this match is {status}; nothing to decline")

    def decline_shown(self, next_proposals: Sequence[Proposal], now: datetime) -> MatchRecord:
        """The person declined the coaches shown; `next_proposals` come from those never shown."""
        self._require_open("this match is {status}; nothing to decline")
        if not next_proposals:
            raise InvalidInput("nobody left to propose: the match is exhausted instead", field="proposals")
        repeated = [p.coach_id for p in next_proposals if p.coach_id in self.not_to_show_again()]
        if repeated:
            raise InvalidInput(
                f"a match never shows a coach twice: {', '.join(repeated)} was already shown", field="proposals"
            )
        return evolved(
            self,
            "match",
            declined=_unique(self.declined, self.proposed_ids),
            proposals=list(next_proposals),
            shown=_unique(self.shown, (p.coach_id for p in next_proposals)),
            updated_at=now,
        )

    def exhaust(self, now: datetime) -> MatchRecord:
        """The person declined the coaches shown and nobody else fits: the match is closed."""
        self._require_open("this match is {status}; nothing to decline")
        return evolved(
            self,
            "match",
            declined=_unique(self.declined, self.proposed_ids),
            proposals=[],
            status=MatchStatus.EXHAUSTED,
            updated_at=now,
        )

    def choose(self, coach_id: str, engagement_id: str, now: datetime) -> MatchRecord:
        """The person picked one of the coaches proposed: the match is decided."""
        self._require_open("this match is already {status}")
        if coach_id not in self.proposed_ids:
            raise InvalidInput("choose one of the coaches proposed in this match", field="coach_id")
        return evolved(self, "match", status=MatchStatus.CHOSEN, engagement_id=engagement_id, updated_at=now)


class Engagement(DeferredModel):
    engagement_id: str
    org_id: str
    person_id: str
    coach_id: str
    program: Program
    match_id: str | None = None
    start_date: str
    status: EngagementStatus = EngagementStatus.ACTIVE
    end_reason: str | None = None
    ended_by: str | None = None  # "person" when they asked to change: the coach is then excluded
    ended_at: datetime | None = None
    created_at: datetime

    @classmethod
    def start(
        cls,
        *,
        engagement_id: str,
        org_id: str,
        person_id: str,
        coach_id: str,
        program: Program,
        now: datetime,
        match_id: str | None = None,
    ) -> Engagement:
        return cls(
            engagement_id=engagement_id,
            org_id=org_id,
            person_id=person_id,
            coach_id=coach_id,
            program=program,
            match_id=match_id,
            start_date=now.date().isoformat(),
            created_at=now,
        )

    @classmethod
    def from_choice(cls, match: MatchRecord, coach_id: str, now: datetime) -> Engagement:
        """The engagement a decided match starts (`match.choose` has checked the coach)."""
        if match.status is not MatchStatus.CHOSEN or match.engagement_id is None:
            raise Conflict("an engagement starts from a decided match", field="match_id")
        return cls.start(
            engagement_id=match.engagement_id,
            org_id=match.org_id,
            person_id=match.person_id,
            coach_id=coach_id,
            program=match.program,
            now=now,
            match_id=match.match_id,
        )

    @property
    def is_active(self) -> bool:
        return self.status is EngagementStatus.ACTIVE

    def end(self, reason: str, by: EndedBy, now: datetime) -> Engagement:
        """End it (at the person's request or replaced by a re-match); an engagement ends once."""
        if not self.is_active:
            raise Conflict("this engagement has already ended", field="engagement_id")
        return evolved(self, "engagement", status=EngagementStatus.ENDED, end_reason=reason, ended_by=by, ended_at=now)

    def visible_to_coach(self, coach_id: str) -> bool:
        """A coach sees their coachee's context only while the engagement runs: one the person
        left, or that a re-match replaced, shows them nothing any more."""
        return self.is_active and self.coach_id == coach_id


def require_active_person(person: Person) -> None:
    """Only an active member of the organisation is matched or books sessions on its bill.

    Cancelling a booking stays open to them: it frees the coach and costs nothing more.
    """
    if not person.active:
        raise Forbidden(
            f"person {person.person_id} is inactive in this organisation: an inactive person cannot be matched "
            "to a coach or book sessions",
            field="person_id",
        )


def require_approved_coach(coach_id: str, coach: Coach | None) -> None:
    """A coach reaches their coachees' context and sessions only while approved.

    A suspended (or not yet, or no longer, approved) coach is refused every coachee-facing
    action; so is a token naming no coach record at all.
    """
    if coach is None or not coach.is_approved:
        status = coach.vetting_status.value if coach is not None else "not in the coach network"
        raise Forbidden(
            f"coach {coach_id} is {status}: only an approved coach can see or change a coachee's sessions and context",
            field="coach_id",
        )


@dataclass(frozen=True, slots=True)
class PersonHistory:
    """A person's match requests and engagements, each with its stored version."""

    matches: list[tuple[MatchRecord, int]]
    engagements: list[tuple[Engagement, int]]

    def for_matching(self) -> History:
        """Who not to propose again, and the coach continuity prefers.

        Declined coaches and coaches the person asked to leave are never proposed again; the
        most recent coach they did not leave is the "previous coach".
        """
        declined: set[str] = set()
        for match, _ in self.matches:
            declined.update(match.declined)
        previous: tuple[datetime, str] | None = None
        for engagement, _ in self.engagements:
            if engagement.ended_by == "person":
                declined.add(engagement.coach_id)
                continue
            moment = engagement.ended_at or engagement.created_at
            if previous is None or moment > previous[0]:
                previous = (moment, engagement.coach_id)
        return History(declined=frozenset(declined), previous_coach=previous[1] if previous else None)

    def latest_focus(self, program: Program) -> list[str]:
        """The focus of the person's latest request in this programme (or the default's first)."""
        matches = sorted((m for m, _ in self.matches if m.program == program), key=lambda m: m.created_at)
        if matches:
            return matches[-1].focus_competencies
        return [default_framework().competencies[0].id]

    def active_engagements(self) -> list[Engagement]:
        return [e for e, _ in self.engagements if e.is_active]


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """What matching needs of a person's history, kept in one small item beside their records.

    Maintained in the same transactions that change the history, with add-only sets: `declined`
    (coaches declined in match requests), `started` (created|engagement|coach|programme) and `ended`
    (ended_at|engagement|by). A person without one has no history. It answers what PersonHistory's
    for_matching() answers, without a Query over the partition that grows with every booking.
    """

    declined: frozenset[str] = frozenset()
    started: frozenset[str] = frozenset()
    ended: frozenset[str] = frozenset()

    @staticmethod
    def started_entry(engagement: Engagement) -> str:
        created = engagement.created_at.astimezone(UTC).isoformat()
        return f"{created}|{engagement.engagement_id}|{engagement.coach_id}|{engagement.program.value}"

    @staticmethod
    def ended_entry(engagement: Engagement) -> str:
        at = (engagement.ended_at or engagement.created_at).astimezone(UTC).isoformat()
        return f"{at}|{engagement.engagement_id}|{engagement.ended_by or ''}"

    def _engagements(self) -> list[tuple[str, str, str, str, tuple[str, str] | None]]:
        """(engagement id, coach, programme, created, (ended_at, by) or None), in engagement-id order."""
        ends = {}
        for entry in self.ended:
            at, engagement_id, by = entry.split("|")
            ends[engagement_id] = (at, by)
        rows = []
        for entry in self.started:
            created, engagement_id, coach_id, program = entry.split("|")
            rows.append((engagement_id, coach_id, program, created, ends.get(engagement_id)))
        return sorted(rows)

    def for_matching(self) -> History:
        """Who not to propose again and the previous coach: as PersonHistory.for_matching()."""
        declined = set(self.declined)
        previous: tuple[datetime, str] | None = None
        for _, coach_id, _, created, end in self._engagements():
            if end is not None and end[1] == "person":
                declined.add(coach_id)
                continue
            moment = datetime.fromisoformat(end[0] if end else created)
            if previous is None or moment > previous[0]:
                previous = (moment, coach_id)
        return History(declined=frozenset(declined), previous_coach=previous[1] if previous else None)

    def active_programs(self) -> frozenset[str]:
        """The programmes the person has an active engagement in."""
        return frozenset(program for _, _, program, _, end in self._engagements() if end is None)
