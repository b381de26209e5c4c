"""In-memory ports of the admin service (coaching.services.admin).

Each fake keeps its entities with a version and refuses what adapters/dynamo.py's writes
refuse: an insert over an existing item (Conflict), a batch whose versions moved (Conflict,
nothing written), a coach change whose version moved (read again, change again). The coach
repository records the events each committed change carried, as the outbox would.
`before_commit` hooks run inside the next write, as a concurrent writer would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from coaching.auth import Principal, Role
from coaching.domain.coaches import Coach, CoachCreate, VettingThresholds
from coaching.domain.errors import Conflict
from coaching.domain.events import Event
from coaching.domain.orgs import Org, OrgCreate
from coaching.domain.people import Person
from coaching.services.admin import AdminContext

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
THRESHOLDS = VettingThresholds(min_operating_years=10, min_paid_coaching_hours=250)
OPERATOR = Principal(person_id="operator-1", org_id=None, roles=frozenset({Role.OPERATOR}))
_RETRIES = 8


@dataclass
class FakePage[ItemT]:
    items: list[ItemT]
    next_cursor: str | None = None


def _page[ItemT](ordered: list[tuple[str, ItemT]], limit: int, cursor: str | None) -> FakePage[ItemT]:
    after = [item for key, item in ordered if cursor is None or key > cursor]
    keys = [key for key, _ in ordered if cursor is None or key > cursor]
    items = after[:limit]
    return FakePage(items=items, next_cursor=keys[limit - 1] if len(after) > limit else None)


@dataclass
class FakeOrgs:
    records: dict[str, Org] = field(default_factory=dict)

    def add(self, org: Org) -> None:
        if org.org_id in self.records:
            raise Conflict("organisation already exists")
        self.records[org.org_id] = org

    def get(self, org_id: str) -> Org | None:
        return self.records.get(org_id)

    def modify(self, org_id: str, change: Callable[[Org], Org]) -> Org | None:
        if org_id not in self.records:
            return None
        self.records[org_id] = change(self.records[org_id])
        return self.records[org_id]

    def list(self, *, limit: int, cursor: str | None) -> FakePage[Org]:
        return _page(sorted(self.records.items()), limit, cursor)


@dataclass
class FakePeople:
    records: dict[tuple[str, str], tuple[Person, int]] = field(default_factory=dict)
    before_commit: Callable[[FakePeople], None] | None = None
    batches: int = 0  # committed write_batch calls
    refused: int = 0  # write_batch calls refused on a moved version

    def add(self, person: Person) -> None:
        if (person.org_id, person.person_id) in self.records:
            raise Conflict(f"a person with external_hr_id {person.external_hr_id!r} already exists")
        self.records[(person.org_id, person.person_id)] = (person, 1)

    def get(self, org_id: str, person_id: str) -> Person | None:
        found = self.records.get((org_id, person_id))
        return found[0] if found else None

    def modify(self, org_id: str, person_id: str, change: Callable[[Person], Person]) -> Person | None:
        found = self.records.get((org_id, person_id))
        if found is None:
            return None
        updated = change(found[0])
        self.records[(org_id, person_id)] = (updated, found[1] + 1)
        return updated

    def list(self, org_id: str, *, limit: int, cursor: str | None) -> FakePage[Person]:
        mine = sorted((pid, person) for (org, pid), (person, _) in self.records.items() if org == org_id)
        return _page(mine, limit, cursor)

    def get_many(self, org_id: str, person_ids: Iterable[str]) -> dict[str, tuple[Person, int]]:
        return {pid: self.records[(org_id, pid)] for pid in person_ids if (org_id, pid) in self.records}

    def write_batch(self, changes: Sequence[tuple[Person, int | None]]) -> None:
        if len(changes) > 100:
            raise ValueError("at most 100 items per transaction")
        hook, self.before_commit = self.before_commit, None
        if hook is not None:
            hook(self)
        for person, version in changes:
            current = self.records.get((person.org_id, person.person_id))
            if (current[1] if current else None) != version:
                self.refused += 1
                raise Conflict("a person in this batch changed since it was read; read again")
        for person, version in changes:
            self.records[(person.org_id, person.person_id)] = (person, (version or 0) + 1)
        self.batches += 1

    def bump(self, org_id: str, person_id: str) -> None:
        """Someone else saved this person (same fields, new version)."""
        person, version = self.records[(org_id, person_id)]
        self.records[(org_id, person_id)] = (person, version + 1)


@dataclass
class FakeCoaches:
    records: dict[str, tuple[Coach, int]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    before_commit: Callable[[FakeCoaches], None] | None = None
    attempts: int = 0

    def add(self, coach: Coach) -> None:
        if coach.coach_id in self.records:
            raise Conflict("coach already exists")
        self.records[coach.coach_id] = (coach, 1)

    def get(self, coach_id: str) -> Coach | None:
        found = self.records.get(coach_id)
        return found[0] if found else None

    def list(self, *, status: str | None, limit: int, cursor: str | None) -> FakePage[Coach]:
        ordered = sorted(
            (cid, coach)
            for cid, (coach, _) in self.records.items()
            if status is None or coach.vetting_status.value == status
        )
        return _page(ordered, limit, cursor)

    def modify_with_events(
        self, coach_id: str, change: Callable[[Coach], tuple[Coach, Sequence[Event]]]
    ) -> Coach | None:
        for _ in range(_RETRIES):
            found = self.records.get(coach_id)
            if found is None:
                return None
            self.attempts += 1
            updated, events = change(found[0])
            hook, self.before_commit = self.before_commit, None
            if hook is not None:
                hook(self)
            if self.records[coach_id][1] != found[1]:
                continue  # the version moved: read again and apply the change to the fresh coach
            self.records[coach_id] = (updated, found[1] + 1)
            self.events.extend(events)
            return updated
        raise Conflict("the object is being changed by someone else; try again")


@dataclass
class AdminWorld:
    orgs: FakeOrgs = field(default_factory=FakeOrgs)
    people: FakePeople = field(default_factory=FakePeople)
    coaches: FakeCoaches = field(default_factory=FakeCoaches)
    now: datetime = NOW
    thresholds: VettingThresholds = THRESHOLDS

    def clock(self) -> datetime:
        self.now += timedelta(seconds=1)  # every read of the clock is a new moment
        return self.now

    @property
    def ctx(self) -> AdminContext:
        return AdminContext(
            orgs=self.orgs, people=self.people, coaches=self.coaches, clock=self.clock, vetting=self.thresholds
        )


def org_input(**overrides: object) -> OrgCreate:
    return OrgCreate.model_validate(
        {"name": "Acme", "time_zone": "Europe/Berlin", "currency": "EUR", "industry": "retail"} | overrides
    )


def coach_input(**overrides: object) -> CoachCreate:
    profile: dict[str, object] = {
        "name": "Grace Coach",
        "email": "grace@coaches.example",
        "languages": ["en"],
        "time_zone": "Europe/London",
        "operating_experience_years": 15,
        "paid_coaching_hours": 800,
        "programs": ["SCALE"],
        "capacity": 5,
    }
    return CoachCreate.model_validate(profile | overrides)


def person_row(hr_id: str, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "external_hr_id": hr_id,
        "name": f"Person {hr_id}",
        "email": f"{hr_id.lower()}@example.com",
        "level": "first_time_manager",
        "function": "engineering",
        "languages": ["de", "en"],
        "time_zone": "Europe/Berlin",
    }
    return row | overrides


def org_admin(org_id: str) -> Principal:
    return Principal(person_id="admin-1", org_id=org_id, roles=frozenset({Role.ORG_ADMIN}))
