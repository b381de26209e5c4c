"""DynamoDB stream event sources against DynamoDB Local: filter, batches, partial failures, dead letters, restarts.

The fixture's RelayFunction reads OutboxTable's stream like the real event relay: INSERTs of items
with kind=outbox only, batches of up to 10, ReportBatchItemFailures, BisectBatchOnFunctionError,
MaximumRetryAttempts 2 and an OnFailure destination (RelayDeadLetters).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from coaching_local.dynamodb_local import ensure_tables
from coaching_local.gateway import LocalGateway
from coaching_local.template import load_template

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parent / "fixture_stack" / "template.yaml"
KEY = os.environ["LOCAL_DEV_SIGNING_KEY"].encode()
TABLE = "test-OutboxTable"
STREAM = "RelayFunction.Outbox"


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stream-sink")


@pytest.fixture(scope="module")
def ddb(dynamodb_local: str) -> Any:
    ensure_tables(dynamodb_local, load_template(FIXTURE), "test")
    return boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_local,
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def make_gateway(dynamodb_local: str, sink: Path) -> LocalGateway:
    return LocalGateway(
        FIXTURE,
        port=0,
        prefix="test",
        dynamodb_endpoint=dynamodb_local,
        env={"FIXTURE_SINK_DIR": str(sink)},
        signing_key=KEY,
        retry_base_delay=0.01,
        run_scheduler=False,
    )


@pytest.fixture
def gateway(dynamodb_local: str, sink: Path, ddb: Any) -> Iterator[LocalGateway]:
    with make_gateway(dynamodb_local, sink) as gw:
        yield gw


def uid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def put(ddb: Any, item_id: str, mode: str = "ok", kind: str = "outbox", **extra: Any) -> None:
    item = {"pk": {"S": item_id}, "id": {"S": item_id}, "kind": {"S": kind}, "mode": {"S": mode}, **extra}
    ddb.put_item(TableName=TABLE, Item=item)


def lines(sink: Path, name: str) -> list[dict[str, Any]]:
    path = sink / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def relayed(sink: Path, ids: list[str]) -> list[str]:
    return [entry["id"] for entry in lines(sink, "relayed.jsonl") if entry["id"] in ids]


def invocations(sink: Path, ids: list[str]) -> list[list[str]]:
    return [
        [i for i in entry["ids"] if i in ids] for entry in lines(sink, "attempts.jsonl") if set(entry["ids"]) & set(ids)
    ]


def drain(gateway: LocalGateway) -> dict[str, Any]:
    result = gateway.drain_streams(timeout=30)
    assert result["drained"], result
    return result


def test_outbox_inserts_are_delivered_as_lambda_stream_records(gateway: LocalGateway, ddb: Any, sink: Path) -> None:
    outbox, other = uid("shape"), uid("audit")
    put(ddb, outbox, blob={"B": b"\x00\x01"}, count={"N": "3"})
    put(ddb, other, kind="audit")  # filtered out: not kind=outbox
    put(ddb, outbox, note={"S": "changed"})  # a MODIFY: filtered out, only INSERTs pass
    drain(gateway)
    assert relayed(sink, [outbox, other]) == [outbox]
    (entry,) = [e for e in lines(sink, "attempts.jsonl") if e["ids"] == [outbox]]
    (record,) = entry["event"]["Records"]
    assert set(record) == {
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    }
    assert (record["eventName"], record["eventVersion"], record["eventSource"]) == ("INSERT", "1.1", "aws:dynamodb")
    assert record["awsRegion"] == "eu-west-1"
    assert record["eventSourceARN"].startswith(f"arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}/stream/")
    change = record["dynamodb"]
    assert change["Keys"] == {"pk": {"S": outbox}}
    assert change["NewImage"]["blob"] == {"B": "AAE="}  # binary as base64 text, as in Lambda's JSON event
    assert change["NewImage"]["count"] == {"N": "3"}
    assert change["StreamViewType"] == "NEW_IMAGE"
    assert isinstance(change["SequenceNumber"], str)
    assert isinstance(change["SizeBytes"], int)
    assert isinstance(change["ApproximateCreationDateTime"], int)
    state = next(s for s in gateway.stream_list() if s["name"] == STREAM)
    assert state["table"] == TABLE
    assert state["filtered"] >= 2
    assert state["caught_up"]
    assert state["pending"] == 0


def test_partial_batch_failure_retries_from_the_failed_record_in_order(
    gateway: LocalGateway, ddb: Any, sink: Path
) -> None:
    ids = [uid("a"), uid("b"), uid("c"), uid("d")]
    gateway.pause_stream(STREAM)
    for item_id in ids:
        put(ddb, item_id, mode="fail-once" if item_id == ids[1] else "ok")
    gateway.resume_stream(STREAM)
    drain(gateway)
    assert relayed(sink, ids) == ids  # each exactly once, in stream order
    assert invocations(sink, ids) == [ids, ids[1:]]  # retried from the first failed record
    records = [d for d in gateway.deliveries("stream") if d["event_id"] and d["sequence_numbers"]]
    partial = next(d for d in records if d["status"] == "partial" and len(d["sequence_numbers"]) == 4)
    assert partial["failed"] == partial["sequence_numbers"][1:]
    assert partial["function"] == "RelayFunction"
    assert partial["rule"] == "Outbox"


def test_poison_record_is_isolated_dead_lettered_and_the_shard_moves_on(
    gateway: LocalGateway, ddb: Any, sink: Path
) -> None:
    poison, after = uid("poison"), uid("after")
    gateway.pause_stream(STREAM)
    put(ddb, poison, mode="poison")
    put(ddb, after)
    gateway.resume_stream(STREAM)
    drain(gateway)
    assert relayed(sink, [poison, after]) == [after]
    # [poison, after] fails at its first record: split (not a retry), then 1 + MaximumRetryAttempts tries.
    assert invocations(sink, [poison, after]) == [[poison, after], [poison], [poison], [poison], [after]]
    dead = next(
        d for d in gateway.stream_dead_letters() if d["event"]["Records"][0]["dynamodb"]["Keys"]["pk"]["S"] == poison
    )
    assert (dead["kind"], dead["function"], dead["rule"], dead["stream"]) == (
        "stream",
        "RelayFunction",
        "Outbox",
        STREAM,
    )
    assert dead["destination"] == "RelayDeadLetters"
    assert dead["condition"] == "RetryAttemptsExhausted"
    assert dead["attempts"] == 3
    info = dead["invocation_record"]["DDBStreamBatchInfo"]
    sequence = dead["event"]["Records"][0]["dynamodb"]["SequenceNumber"]
    assert (info["batchSize"], info["startSequenceNumber"], info["endSequenceNumber"]) == (1, sequence, sequence)
    assert info["streamArn"].startswith("arn:aws:dynamodb:eu-west-1:123456789012:table/test-OutboxTable/stream/")
    assert dead["invocation_record"]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    over_http = requests.get(f"{gateway.url}/_local/dead-letters?kind=stream", timeout=10).json()
    assert any(d["event_id"] == dead["event_id"] for d in over_http)


def test_function_error_splits_the_batch_until_the_failing_record_is_alone(
    gateway: LocalGateway, ddb: Any, sink: Path
) -> None:
    first, bad, last = uid("first"), uid("raises"), uid("last")
    gateway.pause_stream(STREAM)
    for item_id, mode in ((first, "ok"), (bad, "raise"), (last, "ok")):
        put(ddb, item_id, mode=mode)
    gateway.resume_stream(STREAM)
    drain(gateway)
    assert relayed(sink, [first, bad, last]) == [first, last]
    assert invocations(sink, [first, bad, last]) == [[first, bad, last], [first], [bad], [bad], [bad], [last]]
    dead = next(
        d for d in gateway.stream_dead_letters() if d["event"]["Records"][0]["dynamodb"]["Keys"]["pk"]["S"] == bad
    )
    assert "relay fixture raises" in dead["error"]
    assert dead["attempts"] == 3


def test_paused_stream_does_not_drain_and_control_routes(gateway: LocalGateway, ddb: Any, sink: Path) -> None:
    url = f"{gateway.url}/_local/streams"
    listing = requests.get(url, timeout=10).json()
    assert [s["name"] for s in listing] == [STREAM]
    assert requests.post(f"{url}/Outbox/pause", timeout=10).json()["paused"] is True
    held = uid("held")
    put(ddb, held)
    answer = requests.post(f"{url}/drain?timeout=0.5", timeout=10)
    assert answer.status_code == 409
    assert answer.json()["paused"] == [STREAM]
    assert relayed(sink, [held]) == []
    assert requests.post(f"{url}/RelayFunction/resume", timeout=10).json()["paused"] is False
    drained = requests.post(f"{url}/{STREAM}/drain?timeout=30", timeout=60)
    assert drained.status_code == 200, drained.text
    assert drained.json()["drained"] is True
    assert relayed(sink, [held]) == [held]
    assert requests.post(f"{url}/nope/pause", timeout=10).status_code == 404
    assert requests.get(f"{gateway.url}/_local/streams/dead-letters", timeout=10).status_code == 200
    health = requests.get(f"{gateway.url}/_local/health", timeout=10).json()
    assert health["streams"] == [f"{TABLE} → {STREAM}"]


def test_checkpoint_survives_a_stop_exactly_once(dynamodb_local: str, ddb: Any, sink: Path) -> None:
    before, during = uid("before"), uid("during")
    with make_gateway(dynamodb_local, sink) as first:
        put(ddb, before)
        drain(first)
        first.pause_stream(STREAM)
        put(ddb, during)  # committed while delivery is paused: the process "dies" before publishing
        assert first.drain_streams(timeout=0.5)["drained"] is False
    with make_gateway(dynamodb_local, sink) as second:
        drain(second)
    assert relayed(sink, [before, during]) == [before, during]


def test_ensure_tables_gives_an_existing_table_its_stream(dynamodb_local: str, tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    table = """
Resources:
  Late:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
"""
    prefix = uid("late")
    template.write_text(table, encoding="utf-8")
    ensure_tables(dynamodb_local, load_template(template), prefix)
    template.write_text(table + "      StreamSpecification: {StreamViewType: NEW_IMAGE}\n", encoding="utf-8")
    ensure_tables(dynamodb_local, load_template(template), prefix)
    client = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_local,
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    spec = client.describe_table(TableName=f"{prefix}-Late")["Table"]["StreamSpecification"]
    assert spec == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
