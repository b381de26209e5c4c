"""Matching use cases: request, decline, choose, change coach, promotion re-match, cohorts."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field

from coaching.adapters.booking_store import BookingStore
from coaching.adapters.dynamo import CoachRepository, OrgRepository, PersonRepository, get_org_and_person
from coaching.adapters.matching_store import MatchingStore, PersonHistory
from coaching.auth import Principal, Role
from coaching.domain.availability import AvailabilityPolicy, Interval, bookable_hours
from coaching.domain.booking import BookingStatus
from coaching.domain.cohort import match_cohort as solve_cohort
from coaching.domain.common import DeferredModel, EntityId, StrictModel, utc_now
from coaching.domain.competencies import default_framework
from coaching.domain.engagements import Engagement, EngagementStatus, MatchRecord, MatchStatus
from coaching.domain.errors import Conflict, InvalidInput, NoEligibleCoachError, NotFound
from coaching.domain.events import PersonPromoted
from coaching.domain.matching import (
    PROPOSALS,
    SCALE,
    CohortMode,
    History,
    MatchingSettings,
    MatchRequestIn,
    NoEligibleCoach,
    OverlapCalculator,
    PersonContext,
    Proposal,
    ScoredCoach,
    compile_roster,
    eligible,
    map_focus,
    proposal,
    rank,
    score_all,
    score_coach,
    static_constraints,
)
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.roster import Roster, RosterCoach
from coaching.domain.taxonomy import Level, Program
from coaching.events import DomainEvent
from coaching.ids import new_id
from coaching.services.roster import RosterCache

EVENT_SOURCE = "coaching.matching"
AVAILABILITY_WINDOW_DAYS = 14
# Finalists whose loads and exact availability are checked: enough to survive a few
# coaches at capacity or without hours while keeping the per-match reads small.
FINALISTS = 12


@dataclass
class MatchingContext:
    roster: RosterCache
    store: MatchingStore = field(default_factory=MatchingStore)
    orgs: OrgRepository = field(default_factory=OrgRepository)
    people: PersonRepository = field(default_factory=PersonRepository)
    coaches: CoachRepository = field(default_factory=CoachRepository)
    bookings: BookingStore = field(default_factory=BookingStore)
    clock: Any = utc_now


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


def _settings(org: Org) -> MatchingSettings:
    return org.matching or MatchingSettings()


def _calibration(org: Org) -> dict[str, str | None]:
    framework = org.framework or default_framework()
    return {c.id: c.maps_to for c in framework.competencies}


def _check_focus(org: Org, focus: list[str]) -> tuple[str, ...]:
    calibration = _calibration(org)
    unknown = [item for item in focus if item not in calibration]
    if unknown:
        raise InvalidInput(
            f"unknown competencies for this organisation's framework: {', '.join(unknown)}", field="focus_competencies"
        )
    return map_focus(focus, calibration)


def _history(history: PersonHistory) -> History:
    declined: set[str] = set()
    for match, _ in history.matches:
        declined.update(match.declined)
    previous: tuple[datetime, str] | None = None
    for engagement, _ in history.engagements:
        if engagement.ended_by == "person":
            declined.add(engagement.coach_id)  # they asked to change: never proposed again
            continue
        moment = engagement.ended_at or engagement.created_at
        if previous is None or moment > previous[0]:
            previous = (moment, engagement.coach_id)
    return History(declined=frozenset(declined), previous_coach=previous[1] if previous else None)


def _roster(ctx: MatchingContext) -> Roster:
    roster = ctx.roster.get()
    if roster is None or not roster.coaches:
        raise NoEligibleCoachError("the coach network is empty: no approved coach yet", field="program")
    return roster


def _person_context(org: Org, person: Person, program: Program, focus: tuple[str, ...], preferred: list[str]):
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


def propose(
    ctx: MatchingContext,
    context: PersonContext,
    settings: MatchingSettings,
    history: History,
    exclude: frozenset[str] = frozenset(),
    count: int = PROPOSALS,
) -> list[ScoredCoach]:
    """The top `count` coaches who pass every hard constraint, best first, with reasons."""
    roster = compile_roster(_roster(ctx))
    constraints = static_constraints(context, History(history.declined | exclude))
    try:
        # The language index narrows the pass to coaches the person can talk to.
        candidates = eligible(roster.speaking(context.languages), constraints)
    except NoEligibleCoach:
        # Explain over the whole network, so the constraint named is the first that binds.
        candidates = eligible(roster.coaches, constraints)
    now = ctx.clock()
    overlap = OverlapCalculator(context.time_zone, now)
    # Score without loads first (loads need a read); a provisional score bounds the final
    # one from above, so finalists are checked in order until the top list is settled.
    provisional = score_all(context, candidates, settings.weights, history, overlap)
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
        busy = _booked(ctx, coach.coach_id, now) if loads[coach.coach_id] else ()
        if _bookable_hours(coach.coach, context, now, busy) < settings.min_bookable_hours:
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


_hours_cache: dict[tuple[str, str, str, datetime, tuple[Interval, ...]], float] = {}


def _bookable_hours(
    coach: RosterCoach, context: PersonContext, now: datetime, busy: tuple[Interval, ...] = ()
) -> float:
    """Exact, DST-correct free hours after the coach's bookings; cached per coach, person
    zone, hour and set of bookings in a warm container (a new booking changes the key)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    key = (coach.coach_id, coach.time_zone, context.time_zone, hour, busy)
    hours = _hours_cache.get(key)
    if hours is None:
        if len(_hours_cache) > 100_000:
            _hours_cache.clear()
        policy = AvailabilityPolicy.from_coach(coach)
        hours = _hours_cache[key] = bookable_hours(
            policy, busy, context.time_zone, hour, days=AVAILABILITY_WINDOW_DAYS, now=hour
        )
    return hours


