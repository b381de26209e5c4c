"""The transactional outbox: domain events committed with the change they describe.

A store adds `outbox_item(event)` to the same TransactWrite as the state change, so the
event exists exactly when the change does. The table's change stream feeds the inserts to
the `event_relay` function, which puts them on the bus (`EventBridgeRelay`). A request that
dies right after its commit therefore loses nothing: the stream still holds the item.

Outbox items expire after `RETENTION` (the table's TTL); the stream keeps 24 h, so an
item outlives every redelivery of its record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from coaching.adapters import keys
from coaching.adapters.dynamo import MainTableMeta, connection
from coaching.domain.events import Event

OUTBOX_KIND = "outbox"
RETENTION = timedelta(days=7)
PUT_EVENTS_BATCH = 10  # the PutEvents API's entry limit


class OutboxItem(Model):
    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default=OUTBOX_KIND)
    source = UnicodeAttribute()
    detail_type = UnicodeAttribute()
    detail = UnicodeAttribute()  # the JSON detail, exactly as it goes on the bus
    expires_at = NumberAttribute()


def outbox_item(event: Event) -> OutboxItem:
    expires = event.occurred_at + RETENTION
    return OutboxItem(
        keys.outbox_pk(event.event_id),
        keys.OUTBOX_SK,
        source=event.source,
        detail_type=event.detail_type,
        detail=json.dumps(event.detail(), separators=(",", ":")),
        expires_at=int(expires.timestamp()),
    )


def add_events(transaction: TransactWrite, events: Sequence[Event]) -> None:
    """Add each event to a transaction the caller commits. An event id already in the outbox
    cancels the transaction: a retried producer that reuses a stable id commits once."""
    for event in events:
        transaction.save(outbox_item(event), condition=OutboxItem.pk.does_not_exist())


def commit_events(events: Sequence[Event]) -> None:
    """Write events that belong to no state change of their own (a schedule's fan-out).

    Each item is its own source of truth; one already there (a re-run with a stable id) is kept.
    """
    for event in events:
        try:
            outbox_item(event).save(condition=OutboxItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise


def new_transaction() -> TransactWrite:
    return TransactWrite(connection=connection())


# --------------------------------------------------------------------------- relay side


class RelayError(RuntimeError):
    """PutEvents refused some entries; the stream batch is retried from the first of them."""

    def __init__(self, failed_index: int, message: str) -> None:
        super().__init__(message)
        self.failed_index = failed_index


def bus_entry(new_image: dict[str, Any], bus_name: str) -> dict[str, Any]:
    """A PutEvents entry from an outbox item's stream image (DynamoDB JSON)."""
    return {
        "Source": new_image["source"]["S"],
        "DetailType": new_image["detail_type"]["S"],
        "Detail": new_image["detail"]["S"],
        "EventBusName": bus_name,
    }


class EventBridgeRelay:
    """Puts outbox items on the bus in PutEvents batches of ten, in stream order."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus_name = bus_name

    def relay(self, images: Sequence[dict[str, Any]]) -> None:
        """Raises RelayError naming the first image not accepted; every image before it is on the bus."""
        for start in range(0, len(images), PUT_EVENTS_BATCH):
            chunk = images[start : start + PUT_EVENTS_BATCH]
            response = self._client.put_events(Entries=[bus_entry(image, self._bus_name) for image in chunk])
            if response.get("FailedEntryCount"):
                results = response.get("Entries", [])
                first = next((i for i, entry in enumerate(results) if "ErrorCode" in entry), 0)
                codes = [entry.get("ErrorCode") for entry in results if "ErrorCode" in entry]
                raise RelayError(start + first, f"{len(codes)} of {len(chunk)} events were refused: {codes[:3]}")
