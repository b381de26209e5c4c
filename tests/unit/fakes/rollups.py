"""In-memory rollup source and store: the same semantics as coaching.adapters.rollup_store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from coaching.domain.booking import Booking
from coaching.domain.engagements import Engagement
from coaching.domain.events import Event
from coaching.domain.grow import Cohort, GroupSession
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.reporting import CellKey, Contribution
from coaching.domain.rollups import Counters
from coaching.domain.workshops import Workshop
from coaching.services.rollups import PersonSource, RollupMeta

ORG = "org-1"
START = datetime(2026, 1, 1, tzinfo=UTC)


def make_org(org_id: str = ORG, k: int = 3) -> Org:
    return Org.model_validate({"org_id": org_id, "name": "Acme", "time_zone": "UTC", "currency": "EUR",
                               "industry": "technology", "min_reporting_group_size": k, "created_at": START,
                               "updated_at": START})  # fmt: skip


def make_person(i: int, *, department: str = "sales", level: str = "manager", **extra: object) -> Person:
    return Person.model_validate({"person_id": f"p{i:03d}", "org_id": ORG, "external_hr_id": f"hr-{i}",
                                  "name": f"Person {i}", "email": f"p{i}@example.com", "level": level,
                                  "function": "engineering", "department": department, "location": "Berlin",
                                  "languages": ["en"], "time_zone": "UTC", "created_at": START,
                                  "updated_at": START} | extra)  # fmt: skip


def make_engagement(person: Person, program: str = "SCALE", start_date: str = "2026-03-01") -> Engagement:
    return Engagement.model_validate({"engagement_id": f"e-{person.person_id}", "org_id": ORG,
                                      "person_id": person.person_id, "coach_id": "c1", "program": program,
                                      "start_date": start_date, "created_at": START})  # fmt: skip


def make_booking(
    person: Person, n: int, start: datetime, status: str, focus: Sequence[str] = ("delegation",)
) -> Booking:
    return Booking.model_validate({"booking_id": f"b-{person.person_id}-{n}", "org_id": ORG,
                                   "person_id": person.person_id, "coach_id": "c1",
                                   "engagement_id": f"e-{person.person_id}", "program": "SCALE", "start": start,
                                   "end": start + timedelta(minutes=45), "person_time_zone": "UTC",
                                   "coach_time_zone": "UTC", "buffer_minutes": 10, "focus_competencies": list(focus),
                                   "policy": {"late_cancel_hours": 24, "allowance_period": start.strftime("%Y-%m")},
                                   "upcoming_slot": 1, "status": status, "created_at": START,
                                   "updated_at": START})  # fmt: skip


def _policy(program: str) -> dict[str, object]:
    return {"program": program, "session_minutes": 60, "late_cancel_hours": 48, "bill_no_shows": True,
            "bill_late_cancels": True}  # fmt: skip


def make_cohort(cohort_id: str, start_date: str) -> Cohort:
    start = datetime.fromisoformat(start_date).replace(hour=10, tzinfo=UTC)
    return Cohort.model_validate({"cohort_id": cohort_id, "org_id": ORG, "transition": "new_manager",
                                  "size": 20, "language": "en", "start_date": start_date,
                                  "curriculum": [{"start": start, "competencies": ["delegation"]}],
                                  "policy": _policy("GROW"), "status": "matched", "coach_ids": ["c1"],
                                  "created_at": START, "updated_at": START})  # fmt: skip


def make_group_session(
    cohort_id: str, index: int, start: datetime, attendance: dict[str, str], competencies: Sequence[str] = ("feedback",)
) -> GroupSession:
    """A recorded group session (empty `attendance`: still scheduled)."""
    return GroupSession.model_validate({"session_id": f"{cohort_id}-s{index}", "cohort_id": cohort_id, "org_id": ORG,
                                        "index": index, "start": start, "end": start + timedelta(minutes=90),
                                        "time_zone": "UTC", "buffer_minutes": 10, "coach_ids": ["c1"],
                                        "participants": sorted(attendance), "competencies": list(competencies),
                                        "policy": _policy("GROW"),
                                        "status": "completed" if attendance else "scheduled",
                                        "attendance": attendance, "created_at": START,
                                        "updated_at": START})  # fmt: skip


def make_workshop(workshop_id: str, start: datetime, participants: Sequence[str], status: str) -> Workshop:
    return Workshop.model_validate({"workshop_id": workshop_id, "org_id": ORG, "team_name": "Team", "goal": "alignment",
                                    "booked_by": "admin", "facilitator_id": "c9", "participants": list(participants),
                                    "start": start, "end": start + timedelta(minutes=120), "time_zone": "UTC",
                                    "buffer_minutes": 10, "language": "en", "policy": _policy("TOGETHER"),
                                    "status": status, "created_at": START, "updated_at": START})  # fmt: skip


@dataclass
class FakeSource:
    orgs: dict[str, Org] = field(default_factory=dict)
    people_by_id: dict[tuple[str, str], Person] = field(default_factory=dict)
    bookings: dict[tuple[str, str], list[Booking]] = field(default_factory=dict)
    engagements: dict[tuple[str, str], list[Engagement]] = field(default_factory=dict)
    priority_list: list[str] = field(default_factory=list)
    ledger: dict[tuple[str, str], int] = field(default_factory=dict)
    cohorts: dict[str, Cohort] = field(default_factory=dict)
    sessions: dict[str, list[GroupSession]] = field(default_factory=dict)  # by cohort
    workshops: dict[str, Workshop] = field(default_factory=dict)
    enrolled: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # person -> cohort ids

    def org(self, org_id: str) -> Org | None:
        return self.orgs.get(org_id)

    def org_ids(self) -> Iterable[str]:
        return sorted(self.orgs)

    def person(self, org_id: str, person_id: str) -> PersonSource:
        key = (org_id, person_id)
        cohort_ids = self.enrolled.get(key, [])
        return PersonSource(person=self.people_by_id.get(key), bookings=list(self.bookings.get(key, [])),
                            engagements=list(self.engagements.get(key, [])),
                            group_sessions=[s for c in cohort_ids for s in self.sessions.get(c, [])],
                            workshops=[w for w in self.workshops.values() if person_id in w.participants],
                            cohorts=[self.cohorts[c] for c in cohort_ids if c in self.cohorts])  # fmt: skip

    def people(self, org_id: str) -> Iterable[PersonSource]:
        return [self.person(o, p) for (o, p) in sorted(self.people_by_id) if o == org_id]

    def priorities(self, org_id: str) -> list[str]:
        return list(self.priority_list)

    def cohort(self, org_id: str, cohort_id: str) -> Cohort | None:
        return self.cohorts.get(cohort_id)

    def group_session(self, org_id: str, cohort_id: str, session_id: str) -> GroupSession | None:
        return next((s for s in self.sessions.get(cohort_id, []) if s.session_id == session_id), None)

    def workshop(self, org_id: str, workshop_id: str) -> Workshop | None:
        return self.workshops.get(workshop_id)

    def spend(self, org_id: str, period: str) -> tuple[int, str]:
        return self.ledger.get((org_id, period), 0), "EUR"


@dataclass
class FakeRollupStore:
    contributions: dict[tuple[str, str, str], tuple[Contribution | None, int]] = field(default_factory=dict)
    cell_counters: dict[tuple[str, str], dict[CellKey, Counters]] = field(default_factory=dict)
    metas: dict[tuple[str, str], RollupMeta] = field(default_factory=dict)
    published: list[Event] = field(default_factory=list)
    writes: int = 0

    def fact(self, org_id: str, period: str, pid: str) -> tuple[Contribution | None, int | None]:
        found = self.contributions.get((org_id, period, pid))
        return (found[0], found[1]) if found else (None, None)

    def facts(self, org_id: str, period: str) -> dict[str, tuple[Contribution, int]]:
        return {pid: (c, v) for (o, p, pid), (c, v) in sorted(self.contributions.items())
                if o == org_id and p == period and c is not None}  # fmt: skip

    def apply(self, org_id: str, period: str, pid: str, version: int | None, new: Contribution | None,
              changes: dict[CellKey, Counters]) -> bool:  # fmt: skip
        current = self.contributions.get((org_id, period, pid))
        if (current[1] if current else None) != version:
            return False
        self.writes += 1
        self.contributions[(org_id, period, pid)] = (new, (version or 0) + 1)
        cells = self.cell_counters.setdefault((org_id, period), {})
        for key, add in changes.items():
            cell = cells.setdefault(key, {})
            for name, value in add.items():
                cell[name] = cell.get(name, 0) + value
        return True

    def cells(self, org_id: str, period: str) -> dict[CellKey, Counters]:
        found = self.cell_counters.get((org_id, period), {})
        cells = {key: {n: v for n, v in sorted(c.items()) if v} for key, c in sorted(found.items())}
        return {key: c for key, c in cells.items() if c}

    def rewrite_cells(self, org_id: str, period: str, cells: dict[CellKey, Counters]) -> None:
        self.writes += len(cells)
        self.cell_counters.setdefault((org_id, period), {}).update({k: dict(v) for k, v in cells.items()})

    def meta(self, org_id: str, period: str) -> RollupMeta | None:
        return self.metas.get((org_id, period))

    def write_meta(self, meta: RollupMeta) -> None:
        self.metas[(meta.org_id, meta.period)] = meta

    def publish(self, events: Sequence[Event]) -> None:
        known = {e.event_id for e in self.published}
        self.published.extend(e for e in events if e.event_id not in known)