def _booked(ctx: MatchingContext, coach_id: str, now: datetime) -> tuple[Interval, ...]:
    """The coach's booked sessions in the availability window (one Query on the coach index)."""
    window_end = now + timedelta(days=AVAILABILITY_WINDOW_DAYS)
    bookings = ctx.bookings.for_coach(coach_id, now, window_end)
    return tuple(sorted(Interval(b.start, b.end) for b in bookings if b.status is BookingStatus.BOOKED))


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


def _load_person(ctx: MatchingContext, org_id: str, person_id: str) -> tuple[Org, Person]:
    org, person = get_org_and_person(org_id, person_id)
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    if person is None or not person.active:
        raise NotFound(f"person {person_id} is not an active member of this organisation")
    return org, person


def request_match(caller: Principal, data: MatchRequestIn, ctx: MatchingContext) -> tuple[MatchView, list[DomainEvent]]:
    org_id = caller.require_org(Role.EMPLOYEE)
    org, person = _load_person(ctx, org_id, caller.person_id)
    if data.program is Program.EXEC and person.level not in {Level.SENIOR_LEADER, Level.EXECUTIVE}:
        raise InvalidInput("EXEC coaching is for senior leaders and executives", field="program")
    focus = _check_focus(org, data.focus_competencies)
    context = _person_context(org, person, data.program, focus, data.preferences.languages)
    history = _history(ctx.store.history(org_id, person.person_id))
    try:
        chosen = propose(ctx, context, _settings(org), history)
    except NoEligibleCoach as error:
        raise _refuse(ctx, context, error) from error
    now = ctx.clock()
    match = _proposed(
        org_id,
        person.person_id,
        data.program,
        data.focus_competencies,
        chosen,
        now,
        preferred_languages=data.preferences.languages,
    )
    ctx.store.save_new_match(match, data.situation)
    return _view(match), [_event("MatchProposed", match)]


def _proposed(
    org_id: str,
    person_id: str,
    program: Program,
    focus: list[str],
    chosen: list[ScoredCoach],
    now: datetime,
    **extra: Any,
) -> MatchRecord:
    """A new match request showing `chosen`; `extra` carries trigger, level, ids and preferences."""
    return MatchRecord(
        match_id=extra.pop("match_id", None) or new_id(),
        org_id=org_id,
        person_id=person_id,
        program=program,
        focus_competencies=list(focus),
        proposals=[proposal(s) for s in chosen],
        shown=[s.coach.coach_id for s in chosen],
        created_at=now,
        updated_at=now,
        **extra,
    )


