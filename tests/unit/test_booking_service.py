"""Every rule the booking service enforces, on in-memory fakes of its ports (races aside)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from coaching.auth import Principal, Role
from coaching.domain.booking import BookingPolicy, BookingReads, BookingStatus, RescheduleRequest
from coaching.domain.engagements import EngagementStatus
from coaching.domain.errors import Conflict, InvalidInput, NotFound, PolicyRefused, SlotTaken
from coaching.domain.events import (
    BudgetThresholdReached,
    EngagementEnded,
    SessionBooked,
    SessionCancelled,
    SessionRescheduled,
)
from coaching.domain.invoicing import EntryKind
from coaching.domain.pricing import PriceBook
from coaching.services import booking

from .fakes.booking import (
    COACH,
    ORG,
    PERSON,
    START,
    FakeBilling,
    FakeBookingStore,
    World,
    as_coach,
    coach_profile,
    employee,
    make_engagement,
    price_book,
    roster_coach,
)


@pytest.fixture
def world() -> World:
    return World.create()


def reschedule(world: World, booking_id: str, start: datetime, who: Principal | None = None):
    return booking.reschedule(who or employee(), booking_id, RescheduleRequest(start=start), world.booking_ctx)


def same_month(world: World, count: int) -> list[datetime]:
    slots = world.slots(days=25)
    month = slots[0].strftime("%Y-%m")
    starts = [s for s in slots if s.strftime("%Y-%m") == month]
    assert len(starts) >= count
    return starts[:count]


# ---------------------------------------------------------------------------- booking


def test_a_booking_holds_the_calendars_a_place_and_a_unit_and_commits_session_booked(world):
    start = world.slots()[0]
    made = world.book(start)
    store = world.store
    assert store.stored(made) == made
    assert (made.status, made.start, made.end, made.upcoming_slot) == (
        BookingStatus.BOOKED,
        start,
        start + timedelta(minutes=30),
        1,
    )
    assert (made.policy.allowance_period, made.policy.late_cancel_hours, made.buffer_minutes) == ("2027-03", 24, 10)
    assert store.situations[made.booking_id] == "Preparing a reorganisation conversation."
    assert len([k for k, v in store.coach_locks.items() if v == made.booking_id]) == 8  # 30 min + 10 min buffer
    assert len([k for k, v in store.person_locks.items() if v == made.booking_id]) == 6
    assert store.allowance_used[(ORG, PERSON, made.program, "2027-03")] == 1
    [event] = store.events()
    assert isinstance(event, SessionBooked)
    assert (event.booking_id, event.person_id, event.coach_id, event.program, event.start) == (
        made.booking_id,
        PERSON,
        COACH,
        "SCALE",
        start,
    )


@pytest.mark.parametrize(
    ("start", "why"),
    [
        (START + timedelta(minutes=30), "inside the coach's one hour of notice"),
        (START + timedelta(days=121), "beyond the coach's 120-day horizon"),
        (datetime(2027, 3, 5, 3, 0, tzinfo=UTC), "outside the coach's weekly hours"),
        (datetime(2027, 3, 5, 10, 7, tzinfo=UTC), "off the 15-minute grid"),
        (START - timedelta(days=1), "in the past"),
    ],
)
def test_a_start_the_coach_does_not_offer_is_refused_naming_start(world, start, why):
    with pytest.raises(InvalidInput) as refused:
        world.book(start)
    assert refused.value.field == "start", why
    assert world.store.bookings == {}
    assert world.store.events() == []


def test_time_off_in_the_coachs_profile_closes_the_day(world):
    day = world.slots()[0]
    world.roster.coaches[COACH] = roster_coach(
        availability_exceptions=[{"date": day.date().isoformat(), "kind": "time_off"}]
    )
    with pytest.raises(InvalidInput):
        world.book(day)


def test_the_length_is_the_programmes_and_focus_must_be_known(world):
    start = world.slots()[0]
    with pytest.raises(InvalidInput) as length:
        booking.book(employee(), world.request(start).model_copy(update={"length_minutes": 60}), world.booking_ctx)
    assert length.value.field == "length_minutes"
    with pytest.raises(InvalidInput) as focus:
        booking.book(
            employee(),
            world.request(start).model_copy(update={"focus_competencies": ["juggling"]}),
            world.booking_ctx,
        )
    assert focus.value.field == "focus_competencies"


def test_an_engagement_must_be_the_callers_active_one_with_an_approved_coach(world):
    start = world.slots()[0]
    stranger = Principal(person_id="someone-else", org_id=ORG, roles=frozenset({Role.EMPLOYEE}))
    with pytest.raises(NotFound):
        booking.book(stranger, world.request(start), world.booking_ctx)
    del world.roster.coaches[COACH]  # suspended: out of the roster
    with pytest.raises(Conflict, match="not taking sessions") as suspended:
        world.book(start)
    assert suspended.value.field == "engagement_id"
    world.roster.coaches[COACH] = roster_coach()
    world.store.add_engagement(world.engagement.model_copy(update={"status": EngagementStatus.ENDED}))
    with pytest.raises(Conflict, match="has ended") as ended:
        world.book(start)
    assert ended.value.field == "engagement_id"


def test_the_engagement_must_still_be_active_when_the_booking_commits(world):
    """The read saw it active; the ACTIVE marker moved before the transaction: refused, nothing held."""
    start = world.slots()[0]
    world.store.active[(ORG, PERSON, world.engagement.program)] = "a-newer-engagement"
    with pytest.raises(Conflict, match="no longer active"):
        world.book(start)
    assert world.store.coach_locks == {}
    assert world.store.allowance_used == {}


# ---------------------------------------------------------------------------- calendars


def test_a_coachs_slot_and_its_buffer_are_never_sold_twice(world):
    start = world.slots()[0]
    world.book(start)
    other = world.add_person("person-2")
    for clash in (start, start + timedelta(minutes=15), start + timedelta(minutes=30), start - timedelta(minutes=30)):
        # The same slot, an overlap, right after (inside the 10-minute buffer), right before (its buffer hits us).
        with pytest.raises(SlotTaken, match="just booked") as taken:
            world.book(clash, other)
        assert taken.value.field == "start"
    assert world.book(start + timedelta(minutes=45), other).start == start + timedelta(minutes=45)


def test_a_person_cannot_be_in_two_sessions_at_once_even_with_two_coaches(world):
    start = world.slots()[0]
    world.book(start)
    world.roster.coaches["coach-2"] = roster_coach("coach-2")
    grow = make_engagement(engagement_id="engagement-grow", program="GROW", coach_id="coach-2")
    world.store.add_engagement(grow)
    world.set_policy(BookingPolicy(allowances={"SCALE": {"sessions": 4}, "GROW": {"sessions": 4}}, max_upcoming=4))
    with pytest.raises(SlotTaken, match="you already have a session at that time"):
        world.book(start, grow)


def test_open_slots_leave_out_booked_sessions_and_their_buffers(world):
    start = world.slots()[0]
    day = start.replace(hour=0, minute=0)
    before = booking.slots(employee(), world.engagement.engagement_id, day, day + timedelta(days=1), world.booking_ctx)
    assert start in [s.start_utc for s in before]
    world.book(start)
    after = booking.slots(employee(), world.engagement.engagement_id, day, day + timedelta(days=1), world.booking_ctx)
    starts = [s.start_utc for s in after]
    blocked = [s for s in starts if s - timedelta(minutes=40) < start < s + timedelta(minutes=40)]
    assert blocked == []  # 30 minutes plus the 10-minute buffer on each side
    assert start + timedelta(minutes=45) in starts
    assert len(starts) < len(before)


def test_slot_ranges_are_bounded(world):
    with pytest.raises(InvalidInput) as backwards:
        booking.slots(employee(), world.engagement.engagement_id, START, START, world.booking_ctx)
    assert backwards.value.field == "to"
    with pytest.raises(InvalidInput, match="31 days"):
        booking.slots(employee(), world.engagement.engagement_id, START, START + timedelta(days=32), world.booking_ctx)


# ---------------------------------------------------------------------------- allowance, places, cap, budget


def test_the_allowance_is_per_programme_and_level_and_says_when_it_resets(world):
    world.set_policy(BookingPolicy(allowances={"SCALE": {"sessions": 2, "by_level": {"manager": 3}}}, max_upcoming=10))
    starts = same_month(world, 5)
    for start in starts[:3]:
        world.book(start)
    with pytest.raises(PolicyRefused) as refused:
        world.book(starts[3])
    assert refused.value.code == "policy_refused"
    assert refused.value.details == {"rule": "allowance", "period": "2027-03", "resets_at": "2027-04-01T00:00:00+00:00"}
    assert "3 SCALE sessions for 2027-03" in refused.value.message
    contributor = world.add_person("person-ic", level="individual_contributor")
    world.book(starts[3], contributor)
    world.book(starts[4], contributor)
    assert world.store.allowance_used[(ORG, "person-ic", world.engagement.program, "2027-03")] == 2


def test_a_programme_the_org_does_not_offer_cannot_be_booked(world):
    world.set_policy(BookingPolicy(allowances={"SCALE": {"sessions": 0}}))
    with pytest.raises(PolicyRefused, match="offers no SCALE sessions") as refused:
        world.book(world.slots()[0])
    assert refused.value.field == "program"


def test_upcoming_places_are_limited_and_come_back_once_a_session_has_taken_place(world):
    world.set_policy(BookingPolicy(allowances={"SCALE": {"sessions": 10}}, max_upcoming=2))
    starts = same_month(world, 3)
    first = world.book(starts[0])
    world.book(starts[1])
    with pytest.raises(PolicyRefused) as refused:
        world.book(starts[2])
    assert refused.value.details == {"rule": "max_upcoming"}
    assert refused.value.field == "start"
    world.clock.now = first.end + timedelta(minutes=1)  # the first one has taken place
    later = world.book(starts[2] + timedelta(days=1))
    assert later.upcoming_slot == first.upcoming_slot


def test_a_monthly_session_cap_fires_80_and_100_percent_once_each_then_refuses(world):
    world.set_policy(BookingPolicy(allowances={"SCALE": {"sessions": 4}}, max_upcoming=4, monthly_session_cap=5))
    starts = same_month(world, 8)
    people = [world.engagement, *(world.add_person(f"person-{n}") for n in range(2, 5))]
    made = [world.book(starts[i], people[i % 4]) for i in range(5)]
    reached = world.store.events(BudgetThresholdReached)
    assert [(e.meter, e.percent, e.used, e.cap, e.period) for e in reached] == [
        ("cap", 80, 4, 5, "2027-03"),
        ("cap", 100, 5, 5, "2027-03"),
    ]
    with pytest.raises(PolicyRefused) as capped:
        world.book(starts[5], people[1])
    assert capped.value.details["rule"] == "cap"
    assert "cap of 5 sessions for 2027-03" in capped.value.message
    # A free cancel gives the session back; crossing 100 % again does not fire again.
    booking.cancel(employee(made[0].person_id), made[0].booking_id, "", world.booking_ctx)
    assert world.store.meters[(ORG, "cap", "2027-03")] == 4
    world.book(starts[6], people[1])
    assert world.store.meters[(ORG, "cap", "2027-03")] == 5
    assert len(world.store.events(BudgetThresholdReached)) == 2


def test_a_money_budget_counts_list_prices_and_refuses_the_booking_that_would_exceed_it(world):
    """Budget 200.00 EUR; a SCALE session lists at 90.00: two fit (80 % crossed by the second), the third does not."""
    world.set_policy(BookingPolicy(allowances={"SCALE": {"sessions": 6}}, max_upcoming=6, monthly_budget_minor=20_000))
    starts = same_month(world, 4)
    first = world.book(starts[0])
    assert first.policy.budget_minor == 9_000
    assert world.store.events(BudgetThresholdReached) == []
    world.book(starts[1])
    [reached] = world.store.events(BudgetThresholdReached)
    assert (reached.meter, reached.percent, reached.used, reached.cap) == ("budget", 80, 18_000, 20_000)
    with pytest.raises(PolicyRefused) as refused:
        world.book(starts[2])
    assert refused.value.details["rule"] == "budget"
    assert "200.00 EUR" in refused.value.message
    booking.cancel(employee(), first.booking_id, "", world.booking_ctx)  # early: the money comes back
    assert world.store.meters[(ORG, "budget", "2027-03")] == 9_000
    world.book(starts[2])
    assert world.store.meters[(ORG, "budget", "2027-03")] == 18_000
    assert len(world.store.events(BudgetThresholdReached)) == 1  # 80 % does not fire twice


class _LaggingStore(FakeBookingStore):
    """Reads the org meters as they were before other bookings moved them."""

    def read_for_booking(self, org_id: str, person_id: str, engagement_id: str, periods: Iterable[str]) -> BookingReads:
        reads = super().read_for_booking(org_id, person_id, engagement_id, periods)
        return reads._replace(org_usage=dict.fromkeys(reads.org_usage, 0))


def test_a_meter_that_moved_since_it_was_read_is_read_again_and_the_booking_retried():
    world = World.create(BookingPolicy(allowances={"SCALE": {"sessions": 4}}, max_upcoming=4, monthly_session_cap=5))
    world.store = _LaggingStore(**{name: getattr(world.store, name) for name in world.store.__dataclass_fields__})
    world.store.meters[(ORG, "cap", "2027-03")] = 3  # three sessions booked by others since the read
    made = world.book(same_month(world, 1)[0])
    assert made.status is BookingStatus.BOOKED
    assert world.store.meters[(ORG, "cap", "2027-03")] == 4
    [reached] = world.store.events(BudgetThresholdReached)
    assert (reached.percent, reached.used) == (80, 4)  # the retry knew it was the one crossing 80 %


def test_an_unpriced_session_is_refused_before_anything_is_held(world):
    start = world.slots()[0]
    del world.store.price_books[ORG]
    with pytest.raises(PolicyRefused) as missing:
        world.book(start)
    assert missing.value.details == {"rule": "unpriced"}
    world.store.price_books[ORG] = price_book(session_prices={"GROW": {"45": 12_000}})
    with pytest.raises(PolicyRefused, match="no price for SCALE 30-minute sessions") as unpriced:
        world.book(start)
    assert (unpriced.value.code, unpriced.value.details) == ("policy_refused", {"rule": "unpriced"})
    world.store.price_books[ORG] = PriceBook(org_id=ORG)
    with pytest.raises(PolicyRefused):
        world.book(start)
    assert world.store.bookings == {}
    assert world.store.coach_locks == {}


# ---------------------------------------------------------------------------- cancel


def test_an_early_cancel_is_free_releases_everything_and_gives_the_unit_back(world):
    made = world.book(world.slots()[0])
    cancelled = booking.cancel(employee(), made.booking_id, "plans changed", world.booking_ctx)
    assert (cancelled.status, cancelled.billable, cancelled.cancelled_by, cancelled.sequence) == (
        BookingStatus.CANCELLED,
        False,
        "person",
        1,
    )
    store = world.store
    assert store.stored(made).status is BookingStatus.CANCELLED
    assert store.locators[made.booking_id].status == "cancelled"
    assert store.coach_locks == {}
    assert store.person_locks == {}
    assert store.places == {}
    assert store.allowance_used[(ORG, PERSON, made.program, "2027-03")] == 0
    assert store.ledger.for_booking(made.booking_id) == []
    event = store.events(SessionCancelled)[0]
    assert (event.booking_id, event.person_id, event.cancelled_by, event.late) == (
        made.booking_id,
        PERSON,
        "person",
        False,
    )
    # The slot is free for the next person at once.
    assert world.book(made.start, world.add_person("person-2")).start == made.start


def test_a_late_cancel_is_billed_with_its_usage_entry_and_keeps_the_unit_used(world):
    made = world.book(world.slots()[0])
    world.clock.now = made.start - timedelta(hours=3)
    cancelled = booking.cancel(employee(), made.booking_id, "sick", world.booking_ctx)
    assert (cancelled.status, cancelled.billable) == (BookingStatus.LATE_CANCELLED, True)
    assert world.store.allowance_used[(ORG, PERSON, made.program, "2027-03")] == 1
    assert world.store.coach_locks == {}  # the coach's time is free for others all the same
    [entry] = world.store.ledger.for_booking(made.booking_id)
    assert (entry.kind, entry.outcome, entry.amount_minor, entry.billed_in) == (
        EntryKind.USAGE,
        "late_cancelled",
        4_500,
        "2027-03",
    )
    assert world.store.events(SessionCancelled)[0].late is True


def test_a_booking_is_cancelled_once_before_it_starts_and_only_by_its_person(world):
    made = world.book(world.slots()[0])
    someone = Principal(person_id="person-2", org_id=ORG, roles=frozenset({Role.EMPLOYEE}))
    with pytest.raises(NotFound):
        booking.cancel(someone, made.booking_id, "", world.booking_ctx)
    world.clock.now = made.start
    with pytest.raises(Conflict, match="has started"):
        booking.cancel(employee(), made.booking_id, "", world.booking_ctx)
    world.clock.now = START
    booking.cancel(employee(), made.booking_id, "", world.booking_ctx)
    with pytest.raises(Conflict, match="already cancelled"):
        booking.cancel(employee(), made.booking_id, "", world.booking_ctx)
    assert len(world.store.events(SessionCancelled)) == 1


def test_a_coach_cancel_is_never_billed_and_the_unit_comes_back(world):
    made = world.book(world.slots()[0])
    world.clock.now = made.start - timedelta(hours=1)
    with pytest.raises(NotFound):
        booking.coach_cancel(as_coach("coach-2"), made.booking_id, "", world.booking_ctx)
    cancelled = booking.coach_cancel(as_coach(), made.booking_id, "ill", world.booking_ctx)
    assert (cancelled.status, cancelled.billable, cancelled.cancelled_by, cancelled.cancel_reason) == (
        BookingStatus.CANCELLED,
        False,
        "coach",
        "ill",
    )
    assert world.store.allowance_used[(ORG, PERSON, made.program, "2027-03")] == 0
    assert world.store.ledger.for_booking(made.booking_id) == []
    assert world.store.coach_locks == {}
    assert world.store.events(SessionCancelled)[0].cancelled_by == "coach"


# ---------------------------------------------------------------------------- reschedule


def test_an_early_reschedule_moves_in_place_and_moves_the_locks(world):
    slots = world.slots()
    made = world.book(slots[0])
    moved = reschedule(world, made.booking_id, slots[3])
    assert (moved.booking_id, moved.sequence, moved.start, moved.reschedules) == (made.booking_id, 1, slots[3], 1)
    assert world.store.stored(made) == moved
    assert set(world.store.coach_locks.values()) == {made.booking_id}
    assert min(bucket for _, bucket in world.store.coach_locks) == slots[3].strftime("%Y%m%dT%H%MZ")
    assert world.store.allowance_used[(ORG, PERSON, made.program, "2027-03")] == 1
    [event] = world.store.events(SessionRescheduled)
    assert (event.booking_id, event.previous_start, event.start, event.late, event.billed) == (
        made.booking_id,
        slots[0],
        slots[3],
        False,
        False,
    )
    assert event.replaces_booking_id is None
    assert world.store.ledger.for_booking(made.booking_id) == []


def test_a_reschedule_must_land_on_an_offered_free_slot(world):
    slots = world.slots()
    made = world.book(slots[0])
    with pytest.raises(InvalidInput, match="current time"):
        reschedule(world, made.booking_id, slots[0])
    with pytest.raises(InvalidInput) as closed:
        reschedule(world, made.booking_id, datetime(2027, 3, 5, 3, 0, tzinfo=UTC))
    assert closed.value.field == "start"
    world.book(slots[2], world.add_person("person-2"))
    with pytest.raises(SlotTaken):
        reschedule(world, made.booking_id, slots[2])
    assert world.store.stored(made) == made


def test_a_reschedule_into_another_month_moves_the_unit_to_that_month(world):
    made = world.book(world.slots()[0])
    april = datetime(2027, 4, 6, 10, 0, tzinfo=UTC)
    moved = reschedule(world, made.booking_id, april)
    assert moved.policy.allowance_period == "2027-04"
    used = world.store.allowance_used
    assert (used[(ORG, PERSON, made.program, "2027-03")], used[(ORG, PERSON, made.program, "2027-04")]) == (0, 1)


def test_free_late_reschedules_move_in_place_until_used_up(world):
    world.set_policy(BookingPolicy(allowances={"SCALE": {"sessions": 4}}, max_upcoming=4, free_late_reschedules=1))
    slots = world.slots()
    made = world.book(slots[0])
    world.clock.now = made.start - timedelta(hours=2)
    moved = reschedule(world, made.booking_id, slots[1])
    assert (moved.booking_id, moved.late_reschedules) == (made.booking_id, 1)
    assert world.store.events(SessionRescheduled)[0].late is True
    assert world.store.events(SessionRescheduled)[0].billed is False
    assert world.store.ledger.for_booking(made.booking_id) == []
    world.clock.now = moved.start - timedelta(hours=2)
    replacement = reschedule(world, made.booking_id, slots[2])
    assert replacement.booking_id != made.booking_id
    assert len(world.store.ledger.for_booking(made.booking_id)) == 1


def test_a_billed_late_reschedule_bills_the_old_session_and_a_replacement_takes_over(world):
    slots = world.slots()
    made = world.book(slots[0])
    world.clock.now = made.start - timedelta(hours=2)
    replacement = reschedule(world, made.booking_id, slots[1])
    store = world.store
    old = store.stored(made)
    assert (old.status, old.billable, old.cancel_reason) == (
        BookingStatus.LATE_CANCELLED,
        True,
        "rescheduled inside the late-cancel window",
    )
    assert replacement.booking_id != made.booking_id
    assert (replacement.calendar_uid, replacement.situation_booking_id, replacement.rescheduled_from) == (
        made.booking_id,
        made.booking_id,
        made.booking_id,
    )
    assert (replacement.sequence, replacement.upcoming_slot) == (1, made.upcoming_slot)
    assert store.places[(ORG, PERSON, made.upcoming_slot)][0] == replacement.booking_id
    assert set(store.coach_locks.values()) == {replacement.booking_id}  # the old time is free again
    assert store.allowance_used[(ORG, PERSON, made.program, "2027-03")] == 2  # the old unit stays used
    [entry] = store.ledger.for_booking(made.booking_id)
    assert (entry.outcome, entry.amount_minor) == ("late_cancelled", 4_500)
    [event] = store.events(SessionRescheduled)
    assert (event.booking_id, event.replaces_booking_id, event.late, event.billed, event.previous_start) == (
        replacement.booking_id,
        made.booking_id,
        True,
        True,
        slots[0],
    )


# ---------------------------------------------------------------------------- engagement ended


def _ended(world: World) -> EngagementEnded:
    return EngagementEnded(
        org_id=ORG,
        person_id=PERSON,
        engagement_id=world.engagement.engagement_id,
        coach_id=COACH,
        program="SCALE",
        end_reason="change",
    )


def test_an_ended_engagement_cancels_its_future_sessions_unbilled_once(world):
    slots = world.slots()
    past = world.book(slots[0])
    future = [world.book(slots[2]), world.book(slots[4])]
    other_engagement = world.add_person("person-2")
    theirs = world.book(slots[6], other_engagement)
    world.clock.now = past.start + timedelta(minutes=5)  # the first has started: the coach records it
    world.store.add_engagement(world.engagement.model_copy(update={"status": EngagementStatus.ENDED}))
    cancelled = booking.on_engagement_ended(_ended(world), world.booking_ctx)
    assert sorted(b.booking_id for b in cancelled) == sorted(b.booking_id for b in future)
    for session in future:
        stored = world.store.stored(session)
        assert (stored.status, stored.cancelled_by, stored.billable) == (BookingStatus.CANCELLED, "platform", False)
    assert world.store.stored(past).status is BookingStatus.BOOKED
    assert world.store.stored(theirs).status is BookingStatus.BOOKED
    assert world.store.allowance_used[(ORG, PERSON, past.program, "2027-03")] == 1
    events = world.store.events(SessionCancelled)
    assert sorted((e.booking_id, e.cancelled_by, e.late) for e in events) == sorted(
        (b.booking_id, "platform", False) for b in future
    )
    # Redelivered: nothing left to do, nothing committed again.
    assert booking.on_engagement_ended(_ended(world), world.booking_ctx) == []
    assert len(world.store.events(SessionCancelled)) == 2


def test_an_engagement_ended_event_for_a_still_active_engagement_changes_nothing(world):
    """The event is checked against the engagement as stored: a forged or stale one cancels nothing."""
    made = world.book(world.slots()[0])
    assert booking.on_engagement_ended(_ended(world), world.booking_ctx) == []
    assert world.store.stored(made).status is BookingStatus.BOOKED
    unknown = _ended(world).model_copy(update={"engagement_id": "no-such-engagement"})
    assert booking.on_engagement_ended(unknown, world.booking_ctx) == []
    assert world.store.events(SessionCancelled) == []


def test_a_session_the_person_cancelled_meanwhile_is_left_alone(world):
    made = world.book(world.slots()[0])
    world.store.add_engagement(world.engagement.model_copy(update={"status": EngagementStatus.ENDED}))
    world.store.lose_next_end_to = made.cancel(booking.CancelledBy.PERSON, "", world.clock.now)
    assert booking.on_engagement_ended(_ended(world), world.booking_ctx) == []
    assert world.store.stored(made).cancelled_by == "person"


# ---------------------------------------------------------------------------- reading and invites


def test_people_see_their_own_bookings_in_order_and_coaches_their_sessions(world):
    slots = world.slots()
    later, sooner = world.book(slots[3]), world.book(slots[1])
    assert [b.booking_id for b in booking.list_bookings(employee(), world.booking_ctx)] == [
        sooner.booking_id,
        later.booking_id,
    ]
    assert booking.get_booking(employee(), later.booking_id, world.booking_ctx) == later
    with pytest.raises(NotFound):
        booking.get_booking(employee("person-2"), later.booking_id, world.booking_ctx)
    window = (slots[0], slots[0] + timedelta(days=5))
    assert {b.booking_id for b in booking.coach_sessions(as_coach(), *window, world.booking_ctx)} == {
        sooner.booking_id,
        later.booking_id,
    }
    world.coaches.coaches["coach-2"] = coach_profile("coach-2", "Bo Coach")
    assert booking.coach_sessions(as_coach("coach-2"), *window, world.booking_ctx) == []
    with pytest.raises(InvalidInput):
        booking.coach_sessions(as_coach(), slots[0], slots[0] + timedelta(days=40), world.booking_ctx)


def test_the_invite_names_the_coach_and_keeps_its_uid_through_a_billed_reschedule(world):
    slots = world.slots()
    made = world.book(slots[0])
    invite = booking.invite(employee(), made.booking_id, world.booking_ctx)
    assert "SUMMARY:Coaching session with Ada Coach" in invite
    assert f"UID:{made.booking_id}@coaching-platform" in invite
    world.clock.now = made.start - timedelta(hours=2)
    replacement = reschedule(world, made.booking_id, slots[1])
    moved = booking.invite(employee(), replacement.booking_id, world.booking_ctx)
    assert f"UID:{made.booking_id}@coaching-platform" in moved
    assert "SEQUENCE:1" in moved
    old = booking.invite(employee(), made.booking_id, world.booking_ctx)
    assert "METHOD:CANCEL" in old
    assert "STATUS:CANCELLED" in old
    world.coaches.coaches.clear()
    assert "SUMMARY:Coaching session\r\n" in booking.invite(employee(), replacement.booking_id, world.booking_ctx)


def test_the_ledger_reader_finds_an_entry_through_its_guard(world):
    made = world.book(world.slots()[0])
    world.clock.now = made.start - timedelta(hours=1)
    booking.cancel(employee(), made.booking_id, "", world.booking_ctx)
    usage = FakeBilling(world.store.ledger).entry(ORG, made.booking_id, EntryKind.USAGE)
    assert usage is not None
    assert usage.booking_id == made.booking_id
    assert FakeBilling(world.store.ledger).entry(ORG, made.booking_id, EntryKind.REVERSAL) is None
