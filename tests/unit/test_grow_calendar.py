"""Group sessions and workshops share the coach calendar locks with 1:1s: the open 1:1 slots never offer
a time they hold (the slots see the locks), and booking one anyway is refused by the locks."""

from datetime import timedelta

import pytest
from coaching.domain.booking import buckets
from coaching.domain.errors import SlotTaken
from coaching.services import booking as booking_service

from .fakes.booking import COACH, START, World, employee


def test_the_open_slots_hide_what_a_group_session_holds_and_booking_it_is_refused():
    world = World.create()
    day = START + timedelta(days=3)
    window = (day, day + timedelta(hours=8))
    before = booking_service.slots(employee(), world.engagement.engagement_id, *window, world.booking_ctx)
    # A 60-minute group session at 10:00 with a 10-minute buffer after it holds the coach's calendar.
    group = day.replace(hour=10, minute=0)
    for bucket in buckets(group, group + timedelta(minutes=70)):
        world.store.coach_locks[(COACH, bucket)] = "group-session-1"
    after = booking_service.slots(employee(), world.engagement.engagement_id, *window, world.booking_ctx)
    hidden = {s.start_utc for s in before} - {s.start_utc for s in after}
    assert hidden, "the group session's time was offered before it was held"
    assert all(
        s.start_utc + timedelta(minutes=30) <= group or s.start_utc >= group + timedelta(minutes=70) for s in after
    )
    # Nothing outside the held time (and the 1:1's own buffer around it) disappears.
    assert all(group - timedelta(minutes=40) < start < group + timedelta(minutes=80) for start in hidden)
    with pytest.raises(SlotTaken):
        world.book(group)
    with pytest.raises(SlotTaken):
        world.book(group + timedelta(minutes=30))


def test_a_1_to_1s_own_locks_do_not_hide_more_than_the_1_to_1():
    world = World.create()
    day = START + timedelta(days=3)
    window = (day, day + timedelta(hours=8))
    before = {
        s.start_utc
        for s in booking_service.slots(employee(), world.engagement.engagement_id, *window, world.booking_ctx)
    }
    booked = world.book(day.replace(hour=11))
    after = {
        s.start_utc
        for s in booking_service.slots(employee(), world.engagement.engagement_id, *window, world.booking_ctx)
    }
    # Only the slots that overlap the booking widened by the coach's 10-minute buffer disappear (10:30 to
    # 11:30): its own locks, which also cover the buffer, hide nothing more.
    hidden = before - after
    assert sorted(hidden) == [booked.start + timedelta(minutes=m) for m in (-30, -15, 0, 15, 30)]