def _event(kind: str, match: MatchRecord, **extra: Any) -> DomainEvent:
    detail = {"org_id": match.org_id, "match_id": match.match_id, "program": match.program.value, **extra}
    return DomainEvent(source=EVENT_SOURCE, detail_type=kind, detail=detail)


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
    if match.status is not MatchStatus.PROPOSED:
        raise Conflict(f"this match is {match.status.value}; nothing to decline", field="match_id")
    org, person = _load_person(ctx, match.org_id, match.person_id)
    if match.level is not None:
        # A promotion re-match is made for the new level, even before HR updates the record.
        person = person.model_copy(update={"level": match.level})
    focus = _check_focus(org, match.focus_competencies)
    context = _person_context(org, person, match.program, focus, match.preferred_languages)
    declined = list(dict.fromkeys([*match.declined, *(p.coach_id for p in match.proposals)]))
    history = _history(ctx.store.history(org.org_id, person.person_id))
    now = ctx.clock()
    try:
        chosen = propose(ctx, context, _settings(org), history, exclude=frozenset([*declined, *match.shown]))
    except NoEligibleCoach as error:
        exhausted = match.model_copy(
            update={"declined": declined, "proposals": [], "status": MatchStatus.EXHAUSTED, "updated_at": now}
        )
        ctx.store.update_match(exhausted, version)
        raise _refuse(ctx, context, error) from error
    updated = match.model_copy(
        update={
            "declined": declined,
            "proposals": [proposal(s) for s in chosen],
            "shown": list(dict.fromkeys([*match.shown, *(s.coach.coach_id for s in chosen)])),
            "updated_at": now,
        }
    )
    ctx.store.update_match(updated, version)
    return _view(updated)


def choose(
    caller: Principal, match_id: str, coach_id: str, ctx: MatchingContext
) -> tuple[Engagement, list[DomainEvent]]:
    match, version = _own_match(ctx, caller, match_id)
    if match.status is not MatchStatus.PROPOSED:
        raise Conflict(f"this match is already {match.status.value}", field="match_id")
    if coach_id not in {p.coach_id for p in match.proposals}:
        raise InvalidInput("choose one of the coaches proposed in this match", field="coach_id")
    coach = ctx.coaches.get(coach_id)
    if coach is None or coach.vetting_status.value != "approved":
        raise Conflict("this coach is no longer available; decline to see others", field="coach_id")
    now = ctx.clock()
    engagement = Engagement(
        engagement_id=new_id(),
        org_id=match.org_id,
        person_id=match.person_id,
        coach_id=coach_id,
        program=match.program,
        match_id=match.match_id,
        start_date=now.date().isoformat(),
        created_at=now,
    )
    ends: list[tuple[Engagement, int]] = []
    if match.replaces_engagement_id:
        found = ctx.store.engagement(match.org_id, match.person_id, match.replaces_engagement_id)
        if found and found[0].status is EngagementStatus.ACTIVE:
            old, old_version = found
            ended = old.model_copy(
                update={
                    "status": EngagementStatus.ENDED,
                    "end_reason": match.trigger,
                    "ended_by": "platform",
                    "ended_at": now,
                }
            )
            ends.append((ended, old_version))
    chosen_match = match.model_copy(
        update={"status": MatchStatus.CHOSEN, "engagement_id": engagement.engagement_id, "updated_at": now}
    )
    ctx.store.choose(chosen_match, version, engagement, coach.capacity, ends)
    events = [_event("EngagementStarted", match, engagement_id=engagement.engagement_id, coach_id=coach_id)]
    return engagement, events + [_ended_event(ended) for ended, _ in ends]


def _ended_event(engagement: Engagement) -> DomainEvent:
    """Booking listens: the ended engagement's future sessions are cancelled, unbilled."""
    detail = {
        "org_id": engagement.org_id,
        "person_id": engagement.person_id,
        "engagement_id": engagement.engagement_id,
        "coach_id": engagement.coach_id,
        "program": engagement.program.value,
        "end_reason": engagement.end_reason,
    }
    return DomainEvent(source=EVENT_SOURCE, detail_type="EngagementEnded", detail=detail)


def list_engagements(caller: Principal, ctx: MatchingContext) -> list[Engagement]:
    org_id = caller.require_org(Role.EMPLOYEE)
    history = ctx.store.history(org_id, caller.person_id)
    return sorted((e for e, _ in history.engagements), key=lambda e: e.created_at, reverse=True)


