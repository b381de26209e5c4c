"""Programme use cases shared by the four programmes: the org's catalogue and a person's timeline.

The timeline is one continuous history across SCALE, GROW, EXEC and TOGETHER: engagements,
1:1 sessions, cohorts and their group sessions, workshops. It is shown to the person and to a
coach in an active engagement with them, never to anyone else, and never holds what was said
(situations stay in the confidential table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from coaching.auth import Principal, Role
from coaching.domain.booking import Booking, BookingPolicy
from coaching.domain.coaches import Coach
from coaching.domain.common import Clock, DeferredModel
from coaching.domain.engagements import Engagement, require_approved_coach
from coaching.domain.errors import Conflict, NotFound
from coaching.domain.grow import GroupSession
from coaching.domain.orgs import Org
from coaching.domain.programmes import CatalogueInput, ProgrammeCatalogue
from coaching.domain.workshops import Workshop

CATALOGUE_READERS = (Role.ORG_ADMIN, Role.FINANCE, Role.LEADER, Role.OPERATOR)


class CatalogueStore(Protocol):
    def org_and_catalogue(self, org_id: str) -> tuple[Org, int, ProgrammeCatalogue, int | None] | None:
        """The org and its version, the org's catalogue and its version (the shipped defaults with None when
        never changed), in one read; None when there is no such org."""
        ...

    def save_catalogue(self, catalogue: ProgrammeCatalogue, version: int | None, org: Org, org_version: int) -> bool:
        """The catalogue, conditional on `version` (None: none stored yet), and the changed `org`, conditional
        on `org_version`, in one transaction; False when someone changed either meanwhile."""
        ...


class TimelineSource(Protocol):
    def person_records(
        self, org_id: str, person_id: str
    ) -> tuple[list[Engagement], list[Booking], list[GroupSession], list[Workshop]]:
        """The person's engagements and 1:1 bookings, the group sessions of their cohorts and their workshops."""
        ...

    def coach_engagement(self, coach_id: str, engagement_id: str) -> Engagement | None: ...

    def coach(self, coach_id: str) -> Coach | None: ...


@dataclass
class ProgrammesContext:
    catalogues: CatalogueStore
    timeline: TimelineSource
    clock: Clock


def _authorise(caller: Principal, org_id: str, *roles: Role) -> None:
    if caller.has(Role.OPERATOR):
        return
    caller.require_same_org(org_id, *roles)


def get_catalogue(caller: Principal, org_id: str, ctx: ProgrammesContext) -> ProgrammeCatalogue:
    _authorise(caller, org_id, *CATALOGUE_READERS)
    return _org_and_catalogue(org_id, ctx)[2]


def put_catalogue(caller: Principal, org_id: str, body: CatalogueInput, ctx: ProgrammesContext) -> ProgrammeCatalogue:
    """Replace the catalogue. What was made before (bookings, cohorts, workshops) keeps its snapshot."""
    _authorise(caller, org_id, Role.ORG_ADMIN)
    org, org_version, current, version = _org_and_catalogue(org_id, ctx)
    now = ctx.clock()
    fresh = current.changed(body, actor=caller.person_id, now=now)
    # 1:1 booking enforces the org's booking policy: the catalogue's monthly allowances become its allowances,
    # in the same transaction, so the two never disagree (bookings already made keep their snapshot).
    followed = org.with_booking_policy(fresh.booking_policy(org.booking or BookingPolicy()), now)
    if not ctx.catalogues.save_catalogue(fresh, version, followed, org_version):
        raise Conflict("the catalogue changed at the same time; load it again", field="catalogue")
    return fresh


def _org_and_catalogue(org_id: str, ctx: ProgrammesContext) -> tuple[Org, int, ProgrammeCatalogue, int | None]:
    found = ctx.catalogues.org_and_catalogue(org_id)
    if found is None:
        raise NotFound(f"organisation {org_id} not found")
    return found


# ---------------------------------------------------------------------------- timeline


class TimelineEntry(DeferredModel):
    at: datetime
    program: str
    kind: str  # engagement_started | engagement_ended | session | group_session | workshop
    status: str
    ref_id: str
    coach_ids: list[str]
    competencies: list[str] = []


class Timeline(DeferredModel):
    person_id: str
    programs: list[str]
    entries: list[TimelineEntry]


def _timeline(org_id: str, person_id: str, ctx: ProgrammesContext) -> Timeline:
    engagements, bookings, group_sessions, workshops = ctx.timeline.person_records(org_id, person_id)
    entries: list[TimelineEntry] = []
    for e in engagements:
        entries.append(
            TimelineEntry(
                at=e.created_at,
                program=e.program.value,
                kind="engagement_started",
                status=e.status.value,
                ref_id=e.engagement_id,
                coach_ids=[e.coach_id],
            )
        )
        if e.ended_at is not None:
            entries.append(
                TimelineEntry(
                    at=e.ended_at,
                    program=e.program.value,
                    kind="engagement_ended",
                    status=e.status.value,
                    ref_id=e.engagement_id,
                    coach_ids=[e.coach_id],
                )
            )
    for b in bookings:
        entries.append(
            TimelineEntry(
                at=b.start,
                program=b.program.value,
                kind="session",
                status=b.status.value,
                ref_id=b.booking_id,
                coach_ids=[b.coach_id],
                competencies=b.focus_competencies,
            )
        )
    for g in group_sessions:
        mark = g.attendance.get(person_id)
        entries.append(
            TimelineEntry(
                at=g.start,
                program=g.program.value,
                kind="group_session",
                status=mark.value if mark else g.status.value,
                ref_id=g.session_id,
                coach_ids=g.coach_ids,
                competencies=g.competencies,
            )
        )
    for w in workshops:
        entries.append(
            TimelineEntry(
                at=w.start,
                program=w.program.value,
                kind="workshop",
                status=w.status.value,
                ref_id=w.workshop_id,
                coach_ids=[w.facilitator_id],
            )
        )
    entries.sort(key=lambda entry: (entry.at, entry.kind, entry.ref_id))
    programs = list(dict.fromkeys(entry.program for entry in entries))
    return Timeline(person_id=person_id, programs=programs, entries=entries)


def my_timeline(caller: Principal, ctx: ProgrammesContext) -> Timeline:
    """The calling person's own history across every programme."""
    org_id = caller.require_org(Role.EMPLOYEE)
    return _timeline(org_id, caller.person_id, ctx)


def coachee_timeline(caller: Principal, engagement_id: str, ctx: ProgrammesContext) -> Timeline:
    """A coach's view of their coachee's history across programmes, while their engagement runs."""
    caller.require(Role.COACH)
    coach = ctx.timeline.coach(caller.person_id)
    require_approved_coach(caller.person_id, coach)
    engagement = ctx.timeline.coach_engagement(caller.person_id, engagement_id)
    if engagement is None or not engagement.visible_to_coach(caller.person_id):
        raise NotFound(f"engagement {engagement_id} not found")
    return _timeline(engagement.org_id, engagement.person_id, ctx)
