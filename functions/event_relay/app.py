"""Event relay: puts the outbox items of the main table's change stream on the event bus.

Stores write each domain event as an outbox item in the transaction that makes the change
(`coaching.adapters.outbox`); the stream's filter hands this function only those inserts.
A batch is relayed in stream order; if PutEvents refuses an entry, the function reports
that record and every later one as failed (ReportBatchItemFailures), so Lambda retries from
there and nothing after a gap is published out of order. A record that keeps failing goes
to the relay's dead-letter queue, which alarms.

Delivery is at least once: a retried batch may publish an item twice, so every consumer is
idempotent on the event's own `event_id` (coaching.api.function_entry).
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from coaching.adapters.outbox import OUTBOX_KIND, EventBridgeRelay, RelayError
from coaching.config import settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
_relay: list[EventBridgeRelay] = []


def relay() -> EventBridgeRelay:
    if not _relay:
        import boto3  # built on first use, once per container

        config = settings()
        _relay.append(EventBridgeRelay(boto3.client("events", region_name=config.region), config.event_bus))
    return _relay[0]


def _kind(record: dict[str, Any]) -> str | None:
    kind: str | None = record.get("dynamodb", {}).get("NewImage", {}).get("kind", {}).get("S")
    return kind


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def lambda_handler(event: DynamoDBStreamEvent, context: Any) -> dict[str, Any]:
    records = list(event.records)
    # The filter admits only outbox inserts; anything else is skipped, never relayed.
    outbox = [r for r in records if _kind(r.raw_event) == OUTBOX_KIND]
    images = [r.raw_event["dynamodb"]["NewImage"] for r in outbox]
    try:
        relay().relay(images)
    except RelayError as error:
        failed = outbox[error.failed_index :]
        logger.warning("relay refused", extra={"error": str(error), "failed": len(failed)})
        metrics.add_metric(name="EventsRelayed", unit=MetricUnit.Count, value=error.failed_index)
        metrics.add_metric(name="EventRelayRefused", unit=MetricUnit.Count, value=len(failed))
        return {"batchItemFailures": [{"itemIdentifier": r.dynamodb.sequence_number} for r in failed if r.dynamodb]}
    metrics.add_metric(name="EventsRelayed", unit=MetricUnit.Count, value=len(images))
    logger.info("relayed", extra={"events": [image["detail_type"]["S"] for image in images]})
    return {"batchItemFailures": []}
