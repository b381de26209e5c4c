"""Matching use cases: request, decline, choose, change coach, promotion re-match, engagement context.

Cohort launches live in `coaching.services.cohorts` and share the proposal machinery here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from coaching.auth import Principal, Role
from coaching.domain.availability import (
    AvailabilityPolicy,
    Interval,
    free_intervals,
    hours_together,
    working_intervals,
)
from coaching.domain.booking import Booking, BookingStatus
from coaching.domain.coaches import Coach, VettingStatus
from coaching.domain.common import Clock, DeferredModel
from coaching.domain.competencies import default_framework
from coaching.domain.engagements import (
    COACH_SUSPENDED,
    Engagement,
    HistorySummary,
    MatchRecord,
    MatchStatus,
    MatchTrigger,
    PersonHistory,
    require_active_person,
    require_approved_coach,
)
from coaching.domain.errors import Conflict, InvalidInput, NoEligibleCoachError, NotFound
from coaching.domain.events import (
    CoachVettingChanged,
    EngagementEnded,
    EngagementStarted,
    Event,
    MatchProposed,
    PersonPromoted,
    PersonTerminated,
    new_event_id,
    stable_event_id,
)
from coaching.domain.matching import (
    PROPOSALS,
    CompiledRoster,
    History,
    MatchingSettings,
    MatchRequestIn,
    NoEligibleCoach,
    OverlapCalculator,
    PersonContext,
    Proposal,
    ScoredCoach,
    compile_roster,
    map_focus,
    proposal,
    rank,
    score_coach,
    scored_candidates,
    static_constraints,
)
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.programmes import ProgrammeCatalogue, require_eligible
from coaching.domain.roster import Roster, RosterCoach
from coaching.domain.taxonomy import Level, Program
from coaching.ids import new_id

__all__ = [
    "CoachBookings",
    "CoachVettingChanged",
    "EngagementContext",
    "MatchStore",
    "MatchView",
    "MatchingContext",
    "NoEligibleCoachError",
    "PersonPromoted",
    "PromotionOutcome",
    "RosterReader",
    "SuspensionOutcome",
]

AVAILABILITY_WINDOW_DAYS = 14
# Finalists whose loads and exact availability are checked: enough to survive a few
# coaches at capacity or without hours while keeping the per-match reads small.
FINALISTS = 12


# ---------------------------------------------------------------------------- ports


class RosterReader(Protocol):
    def get(self) -> Roster | None:
        """The current roster snapshot (None before the first build)."""
        ...


class CoachBookings(Protocol):
    def for_coach(self, coach_id: str, start: datetime, end: datetime) -> Sequence[Booking]:
        """The coach's bookings starting in [start, end)."""
        ...


class CoachLoads(Protocol):
    def loads(self, coach_ids: Iterable[str]) -> Mapping[str, int]:
        """Active coachees per coach (0 for a coach without any)."""
        ...


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


class PeopleReader(Protocol):
    def get(self, org_id: str, person_id: str) -> Person | None: ...

    def get_with_org(self, org_id: str, person_id: str) -> tuple[Org | None, Person | None]:
        """The org and the person in one round trip."""
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


# ---------------------------------------------------------------------------- shared machinery


def settings_of(org: Org) -> MatchingSettings:
    return org.matching or MatchingSettings()


def _calibration(org: Org) -> dict[str, str | None]:
    framework = org.framework or default_framework()
    return {c.id: c.maps_to for c in framework.competencies}


def check_focus(org: Org, focus: Sequence[str]) -> tuple[str, ...]:
    """The focus in the default vocabulary coaches use; unknown competencies are refused."""
    calibration = _calibration(org)
    unknown = [item for item in focus if item not in calibration]
    if unknown:
        raise InvalidInput(
            f"unknown competencies for this organisation's framework: {', '.join(unknown)}", field="focus_competencies"
        )
    return map_focus(focus, calibration)


