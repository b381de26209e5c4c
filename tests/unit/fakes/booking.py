"""In-memory ports of booking and session completion (coaching.services.booking / .completion).

`FakeBookingStore` keeps what adapters/booking_store.py keeps on DynamoDB and enforces the same
conditions its transactions carry, all or nothing: the engagement is the person's active one,
no 5-minute bucket of the coach (session + buffer) or of the person (session) is held twice,
an upcoming place is free (or its session has ended), the allowance counter stays under the
allowance, each org meter passes `OrgMeter.admits` (exact value when crossing a threshold),
versions match, the locator exists, a ledger entry's guard is new and its month open (else
the next open month). A failed condition raises the error the adapter maps it to. What a
change commits with it (its events) is kept in `committed`, one per event id, like the outbox.

`World` builds one org, person, (approved) coach and engagement with a clock, and the contexts
of both services on these fakes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from coaching.auth import Principal, Role
from coaching.domain.availability import AvailabilityPolicy, open_slots
from coaching.domain.booking import (
    MAX_UPCOMING_LIMIT,
    Booking,
    BookingPolicy,
    BookingReads,
    BookingRequest,
    BookingState,
    Limits,
    SessionLocator,
    bucket_start,
    coach_buckets,
    person_buckets,
)
from coaching.domain.coaches import AvailabilityRule, Coach, CoachCreate, VettingStatus
from coaching.domain.engagements import Engagement, EngagementStatus
from coaching.domain.errors import AllowanceExhausted, AlreadyBilled, Conflict, SlotTaken, UsageMoved
from coaching.domain.events import BudgetThresholdReached, Event
from coaching.domain.invoicing import EntryKind, LedgerEntry
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.pricing import Outcome, PriceBook, PriceBookVersionInput
from coaching.domain.roster import RosterCoach
from coaching.domain.taxonomy import Program
from coaching.services import booking as booking_service
from coaching.services.booking import BookingContext
from coaching.services.completion import CompletionContext

ORG = "org-1"
PERSON = "person-1"
COACH = "coach-1"
ENGAGEMENT = "engagement-1"
# A Monday morning; the coach works every day 07:00-21:00 UTC with a 10-minute buffer.
START = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
ALL_WEEK = [AvailabilityRule.model_validate({"weekday": d, "start": "07:00", "end": "21:00"}) for d in range(7)]
SCALE_PRICE = 9_000  # SCALE 30 minutes, EUR cents; no-show and late cancel at 50 %

COUNTER_RULES = frozenset({"allowance", "cap", "budget"})
# What the adapter says for each failed condition (adapters/booking_store.py `_MESSAGES`).
_MESSAGES: dict[str, tuple[str, str, type[Conflict]]] = {
    "engagement": ("this engagement is no longer active", "engagement_id", Conflict),
    "coach": ("that time was just booked; pick another slot", "start", SlotTaken),
    "person": ("you already have a session at that time", "start", SlotTaken),
    "upcoming": ("another booking took your last upcoming place at the same moment; try again", "start", SlotTaken),
    "booking": ("this booking changed at the same time; load it again", "booking_id", Conflict),
}


def _refusal(labels: list[str]) -> Exception:
    """The adapter's `_refusal`: any non-counter failure wins; a counter failure names its rule."""
    label = next((x for x in labels if x not in COUNTER_RULES), labels[0])
    if label in COUNTER_RULES:
        return AllowanceExhausted(label, field="program")
    message, field_name, kind = _MESSAGES[label]
    return kind(message, field=field_name)


def _next_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# ---------------------------------------------------------------------------- the ledger


