"""DynamoDB Streams as the stream pollers read it: shards, records in Lambda's event shape, checkpoints.

DynamoDB Local serves the Streams API on its own endpoint. Checkpoints (the last sequence number
each mapping has processed, per shard) are kept in a table of that same DynamoDB, so they live
exactly as long as the stream data: a restarted stack resumes where the previous one stopped, and a
fresh in-memory DynamoDB starts from scratch.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from coaching_local.template import LOCAL_ACCOUNT_ID

log = logging.getLogger("coaching_local.streams")

CHECKPOINT_TABLE = "coaching-local-stream-checkpoints"
READ_LIMIT = 1000  # GetRecords' maximum
_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})


def _client(service: str, endpoint: str, region: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]  # the stubs type each service name separately
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local accepts any credentials
        config=_CONFIG,
    )


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_id: str | None
    starting_sequence: str
    ending_sequence: str | None  # set once the shard is closed


def sequence_key(sequence: str) -> int:
    return int(sequence)


class StreamClient:
    """One poller's view of DynamoDB and DynamoDB Streams (boto3 clients are per poller thread)."""

    def __init__(self, endpoint: str, region: str) -> None:
        self.region = region
        self.dynamodb = _client("dynamodb", endpoint, region)
        self.streams = _client("dynamodbstreams", endpoint, region)

    def stream_arn(self, table_name: str) -> str | None:
        """The table's current stream, None when the table is missing or has no enabled stream."""
        try:
            table = self.dynamodb.describe_table(TableName=table_name)["Table"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        enabled = (table.get("StreamSpecification") or {}).get("StreamEnabled")
        return str(table["LatestStreamArn"]) if enabled and table.get("LatestStreamArn") else None

    def shards(self, stream_arn: str) -> list[Shard]:
        found: list[Shard] = []
        start: dict[str, str] = {}
        while True:
            description = self.streams.describe_stream(StreamArn=stream_arn, **start)["StreamDescription"]
            for shard in description.get("Shards", []):
                numbers = shard.get("SequenceNumberRange", {})
                found.append(
                    Shard(
                        shard_id=shard["ShardId"],
                        parent_id=shard.get("ParentShardId"),
                        starting_sequence=str(numbers.get("StartingSequenceNumber", "0")),
                        ending_sequence=numbers.get("EndingSequenceNumber"),
                    )
                )
            last = description.get("LastEvaluatedShardId")
            if not last:
                return sorted(found, key=lambda s: sequence_key(s.starting_sequence))
            start = {"ExclusiveStartShardId": last}

    def iterator(self, stream_arn: str, shard_id: str, after: str | None, position: str) -> str | None:
        """An iterator just after `after`, else at `position`; TRIM_HORIZON when `after` was trimmed."""
        kwargs: dict[str, Any] = {"StreamArn": stream_arn, "ShardId": shard_id}
        if after is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        else:
            kwargs.update(ShardIteratorType=position)
        try:
            return self.streams.get_shard_iterator(**kwargs).get("ShardIterator")
        except ClientError as exc:
            if after is None or error_code(exc) != "TrimmedDataAccessException":
                raise
            log.warning("%s: records after %s were trimmed; reading from TRIM_HORIZON", shard_id, after)
            return self.iterator(stream_arn, shard_id, None, "TRIM_HORIZON")

    def read(self, iterator: str) -> tuple[list[dict[str, Any]], str | None]:
        """(records, next iterator); no next iterator once a closed shard has been read to its end."""
        answer = self.streams.get_records(ShardIterator=iterator, Limit=READ_LIMIT)
        return list(answer.get("Records", [])), answer.get("NextShardIterator")


def public_arn(stream_arn: str, region: str) -> str:
    """DynamoDB Local's stream ARN with the stack's region and account, as a deployed stack would show."""
    return re.sub(r"^arn:aws:dynamodb:[^:]*:[^:]*:", f"arn:aws:dynamodb:{region}:{LOCAL_ACCOUNT_ID}:", stream_arn)


def _wire(value: Any) -> Any:
    """boto3's parsed attribute values back to their JSON form: binary as base64 text."""
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def lambda_record(raw: dict[str, Any], region: str, event_source_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it to a DynamoDB stream consumer."""
    change = dict(raw.get("dynamodb") or {})
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    record: dict[str, Any] = {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": _wire(change),
        "eventSourceARN": event_source_arn,
    }
    if raw.get("userIdentity"):
        record["userIdentity"] = raw["userIdentity"]
    return record


class CheckpointStore:
    """Per mapping (function + stream) and shard: the last sequence number processed, and whether it is done."""

    def __init__(self, client: StreamClient, table: str = CHECKPOINT_TABLE) -> None:
        self.dynamodb = client.dynamodb
        self.table = table

    def ensure(self) -> None:
        with contextlib.suppress(self.dynamodb.exceptions.ResourceInUseException):
            self.dynamodb.create_table(
                TableName=self.table,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        self.dynamodb.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 0.2})

    def load(self, mapping: str) -> dict[str, tuple[str | None, bool]]:
        """shard id → (last processed sequence number, done)."""
        saved: dict[str, tuple[str | None, bool]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": mapping}},
            "ConsistentRead": True,
        }
        while True:
            page = self.dynamodb.query(**kwargs)
            for item in page.get("Items", []):
                saved[item["sk"]["S"]] = (item.get("seq", {}).get("S"), bool(item.get("done", {}).get("BOOL")))
            if "LastEvaluatedKey" not in page:
                return saved
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save(self, mapping: str, shard_id: str, sequence: str | None, *, done: bool = False) -> None:
        item: dict[str, Any] = {"pk": {"S": mapping}, "sk": {"S": shard_id}, "done": {"BOOL": done}}
        if sequence is not None:
            item["seq"] = {"S": sequence}
        self.dynamodb.put_item(TableName=self.table, Item=item)
