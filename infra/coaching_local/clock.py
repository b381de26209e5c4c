"""The local stack's clock: moved for the whole stack process, on request, with `time-machine`.

Sessions are completed only after they took place and bookings are never made in the past, so a demo
month (or a test of one) needs the platform's clock to move. `StackClock.travel(destination)` moves the
wall clock of this process (`time.time`, `datetime.now`, `date.today` and the rest, in every thread:
time-machine patches them at the C level) to `destination`; it keeps ticking from there. `reset()`
returns to real time. Every handler, stream poller, bus delivery and schedule of the stack runs in
this process, so they all see the same moved time. Monotonic clocks (`time.monotonic`, timeouts,
Lambda's remaining time) are not moved: they measure durations, not dates.

Production code has no hook for this: the functions read the time the ordinary way, and the local stack
moves what "the time" is. Consequences, checked in tests/local_stack/test_clock.py and written down in
docs/operations.md ("Moving the local stack's clock"):
- development JWTs are verified against the moved clock; `iat` is not checked (tokens.py), so a token
  minted before a move back in time still verifies while its `exp` is ahead of the moved clock;
- Powertools idempotency records expire against the moved clock (7 days): a jump further than that
  forgets the event ids remembered before it, as the real platform would after a week;
- report links are signed and checked by the same process, against the same moved clock;
- DynamoDB Local does not check the SigV4 request time, so signing with a moved clock is accepted;
- schedules follow the clock (`Scheduler.clock_moved`): a move back re-plans every schedule from the new
  time; a move forward fires, once, every schedule that fell due in between.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import time_machine

ClockListener = Callable[[datetime, datetime], None]


class StackClock:
    """One moved wall clock for the process; listeners hear (before, after) of every move."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._travel: time_machine.travel | None = None
        self._traveller: time_machine.Traveller | None = None
        self._listeners: list[ClockListener] = []

    def on_move(self, listener: ClockListener) -> None:
        self._listeners.append(listener)

    @property
    def moved(self) -> bool:
        return self._travel is not None

    def travel(self, destination: datetime) -> dict[str, Any]:
        """Move the process's clock to `destination` (timezone-aware); it ticks on from there."""
        if destination.tzinfo is None or destination.utcoffset() is None:
            raise ValueError("travel_to must carry a time zone offset, e.g. 2026-10-01T09:00:00Z")
        with self._lock:
            before = datetime.now(UTC)
            if self._traveller is None:
                self._travel = time_machine.travel(destination, tick=True)
                self._traveller = self._travel.start()
            else:
                self._traveller.move_to(destination)
            after = datetime.now(UTC)
        self._notify(before, after)
        return self.state()

    def reset(self) -> dict[str, Any]:
        """Back to real time (a no-op when the clock was not moved)."""
        with self._lock:
            before = datetime.now(UTC)
            if self._travel is not None:
                self._travel.stop()
            self._travel = self._traveller = None
            after = datetime.now(UTC)
        if before != after:
            self._notify(before, after)
        return self.state()

    def state(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        # The escape hatch reads the real clock, and only answers while travelling.
        real = datetime.fromtimestamp(time_machine.escape_hatch.time.time(), UTC) if self.moved else now
        return {
            "now": now.isoformat(),
            "real_now": real.isoformat(),
            "moved": self.moved,
            "offset_seconds": round((now - real).total_seconds(), 3),
        }

    def _notify(self, before: datetime, after: datetime) -> None:
        for listener in self._listeners:
            listener(before, after)


def parse_destination(value: Any) -> datetime:
    """An ISO 8601 instant with an offset; ValueError naming `travel_to` otherwise."""
    if not isinstance(value, str):
        raise ValueError("travel_to must be an ISO 8601 date-time string with an offset")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"travel_to is not an ISO 8601 date-time: {value!r}") from exc
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("travel_to must carry a time zone offset, e.g. 2026-10-01T09:00:00Z")
    return moment.astimezone(UTC)
