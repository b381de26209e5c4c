"""In-memory ports of the programmes (coaching.services.programmes / .grow / .workshops).

`FakeProgrammeStore` keeps what adapters/programme_store.py keeps on DynamoDB and enforces the
conditions its transactions carry, all or nothing: the catalogue's version, a cohort's seats
counter within its size, one membership per person, one lock per 5-minute bucket of a coach's
calendar (shared with 1:1s: `coach_locks` is the same map `FakeBookingStore` uses, when given
one), one active engagement per person and programme, versions of cohorts, group sessions and
workshops, one locator per billable unit, one ledger entry per guard, written in the first open
month. What a change commits with it (its events) is kept in `committed`, one per event id.

`ProgrammesWorld` builds one org (UTC) with a price book, a GROW coach and a TOGETHER facilitator
in the roster, a clock, and the contexts of the three services on these fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from coaching.auth import Principal, Role
from coaching.domain.booking import Booking
from coaching.domain.coaches import Coach
from coaching.domain.engagements import Engagement
from coaching.domain.errors import AlreadyBilled, Conflict, SlotTaken
from coaching.domain.events import Event
from coaching.domain.grow import Cohort, Enrolment, GroupSession, WaitEntry
from coaching.domain.invoicing import LedgerEntry
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.pricing import PriceBook, PriceBookVersionInput
from coaching.domain.programmes import ProgrammeCatalogue
from coaching.domain.roster import Roster, RosterCoach
from coaching.domain.workshops import Workshop
from coaching.services.grow import GrowContext
from coaching.services.programmes import ProgrammesContext
from coaching.services.workshops import WorkshopContext

from .booking import ALL_WEEK, Clock, _next_period, make_org, make_person, roster_coach

ORG = "org-1"
# A Monday morning; coaches work every day 07:00-21:00 UTC.
START = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
GROW_HOUR = 18_000  # GROW 60 minutes, EUR cents
GROW_COACH = "grow-coach"
FACILITATOR = "facilitator"
TOGETHER_HOUR = 48_000
PARTICIPANT_FEE = 2_500
ADMIN = Principal(person_id="admin-1", org_id=ORG, roles=frozenset({Role.ORG_ADMIN}))
LEADER = Principal(person_id="leader-1", org_id=ORG, roles=frozenset({Role.LEADER, Role.EMPLOYEE}))
FINANCE = Principal(person_id="finance-1", org_id=ORG, roles=frozenset({Role.FINANCE}))


def coach_principal(coach_id: str) -> Principal:
    return Principal(person_id=coach_id, org_id=None, roles=frozenset({Role.COACH}))


def person_principal(person_id: str) -> Principal:
    return Principal(person_id=person_id, org_id=ORG, roles=frozenset({Role.EMPLOYEE}))


@dataclass
class _Tx:
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, label: str) -> None:
        if not ok:
            self.failures.append(label)


@dataclass
class FakeProgrammeStore:
    orgs: dict[str, Org] = field(default_factory=dict)
    persons: dict[tuple[str, str], Person] = field(default_factory=dict)
    books: dict[str, PriceBook] = field(default_factory=dict)
    catalogues: dict[str, tuple[ProgrammeCatalogue, int]] = field(default_factory=dict)
    org_versions: dict[str, int] = field(default_factory=dict)  # an org absent here is at version 1
    cohort_items: dict[tuple[str, str], tuple[Cohort, int]] = field(default_factory=dict)
    seats: dict[tuple[str, str], int] = field(default_factory=dict)
    memberships: dict[tuple[str, str], dict[str, Enrolment]] = field(default_factory=dict)
    participations: set[tuple[str, str, str, str]] = field(default_factory=set)
    session_items: dict[tuple[str, str, int], tuple[GroupSession, int]] = field(default_factory=dict)
    coach_locks: dict[tuple[str, str], str] = field(default_factory=dict)
    engagements: dict[tuple[str, str, str], Engagement] = field(default_factory=dict)
    active: dict[tuple[str, str, str], str] = field(default_factory=dict)
    wait: dict[tuple[str, str], WaitEntry] = field(default_factory=dict)
    waitlist_cohorts: dict[tuple[str, str, str], str] = field(default_factory=dict)
    workshop_items: dict[tuple[str, str], tuple[Workshop, int]] = field(default_factory=dict)
    locators: dict[str, tuple[str, str]] = field(default_factory=dict)
    ledger: dict[str, LedgerEntry] = field(default_factory=dict)
    guards: set[tuple[str, str, str]] = field(default_factory=set)
    closed: set[tuple[str, str]] = field(default_factory=set)
    committed: dict[str, Event] = field(default_factory=dict)
    coach_loads: dict[str, int] = field(default_factory=dict)
    coach_records: dict[str, Coach] = field(default_factory=dict)
    bookings: dict[tuple[str, str], list[Booking]] = field(default_factory=dict)

    # ------------------------------------------------------------------ helpers for tests

    def events(self, kind: type[Event] | None = None) -> list[Event]:
        return [e for e in self.committed.values() if kind is None or isinstance(e, kind)]

    def entries_for(self, unit_id: str) -> list[LedgerEntry]:
        return [e for e in self.ledger.values() if e.booking_id == unit_id]

    def _commit(self, tx: _Tx, refusal: Exception, events: Sequence[Event]) -> None:
        if tx.failures:
            raise refusal
        for event in events:
            self.committed.setdefault(event.event_id, event)

    def _bill(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        """Where the entries would be written (the first open month), or AlreadyBilled; writes nothing."""
        if any((e.org_id, e.booking_id, e.kind.value) in self.guards for e in entries):
            raise AlreadyBilled("this is already billed", field="booking_id")
        placed = list(entries)
        while placed and (placed[0].org_id, placed[0].billed_in) in self.closed:
            placed = [
                LedgerEntry.model_validate(e.model_dump() | {"billed_in": _next_period(e.billed_in)}) for e in placed
            ]
        return placed

    def _write_entries(self, entries: Sequence[LedgerEntry]) -> None:
        for entry in entries:
            self.ledger[entry.entry_id] = entry
            self.guards.add((entry.org_id, entry.booking_id, entry.kind.value))

    # ------------------------------------------------------------------ shared reads

    def org(self, org_id: str) -> Org | None:
        return self.orgs.get(org_id)

    def people(self, org_id: str, person_ids: Sequence[str]) -> Mapping[str, Person]:
        return {p: self.persons[(org_id, p)] for p in person_ids if (org_id, p) in self.persons}

    def price_book(self, org_id: str) -> PriceBook | None:
        return self.books.get(org_id)

    def loads(self) -> Mapping[str, int]:
        return dict(self.coach_loads)

    def coach(self, coach_id: str) -> Coach | None:
        return self.coach_records.get(coach_id)

    # ------------------------------------------------------------------ catalogue

    def catalogue(self, org_id: str) -> tuple[ProgrammeCatalogue, int | None]:
        found = self.catalogues.get(org_id)
        return (found[0], found[1]) if found else (ProgrammeCatalogue.defaults(org_id), None)

    def org_and_catalogue(self, org_id: str) -> tuple[Org, int, ProgrammeCatalogue, int | None] | None:
        if org_id not in self.orgs:
            return None
        return self.orgs[org_id], self.org_versions.get(org_id, 1), *self.catalogue(org_id)

    def save_catalogue(self, catalogue: ProgrammeCatalogue, version: int | None, org: Org, org_version: int) -> bool:
        current = self.catalogues.get(catalogue.org_id)
        if (current[1] if current else None) != version or self.org_versions.get(org.org_id, 1) != org_version:
            return False
        self.catalogues[catalogue.org_id] = (catalogue, (version or 0) + 1)
        self.orgs[org.org_id] = org
        self.org_versions[org.org_id] = org_version + 1
        return True

    # ------------------------------------------------------------------ cohorts

    def open_cohort(self, cohort: Cohort, events: Sequence[Event]) -> None:
        tx = _Tx()
        tx.check((cohort.org_id, cohort.cohort_id) not in self.cohort_items, "cohort")
        self._commit(tx, Conflict("this cohort already exists", field="cohort_id"), events)
        self.cohort_items[(cohort.org_id, cohort.cohort_id)] = (cohort, 1)

    def waitlist_cohort(self, org_id: str, transition: str, language: str) -> str | None:
        return self.waitlist_cohorts.get((org_id, transition, language))

    def open_waitlist_cohort(self, cohort: Cohort, previous: str | None, events: Sequence[Event]) -> bool:
        key = (cohort.org_id, cohort.transition, cohort.language)
        if self.waitlist_cohorts.get(key) != previous or (cohort.org_id, cohort.cohort_id) in self.cohort_items:
            return False
        self.open_cohort(cohort, events)
        self.waitlist_cohorts[key] = cohort.cohort_id
        return True

    def cohort(self, org_id: str, cohort_id: str) -> tuple[Cohort, int] | None:
        return self.cohort_items.get((org_id, cohort_id))

    def cohorts(self, org_id: str) -> list[Cohort]:
        found = [c for (o, _), (c, _) in self.cohort_items.items() if o == org_id]
        return sorted(found, key=lambda c: (c.start_date, c.cohort_id), reverse=True)

    def members(self, org_id: str, cohort_id: str) -> list[Enrolment]:
        return sorted(self.memberships.get((org_id, cohort_id), {}).values(), key=lambda e: e.person_id)

    def enrol(self, cohort: Cohort, enrolment: Enrolment, events: Sequence[Event]) -> None:
        key = (cohort.org_id, cohort.cohort_id)
        tx = _Tx()
        tx.check(key in self.cohort_items, "cohort")
        tx.check(self.seats.get(key, 0) < cohort.size, "full")
        tx.check(enrolment.person_id not in self.memberships.get(key, {}), "member")
        if enrolment.source == "waitlist":
            tx.check((cohort.org_id, enrolment.person_id) in self.wait, "waiting")
        if "full" in tx.failures:
            refusal: Exception = Conflict(f"this cohort is full ({cohort.size} places)", field="cohort_id")
        elif "member" in tx.failures:
            refusal = Conflict("this person is already enrolled in the cohort", field="person_id")
        elif "waiting" in tx.failures:
            refusal = Conflict("this person no longer waits: another cohort took them", field="person_id")
        else:
            refusal = Conflict("the cohort changed at the same time; try again", field="cohort_id")
        self._commit(tx, refusal, events)
        self.seats[key] = self.seats.get(key, 0) + 1
        self.memberships.setdefault(key, {})[enrolment.person_id] = enrolment
        self.participations.add((cohort.org_id, enrolment.person_id, "COHORT", cohort.cohort_id))
        self.wait.pop((cohort.org_id, enrolment.person_id), None)

    def schedule(self, session: GroupSession, events: Sequence[Event]) -> None:
        tx = _Tx()
        tx.check((session.org_id, session.cohort_id, session.index) not in self.session_items, "session")
        for coach in session.coach_ids:
            for bucket in session.coach_buckets():
                tx.check((coach, bucket) not in self.coach_locks, "coach")
        refusal: Exception = (
            SlotTaken("the coach already has a session at that time", field="start")
            if "coach" in tx.failures
            else Conflict("this group session is already scheduled", field="curriculum")
        )
        self._commit(tx, refusal, events)
        self.session_items[(session.org_id, session.cohort_id, session.index)] = (session, 1)
        for coach in session.coach_ids:
            for bucket in session.coach_buckets():
                self.coach_locks[(coach, bucket)] = session.session_id

    def unschedule(self, session: GroupSession) -> None:
        self.session_items.pop((session.org_id, session.cohort_id, session.index), None)
        for coach in session.coach_ids:
            for bucket in session.coach_buckets():
                if self.coach_locks.get((coach, bucket)) == session.session_id:
                    del self.coach_locks[(coach, bucket)]

    def commit_match(
        self, cohort: Cohort, version: int, engagements: Sequence[Engagement], events: Sequence[Event]
    ) -> None:
        tx = _Tx()
        stored = self.cohort_items.get((cohort.org_id, cohort.cohort_id))
        tx.check(stored is not None and stored[1] == version, "cohort")
        for e in engagements:
            tx.check((e.org_id, e.person_id, e.program.value) not in self.active, "active")
        active = tx.failures.count("active")
        refusal: Exception = (
            Conflict(f"{active} participant(s) already have an active GROW engagement", field="cohort_id")
            if active
            else Conflict("the cohort changed at the same time; load it again", field="cohort_id")
        )
        self._commit(tx, refusal, events)
        self.cohort_items[(cohort.org_id, cohort.cohort_id)] = (cohort, version + 1)
        for e in engagements:
            self.engagements[(e.org_id, e.person_id, e.engagement_id)] = e
            self.active[(e.org_id, e.person_id, e.program.value)] = e.engagement_id

    def group_sessions(self, org_id: str, cohort_id: str) -> list[tuple[GroupSession, int]]:
        found = [(s, v) for (o, c, _), (s, v) in self.session_items.items() if (o, c) == (org_id, cohort_id)]
        return sorted(found, key=lambda pair: pair[0].index)

    def complete_group_session(
        self,
        session: GroupSession,
        version: int,
        units: Mapping[str, tuple[str, str]],
        entries: Sequence[LedgerEntry],
        events: Sequence[Event],
    ) -> None:
        key = (session.org_id, session.cohort_id, session.index)
        tx = _Tx()
        tx.check(self.session_items.get(key, (None, -1))[1] == version, "session")
        tx.check(not set(units) & set(self.locators), "locator")
        placed = self._bill(entries)
        self._commit(tx, Conflict("this group session changed at the same time", field="attendance"), events)
        self.session_items[key] = (session, version + 1)
        self.locators.update(units)
        self._write_entries(placed)

    # ------------------------------------------------------------------ wait-list

    def waiting(self, org_id: str, transition: str) -> list[WaitEntry]:
        found = [e for (o, _), e in self.wait.items() if o == org_id and e.transition == transition]
        return sorted(found, key=lambda e: (e.since, e.person_id))

    def add(self, entry: WaitEntry) -> bool:
        if (entry.org_id, entry.person_id) in self.wait:
            return False
        self.wait[(entry.org_id, entry.person_id)] = entry
        return True

    # ------------------------------------------------------------------ workshops

    def book_workshop(self, workshop: Workshop, events: Sequence[Event]) -> None:
        tx = _Tx()
        tx.check((workshop.org_id, workshop.workshop_id) not in self.workshop_items, "workshop")
        for bucket in workshop.coach_buckets():
            tx.check((workshop.facilitator_id, bucket) not in self.coach_locks, "coach")
        refusal: Exception = (
            SlotTaken("the coach already has a session at that time", field="start")
            if "coach" in tx.failures
            else Conflict("this workshop already exists", field="workshop_id")
        )
        self._commit(tx, refusal, events)
        self.workshop_items[(workshop.org_id, workshop.workshop_id)] = (workshop, 1)
        for bucket in workshop.coach_buckets():
            self.coach_locks[(workshop.facilitator_id, bucket)] = workshop.workshop_id
        for person in workshop.participants:
            self.participations.add((workshop.org_id, person, "WORKSHOP", workshop.workshop_id))

    def workshop(self, org_id: str, workshop_id: str) -> tuple[Workshop, int] | None:
        return self.workshop_items.get((org_id, workshop_id))

    def end_workshop(
        self,
        workshop: Workshop,
        version: int,
        *,
        release: bool,
        units: Mapping[str, tuple[str, str]],
        entries: Sequence[LedgerEntry],
        events: Sequence[Event],
    ) -> None:
        key = (workshop.org_id, workshop.workshop_id)
        tx = _Tx()
        tx.check(self.workshop_items.get(key, (None, -1))[1] == version, "workshop")
        tx.check(not set(units) & set(self.locators), "locator")
        placed = self._bill(entries)
        self._commit(tx, Conflict("this workshop changed at the same time", field="workshop_id"), events)
        self.workshop_items[key] = (workshop, version + 1)
        if release:
            for bucket in workshop.coach_buckets():
                if self.coach_locks.get((workshop.facilitator_id, bucket)) == workshop.workshop_id:
                    del self.coach_locks[(workshop.facilitator_id, bucket)]
        self.locators.update(units)
        self._write_entries(placed)

    # ------------------------------------------------------------------ timeline

    def person_records(
        self, org_id: str, person_id: str
    ) -> tuple[list[Engagement], list[Booking], list[GroupSession], list[Workshop]]:
        engagements = [e for (o, p, _), e in self.engagements.items() if (o, p) == (org_id, person_id)]
        mine = {(kind, ref) for o, p, kind, ref in self.participations if (o, p) == (org_id, person_id)}
        sessions = [s for (o, c, _), (s, _) in self.session_items.items() if o == org_id and ("COHORT", c) in mine]
        workshops = [w for (o, wid), (w, _) in self.workshop_items.items() if o == org_id and ("WORKSHOP", wid) in mine]
        return engagements, list(self.bookings.get((org_id, person_id), [])), sessions, workshops

    def coach_engagement(self, coach_id: str, engagement_id: str) -> Engagement | None:
        return next(
            (e for (_, _, eid), e in self.engagements.items() if eid == engagement_id and e.coach_id == coach_id),
            None,
        )


@dataclass
class FakeRosterReader:
    coaches: list[RosterCoach]

    def get(self) -> Roster | None:
        return Roster(version=1, built_at=START, coaches=self.coaches)


def programme_price_book(org_id: str = ORG, **overrides: object) -> PriceBook:
    version = PriceBookVersionInput.model_validate(
        {
            "effective_from": date(2027, 1, 1),
            "currency": "EUR",
            "session_prices": {
                "SCALE": {"30": 9_000},
                "GROW": {"45": 13_500, "60": GROW_HOUR},
                "TOGETHER": {"60": TOGETHER_HOUR},
            },
            "no_show_fee_bps": 5_000,
            "late_cancel_fee_bps": 5_000,
        }
        | overrides
    )
    return PriceBook(org_id=org_id).with_version(version, now=START, actor="operator")


@dataclass
class ProgrammesWorld:
    """One org (UTC) with a price book, a GROW coach and a TOGETHER facilitator in the roster, a clock at START."""

    store: FakeProgrammeStore
    roster: FakeRosterReader
    clock: Clock

    @classmethod
    def create(cls, *, coaches: list[RosterCoach] | None = None, **book: object) -> ProgrammesWorld:
        store = FakeProgrammeStore()
        store.orgs[ORG] = make_org()
        store.books[ORG] = programme_price_book(**book)
        roster = FakeRosterReader(
            coaches
            if coaches is not None
            else [
                roster_coach(GROW_COACH, programs=["SCALE", "GROW"], weekly_availability=ALL_WEEK),
                roster_coach(
                    FACILITATOR,
                    programs=["TOGETHER"],
                    roles_held=[{"level": "manager", "function": "engineering", "industry": "technology", "years": 5}],
                ),
            ]
        )
        return cls(store=store, roster=roster, clock=Clock(START))

    def add_people(self, count: int, *, level: str = "first_time_manager", prefix: str = "p") -> list[str]:
        ids = []
        for n in range(count):
            person = make_person(f"{prefix}{n:02d}", level=level)
            self.store.persons[(ORG, person.person_id)] = person
            ids.append(person.person_id)
        return ids

    def set_catalogue(self, **changes: object) -> ProgrammeCatalogue:
        current = ProgrammeCatalogue.defaults(ORG).model_dump()
        for programme, values in changes.items():
            assert isinstance(values, dict)
            current[programme] = current[programme] | values
        catalogue = ProgrammeCatalogue.model_validate(current)
        self.store.catalogues[ORG] = (catalogue, 1)
        return catalogue

    def later(self, delta: timedelta) -> None:
        self.clock.now = self.clock.now + delta

    def at(self, moment: datetime) -> None:
        self.clock.now = moment

    @property
    def grow(self) -> GrowContext:
        return GrowContext(
            store=self.store, waitlist=self.store, waitlist_writer=self.store, roster=self.roster, clock=self.clock
        )

    @property
    def workshops(self) -> WorkshopContext:
        return WorkshopContext(store=self.store, roster=self.roster, clock=self.clock)

    @property
    def programmes(self) -> ProgrammesContext:
        return ProgrammesContext(catalogues=self.store, timeline=self.store, clock=self.clock)