@dataclass
class FakeLedger:
    """Entries by (org, billed month, entry id); guards make a session's usage and reversal unique."""

    entries: dict[tuple[str, str, str], LedgerEntry] = field(default_factory=dict)
    guards: dict[tuple[str, str, EntryKind], tuple[str, str]] = field(default_factory=dict)
    closed: set[tuple[str, str]] = field(default_factory=set)

    def placed(self, entry: LedgerEntry) -> LedgerEntry:
        """Where `commit_with_entry` would write it: refused if guarded, else the first open month."""
        if (entry.org_id, entry.booking_id, entry.kind) in self.guards:
            raise AlreadyBilled("this session is already billed", field="booking_id")
        candidate = entry
        while (candidate.org_id, candidate.billed_in) in self.closed:
            nxt = _next_period(candidate.billed_in)
            candidate = LedgerEntry.model_validate(candidate.model_dump() | {"billed_in": nxt})
        return candidate

    def write(self, entry: LedgerEntry) -> None:
        self.entries[(entry.org_id, entry.billed_in, entry.entry_id)] = entry
        self.guards[(entry.org_id, entry.booking_id, entry.kind)] = (entry.billed_in, entry.entry_id)

    def for_booking(self, booking_id: str) -> list[LedgerEntry]:
        return sorted((e for e in self.entries.values() if e.booking_id == booking_id), key=lambda e: e.entry_id)


@dataclass
class FakeBilling:
    """The completion service's LedgerReader, on the store's ledger."""

    ledger: FakeLedger

    def entry(self, org_id: str, booking_id: str, kind: EntryKind) -> LedgerEntry | None:
        where = self.ledger.guards.get((org_id, booking_id, kind))
        return self.ledger.entries.get((org_id, *where)) if where else None


# ---------------------------------------------------------------------------- the store


@dataclass
class _Transaction:
    """Conditions checked first (in the adapter's order), then every write applied; or nothing."""

    failures: list[str] = field(default_factory=list)
    writes: list[object] = field(default_factory=list)

    def check(self, ok: bool, label: str) -> None:
        if not ok:
            self.failures.append(label)


