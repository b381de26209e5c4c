"""Persistence for bookings: one transaction books, one transaction cancels.

Booking = the booking item + its confidential situation + a condition that the engagement
is still the person's active one + one lock per 5-minute bucket on the coach's and the
person's calendars. Any taken bucket cancels the whole transaction: nothing half-written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from coaching.adapters.dynamo import MainItem, MainTableMeta, _connection
from coaching.adapters.matching_store import MarkerItem, SituationItem, person_pk
from coaching.domain.booking import Booking, coach_buckets, person_buckets
from coaching.errors import Conflict, InvalidInput


class SlotTaken(Conflict):
    pass


class PolicyRefused(InvalidInput):
    """A rule of the org's policy refused the booking; the message says which and when it resets."""

    code = "policy_refused"


_MESSAGES = {
    "engagement": ("this engagement is no longer active", "engagement_id", Conflict),
    "coach": ("that time was just booked; pick another slot", "start", SlotTaken),
    "person": ("you already have a session at that time", "start", SlotTaken),
    "upcoming": ("another booking took your last upcoming place at the same moment; try again", "start", SlotTaken),
    "booking": ("the booking could not be saved; try again", "start", Conflict),
    "situation": ("the booking could not be saved; try again", "start", Conflict),
}


class AllowanceExhausted(PolicyRefused):
    pass


def _refusal(exc: TransactWriteError, labels: list[str]) -> Exception:
    reasons = exc.cancellation_reasons or []
    failed = [i for i, r in enumerate(reasons) if r is not None and r.code == "ConditionalCheckFailed"]
    if not failed or failed[0] >= len(labels):
        return Conflict("the booking could not be saved; try again")
    label = labels[failed[0]]
    if label in {"allowance", "cap"}:
        # The service explains the rule and when it resets; here we only say which rule.
        return AllowanceExhausted(label, field="program")
    message, field_name, kind = _MESSAGES[label]
    return kind(message, field=field_name)


def coach_calendar_pk(coach_id: str) -> str:
    return f"NETWORK#COACH#{coach_id}#CAL"


def person_calendar_pk(org_id: str, person_id: str) -> str:
    return f"ORG#{org_id}#PERSON#{person_id}#CAL"


def _booking_item(booking: Booking, version: int | None) -> MainItem:
    item = MainItem(
        person_pk(booking.org_id, booking.person_id),
        f"BOOKING#{booking.booking_id}",
        kind="booking",
        body=booking.model_dump_json(),
    )
    item.gsi1pk = f"COACH#{booking.coach_id}#BOOKINGS"
    item.gsi1sk = f"{booking.start.isoformat()}#{booking.booking_id}"
    if version is not None:
        item.version = version
    return item


def _locks(booking: Booking) -> list[MarkerItem]:
    coach = [
        MarkerItem(coach_calendar_pk(booking.coach_id), f"T#{b}", kind="coach_lock", ref=booking.booking_id)
        for b in coach_buckets(booking)
    ]
    person = [
        MarkerItem(person_calendar_pk(booking.org_id, booking.person_id), f"T#{b}", kind="person_lock",
                   ref=booking.booking_id)
        for b in person_buckets(booking)
    ]  # fmt: skip
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
    return (person_pk(booking.org_id, booking.person_id),
            f"ALLOWANCE#{booking.program.value}#{booking.policy.allowance_period}")  # fmt: skip


def usage_key(booking: Booking) -> tuple[str, str]:
    return f"ORG#{booking.org_id}#", f"USAGE#{booking.policy.allowance_period}"


def upcoming_key(org_id: str, person_id: str, place: int) -> tuple[str, str]:
    return person_pk(org_id, person_id), f"UPCOMING#{place:02d}"


@dataclass(frozen=True, slots=True)
class Limits:
    allowance: int
    session_cap: int | None
    now: datetime


