"""Domain events and the port that puts them on the bus.

Events inform other parts of the system (roster refresh, rollups). No money or state of
record ever depends on an event arriving: a lost event is healed by the scheduled jobs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from coaching.config import settings

PUT_EVENTS_BATCH = 10  # the PutEvents API's entry limit


@dataclass(frozen=True, slots=True)
class DomainEvent:
    source: str
    detail_type: str
    detail: dict[str, Any]


class EventPublisher(Protocol):
    def publish(self, events: Sequence[DomainEvent]) -> None: ...


class EventPublishError(RuntimeError):
    pass


class EventBridgePublisher:
    """Publishes to the platform's custom bus. The boto3 client is created on first use."""

    def __init__(self, bus_name: str | None = None) -> None:
        self._bus_name = bus_name
        self._client: Any = None

    def publish(self, events: Sequence[DomainEvent]) -> None:
        if not events:
            return
        if self._client is None:
            import boto3  # deferred: handlers that never publish do not pay for the client

            self._client = boto3.client("events", region_name=settings().region)
        bus = self._bus_name or settings().event_bus
        for start in range(0, len(events), PUT_EVENTS_BATCH):
            chunk = events[start : start + PUT_EVENTS_BATCH]
            response = self._client.put_events(
                Entries=[
                    {
                        "Source": event.source,
                        "DetailType": event.detail_type,
                        "Detail": json.dumps(event.detail, default=str),
                        "EventBusName": bus,
                    }
                    for event in chunk
                ]
            )
            if response.get("FailedEntryCount"):
                failures = [entry for entry in response["Entries"] if "ErrorCode" in entry]
                raise EventPublishError(f"{len(failures)} of {len(chunk)} events were refused: {failures[:3]}")


@dataclass
class RecordingPublisher:
    """Keeps events in memory; for tests and for in-process composition."""

    events: list[DomainEvent] = field(default_factory=list)

    def publish(self, events: Sequence[DomainEvent]) -> None:
        self.events.extend(events)


def publish_after_commit(publisher: EventPublisher, events: Sequence[DomainEvent], logger: Any, metrics: Any) -> None:
    """Publish events for a change that is already committed.

    A failure is logged and counted (EventPublishFailed, which should alarm), never turned
    into an error response: the change stands, and scheduled jobs heal what events feed.
    """
    if not events:
        return
    try:
        publisher.publish(events)
    except Exception:
        logger.exception("event publish failed", extra={"events": [e.detail_type for e in events]})
        from aws_lambda_powertools.metrics import MetricUnit

        metrics.add_metric(name="EventPublishFailed", unit=MetricUnit.Count, value=len(events))