@dataclass
class FakeBookingStore:
    orgs: dict[str, Org] = field(default_factory=dict)
    people: dict[tuple[str, str], Person] = field(default_factory=dict)
    engagements: dict[tuple[str, str, str], Engagement] = field(default_factory=dict)
    # The ACTIVE#<program> marker: the one active engagement per person and program.
    active: dict[tuple[str, str, Program], str] = field(default_factory=dict)
    price_books: dict[str, PriceBook] = field(default_factory=dict)
    roster_pointer: object | None = "roster-v1"
    bookings: dict[tuple[str, str, str], tuple[Booking, int]] = field(default_factory=dict)
    situations: dict[str, str] = field(default_factory=dict)
    locators: dict[str, SessionLocator] = field(default_factory=dict)
    coach_locks: dict[tuple[str, str], str] = field(default_factory=dict)
    person_locks: dict[tuple[str, str, str], str] = field(default_factory=dict)
    places: dict[tuple[str, str, int], tuple[str, str]] = field(default_factory=dict)
    allowance_used: dict[tuple[str, str, Program, str], int] = field(default_factory=dict)
    meters: dict[tuple[str, str, str], int] = field(default_factory=dict)
    thresholds: set[tuple[str, str, str, int]] = field(default_factory=set)
    ledger: FakeLedger = field(default_factory=FakeLedger)
    committed: list[Event] = field(default_factory=list)
    # The coach network's records (the same items `FakeCoaches` reads: one table) and how often
    # a coach route read one.
    coach_records: dict[str, Coach] = field(default_factory=dict)
    coach_reads: int = 0
    # Fault injection: another writer commits this booking (from the same version) just before the next `end`.
    lose_next_end_to: Booking | None = None

    # ------------------------------------------------------------------ setup helpers

    def add_engagement(self, engagement: Engagement) -> None:
        self.engagements[(engagement.org_id, engagement.person_id, engagement.engagement_id)] = engagement
        if engagement.status is EngagementStatus.ACTIVE:
            self.active[(engagement.org_id, engagement.person_id, engagement.program)] = engagement.engagement_id
        else:
            self.active.pop((engagement.org_id, engagement.person_id, engagement.program), None)

    def events(self, kind: type[Event] | None = None) -> list[Event]:
        return [e for e in self.committed if kind is None or isinstance(e, kind)]

    def stored(self, booking: Booking) -> Booking:
        return self.bookings[(booking.org_id, booking.person_id, booking.booking_id)][0]

    # ------------------------------------------------------------------ reads

    def read_for_booking(self, org_id: str, person_id: str, engagement_id: str, periods: Iterable[str]) -> BookingReads:
        engagement = self.engagements.get((org_id, person_id, engagement_id))
        reads = BookingReads(
            engagement=(engagement, 1) if engagement else None,
            org=self.orgs.get(org_id),
            person=self.people.get((org_id, person_id)),
            roster_pointer=self.roster_pointer,
            places={},
            org_usage={},
            price_book=self.price_books.get(org_id),
        )
        for place in range(1, MAX_UPCOMING_LIMIT + 1):
            if (org_id, person_id, place) in self.places:
                reads.places[place] = self.places[(org_id, person_id, place)]
        for period in periods:
            for rule in ("cap", "budget"):
                reads.org_usage[(rule, period)] = self.meters.get((org_id, rule, period), 0)
        return reads

    def read_booking(self, org_id: str, person_id: str, booking_id: str) -> BookingState | None:
        found = self.bookings.get((org_id, person_id, booking_id))
        if found is None or org_id not in self.orgs:
            return None
        return BookingState(found[0], found[1], self.orgs[org_id], self.price_books.get(org_id))

    def engagement(self, org_id: str, person_id: str, engagement_id: str) -> Engagement | None:
        return self.engagements.get((org_id, person_id, engagement_id))

    def locate(self, booking_id: str) -> SessionLocator | None:
        return self.locators.get(booking_id)

    def locate_for_coach(self, booking_id: str, coach_id: str) -> tuple[SessionLocator | None, Coach | None]:
        self.coach_reads += 1
        return self.locators.get(booking_id), self.coach_records.get(coach_id)

    def for_person(self, org_id: str, person_id: str) -> list[Booking]:
        return [b for (o, p, _), (b, _) in self.bookings.items() if (o, p) == (org_id, person_id)]

    def for_coach(self, coach_id: str, start: datetime, end: datetime) -> list[Booking]:
        low = start.replace(hour=0, minute=0, second=0, microsecond=0)
        return sorted(
            (b for b, _ in self.bookings.values() if b.coach_id == coach_id and low <= b.start <= end),
            key=lambda b: b.start,
        )

    def calendar_holds(self, coach_id: str, start: datetime, end: datetime) -> list[tuple[str, datetime]]:
        return sorted(
            (ref, bucket_start(bucket))
            for (coach, bucket), ref in self.coach_locks.items()
            if coach == coach_id and start <= bucket_start(bucket) + timedelta(minutes=5) and bucket_start(bucket) < end
        )

    # ------------------------------------------------------------------ the transaction's pieces

    def _check_new(
        self, tx: _Transaction, booking: Booking, limits: Limits, *, replaces: str | None, locks: bool
    ) -> None:
        active = self.active.get((booking.org_id, booking.person_id, booking.program))
        tx.check(active == booking.engagement_id, "engagement")
        tx.check((booking.org_id, booking.person_id, booking.booking_id) not in self.bookings, "booking")
        place = self.places.get((booking.org_id, booking.person_id, booking.upcoming_slot))
        if replaces is None:
            tx.check(place is None or place[1] < limits.now.astimezone(UTC).isoformat(), "upcoming")
        else:
            tx.check(place is not None and place[0] == replaces, "upcoming")
        tx.check(booking.booking_id not in self.locators, "booking")
        if locks:
            for bucket in coach_buckets(booking):
                tx.check((booking.coach_id, bucket) not in self.coach_locks, "coach")
            for bucket in person_buckets(booking):
                tx.check((booking.org_id, booking.person_id, bucket) not in self.person_locks, "person")

    def _check_counters(self, tx: _Transaction, booking: Booking, limits: Limits) -> None:
        used = self.allowance_used.get(self._allowance_key(booking), 0)
        tx.check(used < limits.allowance, "allowance")
        for meter in limits.meters:
            stored = self.meters.get((booking.org_id, meter.rule, booking.policy.allowance_period))
            tx.check(meter.admits(stored), meter.rule)

    def _check_end(self, tx: _Transaction, booking: Booking, version: int, *, release: bool) -> None:
        current = self.bookings.get((booking.org_id, booking.person_id, booking.booking_id))
        tx.check(current is not None and current[1] == version, "booking")
        tx.check(booking.booking_id in self.locators, "booking")
        if release:
            place = self.places.get((booking.org_id, booking.person_id, booking.upcoming_slot))
            tx.check(place is not None and place[0] == booking.booking_id, "upcoming")
            for bucket in coach_buckets(booking):
                tx.check(self.coach_locks.get((booking.coach_id, bucket)) == booking.booking_id, "coach")
            for bucket in person_buckets(booking):
                key = (booking.org_id, booking.person_id, bucket)
                tx.check(self.person_locks.get(key) == booking.booking_id, "person")

    def _check_swap(self, tx: _Transaction, old: Booking, new: Booking) -> None:
        for bucket in set(coach_buckets(new)) - set(coach_buckets(old)):
            tx.check((new.coach_id, bucket) not in self.coach_locks, "coach")
        for bucket in set(person_buckets(new)) - set(person_buckets(old)):
            tx.check((new.org_id, new.person_id, bucket) not in self.person_locks, "person")

    def _check_events(self, tx: _Transaction, events: Sequence[Event]) -> None:
        known = {e.event_id for e in self.committed}
        for event in events:
            tx.check(event.event_id not in known, "booking")

    def _commit(self, tx: _Transaction) -> None:
        if tx.failures:
            raise _refusal(tx.failures)

    def _commit_counting(self, tx: _Transaction, booking: Booking, limits: Limits) -> None:
        """As the adapter: a meter that refused but has room after all moved under us (UsageMoved)."""
        try:
            self._commit(tx)
        except AllowanceExhausted as refusal:
            meter = next((m for m in limits.meters if m.rule == refusal.message), None)
            if meter is not None:
                used = self.meters.get((booking.org_id, meter.rule, booking.policy.allowance_period), 0)
                if used + meter.step <= meter.cap:
                    raise UsageMoved(meter.rule, used) from refusal
            raise

    @staticmethod
    def _allowance_key(booking: Booking) -> tuple[str, str, Program, str]:
        return booking.org_id, booking.person_id, booking.program, booking.policy.allowance_period

    def _save(self, booking: Booking, version: int | None) -> None:
        key = (booking.org_id, booking.person_id, booking.booking_id)
        self.bookings[key] = (booking, 1 if version is None else version + 1)
        self.locators[booking.booking_id] = SessionLocator(
            org_id=booking.org_id, person_id=booking.person_id, coach_id=booking.coach_id, status=booking.status.value
        )

    def _lock(self, booking: Booking) -> None:
        for bucket in coach_buckets(booking):
            self.coach_locks[(booking.coach_id, bucket)] = booking.booking_id
        for bucket in person_buckets(booking):
            self.person_locks[(booking.org_id, booking.person_id, bucket)] = booking.booking_id

    def _unlock(self, booking: Booking) -> None:
        for bucket in coach_buckets(booking):
            self.coach_locks.pop((booking.coach_id, bucket), None)
        for bucket in person_buckets(booking):
            self.person_locks.pop((booking.org_id, booking.person_id, bucket), None)

    def _place(self, booking: Booking) -> None:
        key = (booking.org_id, booking.person_id, booking.upcoming_slot)
        self.places[key] = (booking.booking_id, booking.end.astimezone(UTC).isoformat())

    def _add_counters(self, booking: Booking, limits: Limits) -> None:
        key = self._allowance_key(booking)
        self.allowance_used[key] = self.allowance_used.get(key, 0) + 1
        for meter in limits.meters:
            meter_key = (booking.org_id, meter.rule, booking.policy.allowance_period)
            self.meters[meter_key] = self.meters.get(meter_key, 0) + meter.step

    def _return_counters(self, booking: Booking) -> None:
        key = self._allowance_key(booking)
        self.allowance_used[key] -= 1
        period = booking.policy.allowance_period
        if booking.policy.counted_against_cap:
            self.meters[(booking.org_id, "cap", period)] -= 1
        if booking.policy.budget_minor:
            self.meters[(booking.org_id, "budget", period)] -= booking.policy.budget_minor

    # ------------------------------------------------------------------ the port's changes

    def book(self, booking: Booking, situation: str, limits: Limits, events: Sequence[Event]) -> None:
        tx = _Transaction()
        self._check_new(tx, booking, limits, replaces=None, locks=True)
        self._check_counters(tx, booking, limits)
        self._check_events(tx, events)
        self._commit_counting(tx, booking, limits)
        self._save(booking, None)
        self.situations[booking.booking_id] = situation
        self._place(booking)
        self._lock(booking)
        self._add_counters(booking, limits)
        self.committed += events

    def end(
        self,
        booking: Booking,
        version: int,
        *,
        release: bool,
        refund: bool,
        entry: LedgerEntry | None,
        events: Sequence[Event],
    ) -> LedgerEntry | None:
        if self.lose_next_end_to is not None:  # another writer commits first, from the same version
            winner, self.lose_next_end_to = self.lose_next_end_to, None
            state = self.read_booking(winner.org_id, winner.person_id, winner.booking_id)
            assert state is not None
            won_entry = None
            if winner.billable:
                outcome = Outcome(winner.status.value)
                won_entry = booking_service.billable_entry(state, winner, outcome, "winner", winner.updated_at)
            self.end(winner, version, release=release, refund=refund, entry=won_entry, events=[])
        placed = self.ledger.placed(entry) if entry is not None else None
        tx = _Transaction()
        self._check_end(tx, booking, version, release=release)
        self._check_events(tx, events)
        self._commit(tx)
        self._save(booking, version)
        if release:
            self.places.pop((booking.org_id, booking.person_id, booking.upcoming_slot))
            self._unlock(booking)
        if refund:
            self._return_counters(booking)
        if placed is not None:
            self.ledger.write(placed)
        self.committed += events
        return placed

    def move(self, old: Booking, new: Booking, version: int, limits: Limits | None, events: Sequence[Event]) -> None:
        tx = _Transaction()
        current = self.bookings.get((old.org_id, old.person_id, old.booking_id))
        tx.check(current is not None and current[1] == version, "booking")
        place = self.places.get((new.org_id, new.person_id, new.upcoming_slot))
        tx.check(place is not None and place[0] == new.booking_id, "upcoming")
        self._check_swap(tx, old, new)
        if limits is not None:
            self._check_counters(tx, new, limits)
        self._check_events(tx, events)
        self._commit_counting(tx, new, limits or Limits(0, new.updated_at))
        self._save(new, version)
        self._place(new)
        self._unlock(old)
        self._lock(new)
        if limits is not None:
            self._return_counters(old)
            self._add_counters(new, limits)
        self.committed += events

    def replace(
        self,
        old: Booking,
        version: int,
        new: Booking,
        limits: Limits,
        entry: LedgerEntry,
        events: Sequence[Event],
    ) -> LedgerEntry:
        placed = self.ledger.placed(entry)
        tx = _Transaction()
        self._check_end(tx, old, version, release=False)
        self._check_new(tx, new, limits, replaces=old.booking_id, locks=False)
        self._check_swap(tx, old, new)
        self._check_counters(tx, new, limits)
        self._check_events(tx, events)
        self._commit_counting(tx, new, limits)
        self._save(old, version)
        self._save(new, None)
        self._place(new)
        self._unlock(old)
        self._lock(new)
        self._add_counters(new, limits)
        self.ledger.write(placed)
        self.committed += events
        return placed

    def mark_threshold(self, reached: BudgetThresholdReached) -> bool:
        key = (reached.org_id, reached.meter, reached.period, reached.percent)
        if key in self.thresholds:
            return False
        self.thresholds.add(key)
        self.committed.append(reached)
        return True


