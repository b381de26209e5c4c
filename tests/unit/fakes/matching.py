"""In-memory ports of the matching services (coaching.services.matching and .cohorts).

`FakeMatchingStore` keeps match requests and engagements with their versions (and the
coach's engagement index, which can be made to lag), the
one-active-engagement-per-programme markers and the coaches' loads, and enforces in each
write exactly the conditions adapters/matching_store.py puts in its DynamoDB transaction
(match version, new items must not exist, marker, load below capacity, outbox ids unique):
all of a write happens or none of it, refusals are the same domain errors. It records the
events each committed write carried. `MatchingWorld` wires an org, its people, a coach
network and its roster, the store and a fixed clock into the services' contexts.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from coaching.auth import Principal, Role
from coaching.domain.booking import Booking
from coaching.domain.coaches import AvailabilityRule, Coach, CoachCreate, RoleHeld, VettingStatus
from coaching.domain.engagements import Engagement, HistorySummary, MatchRecord, PersonHistory
from coaching.domain.errors import ChooseRefused, Conflict
from coaching.domain.events import Event
from coaching.domain.matching import MatchingSettings
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.programmes import ProgrammeCatalogue
from coaching.domain.roster import Roster, roster_entries
from coaching.domain.taxonomy import Industry, JobFunction, Level, Program
from coaching.services.cohorts import CohortContext
from coaching.services.matching import MatchingContext

# A Monday morning in London: every weekday coach has hours in the next two weeks.
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
WEEKDAYS_9_TO_17 = [AvailabilityRule(weekday=d, start=time(9), end=time(17)) for d in range(5)]
SUNDAY_NIGHT = [AvailabilityRule(weekday=6, start=time(20), end=time(23))]
# Roster versions are unique across the whole test session: the compiled roster is cached
# per version in the process, as in a warm Lambda.
_ROSTER_VERSIONS = itertools.count(1_000_000)

type Key = tuple[str, str, str]


def unique(prefix: str) -> str:
    # Coach ids are unique per test: availability and overlap are cached per coach id.
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def role(level: str, function: str = "engineering", industry: str = "technology", years: int = 5) -> RoleHeld:
    return RoleHeld(level=Level(level), function=JobFunction(function), industry=Industry(industry), years=years)


def make_coach(
    name: str = "coach",
    *,
    languages: Sequence[str] = ("en",),
    time_zone: str = "Europe/London",
    programs: Sequence[str] = ("SCALE", "GROW"),
    roles_held: Sequence[RoleHeld] = (),
    specialties: Sequence[str] = (),
    industries: Sequence[str] = (),
    capacity: int = 5,
    weekly: Sequence[AvailabilityRule] = WEEKDAYS_9_TO_17,
    employer_org_ids: Sequence[str] = (),
    status: VettingStatus = VettingStatus.APPROVED,
) -> Coach:
    profile = CoachCreate(
        name=name,
        email=f"{name.replace(' ', '.')}@coaches.example",
        bio=f"{name}, coach",
        languages=list(languages),
        time_zone=time_zone,
        industries=[Industry(i) for i in industries],
        roles_held=list(roles_held),
        specialties=list(specialties),
        operating_experience_years=15,
        paid_coaching_hours=800,
        programs=[Program(p) for p in programs],
        capacity=capacity,
        weekly_availability=list(weekly),
        employer_org_ids=list(employer_org_ids),
    )
    coach = Coach.create(unique(name.replace(" ", "-")), profile, NOW)
    return Coach.model_validate(coach.model_dump() | {"vetting_status": status})


def make_org(org_id: str = "org-1", *, matching: MatchingSettings | None = None) -> Org:
    return Org(
        org_id=org_id,
        name=f"Org {org_id}",
        time_zone="Europe/London",
        currency="EUR",
        industry=Industry.TECHNOLOGY,
        min_reporting_group_size=5,
        matching=matching,
        created_at=NOW,
        updated_at=NOW,
    )


# ---------------------------------------------------------------------------- ports


@dataclass
class FakeNetwork:
    """The coach records (CoachReader) and the roster built from the approved ones (RosterReader)."""

    coaches: dict[str, Coach] = field(default_factory=dict)
    roster: Roster | None = None

    def add(self, *coaches: Coach) -> None:
        for coach in coaches:
            self.coaches[coach.coach_id] = coach
        self.publish()

    def set_status(self, coach_id: str, status: VettingStatus) -> None:
        coach = self.coaches[coach_id]
        self.coaches[coach_id] = Coach.model_validate(coach.model_dump() | {"vetting_status": status})

    def publish(self) -> None:
        """A roster rebuild: approved coaches only, under a new version."""
        entries = roster_entries(list(self.coaches.values()))
        self.roster = Roster(version=next(_ROSTER_VERSIONS), built_at=NOW, coaches=entries)

    # CoachReader
    def get(self, coach_id: str) -> Coach | None:
        return self.coaches.get(coach_id)


@dataclass
class RosterView:
    network: FakeNetwork

    def get(self) -> Roster | None:
        return self.network.roster


@dataclass
class FakePeople:
    """Orgs and people (PeopleReader, PeopleBatch, OrgReader through `orgs`)."""

    org_records: dict[str, Org] = field(default_factory=dict)
    records: dict[tuple[str, str], Person] = field(default_factory=dict)

    def get(self, org_id: str, person_id: str) -> Person | None:
        return self.records.get((org_id, person_id))

    def get_with_org(self, org_id: str, person_id: str) -> tuple[Org | None, Person | None]:
        return self.org_records.get(org_id), self.records.get((org_id, person_id))

    def get_many(self, org_id: str, person_ids: Iterable[str]) -> dict[str, tuple[Person, int]]:
        return {pid: (self.records[(org_id, pid)], 1) for pid in person_ids if (org_id, pid) in self.records}


@dataclass
class FakeOrgs:
    people: FakePeople

    def get(self, org_id: str) -> Org | None:
        return self.people.org_records.get(org_id)


@dataclass
class FakeBookings:
    by_coach: dict[str, list[Booking]] = field(default_factory=dict)

    def for_coach(self, coach_id: str, start: datetime, end: datetime) -> list[Booking]:
        return [b for b in self.by_coach.get(coach_id, []) if start <= b.start < end]


@dataclass
class FakeMatchingStore:
    """MatchStore and CohortStore in memory, with the transactions' conditions.

    `before_commit` runs inside the next write, after the service has decided and before the
    conditions are checked, as a concurrent writer would (then it is cleared).
    """

    matches: dict[Key, tuple[MatchRecord, int]] = field(default_factory=dict)
    engagements: dict[Key, tuple[Engagement, int]] = field(default_factory=dict)
    markers: dict[Key, str] = field(default_factory=dict)  # (org, person, program) -> engagement id
    load: dict[str, int] = field(default_factory=dict)
    situations: dict[str, str] = field(default_factory=dict)
    gap_log: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    outbox: set[str] = field(default_factory=set)
    before_commit: Callable[[FakeMatchingStore], None] | None = None
    # Engagements the coach's index (gsi1) does not show yet.
    index_lag: set[str] = field(default_factory=set)
    writes: int = 0
    # Where person_with_history reads the org and the person (the world wires its FakePeople here).
    people: FakePeople = field(default_factory=FakePeople)
    # Each org's programme catalogue; an org absent here has the shipped defaults, as in the real store.
    catalogues: dict[str, ProgrammeCatalogue] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # ------------------------------------------------------------------ reads

    def summary(self, org_id: str, person_id: str) -> HistorySummary:
        """The summary the real store maintains in its transactions, derived from what is stored."""
        history = self.history(org_id, person_id)
        return HistorySummary(
            declined=frozenset(c for m, _ in history.matches for c in m.declined),
            started=frozenset(HistorySummary.started_entry(e) for e, _ in history.engagements),
            ended=frozenset(HistorySummary.ended_entry(e) for e, _ in history.engagements if not e.is_active),
        )

    def person_with_history(self, org_id: str, person_id: str) -> tuple[Org | None, Person | None, HistorySummary]:
        org, person = self.people.get_with_org(org_id, person_id)
        return org, person, self.summary(org_id, person_id)

    def person_for_request(
        self, org_id: str, person_id: str
    ) -> tuple[Org | None, Person | None, HistorySummary, ProgrammeCatalogue]:
        catalogue = self.catalogues.get(org_id) or ProgrammeCatalogue.defaults(org_id)
        return *self.person_with_history(org_id, person_id), catalogue

    def summaries(self, org_id: str, person_ids: Iterable[str]) -> dict[str, HistorySummary]:
        return {pid: self.summary(org_id, pid) for pid in person_ids}

    def history(self, org_id: str, person_id: str) -> PersonHistory:
        with self._lock:
            return PersonHistory(
                matches=[v for (o, p, _), v in self.matches.items() if (o, p) == (org_id, person_id)],
                engagements=[v for (o, p, _), v in self.engagements.items() if (o, p) == (org_id, person_id)],
            )

    def match(self, org_id: str, person_id: str, match_id: str) -> tuple[MatchRecord, int] | None:
        return self.matches.get((org_id, person_id, match_id))

    def engagement(self, org_id: str, person_id: str, engagement_id: str) -> tuple[Engagement, int] | None:
        return self.engagements.get((org_id, person_id, engagement_id))

    def coach_engagement(self, coach_id: str, engagement_id: str) -> Engagement | None:
        for engagement, _ in self.engagements.values():
            if engagement.coach_id == coach_id and engagement.engagement_id == engagement_id:
                return engagement
        return None

    def coach_engagements(self, coach_id: str) -> list[Engagement]:
        """The coach's index; `index_lag` hides engagements from it, as a lagging GSI would."""
        with self._lock:
            return [
                e
                for e, _ in self.engagements.values()
                if e.coach_id == coach_id and e.engagement_id not in self.index_lag
            ]

    def loads(self, coach_ids: Iterable[str]) -> dict[str, int]:
        return {coach_id: self.load.get(coach_id, 0) for coach_id in coach_ids}

    def all_loads(self) -> dict[str, int]:
        return dict(self.load)

    def gaps(self, limit: int) -> list[dict[str, Any]]:
        return sorted(self.gap_log, key=lambda gap: gap["at"], reverse=True)[:limit]

    def active(self, org_id: str, person_id: str) -> list[Engagement]:
        return [e for (o, p, _), (e, _) in self.engagements.items() if (o, p) == (org_id, person_id) and e.is_active]

    # ------------------------------------------------------------------ writes

    def _race(self) -> None:
        hook, self.before_commit = self.before_commit, None
        if hook is not None:
            hook(self)

    def _check_events(self, events: Sequence[Event]) -> bool:
        return all(event.event_id not in self.outbox for event in events)

    def _commit_events(self, events: Sequence[Event]) -> None:
        self.outbox.update(event.event_id for event in events)
        self.events.extend(events)
        self.writes += 1

    @staticmethod
    def _key(record: MatchRecord | Engagement, item_id: str) -> Key:
        return record.org_id, record.person_id, item_id

    def save_new_match(
        self, match: MatchRecord, situation: str | None, events: Sequence[Event] = (), *, exists_ok: bool = False
    ) -> None:
        with self._lock:
            self._race()
            key = self._key(match, match.match_id)
            if key in self.matches or not self._check_events(events):
                if exists_ok:
                    return
                raise Conflict("the match already exists")
            self.matches[key] = (match, 1)
            if situation is not None:
                self.situations[match.match_id] = situation
            self._commit_events(events)

    def update_match(self, match: MatchRecord, version: int) -> None:
        with self._lock:
            self._race()
            key = self._key(match, match.match_id)
            if self.matches.get(key, (None, None))[1] != version:
                raise Conflict("this match changed while you were deciding; load it again")
            self.matches[key] = (match, version + 1)
            self.writes += 1

    def record_gap(self, org_id: str, at: datetime, gap_id: str, detail: dict[str, Any]) -> None:
        self.gap_log.append(detail | {"gap_id": gap_id})

    def _place_free(self, coach_id: str, capacity: int) -> bool:
        return self.load.get(coach_id, 0) < capacity

    def choose(
        self,
        match: MatchRecord,
        match_version: int,
        engagement: Engagement,
        capacity: int,
        ends: Sequence[tuple[Engagement, int]] = (),
        events: Sequence[Event] = (),
    ) -> None:
        with self._lock:
            self._race()
            match_key = self._key(match, match.match_id)
            marker_key = (engagement.org_id, engagement.person_id, engagement.program.value)
            ended_ids = {e.engagement_id for e, _ in ends}
            # The same order as the transaction's items, so the first failure names the same rule.
            if self.matches.get(match_key, (None, None))[1] != match_version:
                raise ChooseRefused("this match was already decided; load it again", field="match_id")
            if self._key(engagement, engagement.engagement_id) in self.engagements:
                raise Conflict("the choice could not be saved; try again")
            for ended, version in ends:
                if self.engagements.get(self._key(ended, ended.engagement_id), (None, None))[1] != version:
                    raise Conflict("the choice could not be saved; try again")
            hands_over = any(e.program == engagement.program for e, _ in ends)
            marker = self.markers.get(marker_key)
            if (hands_over and marker not in ended_ids) or (not hands_over and marker is not None):
                raise ChooseRefused("you already have an active engagement in this programme", field="program")
            if not self._check_events(events):
                raise Conflict("the choice could not be saved; try again")
            if not self._place_free(engagement.coach_id, capacity):
                raise ChooseRefused("this coach has just reached capacity; choose another coach", field="coach_id")
            if any(self.load.get(e.coach_id, 0) <= 0 for e, _ in ends):
                raise Conflict("the choice could not be saved; try again")
            self.matches[match_key] = (match, match_version + 1)
            self.engagements[self._key(engagement, engagement.engagement_id)] = (engagement, 1)
            for ended, version in ends:
                self.engagements[self._key(ended, ended.engagement_id)] = (ended, version + 1)
            self.markers[marker_key] = engagement.engagement_id
            self.load[engagement.coach_id] = self.load.get(engagement.coach_id, 0) + 1
            for ended, _ in ends:
                self.load[ended.coach_id] -= 1
            self._commit_events(events)

    def start_engagement(self, engagement: Engagement, capacity: int, events: Sequence[Event] = ()) -> None:
        with self._lock:
            self._race()
            marker_key = (engagement.org_id, engagement.person_id, engagement.program.value)
            if self._key(engagement, engagement.engagement_id) in self.engagements:
                raise Conflict("the choice could not be saved; try again")
            if marker_key in self.markers:
                raise ChooseRefused("already has an active engagement in this programme", field="program")
            if not self._check_events(events):
                raise Conflict("the choice could not be saved; try again")
            if not self._place_free(engagement.coach_id, capacity):
                raise ChooseRefused("the coach reached capacity before this engagement", field="coach_id")
            self.engagements[self._key(engagement, engagement.engagement_id)] = (engagement, 1)
            self.markers[marker_key] = engagement.engagement_id
            self.load[engagement.coach_id] = self.load.get(engagement.coach_id, 0) + 1
            self._commit_events(events)

    def _check_end(self, engagement: Engagement, version: int) -> None:
        marker_key = (engagement.org_id, engagement.person_id, engagement.program.value)
        stored = self.engagements.get(self._key(engagement, engagement.engagement_id))
        if (
            stored is None
            or stored[1] != version
            or self.markers.get(marker_key) != engagement.engagement_id
            or self.load.get(engagement.coach_id, 0) <= 0
        ):
            raise Conflict("this engagement changed at the same time; load it again")

    def _apply_end(self, engagement: Engagement, version: int) -> None:
        self.engagements[self._key(engagement, engagement.engagement_id)] = (engagement, version + 1)
        del self.markers[(engagement.org_id, engagement.person_id, engagement.program.value)]
        self.load[engagement.coach_id] -= 1

    def end_and_propose(
        self, ended: Engagement, version: int, match: MatchRecord, situation: str | None, events: Sequence[Event] = ()
    ) -> None:
        with self._lock:
            self._race()
            self._check_end(ended, version)
            if self._key(match, match.match_id) in self.matches or not self._check_events(events):
                raise Conflict("this engagement changed at the same time; load it again")
            self._apply_end(ended, version)
            self.matches[self._key(match, match.match_id)] = (match, 1)
            if situation is not None:
                self.situations[match.match_id] = situation
            self._commit_events(events)

    def end_engagement(self, ended: Engagement, version: int, events: Sequence[Event] = ()) -> None:
        with self._lock:
            self._race()
            self._check_end(ended, version)
            if not self._check_events(events):
                raise Conflict("this engagement changed at the same time; load it again")
            self._apply_end(ended, version)
            self._commit_events(events)


