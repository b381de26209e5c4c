"""The stream poller's shard handling on a scripted stream: parents before children, closed shards, new
shards, a re-created stream, LATEST, checkpoints. DynamoDB Local rarely splits shards, so these run on fakes.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from coaching_local import streams
from coaching_local.deliveries import DeliveryLog
from coaching_local.stream_io import Shard
from coaching_local.streams import StreamPoller
from coaching_local.template import StreamSource

OLD_ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/1"
NEW_ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2"


def raw(sequence: int, kind: str = "outbox") -> dict[str, Any]:
    key = f"item-{sequence}"
    return {
        "eventID": f"event-{sequence}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "ddblocal",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 1, 1, tzinfo=UTC),
            "Keys": {"pk": {"S": key}},
            "NewImage": {"pk": {"S": key}, "kind": {"S": kind}},
            "SequenceNumber": f"{sequence:021d}",
            "SizeBytes": 20,
            "StreamViewType": "NEW_IMAGE",
        },
    }


class FakeStreams:
    """A scripted DynamoDB Streams: shards with records; a closed shard ends its reads with no iterator."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arn: str | None = OLD_ARN
        self.shards_by_arn: dict[str, list[Shard]] = {OLD_ARN: [], NEW_ARN: []}
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.reads: list[str] = []

    def add_shard(self, shard_id: str, records: list[int], parent: str | None = None, arn: str = OLD_ARN) -> None:
        with self.lock:
            start = f"{records[0] if records else 0:021d}"
            self.shards_by_arn[arn].append(Shard(shard_id, parent, start, None))
            self.records[shard_id] = [raw(n) for n in records]

    def append(self, shard_id: str, *sequences: int, kind: str = "outbox") -> None:
        with self.lock:
            self.records[shard_id].extend(raw(n, kind) for n in sequences)

    def close(self, shard_id: str) -> None:
        with self.lock:
            for arn, shards in self.shards_by_arn.items():
                self.shards_by_arn[arn] = [
                    Shard(s.shard_id, s.parent_id, s.starting_sequence, s.starting_sequence)
                    if s.shard_id == shard_id
                    else s
                    for s in shards
                ]

    # ---- the StreamClient interface
    def stream_arn(self, table_name: str) -> str | None:
        return self.arn

    def shards(self, stream_arn: str) -> list[Shard]:
        with self.lock:
            return list(self.shards_by_arn[stream_arn])

    def iterator(self, stream_arn: str, shard_id: str, after: str | None, position: str) -> str:
        return f"{shard_id}|{after or ''}|{position}"

    def read(self, iterator: str) -> tuple[list[dict[str, Any]], str | None]:
        shard_id, after, _ = iterator.split("|")
        with self.lock:
            self.reads.append(shard_id)
            records = list(self.records[shard_id])
            closed = any(s.shard_id == shard_id and s.ending_sequence for v in self.shards_by_arn.values() for s in v)
        fresh = [r for r in records if not after or int(r["dynamodb"]["SequenceNumber"]) > int(after)]
        last = fresh[-1]["dynamodb"]["SequenceNumber"] if fresh else after
        return fresh, None if closed else f"{shard_id}|{last}|TRIM_HORIZON"


class FakeCheckpoints:
    def __init__(self) -> None:
        self.saved: dict[tuple[str, str], tuple[str | None, bool]] = {}

    def load(self, mapping: str) -> dict[str, tuple[str | None, bool]]:
        return {shard: value for (m, shard), value in self.saved.items() if m == mapping}

    def save(self, mapping: str, shard_id: str, sequence: str | None, *, done: bool = False) -> None:
        self.saved[(mapping, shard_id)] = (sequence, done)


class Recorder:
    """A stand-in FunctionPool: remembers each batch's item numbers."""

    def __init__(self) -> None:
        self.spec = SimpleNamespace(logical_id="Relay")
        self.function_name = "test-Relay"
        self.arn = "arn:aws:lambda:eu-west-1:123456789012:function:test-Relay"
        self.batches: list[list[int]] = []

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.batches.append([int(r["dynamodb"]["SequenceNumber"]) for r in event["Records"]])
        return {"batchItemFailures": []}


def source(position: str = "TRIM_HORIZON") -> StreamSource:
    return StreamSource(
        event_name="Changes",
        table="T",
        starting_position=position,
        batch_size=10,
        batching_window_seconds=0,
        max_retries=2,
        max_record_age_seconds=-1,
        bisect_on_error=False,
        report_batch_item_failures=True,
        filters=({"dynamodb": {"NewImage": {"kind": {"S": ["outbox"]}}}},),
        on_failure=None,
        enabled=True,
    )