# ---------------------------------------------------------------------------- roster and coaches


@dataclass
class FakeRoster:
    """The approved coaches of the roster the pointer names; a removed coach is suspended."""

    coaches: dict[str, RosterCoach] = field(default_factory=dict)

    def coach(self, pointer: object, coach_id: str) -> RosterCoach | None:
        return self.coaches.get(coach_id) if pointer is not None else None


@dataclass
class FakeCoaches:
    coaches: dict[str, Coach] = field(default_factory=dict)

    def get(self, coach_id: str) -> Coach | None:
        return self.coaches.get(coach_id)


# ---------------------------------------------------------------------------- test data


def price_book(org_id: str = ORG, **overrides: object) -> PriceBook:
    version = PriceBookVersionInput.model_validate(
        {
            "effective_from": date(2027, 1, 1),
            "currency": "EUR",
            "session_prices": {"SCALE": {"30": SCALE_PRICE}, "GROW": {"45": 12_000}},
            "no_show_fee_bps": 5_000,
            "late_cancel_fee_bps": 5_000,
        }
        | overrides
    )
    return PriceBook(org_id=org_id).with_version(version, now=START, actor="operator")


def make_org(policy: BookingPolicy | None = None, *, time_zone: str = "UTC") -> Org:
    return Org(
        org_id=ORG,
        name="Org",
        time_zone=time_zone,
        currency="EUR",
        industry="technology",
        min_reporting_group_size=5,
        booking=policy or BookingPolicy(allowances={"SCALE": {"sessions": 4}}, max_upcoming=4),
        created_at=START,
        updated_at=START,
    )


