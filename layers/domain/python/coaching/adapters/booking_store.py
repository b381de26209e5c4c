"""Persistence for bookings: every change of a booking is one transaction.

Booking = the booking item + its confidential situation + a condition that the engagement
is still the person's active one + one lock per 5-minute bucket on the coach's and the
person's calendars. Any taken bucket cancels the whole transaction: nothing half-written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from coaching.adapters import keys, outbox
from coaching.adapters.dynamo import (
    MainItem,
    MainTableMeta,
    MarkerItem,
    SituationItem,
    backoff,
    batch_read,
    connection,
    failed_keys,
    get_entity,
)
from coaching.adapters.roster_store import RosterPointer
from coaching.domain.booking import (
    BUCKET_MINUTES,
    MAX_UPCOMING_LIMIT,
    Booking,
    BookingReads,
    BookingState,
    Limits,
    OrgMeter,
    SessionLocator,
    bucket_start,
    buckets,
    coach_buckets,
    person_buckets,
)
from coaching.domain.coaches import Coach
from coaching.domain.engagements import Engagement
from coaching.domain.errors import AllowanceExhausted, Conflict, SlotTaken, UsageMoved
from coaching.domain.events import BudgetThresholdReached, Event
from coaching.domain.orgs import Org
from coaching.domain.people import Person

# The billing side (ledger entries, price books) is imported where a booking is billed or priced:
# functions that only read a coach's sessions (matching) never load it (cold start).
if TYPE_CHECKING:
    from coaching.domain.invoicing import LedgerEntry
    from coaching.domain.pricing import PriceBook

# Key builders other modules import from here; their one home is `keys`.
coach_calendar_pk = keys.coach_calendar_pk
person_calendar_pk = keys.person_calendar_pk
locator_key = keys.locator_key
sessions_index_pk = keys.sessions_index_pk
meter_key = keys.meter_key
upcoming_key = keys.upcoming_key
METER_PREFIXES = keys.METER_PREFIXES

_MESSAGES = {
    "engagement": ("this engagement is no longer active", "engagement_id", Conflict),
    "coach": ("that time was just booked; pick another slot", "start", SlotTaken),
    "person": ("you already have a session at that time", "start", SlotTaken),
    "upcoming": ("another booking took your last upcoming place at the same moment; try again", "start", SlotTaken),
    "booking": ("this booking changed at the same time; load it again", "booking_id", Conflict),
}


COUNTER_RULES = frozenset({"allowance", "cap", "budget"})
# A threshold marker written at the same moment by another transaction: tries before giving up.
_THRESHOLD_ATTEMPTS = 4


def _label(key: tuple[str, str]) -> str:
    pk, sk = key
    if keys.is_coach_calendar_pk(pk):
        return "coach"
    if keys.is_calendar_pk(pk):
        return "person"
    if sk.startswith(keys.ACTIVE_PREFIX):
        return "engagement"
    if sk.startswith(keys.UPCOMING_PREFIX):
        return "upcoming"
    if sk.startswith(keys.ALLOWANCE_PREFIX):
        return "allowance"
    return keys.meter_rule(sk) or "booking"


def _refusal(failed: list[tuple[str, str]]) -> Exception:
    if not failed:
        return Conflict("the booking could not be saved; try again")
    labels = [_label(key) for key in failed]
    # A counter refusal explains the rule; any other failure wins, since the counters were fine.
    label = next((x for x in labels if x not in COUNTER_RULES), labels[0])
    if label in COUNTER_RULES:
        # The service explains the rule and when it resets; here we only say which rule.
        return AllowanceExhausted(label, field="program")
    message, field_name, kind = _MESSAGES[label]
    return kind(message, field=field_name)


def _booking_item(booking: Booking, version: int | None) -> MainItem:
    item = MainItem(
        keys.person_pk(booking.org_id, booking.person_id),
        keys.booking_sk(booking.booking_id),
        kind="booking",
        body=booking.model_dump_json(),
    )
    item.gsi1pk = keys.coach_bookings_pk(booking.coach_id)
    item.gsi1sk = keys.coach_booking_index_sk(booking.start, booking.booking_id)
    if version is not None:
        item.version = version
    return item


def _locks(booking: Booking) -> list[MarkerItem]:
    ref = booking.booking_id
    coach_pk = keys.coach_calendar_pk(booking.coach_id)
    person_pk = keys.person_calendar_pk(booking.org_id, booking.person_id)
    coach = [MarkerItem(coach_pk, keys.calendar_lock_sk(b), kind="coach_lock", ref=ref) for b in coach_buckets(booking)]
    person = [
        MarkerItem(person_pk, keys.calendar_lock_sk(b), kind="person_lock", ref=ref) for b in person_buckets(booking)
    ]
    return coach + person


class CounterItem(Model):
    """A number kept exact by conditional ADDs inside booking transactions."""

    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="counter")
    used = NumberAttribute(null=True)


class UpcomingPlace(Model):
    """One of a person's `max_upcoming` places; a place whose session is past is free again."""

    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="upcoming_place")
    ref = UnicodeAttribute()
    ends_at = UnicodeAttribute()  # ISO UTC: comparable as a string


