"""Every rule session completion enforces, on in-memory fakes: outcomes and their windows, billing
exactly once, confirm and dispute, resolution and credits, and the events each commits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from coaching.auth import Principal, Role
from coaching.domain.booking import Booking, BookingStatus, Confirmation
from coaching.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from coaching.domain.events import (
    SessionCompleted,
    SessionConfirmed,
    SessionCredited,
    SessionDisputed,
    SessionDisputeRejected,
)
from coaching.domain.invoicing import EntryKind
from coaching.services import booking, completion

from .fakes.booking import OPERATOR, ORG, START, World, as_coach, employee


@pytest.fixture
def world() -> World:
    return World.create()


@pytest.fixture
def made(world: World) -> Booking:
    return world.book(world.slots()[0])


def complete(world: World, made: Booking, minutes: int = 30) -> Booking:
    return completion.complete(as_coach(), made.booking_id, minutes, world.completion_ctx)


def completed(world: World, made: Booking) -> Booking:
    world.clock.now = made.end + timedelta(minutes=5)
    return complete(world, made)


# ---------------------------------------------------------------------------- recording an outcome


def test_completing_bills_the_session_in_the_same_commit_with_session_completed(world, made):
    world.clock.now = made.end + timedelta(minutes=5)
    done = complete(world, made, 28)
    assert (done.status, done.billable, done.actual_minutes, done.outcome_at) == (
        BookingStatus.COMPLETED,
        True,
        28,
        world.clock.now,
    )
    assert world.store.stored(made) == done
    assert world.store.locators[made.booking_id].status == "completed"
    [entry] = world.store.ledger.for_booking(made.booking_id)
    assert (entry.kind, entry.outcome, entry.amount_minor, entry.billed_in, entry.actor) == (
        EntryKind.USAGE,
        "completed",
        9_000,
        "2027-03",
        "coach-1",
    )
    [event] = world.store.events(SessionCompleted)
    assert (event.booking_id, event.person_id, event.status, event.outcome, event.amount_minor) == (
        made.booking_id,
        made.person_id,
        "completed",
        "completed",
        9_000,
    )
    assert world.store.coach_locks  # a recorded session keeps its place in the calendar


def test_a_retried_completion_returns_the_same_answer_and_bills_once(world, made):
    first = completed(world, made)
    for _ in range(3):
        world.clock.now += timedelta(minutes=1)
        assert complete(world, made, 31) == first
    assert len(world.store.ledger.for_booking(made.booking_id)) == 1
    assert len(world.store.events(SessionCompleted)) == 1


def test_a_completion_that_loses_the_race_to_an_identical_one_returns_the_winners_answer(world, made):
    world.clock.now = made.end + timedelta(minutes=1)
    winner = made.complete(30, world.clock.now - timedelta(seconds=1))
    world.store.lose_next_end_to = winner
    assert complete(world, made) == winner
    assert len(world.store.ledger.for_booking(made.booking_id)) == 1


def test_a_completion_that_loses_the_race_to_another_outcome_is_a_conflict(world, made):
    world.clock.now = made.start + timedelta(minutes=20)
    world.store.lose_next_end_to = made.no_show(world.clock.now)
    with pytest.raises(Conflict, match="changed at the same time"):
        complete(world, made)
    assert world.store.stored(made).status is BookingStatus.NO_SHOW
    [entry] = world.store.ledger.for_booking(made.booking_id)
    assert entry.outcome == "no_show"


def test_completion_waits_for_the_start_and_the_length_must_be_plausible(world, made):
    world.clock.now = made.start - timedelta(minutes=1)
    with pytest.raises(Conflict, match="before it starts"):
        complete(world, made)
    world.clock.now = made.start + timedelta(minutes=1)
    with pytest.raises(InvalidInput) as too_long:
        complete(world, made, 91)
    assert too_long.value.field == "actual_minutes"
    assert world.store.ledger.entries == {}
    assert world.store.events(SessionCompleted) == []
    assert complete(world, made, 90).actual_minutes == 90


def test_a_no_show_waits_fifteen_minutes_bills_the_fee_and_is_final(world, made):
    world.clock.now = made.start + timedelta(minutes=10)
    with pytest.raises(Conflict, match="wait 15 minutes"):
        completion.no_show(as_coach(), made.booking_id, world.completion_ctx)
    world.clock.now = made.start + timedelta(minutes=16)
    final = completion.no_show(as_coach(), made.booking_id, world.completion_ctx)
    assert final.status is BookingStatus.NO_SHOW
    [entry] = world.store.ledger.for_booking(made.booking_id)
    assert (entry.outcome, entry.amount_minor, entry.fee_bps) == ("no_show", 4_500, 5_000)
    assert world.store.events(SessionCompleted)[0].outcome == "no_show"
    assert completion.no_show(as_coach(), made.booking_id, world.completion_ctx) == final  # a retry
    with pytest.raises(Conflict, match="cannot be marked completed"):
        complete(world, made)
    assert len(world.store.ledger.for_booking(made.booking_id)) == 1


def test_a_cancelled_session_cannot_get_an_outcome_and_nothing_is_written(world, made):
    booking.cancel(employee(), made.booking_id, "plans changed", world.booking_ctx)
    world.clock.now = made.end + timedelta(minutes=1)
    with pytest.raises(Conflict, match="cancelled"):
        complete(world, made)
    assert world.store.ledger.for_booking(made.booking_id) == []
    assert world.store.events(SessionCompleted) == []


def test_only_the_sessions_own_coach_records_its_outcome(world, made):
    world.clock.now = made.end + timedelta(minutes=1)
    with pytest.raises(NotFound):
        completion.complete(as_coach("coach-2"), made.booking_id, 30, world.completion_ctx)
    with pytest.raises(NotFound):
        completion.complete(as_coach(), "no-such-session", 30, world.completion_ctx)
    with pytest.raises(Forbidden):
        completion.complete(employee(), made.booking_id, 30, world.completion_ctx)


def test_usage_whose_month_is_closed_lands_in_the_next_open_month(world, made):
    world.store.ledger.closed |= {(ORG, "2027-03"), (ORG, "2027-04")}
    completed(world, made)
    [entry] = world.store.ledger.for_booking(made.booking_id)
    assert (entry.period, entry.billed_in) == ("2027-03", "2027-05")


def test_without_a_price_book_an_outcome_cannot_be_billed_so_it_is_not_recorded(world, made):
    del world.store.price_books[ORG]
    world.clock.now = made.end + timedelta(minutes=1)
    with pytest.raises(Conflict) as unpriced:
        complete(world, made)
    assert unpriced.value.field == "price_book"
    assert world.store.stored(made).status is BookingStatus.BOOKED


# ---------------------------------------------------------------------------- confirm and dispute


def test_the_person_confirms_within_72_hours_once(world, made):
    done = completed(world, made)
    assert done.outcome_at is not None
    world.clock.now = done.outcome_at + timedelta(hours=71)
    confirmed = completion.confirm(employee(), made.booking_id, world.completion_ctx)
    assert confirmed.confirmation is Confirmation.CONFIRMED
    assert world.store.stored(made) == confirmed
    assert completion.confirm(employee(), made.booking_id, world.completion_ctx) == confirmed
    [event] = world.store.events(SessionConfirmed)  # the repeated answer committed nothing again
    assert (event.booking_id, event.status) == (made.booking_id, confirmed.status.value)
    with pytest.raises(Conflict, match="already confirmed"):
        completion.dispute(employee(), made.booking_id, "It never happened.", world.completion_ctx)


def test_a_dispute_after_the_window_or_before_an_outcome_is_refused(world, made):
    with pytest.raises(Conflict, match="only a session the coach has recorded"):
        completion.dispute(employee(), made.booking_id, "It never happened.", world.completion_ctx)
    done = completed(world, made)
    assert done.outcome_at is not None
    world.clock.now = done.outcome_at + timedelta(hours=72, minutes=1)
    with pytest.raises(Conflict, match="72 hours"):
        completion.dispute(employee(), made.booking_id, "It never happened.", world.completion_ctx)
    with pytest.raises(NotFound):
        completion.confirm(employee("person-2"), made.booking_id, world.completion_ctx)


def _disputed(world: World, made: Booking) -> Booking:
    completed(world, made)
    world.clock.now += timedelta(hours=5)
    return completion.dispute(employee(), made.booking_id, "The coach never joined the call.", world.completion_ctx)


def test_a_dispute_commits_an_event_that_never_carries_what_the_person_wrote(world, made):
    disputed = _disputed(world, made)
    [event] = world.store.events(SessionDisputed)
    assert event.booking_id == disputed.booking_id
    assert "never joined" not in event.model_dump_json()


def test_a_rejected_dispute_keeps_the_session_billed(world, made):
    disputed = _disputed(world, made)
    assert (disputed.confirmation, disputed.dispute_reason) == (
        Confirmation.DISPUTED,
        "The coach never joined the call.",
    )
    rejected = completion.resolve_dispute(
        OPERATOR, ORG, made.booking_id, False, "coach logs show it", world.completion_ctx
    )
    assert (rejected.confirmation, rejected.credited) == (Confirmation.DISPUTE_REJECTED, False)
    assert [e.kind for e in world.store.ledger.for_booking(made.booking_id)] == [EntryKind.USAGE]
    [event] = world.store.events(SessionDisputeRejected)
    assert (event.booking_id, event.reason, event.status) == (made.booking_id, "coach logs show it", "completed")
    with pytest.raises(Conflict, match="not disputed"):
        completion.resolve_dispute(OPERATOR, ORG, made.booking_id, True, "changed my mind", world.completion_ctx)


def test_an_upheld_dispute_credits_with_a_reversing_entry_never_an_edit(world, made):
    _disputed(world, made)
    resolved = completion.resolve_dispute(
        OPERATOR, ORG, made.booking_id, True, "outage confirmed", world.completion_ctx
    )
    assert (resolved.confirmation, resolved.credited) == (Confirmation.DISPUTE_UPHELD, True)
    usage, reversal = world.store.ledger.for_booking(made.booking_id)
    assert (usage.kind, usage.amount_minor) == (EntryKind.USAGE, 9_000)
    assert (reversal.kind, reversal.amount_minor, reversal.reverses) == (EntryKind.REVERSAL, -9_000, usage.entry_id)
    assert reversal.reason == "dispute upheld: outage confirmed"
    [event] = world.store.events(SessionCredited)
    assert (event.booking_id, event.amount_minor, event.reason) == (
        made.booking_id,
        -9_000,
        "dispute upheld: outage confirmed",
    )
    with pytest.raises(Conflict, match="already credited"):
        completion.credit(OPERATOR, ORG, made.booking_id, "again", world.completion_ctx)


# ---------------------------------------------------------------------------- credits


def test_an_operator_credits_a_billed_session_once(world, made):
    completed(world, made)
    credited = completion.credit(OPERATOR, ORG, made.booking_id, "goodwill", world.completion_ctx)
    assert credited.credited
    assert [e.amount_minor for e in world.store.ledger.for_booking(made.booking_id)] == [9_000, -9_000]
    assert world.store.events(SessionCredited)[0].amount_minor == -9_000
    with pytest.raises(Conflict, match="already credited"):
        completion.credit(OPERATOR, ORG, made.booking_id, "goodwill", world.completion_ctx)
    assert len(world.store.ledger.for_booking(made.booking_id)) == 2


def test_a_late_cancel_can_be_credited_too(world, made):
    world.clock.now = made.start - timedelta(hours=1)
    booking.cancel(employee(), made.booking_id, "", world.booking_ctx)
    completion.credit(OPERATOR, ORG, made.booking_id, "waived", world.completion_ctx)
    assert sum(e.amount_minor for e in world.store.ledger.for_booking(made.booking_id)) == 0


def test_only_billed_sessions_of_the_named_org_are_credited_by_operators(world, made):
    with pytest.raises(Conflict, match="only a billed session"):
        completion.credit(OPERATOR, ORG, made.booking_id, "goodwill", world.completion_ctx)
    completed(world, made)
    with pytest.raises(NotFound):
        completion.credit(OPERATOR, "another-org", made.booking_id, "goodwill", world.completion_ctx)
    admin = Principal(person_id="admin", org_id=ORG, roles=frozenset({Role.ORG_ADMIN}))
    with pytest.raises(Forbidden):
        completion.credit(admin, ORG, made.booking_id, "goodwill", world.completion_ctx)
    assert world.store.events(SessionCredited) == []


def test_a_billed_session_without_its_usage_entry_cannot_be_credited(world, made):
    completed(world, made)
    world.store.ledger.entries.clear()
    world.store.ledger.guards.clear()
    with pytest.raises(Conflict, match="no usage to credit"):
        completion.credit(OPERATOR, ORG, made.booking_id, "goodwill", world.completion_ctx)
    assert not world.store.stored(made).credited


def test_events_carry_the_session_and_commit_with_the_change_only(world, made):
    completed(world, made)
    world.clock.now = START + timedelta(days=10)
    with pytest.raises(Conflict):
        completion.confirm(employee(), made.booking_id, world.completion_ctx)  # past the window: nothing committed
    kinds = [type(e).__name__ for e in world.store.events()]
    assert kinds == ["SessionBooked", "SessionCompleted"]
    assert len({e.event_id for e in world.store.events()}) == 2