def make_person(person_id: str = PERSON, *, level: str = "manager", time_zone: str = "UTC") -> Person:
    return Person(
        person_id=person_id,
        org_id=ORG,
        external_hr_id=f"hr-{person_id}",
        name="Lee",
        email="lee@example.com",
        level=level,
        function="engineering",
        languages=["en"],
        time_zone=time_zone,
        created_at=START,
        updated_at=START,
    )


def roster_coach(coach_id: str = COACH, **overrides: object) -> RosterCoach:
    fields: dict[str, object] = {
        "coach_id": coach_id,
        "name": "Ada Coach",
        "headline": "",
        "languages": ["en"],
        "time_zone": "UTC",
        "industries": [],
        "functions": [],
        "roles_held": [],
        "specialties": [],
        "programs": ["SCALE", "GROW"],
        "capacity": 50,
        "weekly_availability": ALL_WEEK,
        "buffer_minutes": 10,
        "min_notice_hours": 1,
        "horizon_days": 120,
        "employer_org_ids": [],
    }
    return RosterCoach.model_validate(fields | overrides)


def coach_profile(
    coach_id: str = COACH, name: str = "Ada Coach", status: VettingStatus = VettingStatus.APPROVED
) -> Coach:
    profile = CoachCreate(
        name=name,
        email="ada@example.com",
        languages=["en"],
        time_zone="UTC",
        operating_experience_years=12,
        paid_coaching_hours=400,
        programs=["SCALE"],
        capacity=5,
    )
    return Coach(coach_id=coach_id, vetting_status=status, created_at=START, updated_at=START, **profile.model_dump())


