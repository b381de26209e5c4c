"""The physical floor of a request: its own DynamoDB round trips, replayed bare in the same run.

`recorded()` captures every DynamoDB call a request makes (operation and parameters). `bare_ms()` then
times the same round trips with nothing around them on the same DynamoDB Local: reads are replayed
verbatim (the same keys, the same queries), and each write is the request's own write on fresh keys: the
same items with every attribute, the same update expressions, and each item's own condition, made to hold on
the fresh key (replaying the request's own conditions on its own keys would fail them). So the floor is what
DynamoDB and a bare client must do for this request, and the ratio is what the platform adds. A benchmark
prints its figure as a ratio to that floor, and may print the minimal floor too (empty items of the same
count, no conditions).

`settle()` is the pause before every timed request and every replay: DynamoDB Local goes on working for
a few milliseconds after it answers a write, so whatever is timed right after a write inherits that work.

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
import warnings
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


# DynamoDB Local answers a write before it has finished with it. Measured in the booking bench (2026-11-30, 250
# bookings): the handler's transaction, sent a few milliseconds after the previous floor's replays, took 17.6 ms
# at p50 against 13.5 ms for the same transaction replayed; after a 50 ms pause it took 11.7 ms against 11.6 ms.
# So each side starts from the same quiet server; a much longer pause slows both (idle cores wake slowly).
SETTLE_SECONDS = 0.03


def settle() -> None:
    """Let DynamoDB Local finish the previous writes before the next timed call."""
    time.sleep(SETTLE_SECONDS)


_ON_FRESH_KEY = "attribute_not_exists(pk)"


def _rekeyed(kind: str, body: dict[str, Any], pk: str, sk: str) -> dict[str, Any]:
    """One write of a request, the same payload on a fresh key.

    The item (every attribute, so the same bytes) or the same update expression is kept, and so is the
    request's own condition, as `attribute_not_exists(pk) OR (<its condition>)`: DynamoDB parses and starts
    evaluating the same expression, with the same names and values, but it holds on the fresh key, where
    the request's own conditions (a counter below a cap, a booking owned by someone) could fail.
    """
    fresh = dict(body)
    if kind == "Put":
        fresh["Item"] = body["Item"] | {"pk": {"S": pk}, "sk": {"S": sk}}
    else:
        fresh["Key"] = {"pk": {"S": pk}, "sk": {"S": sk}}
    if "ConditionExpression" in body:
        fresh["ConditionExpression"] = f"{_ON_FRESH_KEY} OR {_enclosed(body['ConditionExpression'])}"
    return fresh


def _enclosed(expression: str) -> str:
    """The expression in one pair of parentheses (DynamoDB refuses a redundant second pair)."""
    depth = 0
    for position, char in enumerate(expression):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and position < len(expression) - 1:
            return f"({expression})"  # the first parenthesis closes before the end: not enclosed yet
    return expression if expression.startswith("(") else f"({expression})"


# What a replayed write must find at its fresh key to do the same work: the item a check reads, the counter an
# update adds to, the item a delete removes (a put's key is absent, before the request as on a fresh key).
Seed = tuple[str, dict[str, Any], dict[str, Any]]  # (table, the request's key, the fresh key)


def _bare_write(operation: str, params: dict[str, Any], table: str) -> tuple[str, dict[str, Any], list[Seed]]:
    """The request's own write, replayed on fresh keys: the same items, sizes, update expressions and index keys."""
    pk = f"FLOOR#{uuid.uuid4()}"
    seeds: list[Seed] = []
    if operation == "TransactWriteItems":
        items = []
        for n, entry in enumerate(params["TransactItems"]):
            ((kind, body),) = entry.items()
            fresh = _rekeyed(kind, body, pk, f"I#{n}")
            if kind != "Put":
                seeds.append((body["TableName"], body["Key"], fresh["Key"]))
            items.append({kind: fresh})
        return operation, {"TransactItems": items}, seeds
    if operation == "BatchWriteItem":
        requests = {}
        for name, writes in params["RequestItems"].items():
            requests[name] = [
                {"PutRequest": {"Item": w["PutRequest"]["Item"] | {"pk": {"S": pk}, "sk": {"S": f"{name}#{n}"}}}}
                if "PutRequest" in w
                else {"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": f"{name}#{n}"}}}}
                for n, w in enumerate(writes)
            ]
        return operation, {"RequestItems": requests}, seeds
    kinds = {"PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}
    if operation in kinds:
        body = {k: v for k, v in params.items() if k not in ("ReturnValues", "ReturnItemCollectionMetrics")}
        fresh = _rekeyed(kinds[operation], body, pk, "I")
        if operation != "PutItem":
            seeds.append((body["TableName"], body["Key"], fresh["Key"]))
        return operation, fresh, seeds
    item = {"pk": {"S": pk}, "sk": {"S": "I"}, "kind": {"S": "floor"}}
    return "PutItem", {"TableName": table, "Item": item}, seeds


def _seed(client: Any, seeds: list[Seed]) -> None:
    """Copy each item a replayed check, update or delete acts on to its fresh key (untimed)."""
    for table, key, fresh in seeds:
        found = _UNPATCHED(client, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}).get("Item")
        if found:
            _UNPATCHED(client, "PutItem", {"TableName": table, "Item": found | fresh})


