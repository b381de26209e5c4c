"""Matching use cases: request, decline, choose, change coach, engagement context, gaps.

The proposal machinery they share with re-matches (`coaching.services.rematches`: promotion, termination,
coach suspension) and cohort launches (`coaching.services.cohorts`) is `coaching.services.proposals`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from coaching.auth import Principal, Role
from coaching.domain.coaches import Coach
from coaching.domain.common import Clock, DeferredModel
from coaching.domain.engagements import (
    Engagement,
    HistorySummary,
    MatchRecord,
    MatchStatus,
    PersonHistory,
    require_active_person,
    require_approved_coach,
)
from coaching.domain.errors import Conflict, NotFound
from coaching.domain.events import (
    Event,
)
from coaching.domain.matching import (
    History,
    MatchRequestIn,
    NoEligibleCoach,
    Proposal,
    proposal,
)
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.programmes import ProgrammeCatalogue, require_eligible
from coaching.domain.taxonomy import Level, Program
from coaching.ids import new_id
from coaching.services.proposals import (
    CoachBookings,
    CoachLoads,
    PeopleReader,
    RosterReader,
    check_focus,
    ended_event,
    load_person,
    new_match,
    person_context,
    propose,
    proposed_event,
    refuse,
    require_found,
    settings_of,
    started_event,
)

__all__ = ["EngagementContext", "MatchStore", "MatchView", "MatchingContext"]

# ---------------------------------------------------------------------------- ports


class MatchStore(CoachLoads, Protocol):
    def history(self, org_id: str, person_id: str) -> PersonHistory: ...

    def person_with_history(self, org_id: str, person_id: str) -> tuple[Org | None, Person | None, HistorySummary]:
        """The org, the person and their history summary in one round trip."""
        ...

    def person_for_request(
        self, org_id: str, person_id: str
    ) -> tuple[Org | None, Person | None, HistorySummary, ProgrammeCatalogue]:
        """As person_with_history, with the org's programme catalogue (the shipped defaults when never
        changed), in the same round trip."""
        ...

    def match(self, org_id: str, person_id: str, match_id: str) -> tuple[MatchRecord, int] | None: ...

    def engagement(self, org_id: str, person_id: str, engagement_id: str) -> tuple[Engagement, int] | None: ...

    def coach_engagement(self, coach_id: str, engagement_id: str) -> Engagement | None: ...

    def coach_engagements(self, coach_id: str) -> Sequence[Engagement]:
        """Every engagement of the coach, past and present (the coach's index; may lag a write)."""
        ...

    def gaps(self, limit: int) -> list[dict[str, Any]]: ...

    def record_gap(self, org_id: str, at: datetime, gap_id: str, detail: dict[str, Any]) -> None: ...

    def save_new_match(
        self, match: MatchRecord, situation: str | None, events: Sequence[Event] = (), *, exists_ok: bool = False
    ) -> None:
        """Insert the request, its situation and events atomically; `exists_ok`: an existing id is a no-op."""
        ...

    def update_match(self, match: MatchRecord, version: int) -> None:
        """Conditional on `version`; Conflict when the match moved since it was read."""
        ...

    def choose(
        self,
        match: MatchRecord,
        match_version: int,
        engagement: Engagement,
        capacity: int,
        ends: Sequence[tuple[Engagement, int]] = (),
        events: Sequence[Event] = (),
    ) -> None:
        """One transaction: the decided match (version), the engagement, the person's one active
        engagement per programme, a place below the coach's capacity, the ended engagements and
        the events. ChooseRefused names the rule a lost race broke."""
        ...

    def end_and_propose(
        self, ended: Engagement, version: int, match: MatchRecord, situation: str | None, events: Sequence[Event] = ()
    ) -> None:
        """One transaction: the engagement ends (place and marker freed), the new request and events stored."""
        ...

    def end_engagement(self, ended: Engagement, version: int, events: Sequence[Event] = ()) -> None:
        """One transaction: the engagement ends (place and marker freed) with its events; Conflict
        when it changed since `version` was read."""
        ...


class CoachReader(Protocol):
    def get(self, coach_id: str) -> Coach | None: ...


@dataclass
class MatchingContext:
    roster: RosterReader
    store: MatchStore
    people: PeopleReader
    coaches: CoachReader
    bookings: CoachBookings
    clock: Clock


# ---------------------------------------------------------------------------- views


class MatchView(DeferredModel):
    match_id: str
    status: MatchStatus
    program: Program
    trigger: str
    proposals: list[Proposal]
    engagement_id: str | None = None
    created_at: datetime


def _view(match: MatchRecord) -> MatchView:
    return MatchView(
        match_id=match.match_id,
        status=match.status,
        program=match.program,
        trigger=match.trigger,
        proposals=match.proposals,
        engagement_id=match.engagement_id,
        created_at=match.created_at,
    )


# ---------------------------------------------------------------------------- requests


def request_match(caller: Principal, data: MatchRequestIn, ctx: MatchingContext) -> MatchView:
    """The top three coaches who fit, with reasons; stored with the situation and MatchProposed."""
    org_id = caller.require_org(Role.EMPLOYEE)
    # The org, the person, their history summary and the org's programme catalogue: one BatchGetItem, not a
    # Query over their partition.
    found_org, found_person, summary, catalogue = ctx.store.person_for_request(org_id, caller.person_id)
    org, person = require_found(org_id, caller.person_id, found_org, found_person)
    require_active_person(person)
    # The org's programme catalogue decides who each programme is for (EXEC: senior leaders and executives).
    require_eligible(catalogue, data.program, person.level)
    focus = check_focus(org, data.focus_competencies)
    context = person_context(org, person, data.program, focus, data.preferences.languages)
    history = summary.for_matching()
    try:
        chosen = propose(ctx, context, settings_of(org), history)
    except NoEligibleCoach as error:
        raise refuse(ctx, context, error) from error
    match = new_match(
        org,
        person,
        data.program,
        data.focus_competencies,
        chosen,
        ctx.clock(),
        preferred_languages=data.preferences.languages,
    )
    ctx.store.save_new_match(match, data.situation, [proposed_event(match)])
    return _view(match)


def _own_match(ctx: MatchingContext, caller: Principal, match_id: str) -> tuple[MatchRecord, int]:
    org_id = caller.require_org(Role.EMPLOYEE)
    found = ctx.store.match(org_id, caller.person_id, match_id)
    if found is None:
        raise NotFound(f"match {match_id} not found")
    return found


def get_match(caller: Principal, match_id: str, ctx: MatchingContext) -> MatchView:
    return _view(_own_match(ctx, caller, match_id)[0])


def list_matches(caller: Principal, ctx: MatchingContext) -> list[MatchView]:
    org_id = caller.require_org(Role.EMPLOYEE)
    history = ctx.store.history(org_id, caller.person_id)
    return sorted((_view(m) for m, _ in history.matches), key=lambda v: v.created_at, reverse=True)


def decline_all(caller: Principal, match_id: str, ctx: MatchingContext) -> MatchView:
    """Decline the three shown; the next three come from those not yet shown."""
    match, version = _own_match(ctx, caller, match_id)
    found_org, found_person, summary = ctx.store.person_with_history(match.org_id, match.person_id)
    org, person = require_found(match.org_id, match.person_id, found_org, found_person)
    require_active_person(person)
    match.check_declinable()
    if match.level is not None:
        # A promotion re-match is made for the new level, even before HR updates the record.
        person = person.at_level(match.level)
    focus = check_focus(org, match.focus_competencies)
    context = person_context(org, person, match.program, focus, match.preferred_languages)
    history = summary.for_matching()
    try:
        chosen = propose(ctx, context, settings_of(org), history, exclude=match.not_to_show_again())
    except NoEligibleCoach as error:
        ctx.store.update_match(match.exhaust(ctx.clock()), version)
        raise refuse(ctx, context, error) from error
    updated = match.decline_shown([proposal(s) for s in chosen], ctx.clock())
    ctx.store.update_match(updated, version)
    return _view(updated)


# ---------------------------------------------------------------------------- engagements


def choose(caller: Principal, match_id: str, coach_id: str, ctx: MatchingContext) -> Engagement:
    """Start an engagement with a proposed coach, atomically against the coach's capacity."""
    match, version = _own_match(ctx, caller, match_id)
    person = ctx.people.get(match.org_id, match.person_id)
    if person is None:
        raise NotFound(f"person {match.person_id} is not a member of this organisation")
    require_active_person(person)
    now = ctx.clock()
    chosen = match.choose(coach_id, new_id(), now)
    coach = ctx.coaches.get(coach_id)
    if coach is None or not coach.is_approved:
        raise Conflict("this coach is no longer available; decline to see others", field="coach_id")
    engagement = Engagement.from_choice(chosen, coach_id, now)
    ends: list[tuple[Engagement, int]] = []
    if match.replaces_engagement_id:
        found = ctx.store.engagement(match.org_id, match.person_id, match.replaces_engagement_id)
        if found and found[0].is_active:
            old, old_version = found
            ends.append((old.end(match.trigger, "platform", now), old_version))
    events: list[Event] = [started_event(engagement, chosen.match_id), *(ended_event(ended) for ended, _ in ends)]
    ctx.store.choose(chosen, version, engagement, coach.capacity, ends, events)
    return engagement


def list_engagements(caller: Principal, ctx: MatchingContext) -> list[Engagement]:
    org_id = caller.require_org(Role.EMPLOYEE)
    history = ctx.store.history(org_id, caller.person_id)
    return sorted((e for e, _ in history.engagements), key=lambda e: e.created_at, reverse=True)


def change_coach(caller: Principal, engagement_id: str, reason: str, ctx: MatchingContext) -> MatchView:
    """End the engagement at the person's request and propose others; the history stays."""
    org_id = caller.require_org(Role.EMPLOYEE)
    found = ctx.store.engagement(org_id, caller.person_id, engagement_id)
    if found is None:
        raise NotFound(f"engagement {engagement_id} not found")
    engagement, version = found
    org, person = load_person(ctx, org_id, caller.person_id)
    ended = engagement.end(reason, "person", ctx.clock())
    history = ctx.store.history(org_id, caller.person_id)
    focus = history.latest_focus(engagement.program)
    context = person_context(org, person, engagement.program, check_focus(org, focus), [])
    past = history.for_matching()
    # Propose first: if nobody else fits, the person keeps their coach and is told why.
    try:
        chosen = propose(ctx, context, settings_of(org), History(past.declined | {engagement.coach_id}))
    except NoEligibleCoach as error:
        raise refuse(ctx, context, error) from error
    match = new_match(org, person, engagement.program, focus, chosen, ctx.clock(), trigger="change")
    events: list[Event] = [ended_event(ended), proposed_event(match)]
    ctx.store.end_and_propose(ended, version, match, f"Change of coach requested: {reason}", events)
    return _view(match)


class EngagementContext(DeferredModel):
    """What a coach sees of their coachee: context and growth, never what was said."""

    engagement_id: str
    person_name: str
    level: Level
    function: str
    program: Program
    focus_history: list[dict[str, Any]]
    previous_engagements: list[dict[str, Any]]


def engagement_context(caller: Principal, engagement_id: str, ctx: MatchingContext) -> EngagementContext:
    caller.require(Role.COACH)
    # One read of the coach's record: a suspended coach sees nothing of anyone, whatever the id.
    coach = ctx.coaches.get(caller.person_id)
    if coach is not None:
        require_approved_coach(caller.person_id, coach)
    engagement = ctx.store.coach_engagement(caller.person_id, engagement_id)
    if engagement is None or not engagement.visible_to_coach(caller.person_id):
        # A coach the person left, or who was replaced, no longer sees anything of them.
        raise NotFound(f"engagement {engagement_id} not found")
    require_approved_coach(caller.person_id, coach)  # a token naming no coach record
    person = ctx.people.get(engagement.org_id, engagement.person_id)
    if person is None:
        raise NotFound(f"engagement {engagement_id} not found")
    history = ctx.store.history(engagement.org_id, engagement.person_id)
    return EngagementContext(
        engagement_id=engagement_id,
        person_name=person.name,
        level=person.level,
        function=person.function.value,
        program=engagement.program,
        focus_history=[
            {"at": m.created_at.isoformat(), "program": m.program.value, "focus_competencies": m.focus_competencies}
            for m, _ in sorted(history.matches, key=lambda pair: pair[0].created_at)
        ],
        previous_engagements=[
            {
                "program": e.program.value,
                "start_date": e.start_date,
                "status": e.status.value,
                "ended_at": e.ended_at.isoformat() if e.ended_at else None,
            }
            for e, _ in history.engagements
            if e.engagement_id != engagement_id
        ],
    )


# ---------------------------------------------------------------------------- operators


def gap_report(caller: Principal, limit: int, ctx: MatchingContext) -> list[dict[str, Any]]:
    caller.require(Role.OPERATOR)
    return ctx.store.gaps(limit)