def compiled_roster(roster: RosterReader) -> CompiledRoster:
    current = roster.get()
    if current is None or not current.coaches:
        raise NoEligibleCoachError("the coach network is empty: no approved coach yet", field="program")
    return compile_roster(current)


def person_context(
    org: Org, person: Person, program: Program, focus: tuple[str, ...], preferred: Sequence[str]
) -> PersonContext:
    return PersonContext(
        person_id=person.person_id,
        org_id=org.org_id,
        level=person.level,
        function=person.function.value,
        industry=org.industry.value,
        languages=tuple(person.languages),
        time_zone=person.time_zone,
        program=program,
        focus=focus,
        preferred_languages=tuple(code for code in preferred if code in person.languages),
    )


_free_cache: dict[tuple[str, datetime, tuple[Interval, ...]], tuple[RosterCoach, list[Interval]]] = {}
_working_cache: dict[tuple[str, datetime], list[Interval]] = {}
_hours_cache: dict[tuple[str, str, datetime, tuple[Interval, ...]], tuple[RosterCoach, float]] = {}


def coach_bookable_hours(
    coach: RosterCoach, context: PersonContext, now: datetime, busy: tuple[Interval, ...] = ()
) -> float:
    """Exact, DST-correct free hours after the coach's bookings, inside the person's working hours.

    The coach's free time is computed once per coach, hour and set of bookings, the person's working
    hours once per zone and hour, and the two intersected (the same hours as bookable_hours). A free-time
    entry holds for the roster coach it was computed from: a new roster version (new hours, time off)
    brings new coach objects, so it is computed afresh; a new booking changes the key.
    """
    hour = now.replace(minute=0, second=0, microsecond=0)
    known = _hours_cache.get((coach.coach_id, context.time_zone, hour, busy))
    if known is not None and known[0] is coach:
        return known[1]
    key = (coach.coach_id, hour, busy)
    cached = _free_cache.get(key)
    if cached is not None and cached[0] is coach:
        free = cached[1]
    else:
        if len(_free_cache) > 50_000:
            _free_cache.clear()
        free = free_intervals(AvailabilityPolicy.from_coach(coach), busy, hour, AVAILABILITY_WINDOW_DAYS, now=hour)
        _free_cache[key] = (coach, free)
    working = _working_cache.get((context.time_zone, hour))
    if working is None:
        if len(_working_cache) > 2_000:
            _working_cache.clear()
        working = working_intervals(context.time_zone, hour, hour + timedelta(days=AVAILABILITY_WINDOW_DAYS))
        _working_cache[(context.time_zone, hour)] = working
    hours = hours_together(free, working)
    if len(_hours_cache) > 100_000:
        _hours_cache.clear()
    _hours_cache[(coach.coach_id, context.time_zone, hour, busy)] = (coach, hours)
    return hours


def booked(bookings: CoachBookings, coach_id: str, now: datetime) -> tuple[Interval, ...]:
    """The coach's booked sessions in the availability window (one Query on the coach index)."""
    window_end = now + timedelta(days=AVAILABILITY_WINDOW_DAYS)
    found = bookings.for_coach(coach_id, now, window_end)
    return tuple(sorted(Interval(b.start, b.end) for b in found if b.status is BookingStatus.BOOKED))


