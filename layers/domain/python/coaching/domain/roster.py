"""The coach roster: a compact, versioned snapshot of every approved coach.

Matching reads the roster, not the coach items, so a match costs a pointer read rather
than a query over the network; a warm Lambda keeps the decoded snapshot in memory.
"""

from __future__ import annotations

from datetime import datetime

from coaching.domain.coaches import AvailabilityException, AvailabilityRule, Coach, RoleHeld, VettingStatus
from coaching.domain.common import DeferredModel


class RosterCoach(DeferredModel):
    coach_id: str
    name: str
    headline: str
    languages: list[str]
    time_zone: str
    industries: list[str]
    functions: list[str]
    roles_held: list[RoleHeld]
    specialties: list[str]
    programs: list[str]
    capacity: int
    weekly_availability: list[AvailabilityRule]
    availability_exceptions: list[AvailabilityException] = []
    buffer_minutes: int = 10
    min_notice_hours: int = 12
    horizon_days: int = 60
    employer_org_ids: list[str]


class Roster(DeferredModel):
    version: int
    built_at: datetime
    coaches: list[RosterCoach]


def roster_entries(coaches: list[Coach]) -> list[RosterCoach]:
    """Approved coaches only, in a stable order so equal inputs give equal snapshots."""
    approved = sorted((c for c in coaches if c.vetting_status is VettingStatus.APPROVED), key=lambda c: c.coach_id)
    return [
        RosterCoach(
            coach_id=c.coach_id,
            name=c.name,
            headline=c.bio[:140],
            languages=c.languages,
            time_zone=c.time_zone,
            industries=[i.value for i in c.industries],
            functions=[f.value for f in c.functions],
            roles_held=c.roles_held,
            specialties=c.specialties,
            programs=[p.value for p in c.programs],
            capacity=c.capacity,
            weekly_availability=c.weekly_availability,
            availability_exceptions=c.availability_exceptions,
            buffer_minutes=c.buffer_minutes,
            min_notice_hours=c.min_notice_hours,
            horizon_days=c.horizon_days,
            employer_org_ids=c.employer_org_ids,
        )
        for c in approved
    ]
