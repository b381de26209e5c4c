"""The proposal machinery 1:1 matching, re-matches and cohort launches share: the person's context, the
coaches who pass every hard constraint, scored against the precomputed roster, with exact bookable hours for
the finalists; the refusal that records a gap; the events and the match records the use cases write.

It needs a few narrow ports (`ProposalPorts`), which `coaching.services.matching.MatchingContext` provides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from coaching.domain.availability import (
    AvailabilityPolicy,
    Interval,
    free_intervals,
    hours_together,
    working_intervals,
)
from coaching.domain.booking import Booking, BookingStatus
from coaching.domain.common import Clock
from coaching.domain.competencies import default_framework
from coaching.domain.compiled_roster import CompiledRoster, compile_roster
from coaching.domain.engagements import (
    Engagement,
    MatchRecord,
    MatchTrigger,
    require_active_person,
)
from coaching.domain.errors import InvalidInput, NoEligibleCoachError, NotFound
from coaching.domain.events import (
    EngagementEnded,
    EngagementStarted,
    MatchProposed,
    new_event_id,
)
from coaching.domain.matching import (
    PROPOSALS,
    History,
    MatchingSettings,
    NoEligibleCoach,
    PersonContext,
    ScoredCoach,
    map_focus,
    proposal,
    rank,
    score_coach,
    scored_candidates,
)
from coaching.domain.orgs import Org
from coaching.domain.overlap import OverlapCalculator
from coaching.domain.people import Person
from coaching.domain.roster import Roster, RosterCoach
from coaching.domain.taxonomy import Level, Program
from coaching.ids import new_id

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


class PeopleReader(Protocol):
    def get(self, org_id: str, person_id: str) -> Person | None: ...

    def get_with_org(self, org_id: str, person_id: str) -> tuple[Org | None, Person | None]:
        """The org and the person in one round trip."""
        ...


class ProposalStore(CoachLoads, Protocol):
    def record_gap(self, org_id: str, at: datetime, gap_id: str, detail: dict[str, Any]) -> None: ...


class ProposalPorts(Protocol):
    """What proposing needs (read-only): `MatchingContext` provides it."""

    @property
    def roster(self) -> RosterReader: ...

    @property
    def store(self) -> ProposalStore: ...

    @property
    def people(self) -> PeopleReader: ...

    @property
    def bookings(self) -> CoachBookings: ...

    @property
    def clock(self) -> Clock: ...


# ---------------------------------------------------------------------------- shared machinery


def settings_of(org: Org) -> MatchingSettings:
    return org.matching or MatchingSettings()


def competency_calibration(org: Org) -> dict[str, str | None]:
    framework = org.framework or default_framework()
    return {c.id: c.maps_to for c in framework.competencies}


def check_focus(org: Org, focus: Sequence[str]) -> tuple[str, ...]:
    """The focus in the default vocabulary coaches use; unknown competencies are refused."""
    calibration = competency_calibration(org)
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
    ctx: ProposalPorts,
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


def refuse(ctx: ProposalPorts, context: PersonContext, error: NoEligibleCoach) -> NoEligibleCoachError:
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


def load_person(ctx: ProposalPorts, org_id: str, person_id: str) -> tuple[Org, Person]:
    """The org and the person, who must be an active member to be matched (Forbidden otherwise)."""
    org, person = org_and_person(ctx, org_id, person_id)
    require_active_person(person)
    return org, person


def org_and_person(ctx: ProposalPorts, org_id: str, person_id: str) -> tuple[Org, Person]:
    org, person = ctx.people.get_with_org(org_id, person_id)
    return require_found(org_id, person_id, org, person)


def require_found(org_id: str, person_id: str, org: Org | None, person: Person | None) -> tuple[Org, Person]:
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    if person is None:
        raise NotFound(f"person {person_id} is not a member of this organisation")
    return org, person


# ---------------------------------------------------------------------------- events


def proposed_event(match: MatchRecord, event_id: str | None = None) -> MatchProposed:
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


def ended_event(engagement: Engagement, event_id: str | None = None) -> EngagementEnded:
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


def new_match(
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
