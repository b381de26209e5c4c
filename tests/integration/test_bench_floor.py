"""The benchmarks' floor (`bench/floor.py`) replays a request's own writes on DynamoDB Local.

A request's conditional writes are made for real first and recorded; the floor then replays them on fresh keys,
with copies of the items its checks, updates and deletes act on. The replay must succeed (each condition made to
hold on the fresh key) and must write the same payload, so the floor counts what DynamoDB does for the request and
nothing less.
"""

import uuid

import boto3
import pytest

from bench.floor import bare_ms, recorded

pytestmark = pytest.mark.integration

TABLE = "test-MainTable"


def _scan_floor_items(client) -> list[dict]:
    # Every page: late in a full run the table holds every other test's items, far over one page of a Scan.
    pages = client.get_paginator("scan").paginate(TableName=TABLE, FilterExpression="begins_with(pk, :floor)",
                                                  ExpressionAttributeValues={":floor": {"S": "FLOOR#"}})  # fmt: skip
    return [item for page in pages for item in page["Items"]]


def test_the_floor_replays_the_requests_own_items_and_update_expressions_on_fresh_keys(dynamodb_local):
    client = boto3.client("dynamodb", endpoint_url=dynamodb_local)
    pk = f"TEST#{uuid.uuid4()}"
    client.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "sk": {"S": "ACTIVE"}, "ref": {"S": "e1"}})
    client.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "sk": {"S": "OLD"}, "ref": {"S": "b0"}})
    body = "x" * 700  # a booking-sized body: the floor must write the same bytes
    with recorded() as calls:
        client.transact_write_items(TransactItems=[
            # A check that only holds on the request's own key: replayed as a check on a fresh key.
            {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": pk}, "sk": {"S": "ACTIVE"}},
                                "ConditionExpression": "#r = :e", "ExpressionAttributeNames": {"#r": "ref"},
                                "ExpressionAttributeValues": {":e": {"S": "e1"}}}},
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": pk}, "sk": {"S": "BOOKING"}, "body": {"S": body},
                                                  "gsi1pk": {"S": "INDEX"}, "gsi1sk": {"S": "1"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            # A counter whose condition shares a name with the update and uses a value the update does not.
            {"Update": {"TableName": TABLE, "Key": {"pk": {"S": pk}, "sk": {"S": "COUNTER"}},
                        "UpdateExpression": "SET #k = :k ADD #u :one",
                        "ConditionExpression": "attribute_not_exists(#u) OR #u < :cap",
                        "ExpressionAttributeNames": {"#u": "used", "#k": "kind"},
                        "ExpressionAttributeValues": {":k": {"S": "allowance"}, ":one": {"N": "1"},
                                                      ":cap": {"N": "4"}}}},
            {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": pk}, "sk": {"S": "OLD"}},
                        "ConditionExpression": "#r = :b", "ExpressionAttributeNames": {"#r": "ref"},
                        "ExpressionAttributeValues": {":b": {"S": "b0"}}}},
        ])  # fmt: skip
    assert [operation for operation, _ in calls] == ["TransactWriteItems"]
    before = {item["pk"]["S"] for item in _scan_floor_items(client)}

    assert bare_ms(client, calls, TABLE) > 0
    assert bare_ms(client, calls, TABLE, minimal=True) > 0  # empty items of the same count

    written = [item for item in _scan_floor_items(client) if item["pk"]["S"] not in before]
    by_sk = {(item["pk"]["S"], item["sk"]["S"]): item for item in written}
    replay = [item for item in written if item.get("body", {}).get("S") == body]
    assert len(replay) == 1  # the same booking payload, once, with its index keys
    assert replay[0]["gsi1pk"] == {"S": "INDEX"}
    replay_pk = replay[0]["pk"]["S"]
    counter = by_sk[(replay_pk, "I#2")]
    assert counter["used"] == {"N": "2"}  # the counter as the request found... plus the same ADD
    assert counter["kind"] == {"S": "allowance"}
    # The check read a copy of the item it checks, and the delete removed a copy of its item; the minimal
    # replay wrote 4 empty items of its own.
    assert sorted(sk for (p, sk) in by_sk if p == replay_pk) == ["I#0", "I#1", "I#2"]
    assert by_sk[(replay_pk, "I#0")]["ref"] == {"S": "e1"}
    minimal = [item for item in written if item["pk"]["S"] != replay_pk]
    assert len(minimal) == 4
    assert all(set(item) == {"pk", "sk", "kind"} for item in minimal)
    # The request's own items are untouched by the replays.
    own = client.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "COUNTER"}}, ConsistentRead=True)
    assert own["Item"]["used"] == {"N": "1"}