def _minimal_write(operation: str, params: dict[str, Any], table: str) -> tuple[str, dict[str, Any]]:
    """A write of the same count but empty items and no conditions: the least DynamoDB could be asked to do."""
    pk = f"FLOOR#{uuid.uuid4()}"
    if operation == "TransactWriteItems":
        items = [
            {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": f"I#{n}"}, "kind": {"S": "floor"}}}}
            for n in range(len(params["TransactItems"]))
        ]
        return operation, {"TransactItems": items}
    if operation == "BatchWriteItem":
        count = sum(len(v) for v in params["RequestItems"].values())
        puts = [{"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"S": f"I#{n}"}}}} for n in range(count)]
        return operation, {"RequestItems": {table: puts}}
    return "PutItem", {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": "I"}, "kind": {"S": "floor"}}}


def bare_ms(client: Any, calls: list[tuple[str, dict[str, Any]]], table: str, *, minimal: bool = False) -> float:
    """Milliseconds for the same round trips, bare: reads verbatim, the same writes on fresh keys.

    Before timing, the items the writes read or change are copied to their fresh keys, so DynamoDB evaluates
    the same conditions against the same kind of item. `minimal` replays each write as empty items of the
    same count instead (the floor before 2026-12): printed beside the real floor so that the two can be compared.
    """
    prepared = []
    for operation, params in calls:
        # Replayed as recorded: a timed request runs without the capacity meter, which would add
        # ReturnConsumedCapacity to the request's calls only (benchmarks count units on requests of their own).
        if operation in READS:
            prepared.append((operation, params))
        elif minimal:
            prepared.append(_minimal_write(operation, params, table))
        else:
            operation, params, seeds = _bare_write(operation, params, table)
            _seed(client, seeds)
            prepared.append((operation, params))
    settle()  # after the seeding writes, as before the request itself
    began = time.perf_counter()
    for operation, params in prepared:
        _UNPATCHED(client, operation, params)
    return (time.perf_counter() - began) * 1000


def timed_handler(pool: Any) -> list[float]:
    """Milliseconds of every invocation of a local function pool from now on (the handler in-process, inside
    the gateway): the list fills as the pool is invoked."""
    invoke = pool.invoke
    handler_ms: list[float] = []

    def timed_invoke(event: object) -> object:
        began = time.perf_counter()
        try:
            return invoke(event)
        finally:
            handler_ms.append((time.perf_counter() - began) * 1000)

    pool.invoke = timed_invoke
    return handler_ms


@contextmanager
def quiet() -> Iterator[None]:
    """Stdout (function logs, EMF metric lines) goes nowhere while measuring; progress goes to stderr.

    The descriptor itself is redirected, not only `sys.stdout`: Powertools' loggers keep the stream they
    were created with, and the stream pollers' consumers log from their own threads."""
    sys.stdout.flush()
    sys.__stdout__.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as sink, warnings.catch_warnings():
        # Powertools warns on stderr when a request added no metric (a read route): expected, not news.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        os.dup2(sink.fileno(), 1)
        try:
            with contextlib.redirect_stdout(sink):
                yield
        finally:
            sys.__stdout__.flush()  # what a logger buffered while quiet goes to /dev/null too
            os.dup2(saved, 1)
            os.close(saved)


def progress(label: str, done: int, total: int) -> None:
    if done == total or done % max(total // 10, 1) == 0:
        print(f"\r  {label}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def table(title: str, rows: list[tuple[str, float, float]]) -> None:
    """Rows of (figure, floor p50 ms, measured p50 ms) with the ratio."""
    print(title)
    print(f"  {'figure':<34} {'floor p50':>10} {'p50':>10} {'ratio':>7}")
    for name, floor, figure in rows:
        print(f"  {name:<34} {floor:8.1f} ms {figure:7.1f} ms {figure / floor:6.2f}x")