def allowance_key(booking: Booking) -> tuple[str, str]:
    return keys.allowance_key(booking.org_id, booking.person_id, booking.program.value, booking.policy.allowance_period)


def _engagement_and_version(item: dict[str, Any]) -> tuple[Engagement, int]:
    version = int(item["version"]["N"]) if "version" in item else 0
    return Engagement.model_validate_json(item["body"]["S"]), version


def _meter_condition(meter: OrgMeter) -> Any:
    """`OrgMeter.admits` as a DynamoDB condition on the stored counter (absent counts as zero)."""
    if meter.crossed():
        exact = CounterItem.used == meter.seen
        return CounterItem.used.does_not_exist() | exact if meter.seen == 0 else exact
    room = CounterItem.used <= meter.cap - meter.step
    for threshold in meter.thresholds:
        room &= (CounterItem.used < threshold - meter.step) | (CounterItem.used >= threshold)
    return room | CounterItem.used.does_not_exist() if meter.admits(0) else room


class _SessionsIndex(GlobalSecondaryIndex["LocatorItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class LocatorItem(Model):
    """Where a booking lives, for callers who know only its id (its coach, operators), and,
    through gsi1, every session of an org's month with its status (reconciliation reads it)."""

    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="booking_locator")
    org_id = UnicodeAttribute()
    person_id = UnicodeAttribute()
    coach_id = UnicodeAttribute()
    status = UnicodeAttribute()
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    sessions = _SessionsIndex()


def _locator(booking: Booking) -> LocatorItem:
    return LocatorItem(
        *keys.locator_key(booking.booking_id),
        org_id=booking.org_id,
        person_id=booking.person_id,
        coach_id=booking.coach_id,
        status=booking.status.value,
        gsi1pk=keys.sessions_index_pk(booking.org_id, booking.policy.allowance_period),
        gsi1sk=keys.sessions_index_sk(booking.booking_id),
    )


def _place(booking: Booking) -> UpcomingPlace:
    return UpcomingPlace(*keys.upcoming_key(booking.org_id, booking.person_id, booking.upcoming_slot),
                         ref=booking.booking_id, ends_at=booking.end.astimezone(UTC).isoformat())  # fmt: skip


def _add_counters(transaction: TransactWrite, booking: Booking, limits: Limits) -> None:
    transaction.update(
        CounterItem(*allowance_key(booking)),
        actions=[CounterItem.used.add(1), CounterItem.kind.set("allowance")],
        condition=CounterItem.used.does_not_exist() | (CounterItem.used < limits.allowance),
    )
    for meter in limits.meters:
        transaction.update(
            CounterItem(*keys.meter_key(booking.org_id, meter.rule, booking.policy.allowance_period)),
            actions=[CounterItem.used.add(meter.step), CounterItem.kind.set(f"org_{meter.rule}")],
            condition=_meter_condition(meter),
        )


def _return_counters(transaction: TransactWrite, booking: Booking) -> None:
    transaction.update(CounterItem(*allowance_key(booking)), actions=[CounterItem.used.add(-1)],
                       condition=CounterItem.used > 0)  # fmt: skip
    period = booking.policy.allowance_period
    if booking.policy.counted_against_cap:
        cap = CounterItem(*keys.meter_key(booking.org_id, "cap", period))
        transaction.update(cap, actions=[CounterItem.used.add(-1)], condition=CounterItem.used > 0)
    if booking.policy.budget_minor:
        amount = booking.policy.budget_minor
        transaction.update(CounterItem(*keys.meter_key(booking.org_id, "budget", period)),
                           actions=[CounterItem.used.add(-amount)], condition=CounterItem.used >= amount)  # fmt: skip


def _add_new_booking(
    transaction: TransactWrite,
    booking: Booking,
    situation: str | None,
    limits: Limits,
    *,
    replaces: str | None = None,
    locks: bool = True,
) -> None:
    """A new booking's items: conditions that make it exclusive, counters that make it fair.

    `replaces` is the booking whose upcoming place this one takes over in the same transaction.
    """
    active = MarkerItem(keys.person_pk(booking.org_id, booking.person_id), keys.active_sk(booking.program.value))
    transaction.condition_check(MarkerItem, active.pk, active.sk, condition=MarkerItem.ref == booking.engagement_id)
    transaction.save(_booking_item(booking, None))
    if situation is not None:
        transaction.save(
            SituationItem(
                keys.person_pk(booking.org_id, booking.person_id),
                keys.booking_situation_sk(booking.booking_id),
                text=situation,
                created_at=booking.created_at.isoformat(),
            )
        )
    place_free = UpcomingPlace.pk.does_not_exist() | (UpcomingPlace.ends_at < limits.now.astimezone(UTC).isoformat())
    transaction.save(_place(booking), condition=place_free if replaces is None else UpcomingPlace.ref == replaces)
    transaction.save(_locator(booking), condition=LocatorItem.pk.does_not_exist())
    if locks:
        for lock in _locks(booking):
            transaction.save(lock, condition=MarkerItem.pk.does_not_exist())
    _add_counters(transaction, booking, limits)


def _add_end(transaction: TransactWrite, booking: Booking, version: int, *, release: bool, refund: bool) -> None:
    """A booking reaching a final state: its item, its status in the locator and, for a
    cancellation, the calendar and the upcoming place back; `refund` returns the unit."""
    transaction.save(_booking_item(booking, version))
    transaction.update(
        LocatorItem(*keys.locator_key(booking.booking_id)),
        actions=[LocatorItem.status.set(booking.status.value)],
        condition=LocatorItem.pk.exists(),
    )
    if release:
        transaction.delete(
            UpcomingPlace(*keys.upcoming_key(booking.org_id, booking.person_id, booking.upcoming_slot)),
            condition=UpcomingPlace.ref == booking.booking_id,
        )
        for lock in _locks(booking):
            transaction.delete(lock, condition=MarkerItem.ref == booking.booking_id)
    if refund:
        _return_counters(transaction, booking)


def _swap_locks(transaction: TransactWrite, old: Booking, new: Booking) -> None:
    """Move calendar locks from one time to another. A bucket both times share is written
    once (an item may appear only once in a transaction), re-owned by the new booking."""
    old_locks = {(lock.pk, lock.sk): lock for lock in _locks(old)}
    new_locks = {(lock.pk, lock.sk): lock for lock in _locks(new)}
    for key, lock in old_locks.items():
        if key not in new_locks:
            transaction.delete(lock, condition=MarkerItem.ref == old.booking_id)
    for key, lock in new_locks.items():
        shared = key in old_locks
        if not shared or new.booking_id != old.booking_id:
            condition = MarkerItem.ref == old.booking_id if shared else MarkerItem.pk.does_not_exist()
            transaction.save(lock, condition=condition)


def _commit(transaction: TransactWrite) -> None:
    try:
        with transaction:
            pass
    except TransactWriteError as exc:
        raise _refusal(failed_keys(transaction, exc)) from exc


def _threshold_marker(reached: BudgetThresholdReached) -> MarkerItem:
    sk = keys.threshold_sk(reached.meter, reached.period, reached.percent)
    return MarkerItem(keys.org_pk(reached.org_id), sk, kind="threshold", ref=reached.period)


def _price_book(item: dict[str, Any] | None) -> PriceBook | None:
    from coaching.domain.pricing import PriceBook

    return PriceBook.model_validate_json(item["body"]["S"]) if item else None


class BookingStore:
    """Every read and write of booking and session completion; each change is one transaction
    that also carries the change's events (the outbox), so an event exists exactly when its change does."""

    # ------------------------------------------------------------------ reads

    def read_for_booking(self, org_id: str, person_id: str, engagement_id: str, periods: Iterable[str]) -> BookingReads:
        """Engagement, org, person, the roster pointer, every upcoming place and the org's usage
        counters for `periods`: one round trip, so a booking costs this read plus its transaction."""
        person_partition = keys.person_pk(org_id, person_id)
        engagement_key = (person_partition, keys.engagement_sk(engagement_id))
        org_key = (keys.org_pk(org_id), keys.ORG_PROFILE_SK)
        person_key = (keys.people_pk(org_id), keys.person_sk(person_id))
        pointer_key = (keys.ROSTER_PK, keys.ROSTER_POINTER_SK)
        place_keys = {keys.upcoming_key(org_id, person_id, n): n for n in range(1, MAX_UPCOMING_LIMIT + 1)}
        usage_keys = {
            keys.meter_key(org_id, rule, period): (rule, period) for period in periods for rule in keys.METER_PREFIXES
        }
        book_key = (keys.org_pk(org_id), keys.PRICE_BOOK_SK)
        found = batch_read([engagement_key, org_key, person_key, pointer_key, book_key, *place_keys, *usage_keys])
        engagement_item = found.get(engagement_key)
        org_item, person_item, pointer_item = found.get(org_key), found.get(person_key), found.get(pointer_key)
        reads = BookingReads(
            engagement=_engagement_and_version(engagement_item) if engagement_item else None,
            org=Org.model_validate_json(org_item["body"]["S"]) if org_item else None,
            person=Person.model_validate_json(person_item["body"]["S"]) if person_item else None,
            roster_pointer=RosterPointer.from_raw_data(pointer_item) if pointer_item else None,
            places={},
            org_usage={},
            price_book=_price_book(found.get(book_key)),
        )
        for place_key, number in place_keys.items():
            if place_key in found:
                place = found[place_key]
                reads.places[number] = (place["ref"]["S"], place["ends_at"]["S"])
        for usage_key_, rule_period in usage_keys.items():
            counter = found.get(usage_key_)
            reads.org_usage[rule_period] = int(counter["used"]["N"]) if counter and "used" in counter else 0
        return reads

    def read_booking(self, org_id: str, person_id: str, booking_id: str) -> BookingState | None:
        """The booking, its org and the price book in one BatchGetItem."""
        booking_key = (keys.person_pk(org_id, person_id), keys.booking_sk(booking_id))
        org_key = (keys.org_pk(org_id), keys.ORG_PROFILE_SK)
        book_key = (keys.org_pk(org_id), keys.PRICE_BOOK_SK)
        found = batch_read([booking_key, org_key, book_key])
        if booking_key not in found or org_key not in found:
            return None
        item = found[booking_key]
        return BookingState(
            booking=Booking.model_validate_json(item["body"]["S"]),
            version=int(item["version"]["N"]) if "version" in item else 0,
            org=Org.model_validate_json(found[org_key]["body"]["S"]),
            price_book=_price_book(found.get(book_key)),
        )

    def engagement(self, org_id: str, person_id: str, engagement_id: str) -> Engagement | None:
        """The engagement as stored now (strongly consistent), or None."""
        return get_entity(keys.person_pk(org_id, person_id), keys.engagement_sk(engagement_id), Engagement)

    def locate(self, booking_id: str) -> SessionLocator | None:
        try:
            item = LocatorItem.get(*keys.locator_key(booking_id), consistent_read=True)
        except LocatorItem.DoesNotExist:
            return None
        return SessionLocator(org_id=item.org_id, person_id=item.person_id, coach_id=item.coach_id, status=item.status)

    def locate_for_coach(self, booking_id: str, coach_id: str) -> tuple[SessionLocator | None, Coach | None]:
        """The booking's locator and the calling coach's record in one BatchGetItem (strongly
        consistent): the coach's vetting status costs no round trip of its own."""
        locator_key, coach_key = keys.locator_key(booking_id), (keys.COACHES_PK, keys.coach_sk(coach_id))
        found = batch_read([locator_key, coach_key])
        item, coach_item = found.get(locator_key), found.get(coach_key)
        locator = (
            SessionLocator(
                org_id=item["org_id"]["S"],
                person_id=item["person_id"]["S"],
                coach_id=item["coach_id"]["S"],
                status=item["status"]["S"],
            )
            if item
            else None
        )
        coach = Coach.model_validate_json(coach_item["body"]["S"]) if coach_item else None
        return locator, coach

    def for_person(self, org_id: str, person_id: str) -> list[Booking]:
        items = MainItem.query(
            keys.person_pk(org_id, person_id), MainItem.sk.startswith(keys.BOOKING_PREFIX), consistent_read=True
        )
        return [Booking.model_validate_json(item.body) for item in items]

    def for_coach(self, coach_id: str, start: datetime, end: datetime) -> list[Booking]:
        """The coach's sessions starting in [start - 1 day, end): enough to find every overlap."""
        low, high = keys.coach_bookings_between(start.replace(hour=0, minute=0, second=0, microsecond=0), end)
        items = MainItem.gsi1.query(keys.coach_bookings_pk(coach_id), MainItem.gsi1sk.between(low, high))
        return [Booking.model_validate_json(item.body) for item in items]

    def calendar_holds(self, coach_id: str, start: datetime, end: datetime) -> list[tuple[str, datetime]]:
        """The coach's calendar locks in [start, end): one Query of the lock partition's sort-key range."""
        low = keys.calendar_lock_sk(buckets(start, start + timedelta(minutes=BUCKET_MINUTES))[0])
        high = keys.calendar_lock_sk(end.astimezone(UTC).strftime("%Y%m%dT%H%MZ"))
        items = MarkerItem.query(keys.coach_calendar_pk(coach_id), MarkerItem.sk.between(low, high))
        return [
            (str(item.ref), bucket_start(item.sk.removeprefix(keys.calendar_lock_sk(""))))
            for item in items
            if item.sk < high
        ]

    def sessions_in(self, org_id: str, period: str) -> list[LocatorItem]:
        """Every session of an org's month with its status (gsi1; for reconciliation)."""
        return list(LocatorItem.sessions.query(keys.sessions_index_pk(org_id, period)))

    def org_meter(self, org_id: str, rule: str, period: str) -> int:
        try:
            return int(CounterItem.get(*keys.meter_key(org_id, rule, period), consistent_read=True).used or 0)
        except CounterItem.DoesNotExist:
            return 0

    # ------------------------------------------------------------------ changes

    def book(self, booking: Booking, situation: str, limits: Limits, events: Sequence[Event]) -> None:
        """Booking, situation, counters, the upcoming place, the locator, the calendar locks
        and the events, with the engagement still active: all or nothing."""
        transaction = TransactWrite(connection=connection())
        _add_new_booking(transaction, booking, situation, limits)
        outbox.add_events(transaction, events)
        self._commit_counting(transaction, booking, limits)

    def _commit_counting(self, transaction: TransactWrite, booking: Booking, limits: Limits) -> None:
        try:
            _commit(transaction)
        except AllowanceExhausted as refusal:
            meter = next((m for m in limits.meters if m.rule == refusal.message), None)
            if meter is not None:
                used = self.org_meter(booking.org_id, meter.rule, booking.policy.allowance_period)
                if used + meter.step <= meter.cap:
                    raise UsageMoved(meter.rule, used) from refusal
            raise

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
        """Write a booking's new state (a final one, or a confirmation or credit after it); a
        billable one writes its ledger entry in the same transaction (billed in the first open
        month), so it can never be lost or doubled. `release` frees the calendar and the place,
        `refund` returns the unit."""

        def write(transaction: TransactWrite) -> None:
            _add_end(transaction, booking, version, release=release, refund=refund)
            outbox.add_events(transaction, events)

        if entry is None:
            transaction = TransactWrite(connection=connection())
            write(transaction)
            _commit(transaction)
            return None
        from coaching.adapters.billing_store import commit_with_entry

        return commit_with_entry(write, entry, _refusal)

    def move(self, old: Booking, new: Booking, version: int, limits: Limits | None, events: Sequence[Event]) -> None:
        """Reschedule in place: same booking, new time. Locks the times have in common stay;
        `limits` (when the month changed) moves the allowance unit to the new month."""
        transaction = TransactWrite(connection=connection())
        transaction.save(_booking_item(new, version))
        transaction.save(_place(new), condition=UpcomingPlace.ref == new.booking_id)
        transaction.save(_locator(new), condition=LocatorItem.pk.exists())
        _swap_locks(transaction, old, new)
        if limits is not None:
            _return_counters(transaction, old)
            _add_counters(transaction, new, limits)
        outbox.add_events(transaction, events)
        self._commit_counting(transaction, new, limits or Limits(0, new.updated_at))

    def replace(
        self,
        old: Booking,
        version: int,
        new: Booking,
        limits: Limits,
        entry: LedgerEntry,
        events: Sequence[Event],
    ) -> LedgerEntry:
        """A billed late reschedule: the old session ends late-cancelled (with its usage entry)
        and a new one takes its place, its calendar UID and its upcoming place, atomically."""

        def write(transaction: TransactWrite) -> None:
            _add_end(transaction, old, version, release=False, refund=False)
            _add_new_booking(transaction, new, None, limits, replaces=old.booking_id, locks=False)
            _swap_locks(transaction, old, new)
            outbox.add_events(transaction, events)

        from coaching.adapters.billing_store import commit_with_entry

        return commit_with_entry(write, entry, _refusal)

    def mark_threshold(self, reached: BudgetThresholdReached) -> bool:
        """Record that an org meter crossed a threshold, with its event, in one transaction.

        True exactly once per org, meter, month and threshold, however many bookings cross it
        (a threshold crossed again after cancellations finds its marker and stays quiet).
        """
        marker = _threshold_marker(reached)
        for attempt in range(_THRESHOLD_ATTEMPTS):
            transaction = TransactWrite(connection=connection())
            transaction.save(marker, condition=MarkerItem.pk.does_not_exist())
            outbox.add_events(transaction, [reached])
            try:
                with transaction:
                    pass
            except TransactWriteError as exc:
                if failed_keys(transaction, exc):
                    return False  # the marker (and so its event, same id) is already there
                if attempt == _THRESHOLD_ATTEMPTS - 1:
                    raise
                backoff(attempt)  # a concurrent transaction on the marker: try again
                continue
            return True
        return False
