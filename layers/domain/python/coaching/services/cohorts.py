"""Cohort launches: assign a whole cohort to coaches at once, optimally, under the same hard constraints.

What an org admin learns about people who are not assigned: one neutral reason, the same for
everyone (NOT_ASSIGNABLE), whether nobody in the network fits them, every coach who fits is full,
the solver left them out for a better total, they already have an active engagement in the
programme, they declined or left every coach who fits, or their engagement was refused at commit.
Several of those are a person's coaching history, which an org admin must not read person by
person; a reason given only for some would single those people out, and so would counts by reason
next to the list of names (a count equal to the list says it of each of them). So the response
carries no reason but the neutral one; the detailed reasons are kept as counts by reason code,
without ids (CohortPlan.unassigned_by_reason, not serialised), for the handler's logs and metrics.
People already in the programme are left out while planning, not refused at commit, so the plan
and the commit show the same people unassigned and comparing the two reveals nothing either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Protocol

from pydantic import Field, PrivateAttr

from coaching.auth import Principal, Role
from coaching.domain.availability import Interval
from coaching.domain.cohort import REASON_AT_CAPACITY, REASON_BETTER_FIT, REASON_NO_EDGES
from coaching.domain.cohort import match_cohort as solve_cohort
from coaching.domain.common import Clock, DeferredModel, EntityId, StrictModel
from coaching.domain.compiled_roster import SCALE, CompiledRoster
from coaching.domain.engagements import Engagement, HistorySummary
from coaching.domain.errors import Conflict, InvalidInput, NotFound
from coaching.domain.events import EngagementStarted, Event, stable_event_id
from coaching.domain.matching import (
    CohortMode,
    NoEligibleCoach,
    scored_candidates,
)
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.taxonomy import Program
from coaching.ids import new_id
from coaching.services.proposals import (
    CoachBookings,
    RosterReader,
    booked,
    check_focus,
    coach_bookable_hours,
    compiled_roster,
    person_context,
    settings_of,
    started_event,
)

MAX_COHORT = 5_000  # the largest launch: a company-wide wave, planned by a background job
SYNC_COHORT = 300  # up to this many participants the plan is the response; beyond, a background job
PROGRESS_EVERY = 250  # participants between progress reports
COHORT_EDGES = 20  # top candidates per participant handed to the solver

# The one reason an org admin is shown for anyone not assigned (see the module docstring).
NOT_ASSIGNABLE = "not assignable in this launch"
# Reason codes, kept only as counts (CohortPlan.unassigned_by_reason): never with a person's id.
ACTIVE_ENGAGEMENT = "active_engagement"
NO_BOOKABLE_COACH = "no_bookable_coach"
REFUSED_AT_COMMIT = "refused_at_commit"
_SOLVER_CODES = {
    REASON_NO_EDGES: "no_eligible_coach",
    REASON_AT_CAPACITY: "at_capacity",
    REASON_BETTER_FIT: "better_fit",
}


# ---------------------------------------------------------------------------- ports


class CohortStore(Protocol):
    def summaries(self, org_id: str, person_ids: Iterable[str]) -> Mapping[str, HistorySummary]:
        """Each person's history summary (an empty one for a person without history): BatchGetItem."""
        ...

    def all_loads(self) -> Mapping[str, int]:
        """Every coach's active coachees (one read for the whole network)."""
        ...

    def start_engagement(self, engagement: Engagement, capacity: int, events: Sequence[Event] = ()) -> None:
        """One transaction: the engagement, the person's one active engagement per programme and a
        place below the coach's capacity; ChooseRefused names the rule a lost race broke."""
        ...


class OrgReader(Protocol):
    def get(self, org_id: str) -> Org | None: ...


class PeopleBatch(Protocol):
    def get_many(self, org_id: str, person_ids: Iterable[str]) -> Mapping[str, tuple[Person, int]]: ...


@dataclass
class CohortContext:
    roster: RosterReader
    store: CohortStore
    orgs: OrgReader
    people: PeopleBatch
    bookings: CoachBookings
    clock: Clock


# ---------------------------------------------------------------------------- models


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
    # Why people were not assigned, as counts by reason code, never shown to the caller.
    _unassigned_by_reason: Counter[str] = PrivateAttr(default_factory=Counter)

    @property
    def unassigned_by_reason(self) -> dict[str, int]:
        """Counts by reason code of everyone unmatched or refused: for logs and metrics, not the response."""
        return dict(sorted(self._unassigned_by_reason.items()))