def change_coach(
    caller: Principal, engagement_id: str, reason: str, ctx: MatchingContext
) -> tuple[MatchView, list[DomainEvent]]:
    """End the engagement at the person's request and propose others; the history stays."""
    org_id = caller.require_org(Role.EMPLOYEE)
    found = ctx.store.engagement(org_id, caller.person_id, engagement_id)
    if found is None:
        raise NotFound(f"engagement {engagement_id} not found")
    engagement, version = found
    if engagement.status is not EngagementStatus.ACTIVE:
        raise Conflict("this engagement has already ended", field="engagement_id")
    org, person = _load_person(ctx, org_id, caller.person_id)
    history = ctx.store.history(org_id, caller.person_id)
    focus = _latest_focus(history, engagement.program)
    context = _person_context(org, person, engagement.program, _check_focus(org, focus), [])
    past = _history(history)
    # Propose first: if nobody else fits, the person keeps their coach and is told why.
    try:
        chosen = propose(ctx, context, _settings(org), History(past.declined | {engagement.coach_id}))
    except NoEligibleCoach as error:
        raise _refuse(ctx, context, error) from error
    now = ctx.clock()
    ended = engagement.model_copy(
        update={"status": EngagementStatus.ENDED, "end_reason": reason, "ended_by": "person", "ended_at": now}
    )
    ctx.store.end(ended, version)
    match = _proposed(org_id, person.person_id, engagement.program, focus, chosen, now, trigger="change")
    ctx.store.save_new_match(match, f"Change of coach requested: {reason}")
    return _view(match), [_ended_event(ended), _event("MatchProposed", match)]