# ---------------------------------------------------------------------------- the world


@dataclass
class MatchingWorld:
    org: Org = field(default_factory=make_org)
    network: FakeNetwork = field(default_factory=FakeNetwork)
    people: FakePeople = field(default_factory=FakePeople)
    store: FakeMatchingStore = field(default_factory=FakeMatchingStore)
    bookings: FakeBookings = field(default_factory=FakeBookings)
    now: datetime = NOW

    def __post_init__(self) -> None:
        self.people.org_records[self.org.org_id] = self.org
        self.store.people = self.people

    def clock(self) -> datetime:
        return self.now

    @property
    def ctx(self) -> MatchingContext:
        return MatchingContext(
            roster=RosterView(self.network),
            store=self.store,
            people=self.people,
            coaches=self.network,
            bookings=self.bookings,
            clock=self.clock,
        )

    @property
    def cohort_ctx(self) -> CohortContext:
        return CohortContext(
            roster=RosterView(self.network),
            store=self.store,
            orgs=FakeOrgs(self.people),
            people=self.people,
            bookings=self.bookings,
            clock=self.clock,
        )

    def set_org(self, org: Org) -> None:
        self.org = org
        self.people.org_records[org.org_id] = org

    def coaches(self, *coaches: Coach) -> list[Coach]:
        self.network.add(*coaches)
        return list(coaches)

    def person(
        self,
        *,
        level: str = "first_time_manager",
        function: str = "engineering",
        languages: Sequence[str] = ("en",),
        time_zone: str = "Europe/London",
        active: bool = True,
        org_id: str | None = None,
    ) -> Principal:
        """A person of the org and the employee token they call with."""
        org_id = org_id or self.org.org_id
        person = Person(
            person_id=unique("p"),
            org_id=org_id,
            external_hr_id=unique("hr"),
            name="Pat Person",
            email="pat@example.com",
            level=Level(level),
            function=JobFunction(function),
            languages=list(languages),
            time_zone=time_zone,
            active=active,
            created_at=NOW,
            updated_at=NOW,
        )
        self.people.records[(org_id, person.person_id)] = person
        return Principal(person_id=person.person_id, org_id=org_id, roles=frozenset({Role.EMPLOYEE}))

    def promote(self, who: Principal, level: str) -> None:
        assert who.org_id is not None
        person = self.people.records[(who.org_id, who.person_id)]
        self.people.records[(who.org_id, who.person_id)] = Person.model_validate(
            person.model_dump() | {"level": Level(level)}
        )

    def admin(self) -> Principal:
        return Principal(person_id="admin-1", org_id=self.org.org_id, roles=frozenset({Role.ORG_ADMIN}))

    def events_of(self, kind: type[Event]) -> list[Any]:
        return [event for event in self.store.events if isinstance(event, kind)]


def coach_caller(coach: Coach | str) -> Principal:
    coach_id = coach if isinstance(coach, str) else coach.coach_id
    return Principal(person_id=coach_id, org_id=None, roles=frozenset({Role.COACH}))


OPERATOR = Principal(person_id="operator-1", org_id=None, roles=frozenset({Role.OPERATOR}))


def loads(store: FakeMatchingStore, coaches: Iterable[Coach]) -> Mapping[str, int]:
    return {coach.coach_id: store.load.get(coach.coach_id, 0) for coach in coaches}