@pytest.fixture(autouse=True)
def quick_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "SHARD_REFRESH", 0.05)
    monkeypatch.setattr(streams, "POLL_INTERVAL", 0.02)


@pytest.fixture
def fake() -> FakeStreams:
    return FakeStreams()


@pytest.fixture
def checkpoints() -> FakeCheckpoints:
    return FakeCheckpoints()


def running(fake: FakeStreams, checkpoints: FakeCheckpoints, pool: Recorder, position: str = "TRIM_HORIZON") -> Any:
    poller = StreamPoller(
        source(position),
        pool,
        "t",
        "http://unused",
        "eu-west-1",
        DeliveryLog(),
        0.01,
        fake,
        checkpoints,  # type: ignore[arg-type]
    )
    poller.start()
    return poller


@pytest.fixture
def pool() -> Recorder:
    return Recorder()


def drained(poller: StreamPoller) -> None:
    assert poller.drain(10), poller.state()


def delivered(pool: Recorder) -> list[int]:
    return [n for batch in pool.batches for n in batch]


def test_children_wait_for_their_parent_and_new_shards_are_picked_up(
    fake: FakeStreams, checkpoints: FakeCheckpoints, pool: Recorder
) -> None:
    fake.add_shard("parent", [1, 2])
    fake.add_shard("child", [3, 4], parent="parent")
    poller = running(fake, checkpoints, pool)
    try:
        drained(poller)
        assert delivered(pool) == [1, 2]  # the parent is open: its child is not read yet
        assert "child" not in fake.reads
        fake.append("parent", 5)
        fake.close("parent")  # split: the parent ends, the child (and a sibling) take over
        fake.add_shard("sibling", [6], parent="parent")
        drained(poller)
        assert delivered(pool)[:3] == [1, 2, 5]
        assert sorted(delivered(pool)[3:]) == [3, 4, 6]
        assert pool.batches[-2:] in ([[3, 4], [6]], [[6], [3, 4]])  # in order within each shard
        mapping = f"test-Relay|{OLD_ARN}"
        assert checkpoints.saved[(mapping, "parent")] == (f"{5:021d}", True)
        assert checkpoints.saved[(mapping, "child")] == (f"{4:021d}", False)
    finally:
        poller.stop()


def test_a_recreated_stream_is_followed_once_the_old_one_is_read(
    fake: FakeStreams, checkpoints: FakeCheckpoints, pool: Recorder
) -> None:
    fake.add_shard("old", [1])
    poller = running(fake, checkpoints, pool)
    try:
        drained(poller)
        fake.add_shard("new", [7], arn=NEW_ARN)
        fake.arn = NEW_ARN  # the stream was disabled and enabled again: the old one is closed
        fake.append("old", 2)
        fake.close("old")
        drained(poller)
        assert delivered(pool) == [1, 2, 7]
        assert poller.state()["stream_arn"] == NEW_ARN
    finally:
        poller.stop()


def test_restart_resumes_from_the_checkpoint_and_filters_are_checkpointed(
    fake: FakeStreams, checkpoints: FakeCheckpoints, pool: Recorder
) -> None:
    fake.add_shard("only", [1, 2])
    first = running(fake, checkpoints, pool)
    drained(first)
    first.stop()
    fake.append("only", 3, kind="audit")
    fake.append("only", 4)
    second = running(fake, checkpoints, pool)
    try:
        drained(second)
        assert delivered(pool) == [1, 2, 4]  # nothing twice; the audit record filtered out
        assert second.state()["filtered"] == 1
    finally:
        second.stop()


def test_latest_skips_what_is_there_on_the_first_start_only(
    fake: FakeStreams, checkpoints: FakeCheckpoints, pool: Recorder
) -> None:
    fake.add_shard("only", [1, 2])
    first = running(fake, checkpoints, pool, position="LATEST")
    drained(first)
    assert delivered(pool) == []
    fake.append("only", 3)
    drained(first)
    first.stop()
    fake.append("only", 4)  # written while the stack was down: LATEST does not skip it after a restart
    second = running(fake, checkpoints, pool, position="LATEST")
    try:
        drained(second)
        assert delivered(pool) == [3, 4]
    finally:
        second.stop()
