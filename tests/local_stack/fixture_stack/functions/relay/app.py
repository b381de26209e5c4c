"""Fixture stream consumer: relays outbox records in order, failing on request, like the real event relay.

Each record's NewImage carries `id` and `mode`: "ok"; "fail-once" (reported failed the first time
it is seen); "poison" (always reported failed); "raise" (the function raises, relaying nothing of the batch).
A reported failure also reports every later record of the batch, so nothing is relayed out of order.
Every invocation appends to attempts.jsonl, every relayed record to relayed.jsonl, in FIXTURE_SINK_DIR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def _append(name: str, entry: dict[str, Any]) -> None:
    with (Path(os.environ["FIXTURE_SINK_DIR"]) / name).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sink = Path(os.environ["FIXTURE_SINK_DIR"])
    records = event["Records"]
    _append("attempts.jsonl", {"ids": [r["dynamodb"]["NewImage"]["id"]["S"] for r in records], "event": event})
    for record in records:
        image = record["dynamodb"]["NewImage"]
        if image.get("mode", {}).get("S") == "raise":  # before relaying anything: the batch fails whole
            raise RuntimeError(f"relay fixture raises on {image['id']['S']}")
    for index, record in enumerate(records):
        image = record["dynamodb"]["NewImage"]
        item_id, mode = image["id"]["S"], image.get("mode", {}).get("S", "ok")
        marker = sink / f"failed-once-{item_id}"
        if mode == "poison" or (mode == "fail-once" and not marker.exists()):
            marker.touch()
            sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in records[index:]]
            return {"batchItemFailures": [{"itemIdentifier": s} for s in sequence_numbers]}
        _append("relayed.jsonl", {"id": item_id, "sequence": record["dynamodb"]["SequenceNumber"]})
    return {"batchItemFailures": []}
