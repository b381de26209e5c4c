"""The Booking entity's state machine, directly: each method checks its rule and returns a new,
validated booking, or raises the domain error that names the rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from coaching.domain.booking import (
    Booking,
    BookingReads,
    BookingStatus,
    CancelledBy,
    Confirmation,
    OrgMeter,
    PolicySnapshot,
)
from coaching.domain.errors import Conflict, InvalidInput
from pydantic import ValidationError

START = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)
BOOKED_AT = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def booking(**overrides: object) -> Booking:
    fields: dict[str, object] = {
        "booking_id": "b1",
        "org_id": "o1",
        "person_id": "p1",
        "coach_id": "c1",
        "engagement_id": "e1",
        "program": "SCALE",
        "start": START,
        "end": START + timedelta(minutes=30),
        "person_time_zone": "UTC",
        "coach_time_zone": "UTC",
        "buffer_minutes": 10,
        "focus_competencies": ["delegation"],
        "policy": PolicySnapshot(late_cancel_hours=24, allowance_period="2027-03"),
        "upcoming_slot": 1,
        "created_at": BOOKED_AT,
        "updated_at": BOOKED_AT,
    }
    return Booking.model_validate(fields | overrides)


def recorded(outcome_at: datetime = START + timedelta(minutes=40)) -> Booking:
    return booking().complete(30, outcome_at)


# ---------------------------------------------------------------------------- validation


def test_a_booking_must_end_after_it_starts():
    with pytest.raises(ValidationError, match="end after it starts"):
        booking(end=START)


def test_only_a_billed_session_can_carry_a_credit():
    with pytest.raises(ValidationError, match="only a billed session"):
        booking(credited=True)


def test_a_change_returns_a_new_booking_and_leaves_the_old_one_alone():
    old = booking()
    new = old.cancel(CancelledBy.PERSON, "plans", BOOKED_AT)
    assert new is not old
    assert old.status is BookingStatus.BOOKED
    assert (new.status, new.sequence, new.updated_at) == (BookingStatus.CANCELLED, 1, BOOKED_AT)


# ---------------------------------------------------------------------------- cancel


def test_a_person_cancelling_before_the_window_is_free():
    now = START - timedelta(hours=24, minutes=1)
    cancelled = booking().cancel(CancelledBy.PERSON, "clash", now)
    assert (cancelled.status, cancelled.billable, cancelled.cancelled_by) == (BookingStatus.CANCELLED, False, "person")
    assert cancelled.cancel_reason == "clash"


def test_a_person_cancelling_inside_the_window_is_billed():
    now = START - timedelta(hours=23, minutes=59)
    cancelled = booking().cancel(CancelledBy.PERSON, "sick", now)
    assert (cancelled.status, cancelled.billable) == (BookingStatus.LATE_CANCELLED, True)


def test_a_coach_or_the_platform_never_bills_however_late():
    now = START - timedelta(minutes=5)
    by_coach = booking().cancel(CancelledBy.COACH, "ill", now)
    by_platform = booking().end_with_engagement(now)
    assert (by_coach.status, by_coach.billable, by_coach.cancelled_by) == (BookingStatus.CANCELLED, False, "coach")
    assert (by_platform.status, by_platform.billable, by_platform.cancelled_by) == (
        BookingStatus.CANCELLED,
        False,
        "platform",
    )
    assert by_platform.cancel_reason == "the engagement with this coach ended"


def test_a_started_or_finished_booking_cannot_be_cancelled():
    with pytest.raises(Conflict, match="has started cannot be cancelled") as started:
        booking().cancel(CancelledBy.PERSON, "", START)
    assert started.value.field == "booking_id"
    cancelled = booking().cancel(CancelledBy.PERSON, "", BOOKED_AT)
    with pytest.raises(Conflict, match="already cancelled"):
        cancelled.cancel(CancelledBy.COACH, "", BOOKED_AT)


# ---------------------------------------------------------------------------- reschedule


def test_an_early_reschedule_moves_in_place_with_the_next_sequence():
    later = START + timedelta(days=1)
    plan = booking().reschedule(later, org_time_zone="UTC", now=BOOKED_AT, replacement_id="b2")
    moved = plan.booking
    assert (plan.late, plan.billed, plan.ended) == (False, False, None)
    assert (moved.booking_id, moved.start, moved.end) == ("b1", later, later + timedelta(minutes=30))
    assert (moved.sequence, moved.reschedules, moved.late_reschedules) == (1, 1, 0)


def test_a_reschedule_into_another_month_counts_against_that_month():
    april = datetime(2027, 4, 1, 0, 30, tzinfo=UTC)
    moved = booking().reschedule(april, org_time_zone="UTC", now=BOOKED_AT, replacement_id="b2").booking
    assert moved.policy.allowance_period == "2027-04"
    # In the org's zone (Los Angeles) that instant is still 31 March.
    in_la = booking().reschedule(april, org_time_zone="America/Los_Angeles", now=BOOKED_AT, replacement_id="b2")
    assert in_la.booking.policy.allowance_period == "2027-03"


def test_a_late_reschedule_is_free_while_the_policy_allows_then_billed():
    free_once = booking(
        policy=PolicySnapshot(late_cancel_hours=24, allowance_period="2027-03", free_late_reschedules=1)
    )
    now = START - timedelta(hours=2)
    first = free_once.reschedule(START + timedelta(hours=1), org_time_zone="UTC", now=now, replacement_id="b2")
    assert (first.late, first.billed, first.booking.booking_id, first.booking.late_reschedules) == (
        True,
        False,
        "b1",
        1,
    )
    second = first.booking.reschedule(START + timedelta(hours=3), org_time_zone="UTC", now=now, replacement_id="b3")
    assert second.billed


def test_a_billed_late_reschedule_ends_the_old_session_and_replaces_it_keeping_uid_and_situation():
    now = START - timedelta(hours=2)
    plan = booking().reschedule(START + timedelta(hours=2), org_time_zone="UTC", now=now, replacement_id="b2")
    assert plan.ended is not None
    assert (plan.ended.status, plan.ended.billable, plan.ended.cancelled_by) == (
        BookingStatus.LATE_CANCELLED,
        True,
        "person",
    )
    assert plan.ended.start == START
    new = plan.booking
    assert (new.booking_id, new.calendar_uid, new.situation_booking_id, new.rescheduled_from) == (
        "b2",
        "b1",
        "b1",
        "b1",
    )
    assert (new.status, new.sequence, new.late_reschedules, new.created_at) == (BookingStatus.BOOKED, 1, 1, now)
    # A second billed reschedule keeps the first booking's UID and situation.
    again = new.reschedule(START + timedelta(hours=3), org_time_zone="UTC", now=now, replacement_id="b3").booking
    assert (again.calendar_uid, again.situation_booking_id, again.rescheduled_from) == ("b1", "b1", "b2")


def test_a_reschedule_to_the_same_time_or_of_a_started_session_is_refused():
    with pytest.raises(InvalidInput, match="current time") as same:
        booking().reschedule(START, org_time_zone="UTC", now=BOOKED_AT, replacement_id="b2")
    assert same.value.field == "start"
    with pytest.raises(Conflict, match="cannot be rescheduled"):
        booking().reschedule(START + timedelta(days=1), org_time_zone="UTC", now=START, replacement_id="b2")


# ---------------------------------------------------------------------------- outcomes


def test_complete_needs_the_session_to_have_started_and_a_length_of_1_to_3_times_the_booked():
    with pytest.raises(Conflict, match="before it starts"):
        booking().complete(30, START - timedelta(minutes=1))
    for minutes in (0, 91):
        with pytest.raises(InvalidInput) as refused:
            booking().complete(minutes, START + timedelta(minutes=40))
        assert refused.value.field == "actual_minutes"
    done = booking().complete(90, START + timedelta(minutes=40))
    assert (done.status, done.billable, done.actual_minutes, done.outcome_at) == (
        BookingStatus.COMPLETED,
        True,
        90,
        START + timedelta(minutes=40),
    )


def test_recording_the_same_outcome_again_returns_the_booking_unchanged():
    done = recorded()
    assert done.complete(45, START + timedelta(hours=3)) is done
    no_show = booking().no_show(START + timedelta(minutes=15))
    assert no_show.no_show(START + timedelta(hours=1)) is no_show


def test_a_no_show_waits_fifteen_minutes_and_outcomes_are_final():
    with pytest.raises(Conflict, match="wait 15 minutes") as early:
        booking().no_show(START + timedelta(minutes=14, seconds=59))
    assert early.value.field == "booking_id"
    no_show = booking().no_show(START + timedelta(minutes=15))
    assert (no_show.status, no_show.billable) == (BookingStatus.NO_SHOW, True)
    with pytest.raises(Conflict, match="is no show; it cannot be marked completed"):
        no_show.complete(30, START + timedelta(hours=1))
    cancelled = booking().cancel(CancelledBy.PERSON, "", BOOKED_AT)
    with pytest.raises(Conflict, match="is cancelled"):
        cancelled.no_show(START + timedelta(hours=1))


# ---------------------------------------------------------------------------- confirm, dispute, resolve, credit


def test_the_person_confirms_or_disputes_within_72_hours_of_the_record():
    at = START + timedelta(minutes=40)
    done = recorded(at)
    assert done.confirm(at + timedelta(hours=72)).confirmation is Confirmation.CONFIRMED
    disputed = done.dispute("We ended after 5 minutes.", START + timedelta(hours=5))
    assert (disputed.confirmation, disputed.dispute_reason) == (Confirmation.DISPUTED, "We ended after 5 minutes.")
    with pytest.raises(Conflict, match="72 hours") as late:
        done.confirm(START + timedelta(hours=73))
    assert late.value.field == "booking_id"


def test_an_answer_is_given_once_and_only_to_a_recorded_session():
    with pytest.raises(Conflict, match="only a session the coach has recorded"):
        booking().confirm(START)
    confirmed = recorded().confirm(START + timedelta(hours=1))
    assert confirmed.confirm(START + timedelta(hours=2)) is confirmed
    with pytest.raises(Conflict, match="already confirmed"):
        confirmed.dispute("It did not happen at all.", START + timedelta(hours=2))


def test_only_a_disputed_session_is_resolved():
    now = START + timedelta(hours=6)
    with pytest.raises(Conflict, match="not disputed"):
        recorded().resolve_dispute(upheld=True, now=now)
    disputed = recorded().dispute("The coach never joined.", START + timedelta(hours=1))
    assert disputed.resolve_dispute(upheld=False, now=now).confirmation is Confirmation.DISPUTE_REJECTED
    upheld = disputed.resolve_dispute(upheld=True, now=now)
    assert (upheld.confirmation, upheld.credited) == (Confirmation.DISPUTE_UPHELD, False)
    assert upheld.credit(now).credited


def test_only_a_billed_session_is_credited_and_only_once():
    now = START + timedelta(hours=6)
    with pytest.raises(Conflict, match="only a billed session"):
        booking().cancel(CancelledBy.PERSON, "", BOOKED_AT).credit(now)
    credited = recorded().credit(now)
    assert (credited.credited, credited.updated_at) == (True, now)
    with pytest.raises(Conflict, match="already credited"):
        credited.credit(now)
    late = booking().cancel(CancelledBy.PERSON, "", START - timedelta(hours=1))
    assert late.credit(now).credited


# ---------------------------------------------------------------------------- meters and places


def test_a_meter_crossing_a_threshold_needs_exactly_the_value_it_read():
    meter = OrgMeter.of("cap", 5, seen=3, step=1)  # thresholds 4 (80 %) and 5 (100 %)
    assert meter.thresholds == (4, 5)
    assert meter.crossed_percents() == [80]
    assert meter.admits(3)
    assert not meter.admits(2)
    assert not meter.admits(4)


def test_a_meter_crossing_nothing_needs_room_clear_of_every_thresholds_approach():
    meter = OrgMeter.of("cap", 10, seen=2, step=1)  # thresholds 8 and 10
    assert meter.crossed_percents() == []
    assert meter.admits(None)
    assert meter.admits(6)
    assert not meter.admits(7)  # would cross 80 % without knowing it
    assert meter.admits(8)
    assert not meter.admits(9)
    assert not meter.admits(10)  # full


def test_a_budget_step_can_cross_both_thresholds_and_a_full_meter_crosses_none():
    both = OrgMeter.of("budget", 10_000, seen=7_000, step=3_000)
    assert both.crossed_percents() == [80, 100]
    assert OrgMeter.of("budget", 10_000, seen=8_000, step=3_000).crossed_percents() == []


def test_free_places_are_those_never_used_or_whose_session_has_ended():
    places = {1: ("b1", "2027-03-10T15:30:00+00:00"), 2: ("b2", "2027-03-01T10:00:00+00:00")}
    reads = BookingReads(engagement=None, org=None, person=None, roster_pointer=None, places=places, org_usage={})
    assert reads.free_places(3, datetime(2027, 3, 5, tzinfo=UTC)) == [2, 3]
    assert reads.free_places(3, datetime(2027, 3, 11, tzinfo=UTC)) == [1, 2, 3]


# ---------------------------------------------------------------------------- erasure


def test_erasure_drops_the_reasons_people_wrote_and_keeps_the_platforms_own():
    at = START + timedelta(minutes=40)
    disputed = recorded(at).dispute("We ended early: my child was ill.", at + timedelta(hours=1))
    cleared = disputed.without_personal_text()
    assert cleared.dispute_reason == ""
    assert (cleared.confirmation, cleared.sequence, cleared.updated_at) == (
        disputed.confirmation,
        disputed.sequence,
        disputed.updated_at,
    )  # the session's record is otherwise untouched; calendars see no change
    cancelled = booking().cancel(CancelledBy.PERSON, "Back surgery that week", BOOKED_AT)
    assert cancelled.without_personal_text().cancel_reason == ""
    ended = booking().end_with_engagement(BOOKED_AT)
    assert ended.without_personal_text() is ended  # "the engagement ended" names no one
    plain = booking()
    assert plain.without_personal_text() is plain  # nothing written, nothing to rewrite