def make_engagement(
    person_id: str = PERSON, engagement_id: str = ENGAGEMENT, *, program: str = "SCALE", coach_id: str = COACH
) -> Engagement:
    return Engagement(
        engagement_id=engagement_id,
        org_id=ORG,
        person_id=person_id,
        coach_id=coach_id,
        program=program,
        start_date="2027-02-01",
        created_at=START,
    )


def employee(person_id: str = PERSON) -> Principal:
    return Principal(person_id=person_id, org_id=ORG, roles=frozenset({Role.EMPLOYEE}))


def as_coach(coach_id: str = COACH) -> Principal:
    return Principal(person_id=coach_id, org_id=None, roles=frozenset({Role.COACH}))


OPERATOR = Principal(person_id="operator-1", org_id=None, roles=frozenset({Role.OPERATOR}))


@dataclass
class World:
    """One org (UTC, price book), one person engaged in SCALE with one all-week coach, a clock at START."""

    store: FakeBookingStore
    roster: FakeRoster
    coaches: FakeCoaches
    clock: Clock
    engagement: Engagement

    @classmethod
    def create(cls, policy: BookingPolicy | None = None, *, org_time_zone: str = "UTC") -> World:
        store = FakeBookingStore()
        store.orgs[ORG] = make_org(policy, time_zone=org_time_zone)
        store.people[(ORG, PERSON)] = make_person()
        store.price_books[ORG] = price_book()
        engagement = make_engagement()
        store.add_engagement(engagement)
        roster = FakeRoster({COACH: roster_coach()})
        coaches = FakeCoaches({COACH: coach_profile()})
        store.coach_records = coaches.coaches  # one coach record, read by both ports
        return cls(store, roster, coaches, Clock(START), engagement)

    def set_coach_status(self, status: VettingStatus, coach_id: str = COACH) -> None:
        """An operator's vetting decision on the coach's record (the roster is left as it was)."""
        coach = self.coaches.coaches[coach_id]
        self.coaches.coaches[coach_id] = Coach.model_validate(coach.model_dump() | {"vetting_status": status})

    def set_active(self, active: bool, person_id: str = PERSON) -> None:
        person = self.store.people[(ORG, person_id)]
        self.store.people[(ORG, person_id)] = Person.model_validate(person.model_dump() | {"active": active})

    @property
    def booking_ctx(self) -> BookingContext:
        return BookingContext(store=self.store, roster=self.roster, coaches=self.coaches, clock=self.clock)

    @property
    def completion_ctx(self) -> CompletionContext:
        return CompletionContext(store=self.store, billing=FakeBilling(self.store.ledger), clock=self.clock)

    def set_policy(self, policy: BookingPolicy) -> None:
        self.store.orgs[ORG] = Org.model_validate(self.store.orgs[ORG].model_dump() | {"booking": policy})

    def add_person(self, person_id: str, *, level: str = "manager") -> Engagement:
        """Another person of the org, engaged in SCALE with the same coach."""
        self.store.people[(ORG, person_id)] = make_person(person_id, level=level)
        engagement = make_engagement(person_id, f"engagement-{person_id}")
        self.store.add_engagement(engagement)
        return engagement

    def slots(self, days: int = 20, *, length: int = 30, every: int = 4) -> list[datetime]:
        """Open starts from 2 days on, every `every`-th 15-minute slot (an hour apart: no overlaps)."""
        policy = AvailabilityPolicy(time_zone="UTC", weekly=ALL_WEEK, min_notice_hours=1, horizon_days=120)
        begin = START + timedelta(days=2)
        offered = open_slots(policy, [], length, begin, begin + timedelta(days=days), START, "UTC")
        return [slot.start_utc for slot in offered[::every]]

    def request(self, start: datetime, engagement: Engagement | None = None) -> BookingRequest:
        return BookingRequest(
            engagement_id=(engagement or self.engagement).engagement_id,
            start=start,
            focus_competencies=["delegation"],
            situation="Preparing a reorganisation conversation.",
        )

    def book(self, start: datetime, engagement: Engagement | None = None) -> Booking:
        who = employee((engagement or self.engagement).person_id)
        return booking_service.book(who, self.request(start, engagement), self.booking_ctx)
