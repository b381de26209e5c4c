"""The stack's clock in one process: every thread sees the moved time, listeners hear each move, input is checked.

Over HTTP, with handlers and schedules, in tests/local_stack/test_demo_month.py.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from coaching_local.clock import StackClock, parse_destination


def test_every_thread_sees_the_moved_clock_and_it_ticks_on_then_returns_to_real_time() -> None:
    clock = StackClock()
    heard: list[tuple[datetime, datetime]] = []
    clock.on_move(lambda before, after: heard.append((before, after)))
    destination = datetime(2025, 3, 30, 0, 59, 30, tzinfo=UTC)
    try:
        state = clock.travel(destination)
        assert state["moved"] is True
        seen: list[float] = []
        worker = threading.Thread(target=lambda: seen.append(time.time()))
        worker.start()
        worker.join()
        assert destination.timestamp() <= seen[0] < destination.timestamp() + 60  # the other thread too
        assert datetime.now(UTC) >= destination  # it ticks on from there
        later = destination + timedelta(days=40)
        clock.travel(later)
        assert later <= datetime.now(UTC) < later + timedelta(minutes=1)
    finally:
        back = clock.reset()
    assert back["moved"] is False
    assert back["offset_seconds"] == 0
    assert abs(datetime.now(UTC) - datetime.fromisoformat(back["real_now"])) < timedelta(minutes=1)
    assert [after.date() for _, after in heard] == [destination.date(), later.date(), datetime.now(UTC).date()]
    assert heard[0][1] < heard[0][0]  # a move back, as the scheduler hears it
    assert clock.reset()["moved"] is False  # resetting twice is harmless, and tells nobody


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("2026-10-01T06:00:00", "offset"),
        ("next tuesday", "not an ISO 8601"),
        (1790812800, "string"),
        (None, "string"),
    ],
)
def test_a_destination_needs_an_iso_instant_with_an_offset(value: object, says: str) -> None:
    with pytest.raises(ValueError, match="travel_to") as raised:
        parse_destination(value)
    assert says in str(raised.value)


def test_a_destination_is_read_as_an_instant_in_utc() -> None:
    assert parse_destination("2026-10-01T08:00:00+02:00") == datetime(2026, 10, 1, 6, tzinfo=UTC)


def test_schedules_are_re_planned_from_a_move_back_and_left_due_by_a_move_forward() -> None:
    from coaching_local.deliveries import AsyncDelivery, DeliveryLog
    from coaching_local.scheduler import Scheduler, ScheduleState
    from coaching_local.template_events import Schedule

    log = DeliveryLog()
    scheduler = Scheduler(AsyncDelivery(log, 0.1, threading.Event()), log, "eu-west-1")
    monthly = Schedule("ReportsMonthly", "reports", "cron(0 13 1 * ? *)", "UTC", None, 0, 60, True, "ScheduleV2")
    real = datetime(2026, 11, 30, 11, tzinfo=UTC)
    state = ScheduleState(monthly, pool=None, anchor=real, next_fire=datetime(2026, 12, 1, 13, tzinfo=UTC))  # type: ignore[arg-type]
    scheduler.states.append(state)
    scheduler.clock_moved(real, datetime(2026, 10, 1, 6, tzinfo=UTC))
    assert state.next_fire == datetime(2026, 10, 1, 13, tzinfo=UTC)  # the next one after the moved time
    scheduler.clock_moved(datetime(2026, 10, 1, 6, tzinfo=UTC), real)
    assert state.next_fire == datetime(2026, 10, 1, 13, tzinfo=UTC)  # left due: it fires on the next tick
