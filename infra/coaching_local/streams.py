"""DynamoDB stream event sources, locally: one poller thread per `Type: DynamoDB` function event.

Like Lambda's event source mapping, a poller reads every shard of the table's stream in order (a
child shard only after its parent is read to its end), drops records its FilterCriteria reject (the
EventBridge pattern language, applied to the record), invokes the function with batches of up to
BatchSize records (waiting up to MaximumBatchingWindowInSeconds to fill one), and checkpoints after
each batch, so a restarted stack resumes where the last one stopped. On a function error it splits
the batch (BisectBatchOnFunctionError; a split is not a retry) or retries it; with
ReportBatchItemFailures it retries from the first failed record. When MaximumRetryAttempts (or
MaximumRecordAgeInSeconds, measured from when the poller read the record) is exhausted the batch goes
to the OnFailure destination, which is the local dead-letter list, and the shard moves on.

Several shards of one stream are read by the same thread, one after another; order is kept per shard.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from coaching_local import event_patterns
from coaching_local.deliveries import DeliveryLog, backoff
from coaching_local.runtime import FunctionPool
from coaching_local.stream_batches import Outcome, Pending, on_failure_record, outcome_of
from coaching_local.stream_io import CheckpointStore, Shard, StreamClient, lambda_record, public_arn, sequence_key
from coaching_local.template import StreamSource

log = logging.getLogger("coaching_local.streams")

POLL_INTERVAL = 0.25  # seconds between reads of a caught-up stream
SHARD_REFRESH = 10.0  # seconds between DescribeStream calls while no shard closes
BUFFER_LIMIT = 1000  # records read ahead per shard


class _ShardState:
    def __init__(self, shard: Shard, checkpoint: str | None, done: bool, limit: int, skip: bool) -> None:
        self.shard = shard
        self.checkpoint = checkpoint  # the last sequence number processed (delivered, filtered or dead-lettered)
        self.done = done  # closed and read to its end
        self.skipping = skip  # LATEST on the first start: consume what is already there without delivering
        self.iterator: str | None = None
        self.exhausted = False  # a read returned no next iterator: nothing more will come
        self.buffer: deque[Pending] = deque()
        self.attempts = 0  # failed invocations of the current head batch, splits not counted
        self.limit = limit  # the batch size; halved by BisectBatchOnFunctionError
        self.split_until: str | None = None  # restore the batch size once past this record
        self.dirty = False  # checkpoint moved since it was saved


class StreamPoller:
    """The event source mapping of one function event to one table's stream."""

    def __init__(
        self,
        source: StreamSource,
        pool: FunctionPool,
        table_name: str,
        endpoint: str,
        region: str,
        delivery_log: DeliveryLog,
        retry_base_delay: float,
        client: StreamClient | None = None,
        checkpoints: CheckpointStore | None = None,
    ) -> None:
        self.source = source
        self.pool = pool
        self.table_name = table_name
        self.name = f"{pool.spec.logical_id}.{source.event_name}"
        self.region = region
        self.log = delivery_log
        self.retry_base_delay = retry_base_delay
        self.client = client or StreamClient(endpoint, region)
        self.checkpoints = checkpoints or CheckpointStore(self.client)
        self.stream_arn: str | None = None
        self.counts = {"invocations": 0, "delivered": 0, "filtered": 0, "dead_lettered": 0}
        self.last_error: str | None = None
        self._shards: dict[str, _ShardState] = {}
        self._saved: dict[str, tuple[str | None, bool]] | None = None
        self._next_refresh = 0.0
        self._paused = not source.enabled
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._cycle = 0  # poll cycles started
        self._idle_cycle = -1  # the last cycle that found nothing to read, deliver or wait for
        self._caught_up = False  # the last finished cycle was idle
        self._active = False  # a poll cycle is running
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"local-stream-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def pause(self, timeout: float = 30.0) -> None:
        """Stop reading and delivering; returns once the poll cycle in progress (if any) has ended.

        A cycle ends early when it sees the pause: after the read or invocation in flight, or at once
        from a retry backoff. `timeout` bounds the wait for a slow invocation.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._paused = True
            self._wake.set()  # cut a retry backoff short
            while self._active and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))

    def resume(self) -> None:
        self._paused = False
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def drain(self, timeout: float) -> bool:
        """Wait until a poll cycle that started after this call found nothing left; False on timeout or pause."""
        if self._thread is None:
            return False
        deadline = time.monotonic() + timeout
        with self._cond:
            wanted = self._cycle + 1
            self._wake.set()
            while self._idle_cycle < wanted:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._paused or self._stopping.is_set():
                    return False
                self._cond.wait(min(remaining, POLL_INTERVAL))
        return True

    def state(self) -> dict[str, Any]:
        shards = list(self._shards.values())
        buffers = {s.shard.shard_id: list(s.buffer) for s in shards}  # copies: the poller thread appends
        return {
            "name": self.name,
            "function": self.pool.spec.logical_id,
            "event": self.source.event_name,
            "table": self.table_name,
            "stream_arn": self.stream_arn,
            "running": self._thread is not None,
            "paused": self._paused,
            "caught_up": self._caught_up,
            "pending": sum(1 for buffer in buffers.values() for p in buffer if p.matches),
            **self.counts,
            "last_error": self.last_error,
            "shards": [
                {
                    "shard_id": s.shard.shard_id,
                    "checkpoint": s.checkpoint,
                    "done": s.done,
                    "buffered": len(buffers[s.shard.shard_id]),
                }
                for s in shards
            ],
        }

    # ------------------------------------------------------------------ polling

    @property
    def _mapping(self) -> str:
        return f"{self.pool.function_name}|{self.stream_arn}"

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._cond:
                running = not self._paused
                if running:
                    self._cycle += 1
                    self._active = True
                cycle = self._cycle
            if not running:
                self._wake.wait(POLL_INTERVAL)
                self._wake.clear()
                continue
            try:
                busy = self._poll()
                self.last_error = None
            except Exception as exc:  # DynamoDB Local restarting, a table re-created: start over shortly
                log.exception("stream %s: polling failed", self.name)
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.stream_arn, self._shards, self._saved = None, {}, None
                busy = True
                self._stopping.wait(1.0)
            with self._cond:
                self._active = False
                self._caught_up = not busy and not self._paused
                if self._caught_up:
                    self._idle_cycle = cycle
                self._cond.notify_all()
            if not busy:
                self._wake.wait(POLL_INTERVAL)
                self._wake.clear()

    def _poll(self) -> bool:
        """One pass over the ready shards; True when anything was read, delivered or is still waiting."""
        if self.stream_arn is None or time.monotonic() >= self._next_refresh:
            if not self._follow_stream():
                return True
            self._refresh_shards()
        busy = False
        for state in self._ready_shards():
            if self._paused or self._stopping.is_set():
                return True
            busy = self._poll_shard(state) or busy
        return busy

    def _follow_stream(self) -> bool:
        """Keep to the table's current stream; a re-created one is followed once the old one is read to its end."""
        latest = self.client.stream_arn(self.table_name)
        if latest != self.stream_arn and (self.stream_arn is None or all(s.done for s in self._shards.values())):
            self.stream_arn, self._shards = latest, {}
            self._saved = None if latest is None else self.checkpoints.load(self._mapping)
        if self.stream_arn is None:
            self.last_error = f"table {self.table_name} is missing or has no stream"
            return False
        return True

    def _refresh_shards(self) -> None:
        assert self.stream_arn is not None
        assert self._saved is not None
        first_start = not self._saved and not self._shards
        present = self.client.shards(self.stream_arn)
        for shard in present:
            if shard.shard_id not in self._shards:
                checkpoint, done = self._saved.get(shard.shard_id, (None, False))
                skip = first_start and self.source.starting_position == "LATEST" and shard.ending_sequence is None
                self._shards[shard.shard_id] = _ShardState(shard, checkpoint, done, self.source.batch_size, skip)
        ids = {s.shard_id for s in present}
        for gone in [shard_id for shard_id in self._shards if shard_id not in ids]:
            del self._shards[gone]  # trimmed from the stream
        self._next_refresh = time.monotonic() + SHARD_REFRESH

    def _ready_shards(self) -> list[_ShardState]:
        def parent_done(state: _ShardState) -> bool:
            parent = self._shards.get(state.shard.parent_id or "")
            return parent is None or parent.done

        ready = [s for s in self._shards.values() if not s.done and parent_done(s)]
        return sorted(ready, key=lambda s: sequence_key(s.shard.starting_sequence))

    def _poll_shard(self, state: _ShardState) -> bool:
        assert self.stream_arn is not None
        read_any = False
        if state.iterator is None and not state.exhausted:
            shard_id = state.shard.shard_id
            state.iterator = self.client.iterator(self.stream_arn, shard_id, state.checkpoint, "TRIM_HORIZON")
        if state.iterator is not None and len(state.buffer) < BUFFER_LIMIT:
            records, state.iterator = self.client.read(state.iterator)
            state.exhausted = state.iterator is None
            source_arn = public_arn(self.stream_arn, self.region)
            now = time.monotonic()
            for raw in records:
                record = lambda_record(raw, self.region, source_arn)
                matches = not state.skipping and self._passes(record)
                state.buffer.append(Pending(record, str(record["dynamodb"]["SequenceNumber"]), matches, now))
            read_any = bool(records)
            if not records and state.skipping:
                state.skipping, state.dirty = False, True  # LATEST is now a checkpoint: restarts resume here
        delivered = self._deliver(state)
        if state.dirty:
            self.checkpoints.save(self._mapping, state.shard.shard_id, state.checkpoint)
            state.dirty = False
        if state.exhausted and not state.buffer:
            state.done = True
            self.checkpoints.save(self._mapping, state.shard.shard_id, state.checkpoint, done=True)
            self._next_refresh = 0.0  # its children may now be ready
            return True
        return read_any or delivered or bool(state.buffer)

    def _passes(self, record: dict[str, Any]) -> bool:
        return not self.source.filters or any(event_patterns.matches(f, record) for f in self.source.filters)

    # ------------------------------------------------------------------ delivery

    def _consume(self, state: _ShardState, through: str) -> None:
        """Drop buffered records up to and including sequence number `through`; checkpoint there."""
        while state.buffer and sequence_key(state.buffer[0].sequence) <= sequence_key(through):
            state.buffer.popleft()
        state.checkpoint, state.dirty = through, False
        self.checkpoints.save(self._mapping, state.shard.shard_id, through)
        if state.split_until is not None and sequence_key(through) >= sequence_key(state.split_until):
            state.limit, state.split_until = self.source.batch_size, None

    def _deliver(self, state: _ShardState) -> bool:
        """Invoke the function with ready batches of this shard until none is ready; True if it did anything."""
        did = False
        while state.buffer and not self._paused and not self._stopping.is_set():
            while state.buffer and not state.buffer[0].matches:
                skipped = state.buffer.popleft()
                state.checkpoint, state.dirty, did = skipped.sequence, True, True
                self.counts["filtered"] += 1
            batch = [p for p in state.buffer if p.matches][: state.limit]
            if not batch:
                break
            waited = time.monotonic() - batch[0].read_at
            window = self.source.batching_window_seconds
            if len(batch) < state.limit and not state.attempts and not state.exhausted and waited < window:
                break  # MaximumBatchingWindowInSeconds: wait for a fuller batch
            did = True
            outcome = self._invoke(state, batch)
            done = len(batch) if outcome.status == "succeeded" else outcome.failed_index
            if done:  # delivered: everything before the first failed record
                state.attempts = 0
                self.counts["delivered"] += done
                self._consume(state, batch[done - 1].sequence)
                batch = batch[done:]
                if not batch:
                    continue
            if self.source.bisect_on_error and len(batch) > 1 and not done:
                # No progress: split the batch and try the halves; a split is not a retry.
                state.limit = max(1, len(batch) // 2)
                state.split_until = batch[-1].sequence
                continue
            state.attempts += 1
            retries, max_age = self.source.max_retries, self.source.max_record_age_seconds
            too_old = max_age >= 0 and time.monotonic() - batch[0].read_at > max_age
            if too_old or 0 <= retries < state.attempts:
                self._dead_letter(state, batch, outcome, "RecordAgeExceeded" if too_old else "RetryAttemptsExhausted")
                state.attempts = 0
                self._consume(state, batch[-1].sequence)
                continue
            self._wake.wait(backoff(self.retry_base_delay, state.attempts))  # stop, pause and drain cut it short
            self._wake.clear()
        return did

    def _invoke(self, state: _ShardState, batch: list[Pending]) -> Outcome:
        self.counts["invocations"] += 1
        try:
            result = self.pool.invoke({"Records": [p.record for p in batch]})
            outcome = outcome_of(result, batch, self.source.report_batch_item_failures)
        except Exception as exc:
            log.exception("stream %s → %s failed", self.name, self.pool.spec.logical_id)
            outcome = Outcome("failed", 0, f"{type(exc).__name__}: {exc}")
        self.log.record(
            "stream",
            self.source.event_name,
            self.pool.spec.logical_id,
            batch[0].record.get("eventID"),
            None,
            outcome.status,
            state.attempts + 1,
            outcome.error,
            stream=self.name,
            shard=state.shard.shard_id,
            sequence_numbers=[p.sequence for p in batch],
            failed=[p.sequence for p in batch[outcome.failed_index :]] if outcome.status != "succeeded" else [],
        )
        return outcome

    def _dead_letter(self, state: _ShardState, batch: list[Pending], outcome: Outcome, condition: str) -> None:
        self.counts["dead_lettered"] += len(batch)
        records = [p.record for p in batch]
        self.log.dead_letter(
            {
                "kind": "stream",
                "rule": self.source.event_name,
                "stream": self.name,
                "function": self.pool.spec.logical_id,
                "destination": self.source.on_failure,
                "condition": condition,
                "event_id": records[0].get("eventID"),
                "event": {"Records": records},
                "error": outcome.error,
                "attempts": state.attempts,
                "invocation_record": on_failure_record(
                    self.pool.arn, state.shard.shard_id, batch, condition, state.attempts
                ),
            }
        )
        log.error(
            "stream %s → %s: %d record(s) from %s sent to %s (%s): %s",
            self.name,
            self.pool.spec.logical_id,
            len(batch),
            batch[0].sequence,
            self.source.on_failure or "nowhere",
            condition,
            outcome.error,
        )
