"""One stream batch, as Lambda sees it: its records, how the function's answer reads, its failure record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass
class Pending:
    """A record read from a shard and not yet processed."""

    record: dict[str, Any]  # in Lambda's DynamoDB stream record shape
    sequence: str
    matches: bool  # passes the FilterCriteria
    read_at: float  # time.monotonic() when the poller read it


@dataclass
class Outcome:
    status: str  # "succeeded", "partial" (ReportBatchItemFailures) or "failed"
    failed_index: int = 0  # partial: the first record to retry
    error: str | None = None


def outcome_of(result: Any, batch: list[Pending], report_batch_item_failures: bool) -> Outcome:
    """Lambda's reading of a stream function's return value.

    With ReportBatchItemFailures, no or empty `batchItemFailures` is success, valid ones name the first
    record to retry from, and an identifier that is not a sequence number of the batch fails it all.
    """
    if not report_batch_item_failures or not isinstance(result, dict):
        return Outcome("succeeded")
    failures = result.get("batchItemFailures")
    if not failures:
        return Outcome("succeeded")
    positions = {p.sequence: index for index, p in enumerate(batch)}
    try:
        indexes = [positions[str(item["itemIdentifier"])] for item in failures]
    except (KeyError, TypeError):
        return Outcome("failed", 0, f"invalid batchItemFailures (treated as a failed batch): {failures!r:.300}")
    first = min(indexes)
    return Outcome("partial", first, f"batchItemFailures from {batch[first].sequence}")


def on_failure_record(
    function_arn: str, shard_id: str, batch: list[Pending], condition: str, attempts: int
) -> dict[str, Any]:
    """What Lambda sends a stream mapping's OnFailure destination: the coordinates of the batch."""
    records = [p.record for p in batch]
    arrival = [datetime.fromtimestamp(r["dynamodb"].get("ApproximateCreationDateTime", 0), UTC) for r in records]
    return {
        "requestContext": {"functionArn": function_arn, "condition": condition, "approximateInvokeCount": attempts},
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": batch[0].sequence,
            "endSequenceNumber": batch[-1].sequence,
            "approximateArrivalOfFirstRecord": arrival[0].isoformat(),
            "approximateArrivalOfLastRecord": arrival[-1].isoformat(),
            "batchSize": len(batch),
            "streamArn": records[0]["eventSourceARN"],
        },
    }
