"""What metering reads of other areas' data: active headcount, and the org's sessions by month.

Invoicing never writes these; it reads them to draw an invoice (headcount for the per-seat
comparison), to show the month so far (the booking cap's counter) and to reconcile the
sessions of a month with the ledger (their statuses).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from coaching.adapters import keys
from coaching.adapters.dynamo import MainItem, batch_read

if TYPE_CHECKING:
    from coaching.adapters.booking_store import BookingStore

# A person's item is the Person model's compact pydantic JSON. Inside a JSON string every `"` is
# escaped, so the unescaped `"active":true` can only be the top-level field itself.
_ACTIVE_PERSON = '"active":true'
_BATCH_KEYS = 100  # BatchGetItem's limit


class ActiveHeadcount:
    """Active people in an org: one Query on the org's people partition, counted by DynamoDB.

    Select=COUNT with a filter on the item body: DynamoDB reads the partition (and charges for
    it) but returns only the count, so nothing is shipped or parsed. Never a Scan.
    """

    def active(self, org_id: str) -> int:
        return MainItem.count(
            keys.people_pk(org_id),
            MainItem.sk.startswith(keys.PERSON_PREFIX),
            filter_condition=MainItem.body.contains(_ACTIVE_PERSON),
            consistent_read=True,
        )


class SessionReads:
    """The sessions of an org's month as booking records them (its locator items)."""

    def __init__(self, bookings: BookingStore | None = None) -> None:
        self._given = bookings

    @property
    def _bookings(self) -> BookingStore:
        # Imported on first use: the booking store brings the booking domain with it, and most
        # metering invocations (price books, invoices) never read a session (cold start).
        if self._given is None:
            from coaching.adapters.booking_store import BookingStore

            self._given = BookingStore()
        return self._given

    def statuses_in(self, org_id: str, period: str) -> dict[str, str]:
        """Booking id -> status of every session of the month, from the sessions index
        (eventually consistent: a session that just changed may show its old status)."""
        return {
            keys.booking_id_from_sessions_index_sk(item.gsi1sk): item.status
            for item in self._bookings.sessions_in(org_id, period)
        }

    def current_statuses(self, booking_ids: Collection[str]) -> dict[str, str]:
        """Booking id -> status read from the sessions themselves (strongly consistent);
        a booking that does not exist is absent."""
        wanted = [keys.locator_key(booking_id) for booking_id in sorted(set(booking_ids))]
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(wanted), _BATCH_KEYS):
            found.update(batch_read(wanted[start : start + _BATCH_KEYS]))
        return {
            booking_id: found[keys.locator_key(booking_id)]["status"]["S"]
            for booking_id in booking_ids
            if keys.locator_key(booking_id) in found
        }

    def cap_counted(self, org_id: str, period: str) -> int:
        """Sessions booked in the month as the booking policy's monthly cap counts them."""
        return self._bookings.org_meter(org_id, "cap", period)


__all__ = ["ActiveHeadcount", "SessionReads"]
