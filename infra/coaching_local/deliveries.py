"""Asynchronous invocation with retries and dead letters, and the log every delivery lands in.

EventBridge rules and Scheduler schedules invoke their function asynchronously with the template's
retry policy; table streams invoke synchronously from their pollers but record into the same log.
Every record has `seq`, `kind` (rule, schedule, stream), `rule` (the event's name), `function`,
`event_id`, `detail_type`, `status`, `attempts`, `error` and `time`; stream records add their own fields.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coaching_local.runtime import FunctionPool

log = logging.getLogger("coaching_local.deliveries")

DELIVERY_LOG_SIZE = 1000
MAX_BACKOFF_SECONDS = 5.0


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Target:
    """Something the local bus or scheduler delivers to: a rule or a schedule of one function."""

    kind: str  # "rule" or "schedule"
    name: str
    pool: FunctionPool
    max_retries: int
    max_event_age_seconds: int


class DeliveryLog:
    """The last deliveries and dead letters, newest last, for `/_local/deliveries` and `/_local/dead-letters`."""

    def __init__(self, size: int = DELIVERY_LOG_SIZE) -> None:
        self._deliveries: deque[dict[str, Any]] = deque(maxlen=size)
        self._dead_letters: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._serial = 0

    def record(
        self,
        kind: str,
        rule: str,
        function: str,
        event_id: str | None,
        detail_type: str | None,
        status: str,
        attempts: int,
        error: str | None,
        **extra: Any,
    ) -> dict[str, Any]:
        with self._lock:
            self._serial += 1
            entry = {
                "seq": self._serial,
                "kind": kind,
                "rule": rule,
                "function": function,
                "event_id": event_id,
                "detail_type": detail_type,
                "status": status,
                "attempts": attempts,
                "error": error,
                "time": now_iso(),
                **extra,
            }
            self._deliveries.append(entry)
        return entry

    def dead_letter(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._dead_letters.append({**entry, "time": now_iso()})

    def deliveries(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [d for d in self._deliveries if kind is None or d["kind"] == kind]

    def dead_letters(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [d for d in self._dead_letters if kind is None or d["kind"] == kind]


def backoff(base: float, attempt: int) -> float:
    """Short exponential backoff before retry `attempt` (1-based): base, 2·base, 4·base, ... at most 5 s."""
    return min(base * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)


class AsyncDelivery:
    """Invokes targets on a thread pool with their retry policy; exhausted events become dead letters."""

    def __init__(self, delivery_log: DeliveryLog, retry_base_delay: float, stopping: threading.Event) -> None:
        self.log = delivery_log
        self.retry_base_delay = retry_base_delay
        self._stopping = stopping
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="local-delivery")

    def stop(self) -> None:
        """Let running deliveries finish (the stopping event cuts their retries short), drop queued ones."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def submit(self, target: Target, event: Any, event_id: str, detail_type: str | None) -> None:
        if self._executor is None or self._stopping.is_set():
            log.warning("not delivering %s to %s: the local stack is stopping", event_id, target.name)
            return
        self._executor.submit(self._deliver, target, event, event_id, detail_type)

    def _deliver(self, target: Target, event: Any, event_id: str, detail_type: str | None) -> None:
        received = time.monotonic()
        attempts = 0
        error: str | None = None
        status = "failed"
        while attempts <= target.max_retries:
            if attempts and time.monotonic() - received > target.max_event_age_seconds:
                error = f"event older than MaximumEventAgeInSeconds={target.max_event_age_seconds}; {error}"
                break
            attempts += 1
            try:
                target.pool.invoke(event)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "%s %s → %s failed (attempt %d of %d)",
                    target.kind,
                    target.name,
                    target.pool.spec.logical_id,
                    attempts,
                    target.max_retries + 1,
                )
                if attempts <= target.max_retries and self._stopping.wait(backoff(self.retry_base_delay, attempts)):
                    error = f"stopped while retrying; {error}"
                    break
                continue
            status, error = "succeeded", None
            break
        function = target.pool.spec.logical_id
        self.log.record(target.kind, target.name, function, event_id, detail_type, status, attempts, error,
                        detail_event_id=_detail_event_id(event))  # fmt: skip
        if status == "succeeded":
            return
        self.log.dead_letter(
            {
                "kind": target.kind,
                "rule": target.name,
                "function": function,
                "event_id": event_id,
                "event": event,
                "error": error,
                "attempts": attempts,
            }
        )
        log.error(
            "%s %s → %s: dead-lettered event %s after %d attempt(s): %s",
            target.kind,
            target.name,
            function,
            event_id,
            attempts,
            error,
        )


def _detail_event_id(event: Any) -> str | None:
    """The domain event's own id (`detail.event_id`): a relayed batch retried publishes it in a new envelope."""
    detail = event.get("detail") if isinstance(event, dict) else None
    found = detail.get("event_id") if isinstance(detail, dict) else None
    return found if isinstance(found, str) else None
