"""Count DynamoDB capacity units for every call made in this process (benchmarks only).

It asks each DynamoDB call for ReturnConsumedCapacity=TOTAL and adds up what DynamoDB
(Local) reports, split into reads and writes, so a benchmark can print units per operation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient

READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@dataclass
class Meter:
    read_units: float = 0.0
    write_units: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, operation: str, response: dict[str, Any]) -> None:
        consumed = response.get("ConsumedCapacity") or []
        if isinstance(consumed, dict):
            consumed = [consumed]
        units = sum(float(c.get("CapacityUnits", 0.0)) for c in consumed)
        with self._lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            if operation in READS:
                self.read_units += units
            elif operation in WRITES:
                self.write_units += units


@contextmanager
def metered() -> Iterator[Meter]:
    meter = Meter()
    original = BaseClient._make_api_call

    def call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb" and operation in READS | WRITES:
            params = {**params, "ReturnConsumedCapacity": "TOTAL"}
            response = original(self, operation, params)
            meter.add(operation, response)
            return response
        return original(self, operation, params)

    BaseClient._make_api_call = call
    try:
        yield meter
    finally:
        BaseClient._make_api_call = original