def propose(
    ctx: MatchingContext,
    context: PersonContext,
    settings: MatchingSettings,
    history: History,
    exclude: frozenset[str] = frozenset(),
    count: int = PROPOSALS,
) -> list[ScoredCoach]:
    """The top `count` coaches who pass every hard constraint, best first, with reasons."""
    roster = compiled_roster(ctx.roster)
    now = ctx.clock()
    overlap = OverlapCalculator(context.time_zone, now)
    # Eligibility and scores come from the roster's precomputed tables, without loads first (loads need
    # a read); a provisional score bounds the final one from above, so finalists are checked in order
    # until the top list is settled.
    provisional = scored_candidates(roster, context, settings.weights, history, now, exclude)
    chosen: list[ScoredCoach] = []
    at_capacity = without_hours = 0
    loads: dict[str, int] = {}
    for position, (bound, coach) in enumerate(provisional):
        if len(chosen) >= count and rank(chosen)[count - 1].points >= bound:
            break  # nobody further down can overtake the proposals already settled
        if coach.coach_id not in loads:
            # Loads are read for the next few finalists at once: one BatchGetItem.
            loads.update(ctx.store.loads(c.coach_id for _, c in provisional[position : position + FINALISTS]))
        if loads[coach.coach_id] >= coach.capacity:
            at_capacity += 1
            continue
        # Sessions are booked within engagements, so a coach without coachees has none to read.
        busy = booked(ctx.bookings, coach.coach_id, now) if loads[coach.coach_id] else ()
        if coach_bookable_hours(coach.coach, context, now, busy) < settings.min_bookable_hours:
            without_hours += 1
            continue
        chosen.append(
            score_coach(
                context,
                coach,
                weights=settings.weights,
                history=history,
                active_load=loads[coach.coach_id],
                weekly_overlap_minutes=overlap.weekly_minutes(coach.coach),
            )
        )
    chosen = rank(chosen)
    if not chosen:
        if without_hours >= at_capacity:
            raise NoEligibleCoach(
                "availability",
                f"no eligible coach has {settings.min_bookable_hours} bookable hours in the next "
                f"{AVAILABILITY_WINDOW_DAYS} days inside your working hours",
            )
        raise NoEligibleCoach("capacity", "every eligible coach is at capacity")
    return chosen[:count]


def _refuse(ctx: MatchingContext, context: PersonContext, error: NoEligibleCoach) -> NoEligibleCoachError:
    """Record the gap for operators, then explain it to the person."""
    now = ctx.clock()
    detail = {
        "at": now.isoformat(),
        "org_id": context.org_id,
        "program": context.program.value,
        "languages": list(context.languages),
        "level": context.level.value,
        "function": context.function,
        "constraint": error.constraint,
        "message": error.message,
    }
    ctx.store.record_gap(context.org_id, now, new_id(), detail)
    field_name = {"program": "program", "language": "languages"}.get(error.constraint, "program")
    return NoEligibleCoachError(error.message, field=field_name, details={"constraint": error.constraint})


def load_person(ctx: MatchingContext, org_id: str, person_id: str) -> tuple[Org, Person]:
    """The org and the person, who must be an active member to be matched (Forbidden otherwise)."""
    org, person = _org_and_person(ctx, org_id, person_id)
    require_active_person(person)
    return org, person


def _org_and_person(ctx: MatchingContext, org_id: str, person_id: str) -> tuple[Org, Person]:
    org, person = ctx.people.get_with_org(org_id, person_id)
    return _found(org_id, person_id, org, person)


def _found(org_id: str, person_id: str, org: Org | None, person: Person | None) -> tuple[Org, Person]:
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    if person is None:
        raise NotFound(f"person {person_id} is not a member of this organisation")
    return org, person


# ---------------------------------------------------------------------------- events


def _proposed_event(match: MatchRecord, event_id: str | None = None) -> MatchProposed:
    return MatchProposed(
        event_id=event_id or new_event_id(),
        occurred_at=match.updated_at,
        org_id=match.org_id,
        person_id=match.person_id,
        match_id=match.match_id,
        program=match.program.value,
        trigger=match.trigger,
        coach_ids=match.proposed_ids,
    )


def started_event(engagement: Engagement, match_id: str | None, event_id: str | None = None) -> EngagementStarted:
    """Rollups listen (the person's contribution from the engagement's month); `match_id` is None for an
    engagement a cohort launch committed."""
    return EngagementStarted(
        event_id=event_id or new_event_id(),
        occurred_at=engagement.created_at,
        org_id=engagement.org_id,
        person_id=engagement.person_id,
        match_id=match_id,
        engagement_id=engagement.engagement_id,
        coach_id=engagement.coach_id,
        program=engagement.program.value,
    )