# ---------------------------------------------------------------------------- use case


def match_cohort_for_org(
    caller: Principal, request: CohortRequest, ctx: CohortContext, progress: Callable[[str, int], None] | None = None
) -> CohortPlan:
    """Assign a cohort at once, maximising total fit under the same hard constraints.

    Edges are each participant's top candidates; the assignment is the exact optimum of the
    min-cost-flow solver (coaching.domain.cohort), never greedy. With `commit`, each
    assignment becomes an engagement through the same capacity-checked transaction as a
    person's own choice; a coach who filled up meanwhile is reported, not overbooked.

    Everyone not assigned is reported with NOT_ASSIGNABLE only (the module docstring says why);
    someone with an active engagement in the programme is not assignable and never planned.
    `progress`, when given, hears ("planning" | "committing", people done so far) as the launch advances.
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
    focus = check_focus(org, request.focus_competencies) if request.focus_competencies else ()
    settings = settings_of(org)
    mode = request.mode or settings.cohort_mode
    roster = compiled_roster(ctx.roster)
    loads = ctx.store.all_loads()
    now = ctx.clock()
    histories = ctx.store.summaries(org_id, ids)

    edges: list[tuple[str, str, int]] = []
    reasons: dict[str, str] = {}  # person -> reason code; the solver reports it back, the caller never sees it
    busy: dict[str, tuple[Interval, ...]] = {}  # each coach's sessions, read once per launch
    capacities: dict[str, int] = {}
    for done, person_id in enumerate(ids):
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress("planning", done)
        if request.program.value in histories[person_id].active_programs():
            reasons[person_id] = ACTIVE_ENGAGEMENT
            continue
        person = found[person_id][0]
        context = person_context(org, person, request.program, tuple(focus), [])
        history = histories[person_id].for_matching()
        try:
            ranked = scored_candidates(roster, context, settings.weights, history, now)
        except NoEligibleCoach as error:
            reasons[person_id] = f"no_eligible_coach:{error.constraint}"
            continue
        taken = 0
        for points, coach in ranked:
            free = coach.capacity - loads.get(coach.coach_id, 0)
            if free <= 0:
                continue
            if coach.coach_id not in busy:
                busy[coach.coach_id] = booked(ctx.bookings, coach.coach_id, now) if loads.get(coach.coach_id) else ()
            if coach_bookable_hours(coach.coach, context, now, busy[coach.coach_id]) < settings.min_bookable_hours:
                continue
            capacities[coach.coach_id] = free
            edges.append((person_id, coach.coach_id, points))
            taken += 1
            if taken == COHORT_EDGES:
                break
        if not taken:
            reasons[person_id] = NO_BOOKABLE_COACH
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
        unmatched=[{"person_id": p, "reason": NOT_ASSIGNABLE} for p, _ in result.unmatched],
        load={coach: count for coach, count in result.load.items() if count},
        committed=request.commit,
    )
    plan._unassigned_by_reason.update(_SOLVER_CODES.get(reason, reason) for _, reason in result.unmatched)
    if progress is not None:
        progress("planning", len(ids))
    if request.commit:
        _commit_cohort(plan, org_id, request.program, roster, ctx, now, progress)
    return plan


def _commit_cohort(
    plan: CohortPlan,
    org_id: str,
    program: Program,
    roster: CompiledRoster,
    ctx: CohortContext,
    now: datetime,
    progress: Callable[[str, int], None] | None = None,
) -> None:
    capacity = {c.coach_id: c.capacity for c in roster.coaches}
    for done, assignment in enumerate(plan.assignments):
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress("committing", done)
        engagement = Engagement.start(
            engagement_id=new_id(),
            org_id=org_id,
            person_id=assignment.person_id,
            coach_id=assignment.coach_id,
            program=program,
            now=now,
        )
        # Rollups count the engagement from its month, as for a 1:1 match: the event commits with it (outbox).
        event_id = stable_event_id(EngagementStarted.detail_type, engagement.engagement_id)
        started = started_event(engagement, None, event_id)
        try:
            ctx.store.start_engagement(engagement, capacity[assignment.coach_id], [started])
        except Conflict as refusal:
            # A lost race (the coach filled up, the person started an engagement meanwhile): neutral too.
            plan.refused.append({"person_id": assignment.person_id, "reason": NOT_ASSIGNABLE})
            plan._unassigned_by_reason[f"{REFUSED_AT_COMMIT}:{refusal.field or 'conflict'}"] += 1
            continue
        assignment.engagement_id = engagement.engagement_id
