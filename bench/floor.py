"""The physical floor of a request: its own DynamoDB round trips, replayed bare in the same run.

`recorded()` captures every DynamoDB call a request makes (operation and parameters). `bare_ms()` then
times the same round trips with nothing around them on the same DynamoDB Local: reads are replayed
verbatim (the same keys, the same queries), and each write is a bare write of the same shape on fresh
keys (a transaction of the same number of items, a put for a put), since replaying the request's own
conditional writes would fail their conditions. A benchmark prints its figure as a ratio to that floor.

`quiet()` silences what the functions print on stdout (Powertools logs and EMF metric lines) while a
benchmark measures: they are still produced, so their cost is measured, but not shown.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient

READS = {"GetItem", "Query", "BatchGetItem", "TransactGetItems", "Scan"}
# botocore's own call, taken before any benchmark patches it: the floor's replays are neither recorded nor
# metered (bench.capacity), so a request's units are its own.
_UNPATCHED = BaseClient._make_api_call


@contextmanager
def recorded() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every DynamoDB call made in this process while the block runs, in order."""
    calls: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()
    original = BaseClient._make_api_call

    def call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            with lock:
                calls.append((operation, params))
        return original(self, operation, params)

    BaseClient._make_api_call = call
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original


def _bare_write(operation: str, params: dict[str, Any], table: str) -> tuple[str, dict[str, Any]]:
    pk = f"FLOOR#{uuid.uuid4()}"
    if operation == "TransactWriteItems":
        items = [
            {
                "Put": {
                    "TableName": table,
                    "Item": {"pk": {"S": pk}, "sk": {"S": f"I#{n}"}, "kind": {"S": "floor"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for n in range(len(params["TransactItems"]))
        ]
        return operation, {"TransactItems": items}
    if operation == "BatchWriteItem":
        count = sum(len(v) for v in params["RequestItems"].values())
        puts = [{"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"S": f"I#{n}"}}}} for n in range(count)]
        return operation, {"RequestItems": {table: puts}}
    return "PutItem", {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": "I"}, "kind": {"S": "floor"}}}


def bare_ms(client: Any, calls: list[tuple[str, dict[str, Any]]], table: str) -> float:
    """Milliseconds for the same round trips, bare: reads verbatim, writes of the same shape on fresh keys."""
    prepared = []
    for operation, params in calls:
        params = {k: v for k, v in params.items() if k != "ReturnConsumedCapacity"}
        prepared.append((operation, params) if operation in READS else _bare_write(operation, params, table))
    began = time.perf_counter()
    for operation, params in prepared:
        _UNPATCHED(client, operation, params)
    return (time.perf_counter() - began) * 1000


@contextmanager
def quiet() -> Iterator[None]:
    """Stdout (function logs, EMF metric lines) goes nowhere while measuring; progress goes to stderr."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def progress(label: str, done: int, total: int) -> None:
    if done == total or done % max(total // 10, 1) == 0:
        print(f"\r  {label}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def table(title: str, rows: list[tuple[str, float, float]]) -> None:
    """Rows of (figure, floor p50 ms, measured p50 ms) with the ratio."""
    print(title)
    print(f"  {'figure':<34} {'floor p50':>10} {'p50':>10} {'ratio':>7}")
    for name, floor, figure in rows:
        print(f"  {name:<34} {floor:8.1f} ms {figure:7.1f} ms {figure / floor:6.2f}x")