def _ended_event(engagement: Engagement, event_id: str | None = None) -> EngagementEnded:
    """Booking listens: the ended engagement's future sessions are cancelled, unbilled."""
    return EngagementEnded(
        event_id=event_id or new_event_id(),
        occurred_at=engagement.ended_at or engagement.created_at,
        org_id=engagement.org_id,
        person_id=engagement.person_id,
        engagement_id=engagement.engagement_id,
        coach_id=engagement.coach_id,
        program=engagement.program.value,
        end_reason=engagement.end_reason,
    )


# ---------------------------------------------------------------------------- requests


def _new_match(
    org: Org,
    person: Person,
    program: Program,
    focus: Sequence[str],
    chosen: Sequence[ScoredCoach],
    now: datetime,
    *,
    match_id: str | None = None,
    preferred_languages: Sequence[str] = (),
    trigger: MatchTrigger = "request",
    level: Level | None = None,
    replaces_engagement_id: str | None = None,
) -> MatchRecord:
    return MatchRecord.propose(
        match_id=match_id or new_id(),
        org_id=org.org_id,
        person_id=person.person_id,
        program=program,
        focus_competencies=focus,
        proposals=[proposal(s) for s in chosen],
        now=now,
        preferred_languages=preferred_languages,
        trigger=trigger,
        level=level,
        replaces_engagement_id=replaces_engagement_id,
    )


def request_match(caller: Principal, data: MatchRequestIn, ctx: MatchingContext) -> MatchView:
    """The top three coaches who fit, with reasons; stored with the situation and MatchProposed."""
    org_id = caller.require_org(Role.EMPLOYEE)
    # The org, the person, their history summary and the org's programme catalogue: one BatchGetItem, not a
    # Query over their partition.
    found_org, found_person, summary, catalogue = ctx.store.person_for_request(org_id, caller.person_id)
    org, person = _found(org_id, caller.person_id, found_org, found_person)
    require_active_person(person)
    # The org's programme catalogue decides who each programme is for (EXEC: senior leaders and executives).
    require_eligible(catalogue, data.program, person.level)
    focus = check_focus(org, data.focus_competencies)
    context = person_context(org, person, data.program, focus, data.preferences.languages)
    history = summary.for_matching()
    try:
        chosen = propose(ctx, context, settings_of(org), history)
    except NoEligibleCoach as error:
        raise _refuse(ctx, context, error) from error
    match = _new_match(
        org,
        person,
        data.program,
        data.focus_competencies,
        chosen,
        ctx.clock(),
        preferred_languages=data.preferences.languages,
    )
    ctx.store.save_new_match(match, data.situation, [_proposed_event(match)])
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
    org, person = _found(match.org_id, match.person_id, found_org, found_person)
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
        raise _refuse(ctx, context, error) from error
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
    events: list[Event] = [started_event(engagement, chosen.match_id), *(_ended_event(ended) for ended, _ in ends)]
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
        raise _refuse(ctx, context, error) from error
    match = _new_match(org, person, engagement.program, focus, chosen, ctx.clock(), trigger="change")
    events: list[Event] = [_ended_event(ended), _proposed_event(match)]
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


# ---------------------------------------------------------------------------- promotion


class PromotionOutcome(DeferredModel):
    person_id: str
    kept: list[str] = []
    rematch_ids: list[str] = []