class BookingStore:
    def book(self, booking: Booking, situation: str, limits: Limits) -> None:
        """Booking, situation, counters, the upcoming place and the calendar locks: all or nothing."""
        active = MarkerItem(person_pk(booking.org_id, booking.person_id), f"ACTIVE#{booking.program.value}")
        place = UpcomingPlace(*upcoming_key(booking.org_id, booking.person_id, booking.upcoming_slot),
                              ref=booking.booking_id, ends_at=booking.end.astimezone(UTC).isoformat())  # fmt: skip
        locks = _locks(booking)
        # PynamoDB sends condition checks, then puts, then updates: labels follow that order.
        labels = ["engagement", "booking", "situation", "upcoming", *(["coach"] * len(coach_buckets(booking)))]
        labels += ["person"] * (len(locks) - len(coach_buckets(booking))) + ["allowance"]
        try:
            with TransactWrite(connection=_connection()) as transaction:
                transaction.condition_check(
                    MarkerItem, active.pk, active.sk, condition=MarkerItem.ref == booking.engagement_id
                )
                transaction.save(_booking_item(booking, None))
                transaction.save(
                    SituationItem(
                        person_pk(booking.org_id, booking.person_id),
                        f"SITUATION#BOOKING#{booking.booking_id}",
                        text=situation,
                        created_at=booking.created_at.isoformat(),
                    )
                )
                transaction.save(
                    place,
                    condition=UpcomingPlace.pk.does_not_exist()
                    | (UpcomingPlace.ends_at < limits.now.astimezone(UTC).isoformat()),
                )
                for lock in locks:
                    transaction.save(lock, condition=MarkerItem.pk.does_not_exist())
                transaction.update(
                    CounterItem(*allowance_key(booking)),
                    actions=[CounterItem.used.add(1), CounterItem.kind.set("allowance")],
                    condition=CounterItem.used.does_not_exist() | (CounterItem.used < limits.allowance),
                )
                if limits.session_cap is not None:
                    labels.append("cap")
                    transaction.update(
                        CounterItem(*usage_key(booking)),
                        actions=[CounterItem.used.add(1), CounterItem.kind.set("org_usage")],
                        condition=CounterItem.used.does_not_exist() | (CounterItem.used < limits.session_cap),
                    )
        except TransactWriteError as exc:
            raise _refusal(exc, labels) from exc

    def upcoming_places(self, org_id: str, person_id: str, count: int, now: datetime) -> list[int]:
        """Free places (never used, or their session has ended), lowest first."""
        keys = [upcoming_key(org_id, person_id, place) for place in range(1, count + 1)]
        taken = {
            int(item.sk.removeprefix("UPCOMING#"))
            for item in UpcomingPlace.batch_get(keys, consistent_read=True)
            if item.ends_at >= now.astimezone(UTC).isoformat()
        }
        return [place for place in range(1, count + 1) if place not in taken]

    def org_sessions(self, org_id: str, period: str) -> int:
        try:
            return int(CounterItem.get(f"ORG#{org_id}#", f"USAGE#{period}", consistent_read=True).used or 0)
        except CounterItem.DoesNotExist:
            return 0

    def mark_threshold(self, org_id: str, period: str, percent: int) -> bool:
        """True exactly once per org, month and threshold, however many bookings cross it."""
        marker = MarkerItem(f"ORG#{org_id}#", f"USAGE#{period}#THRESHOLD#{percent}", kind="threshold", ref=period)
        try:
            marker.save(condition=MarkerItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def cancel(self, booking: Booking, version: int, *, refund: bool, cap_counted: bool) -> None:
        """Cancel and release the calendar and the upcoming place; `refund` gives the unit back."""
        place = UpcomingPlace(*upcoming_key(booking.org_id, booking.person_id, booking.upcoming_slot))
        try:
            with TransactWrite(connection=_connection()) as transaction:
                transaction.save(_booking_item(booking, version))
                transaction.delete(place, condition=UpcomingPlace.ref == booking.booking_id)
                for lock in _locks(booking):
                    transaction.delete(lock, condition=MarkerItem.ref == booking.booking_id)
                if refund:
                    transaction.update(CounterItem(*allowance_key(booking)), actions=[CounterItem.used.add(-1)],
                                       condition=CounterItem.used > 0)  # fmt: skip
                    if cap_counted:
                        transaction.update(CounterItem(*usage_key(booking)), actions=[CounterItem.used.add(-1)],
                                           condition=CounterItem.used > 0)  # fmt: skip
        except TransactWriteError as exc:
            raise Conflict("this booking changed at the same time; load it again", field="booking_id") from exc

    def get(self, org_id: str, person_id: str, booking_id: str) -> tuple[Booking, int] | None:
        try:
            item = MainItem.get(person_pk(org_id, person_id), f"BOOKING#{booking_id}", consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return Booking.model_validate_json(item.body), int(item.version or 0)

    def for_person(self, org_id: str, person_id: str) -> list[Booking]:
        items = MainItem.query(person_pk(org_id, person_id), MainItem.sk.startswith("BOOKING#"), consistent_read=True)
        return [Booking.model_validate_json(item.body) for item in items]

    def for_coach(self, coach_id: str, start: datetime, end: datetime) -> list[Booking]:
        """The coach's sessions starting in [start - 1 day, end): enough to find every overlap."""
        low = (start.replace(hour=0, minute=0, second=0, microsecond=0)).isoformat()
        items = MainItem.gsi1.query(f"COACH#{coach_id}#BOOKINGS", MainItem.gsi1sk.between(low, f"{end.isoformat()}~"))
        return [Booking.model_validate_json(item.body) for item in items]
