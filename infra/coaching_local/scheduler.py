"""EventBridge Scheduler (and scheduled rules), locally: fire each schedule on its rate/cron in its time zone.

Expressions are evaluated by `schedules`; a due schedule is delivered asynchronously with its retry
policy like a rule's event. `fire(name)` invokes one now, synchronously, for `make fire` and tests.
"""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coaching_local import schedules
from coaching_local.deliveries import AsyncDelivery, DeliveryLog, Target, now_iso
from coaching_local.runtime import FunctionPool
from coaching_local.template import LOCAL_ACCOUNT_ID, Schedule

log = logging.getLogger("coaching_local.scheduler")


@dataclass
class ScheduleState:
    schedule: Schedule
    pool: FunctionPool
    anchor: datetime
    next_fire: datetime | None

    @property
    def qualified_name(self) -> str:
        return f"{self.pool.spec.logical_id}.{self.schedule.event_name}"


class Scheduler:
    def __init__(self, delivery: AsyncDelivery, delivery_log: DeliveryLog, region: str) -> None:
        self.delivery = delivery
        self.log = delivery_log
        self.region = region
        self.states: list[ScheduleState] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, schedule: Schedule, pool: FunctionPool, now: datetime) -> None:
        next_at = None
        if schedule.enabled:
            next_at = schedules.next_fire(schedule.expression, now, schedule.timezone, anchor=now)
        self.states.append(ScheduleState(schedule, pool, now, next_at))

    def start(self) -> None:
        if self._thread is None and self.states:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._loop, name="local-scheduler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def event(self, schedule: Schedule) -> Any:
        """What the target receives: the schedule's Input, or a scheduled rule's envelope without one."""
        if schedule.input is not None:
            return schedule.input
        if schedule.kind == "Schedule":
            return {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": LOCAL_ACCOUNT_ID,
                "time": now_iso(),
                "region": self.region,
                "resources": [],
                "detail": {},
            }
        return {}

    def _loop(self) -> None:
        while not self._stopping.is_set():
            now = datetime.now(UTC)
            self.run_due(now)
            upcoming = [s.next_fire for s in self.states if s.next_fire is not None]
            wait = min((min(upcoming) - now).total_seconds(), 1.0) if upcoming else 1.0
            self._stopping.wait(max(wait, 0.05))

    def run_due(self, now: datetime) -> list[str]:
        """Fire (asynchronously) every schedule due at `now`; returns their names."""
        fired: list[str] = []
        for state in self.states:
            if state.next_fire is None or state.next_fire > now:
                continue
            schedule = state.schedule
            target = Target("schedule", schedule.name, state.pool, schedule.max_retries, schedule.max_event_age_seconds)
            self.delivery.submit(target, self.event(schedule), str(uuid.uuid4()), None)
            fired.append(schedule.name)
            state.next_fire = schedules.next_fire(schedule.expression, now, schedule.timezone, anchor=state.anchor)
            log.info("schedule %s fired; next at %s", schedule.name, state.next_fire.isoformat())
        return fired

    def clock_moved(self, before: datetime, after: datetime) -> None:
        """Follow the stack's clock (coaching_local.clock): a move back re-plans every schedule from the new
        time; a move forward leaves the plan, so whatever fell due in between fires once on the next tick."""
        if after >= before:
            return
        for state in self.states:
            state.anchor = after
            if state.schedule.enabled:
                state.next_fire = schedules.next_fire(
                    state.schedule.expression, after, state.schedule.timezone, anchor=after
                )
        log.info("the clock moved back to %s: schedules re-planned from there", after.isoformat())

    def find(self, name: str) -> ScheduleState:
        found = [s for s in self.states if name in (s.schedule.name, s.schedule.event_name, s.qualified_name)]
        if not found:
            raise KeyError(name)
        if len(found) > 1:
            raise LookupError(f"{name} is ambiguous: use one of {[s.qualified_name for s in found]}")
        return found[0]

    def fire(self, name: str) -> dict[str, Any]:
        """Invoke a schedule's function now, synchronously and once; the result or the error."""
        state = self.find(name)
        schedule = state.schedule
        function = state.pool.spec.logical_id
        event_id = str(uuid.uuid4())
        try:
            result = state.pool.invoke(self.event(schedule))
        except Exception as exc:
            log.exception("schedule %s → %s failed", schedule.name, function)
            error = f"{type(exc).__name__}: {exc}"
            self.log.record("schedule", schedule.name, function, event_id, None, "failed", 1, error)
            return {
                "schedule": schedule.name,
                "function": function,
                "status": "failed",
                "error": error,
                "traceback": traceback.format_exc(),
            }
        self.log.record("schedule", schedule.name, function, event_id, None, "succeeded", 1, None)
        return {"schedule": schedule.name, "function": function, "status": "succeeded", "result": result}

    def listing(self) -> list[dict[str, Any]]:
        return [
            {
                "name": s.schedule.name,
                "event": s.qualified_name,
                "function": s.pool.spec.logical_id,
                "expression": s.schedule.expression,
                "timezone": s.schedule.timezone,
                "enabled": s.schedule.enabled,
                "next_fire": s.next_fire.isoformat() if s.next_fire else None,
                "input": s.schedule.input,
            }
            for s in self.states
        ]