def on_person_promoted(event: PersonPromoted, ctx: MatchingContext) -> PromotionOutcome:
    """Keep a coach who is still eligible at the new level; otherwise propose a new match.

    Idempotent per event: the re-match's id and its event's id derive from the event and
    the engagement, so a redelivered event finds them stored and writes nothing. An inactive
    person is proposed nothing: they can no longer be matched.
    """
    org, person = _org_and_person(ctx, event.org_id, event.person_id)
    outcome = PromotionOutcome(person_id=person.person_id)
    if not person.active:
        return outcome
    person = person.at_level(event.new_level)
    history = ctx.store.history(org.org_id, person.person_id)
    roster = {c.coach_id: c for c in compiled_roster(ctx.roster).coaches}
    for engagement in history.active_engagements():
        focus = history.latest_focus(engagement.program)
        context = person_context(org, person, engagement.program, map_focus(focus, _calibration(org)), [])
        coach = roster.get(engagement.coach_id)
        if coach is not None and all(c.allows(coach) for c in static_constraints(context, History())):
            outcome.kept.append(engagement.engagement_id)
            continue
        try:
            chosen = propose(
                ctx, context, settings_of(org), history.for_matching(), exclude=frozenset({engagement.coach_id})
            )
        except NoEligibleCoach as error:
            _refuse(ctx, context, error)
            continue
        match_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"promotion:{event.event_id}:{engagement.engagement_id}"))
        match = _new_match(
            org,
            person,
            engagement.program,
            focus,
            chosen,
            ctx.clock(),
            match_id=match_id,
            level=event.new_level,
            trigger="promotion",
            replaces_engagement_id=engagement.engagement_id,
        )
        proposed = _proposed_event(match, event_id=stable_event_id("MatchProposed", match_id))
        ctx.store.save_new_match(match, None, [proposed], exists_ok=True)
        outcome.rematch_ids.append(match.match_id)
    return outcome


# ---------------------------------------------------------------------------- termination

# Why the platform ended an engagement whose person left the organisation (Engagement.end_reason).
PERSON_TERMINATED = "person terminated"
_TERMINATION_ATTEMPTS = 3


class TerminationOutcome(DeferredModel):
    person_id: str
    ended: list[str] = []  # engagements this delivery ended


def on_person_terminated(event: PersonTerminated, ctx: MatchingContext) -> TerminationOutcome:
    """A person who left ends every active engagement: the coach's place is freed in the same transaction,
    and each EngagementEnded makes booking cancel the engagement's future sessions, unbilled.

    Idempotent per event and re-runnable: an engagement already ended is skipped, and each EngagementEnded's
    id derives from the engagement, so a redelivery writes nothing twice. Nothing is proposed instead.
    """
    outcome = TerminationOutcome(person_id=event.person_id)
    for listed in ctx.store.history(event.org_id, event.person_id).active_engagements():
        for _ in range(_TERMINATION_ATTEMPTS):
            found = ctx.store.engagement(listed.org_id, listed.person_id, listed.engagement_id)
            if found is None or not found[0].is_active:
                break  # already ended: a re-run, or the person ended it meanwhile
            engagement, version = found
            ended = engagement.end(PERSON_TERMINATED, "platform", ctx.clock())
            ended_event = _ended_event(
                ended, event_id=stable_event_id(EngagementEnded.detail_type, ended.engagement_id)
            )
            try:
                ctx.store.end_engagement(ended, version, [ended_event])
            except Conflict:
                continue  # it changed since it was read: read it again
            outcome.ended.append(ended.engagement_id)
            break
        else:
            raise Conflict(f"engagement {listed.engagement_id} kept changing while its person's termination ended it")
    return outcome


# ---------------------------------------------------------------------------- coach suspension

# A suspended coach's engagement that changes under us (the person changes coach at that
# moment) is read again this many times before the event is left to the bus to retry.
_SUSPENSION_ATTEMPTS = 3


class SuspensionOutcome(DeferredModel):
    coach_id: str
    ended: list[str] = []  # engagements this delivery ended
    rematch_ids: list[str] = []  # the re-matches proposed with them
    unmatched: list[str] = []  # ended with nothing to propose: nobody else fits, or the person is inactive