def _latest_focus(history: PersonHistory, program: Program) -> list[str]:
    matches = sorted((m for m, _ in history.matches if m.program == program), key=lambda m: m.created_at)
    if matches:
        return matches[-1].focus_competencies
    return [default_framework().competencies[0].id]


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
    engagement = ctx.store.coach_engagement(caller.person_id, engagement_id)
    if engagement is None or engagement.status is not EngagementStatus.ACTIVE:
        # A coach the person left, or who was replaced, no longer sees anything of them.
        raise NotFound(f"engagement {engagement_id} not found")
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

    Idempotent per event: a redelivered event finds its re-match already stored.
    """
    org, person = _load_person(ctx, event.org_id, event.person_id)
    person = person.model_copy(update={"level": event.new_level})
    history = ctx.store.history(org.org_id, person.person_id)
    outcome = PromotionOutcome(person_id=person.person_id)
    roster = {c.coach_id: c for c in compile_roster(_roster(ctx)).coaches}
    for engagement, _ in history.engagements:
        if engagement.status is not EngagementStatus.ACTIVE:
            continue
        focus = tuple(_latest_focus(history, engagement.program))
        context = _person_context(org, person, engagement.program, map_focus(focus, _calibration(org)), [])
        coach = roster.get(engagement.coach_id)
        constraints = static_constraints(context, History())
        if coach is not None and all(c.allows(coach) for c in constraints):
            outcome.kept.append(engagement.engagement_id)
            continue
        past = _history(history)
        try:
            chosen = propose(ctx, context, _settings(org), past, exclude=frozenset({engagement.coach_id}))
        except NoEligibleCoach as error:
            _refuse(ctx, context, error)
            continue
        now = ctx.clock()
        match = _proposed(
            org.org_id,
            person.person_id,
            engagement.program,
            list(focus),
            chosen,
            now,
            match_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"promotion:{event.event_id}:{engagement.engagement_id}")),
            level=event.new_level,
            trigger="promotion",
            replaces_engagement_id=engagement.engagement_id,
        )
        ctx.store.save_new_match(match, None, exists_ok=True)
        outcome.rematch_ids.append(match.match_id)
    return outcome


# ---------------------------------------------------------------------------- cohorts


MAX_COHORT = 1_000  # synchronous through API Gateway's 29 s; larger launches are split
COHORT_EDGES = 20  # top candidates per participant handed to the solver


class CohortRequest(StrictModel):
    program: Program
    participant_ids: Annotated[list[EntityId], Field(min_length=1, max_length=MAX_COHORT)]
    focus_competencies: Annotated[list[str], Field(max_length=5)] = []
    # None: the org's own choice between "best fit" and "everyone matched".
    mode: CohortMode | None = None
    commit: bool = False


class CohortAssignment(DeferredModel):
    person_id: str
    coach_id: str
    score: float
    engagement_id: str | None = None


class CohortPlan(DeferredModel):
    mode: CohortMode
    participants: int
    matched: int
    objective: float
    assignments: list[CohortAssignment]
    unmatched: list[dict[str, str]]
    load: dict[str, int]
    committed: bool
    refused: list[dict[str, str]] = []


def match_cohort_for_org(caller: Principal, request: CohortRequest, ctx: MatchingContext) -> CohortPlan:
    """Assign a cohort at once, maximising total fit under the same hard constraints.

    Edges are each participant's top candidates; the assignment is the exact optimum of the
    min-cost-flow solver (coaching.domain.cohort), never greedy. With `commit`, each
    assignment becomes an engagement through the same capacity-checked transaction as a
    person's own choice; a coach who filled up meanwhile is reported, not overbooked.
    """
    org_id = caller.require_org(Role.ORG_ADMIN)
    org = ctx.orgs.get(org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    ids = list(dict.fromkeys(request.participant_ids))
    found = ctx.people.get_many(org_id, ids)
    missing = [pid for pid in ids if pid not in found or not found[pid][0].active]
    if missing:
        index = request.participant_ids.index(missing[0])
        raise InvalidInput(
            f"{len(missing)} participants are not active people in this organisation (first: {missing[0]})",
            field=f"participant_ids[{index}]",
        )
    focus = _check_focus(org, request.focus_competencies) if request.focus_competencies else ()
    settings = _settings(org)
    mode = request.mode or settings.cohort_mode
    roster = compile_roster(_roster(ctx))
    loads = ctx.store.all_loads()
    now = ctx.clock()
    with ThreadPoolExecutor(max_workers=8) as pool:
        histories = dict(zip(ids, pool.map(lambda pid: _history(ctx.store.history(org_id, pid)), ids), strict=True))

    edges: list[tuple[str, str, int]] = []
    reasons: dict[str, str] = {}
    booked: dict[str, tuple[Interval, ...]] = {}  # each coach's sessions, read once per launch
    capacities: dict[str, int] = {}
    for person_id in ids:
        person = found[person_id][0]
        context = _person_context(org, person, request.program, tuple(focus), [])
        history = histories[person_id]
        constraints = static_constraints(context, History(history.declined))
        try:
            candidates = eligible(roster.speaking(context.languages) or roster.coaches, constraints)
        except NoEligibleCoach as error:
            reasons[person_id] = error.message
            continue
        overlap = OverlapCalculator(context.time_zone, now)
        taken = 0
        for points, coach in score_all(context, candidates, settings.weights, history, overlap):
            free = coach.capacity - loads.get(coach.coach_id, 0)
            if free <= 0:
                continue
            if coach.coach_id not in booked:
                booked[coach.coach_id] = _booked(ctx, coach.coach_id, now) if loads.get(coach.coach_id) else ()
            if _bookable_hours(coach.coach, context, now, booked[coach.coach_id]) < settings.min_bookable_hours:
                continue
            capacities[coach.coach_id] = free
            edges.append((person_id, coach.coach_id, points))
            taken += 1
            if taken == COHORT_EDGES:
                break
        if not taken:
            reasons[person_id] = "every eligible coach is at capacity or has too few bookable hours"
    result = solve_cohort(ids, capacities, edges, mode=mode, reasons=reasons)
    scores = {(p, c): points for p, c, points in edges}
    plan = CohortPlan(
        mode=mode,
        participants=len(ids),
        matched=result.matched,
        objective=round(result.objective / SCALE, 2),
        assignments=[
            CohortAssignment(person_id=p, coach_id=c, score=round(scores[(p, c)] / SCALE, 2))
            for p, c in result.assignments.items()
        ],
        unmatched=[{"person_id": p, "reason": reason} for p, reason in result.unmatched],
        load={coach: count for coach, count in result.load.items() if count},
        committed=request.commit,
    )
    if request.commit:
        _commit_cohort(plan, org_id, request.program, roster, ctx, now)
    return plan


def _commit_cohort(
    plan: CohortPlan, org_id: str, program: Program, roster: Any, ctx: MatchingContext, now: datetime
) -> None:
    capacity = {c.coach_id: c.capacity for c in roster.coaches}
    for assignment in plan.assignments:
        engagement = Engagement(
            engagement_id=new_id(),
            org_id=org_id,
            person_id=assignment.person_id,
            coach_id=assignment.coach_id,
            program=program,
            start_date=now.date().isoformat(),
            created_at=now,
        )
        try:
            ctx.store.start_engagement(engagement, capacity[assignment.coach_id])
        except Conflict as refusal:
            plan.refused.append({"person_id": assignment.person_id, "reason": refusal.message})
            continue
        assignment.engagement_id = engagement.engagement_id


def gap_report(caller: Principal, limit: int, ctx: MatchingContext) -> list[dict[str, Any]]:
    caller.require(Role.OPERATOR)
    return ctx.store.gaps(limit)
