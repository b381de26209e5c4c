"""Persistence for bookings: one transaction books, one transaction cancels.

Booking = the booking item + its confidential situation + a condition that the engagement
is still the person's active one + one lock per 5-minute bucket on the coach's and the
person's calendars. Any taken bucket cancels the whole transaction: nothing half-written.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from coaching.adapters.dynamo import MainItem, _connection
from coaching.adapters.matching_store import MarkerItem, SituationItem, person_pk
from coaching.domain.booking import Booking, coach_buckets, person_buckets
from coaching.domain.taxonomy import Program
from coaching.errors import Conflict


class SlotTaken(Conflict):
    pass


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


class BookingStore:
    def book(self, booking: Booking, situation: str) -> None:
        """Write the booking and claim its calendar buckets in one transaction, or refuse."""
        active = MarkerItem(person_pk(booking.org_id, booking.person_id), f"ACTIVE#{booking.program.value}")
        locks = _locks(booking)
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
                for lock in locks:
                    transaction.save(lock, condition=MarkerItem.pk.does_not_exist())
        except TransactWriteError as exc:
            reasons = exc.cancellation_reasons or []
            failed = [i for i, r in enumerate(reasons) if r is not None and r.code == "ConditionalCheckFailed"]
            if failed and failed[0] == 0:
                raise Conflict("this engagement is no longer active", field="engagement_id") from exc
            coach_locks = len(coach_buckets(booking))
            if failed and failed[0] >= 3 + coach_locks:
                raise SlotTaken("you already have a session at that time", field="start") from exc
            if failed:
                raise SlotTaken("that time was just booked; pick another slot", field="start") from exc
            raise Conflict("the booking could not be saved; try again") from exc

    def cancel(self, booking: Booking, version: int) -> None:
        """Mark it cancelled and release its buckets, atomically."""
        try:
            with TransactWrite(connection=_connection()) as transaction:
                transaction.save(_booking_item(booking, version))
                for lock in _locks(booking):
                    transaction.delete(lock, condition=MarkerItem.ref == booking.booking_id)
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

    @staticmethod
    def active_program_marker(org_id: str, person_id: str, program: Program) -> tuple[str, str]:
        return person_pk(org_id, person_id), f"ACTIVE#{program.value}"