def on_coach_vetting_changed(event: CoachVettingChanged, ctx: MatchingContext) -> SuspensionOutcome:
    """A suspended coach's active engagements end, and each person is offered a re-match.

    Each engagement ends by the platform ("coach suspended") in one transaction with a new
    proposal that excludes the coach (trigger `coach_suspended`) and both events:
    EngagementEnded (booking cancels its future sessions, unbilled, units back) and
    MatchProposed. When nobody else fits, the gap is recorded and the engagement ends alone;
    an inactive person is proposed nothing.

    The event is a hint: the coach is read again, and a coach approved again since changes
    nothing. Idempotent per event and re-runnable: the re-match's id and the events' ids derive
    from the event and the engagement, and an engagement already ended is skipped, so a re-run
    finishes what an interrupted one left and writes nothing twice.
    """
    outcome = SuspensionOutcome(coach_id=event.coach_id)
    if event.vetting_status != VettingStatus.SUSPENDED.value:
        return outcome
    coach = ctx.coaches.get(event.coach_id)
    if coach is not None and coach.is_approved:
        return outcome
    for listed in ctx.store.coach_engagements(event.coach_id):
        if listed.is_active and listed.coach_id == event.coach_id:
            _end_for_suspension(event, listed, ctx, outcome)
    return outcome


def _end_for_suspension(
    event: CoachVettingChanged, listed: Engagement, ctx: MatchingContext, outcome: SuspensionOutcome
) -> None:
    for _ in range(_SUSPENSION_ATTEMPTS):
        # The coach's index may lag: the engagement itself, read consistently, decides.
        found = ctx.store.engagement(listed.org_id, listed.person_id, listed.engagement_id)
        if found is None or not found[0].is_active:
            return  # already ended: a re-run, or the person changed coach meanwhile
        engagement, version = found
        ended = engagement.end(COACH_SUSPENDED, "platform", ctx.clock())
        events: list[Event] = [
            _ended_event(ended, event_id=stable_event_id(EngagementEnded.detail_type, ended.engagement_id))
        ]
        match = _suspension_rematch(event, ended, ctx)
        try:
            if match is None:
                ctx.store.end_engagement(ended, version, events)
            else:
                events.append(_proposed_event(match, event_id=stable_event_id("MatchProposed", match.match_id)))
                ctx.store.end_and_propose(ended, version, match, None, events)
        except Conflict:
            continue  # it changed since it was read: read it again
        outcome.ended.append(ended.engagement_id)
        if match is None:
            outcome.unmatched.append(ended.engagement_id)
        else:
            outcome.rematch_ids.append(match.match_id)
        return
    raise Conflict(f"engagement {listed.engagement_id} kept changing while its coach's suspension ended it")


def _suspension_rematch(event: CoachVettingChanged, ended: Engagement, ctx: MatchingContext) -> MatchRecord | None:
    """New proposals for the person without the suspended coach; None when there are none to make."""
    org, person = ctx.people.get_with_org(ended.org_id, ended.person_id)
    if org is None or person is None or not person.active:
        return None  # an inactive person (or one no longer on record) is not matched again
    history = ctx.store.history(org.org_id, person.person_id)
    focus = history.latest_focus(ended.program)
    context = person_context(org, person, ended.program, map_focus(focus, _calibration(org)), [])
    try:
        chosen = propose(ctx, context, settings_of(org), history.for_matching(), exclude=frozenset({event.coach_id}))
    except NoEligibleCoach as error:
        _refuse(ctx, context, error)  # the gap is recorded for operators; the engagement still ends
        return None
    match_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"coach_suspended:{event.event_id}:{ended.engagement_id}"))
    return _new_match(
        org, person, ended.program, focus, chosen, ctx.clock(), match_id=match_id, trigger="coach_suspended"
    )


# ---------------------------------------------------------------------------- operators


def gap_report(caller: Principal, limit: int, ctx: MatchingContext) -> list[dict[str, Any]]:
    caller.require(Role.OPERATOR)
    return ctx.store.gaps(limit)
