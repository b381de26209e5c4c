"""Lifecycle rules on the in-memory fakes: a coach who is not approved reaches nothing of a
coachee's, a suspension ends the coach's engagements with a re-match each, and an inactive
person can neither be matched nor book (tests/unit/fakes/matching.py, fakes/booking.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from coaching.auth import Principal
from coaching.domain.booking import Booking, BookingStatus, RescheduleRequest
from coaching.domain.coaches import VettingStatus
from coaching.domain.engagements import COACH_SUSPENDED, Engagement, EngagementStatus
from coaching.domain.errors import Forbidden, NotFound
from coaching.domain.events import (
    CoachVettingChanged,
    EngagementEnded,
    MatchProposed,
    PersonPromoted,
    SessionCancelled,
    SessionCompleted,
    stable_event_id,
)
from coaching.domain.matching import MatchRequestIn
from coaching.domain.people import Person
from coaching.services import booking, completion, matching, rematches

from .fakes.booking import COACH, ORG, PERSON, World, as_coach, employee
from .fakes.matching import MatchingWorld, coach_caller, make_coach

SITUATION = "My first reorg as a manager: two teams merge next month and I lead both."


def ask(world: MatchingWorld, who: Principal, program: str = "SCALE") -> matching.MatchView:
    body = MatchRequestIn(program=program, focus_competencies=["delegation"], situation=SITUATION)
    return matching.request_match(who, body, world.ctx)


def engage(world: MatchingWorld, who: Principal, coach_id: str, program: str = "SCALE") -> Engagement:
    view = ask(world, who, program)
    assert coach_id in [p.coach_id for p in view.proposals]
    return matching.choose(who, view.match_id, coach_id, world.ctx)


def suspend(world: MatchingWorld, coach_id: str, event_id: str = "vetting-1") -> CoachVettingChanged:
    """The admin service's decision (record and roster rebuilt) and the event it commits."""
    world.network.set_status(coach_id, VettingStatus.SUSPENDED)
    world.network.publish()
    return CoachVettingChanged(
        event_id=event_id, coach_id=coach_id, vetting_status="suspended", previous_status="approved"
    )


def set_active(world: MatchingWorld, who: Principal, active: bool) -> None:
    assert who.org_id is not None
    person = world.people.records[(who.org_id, who.person_id)]
    world.people.records[(who.org_id, who.person_id)] = Person.model_validate(person.model_dump() | {"active": active})


@pytest.fixture
def mworld() -> MatchingWorld:
    return MatchingWorld()


@pytest.fixture
def bworld() -> World:
    return World.create()


# ---------------------------------------------------------------------------- a coach who is not approved


@pytest.mark.parametrize("status", [VettingStatus.SUSPENDED, VettingStatus.PENDING])
def test_a_coach_who_is_not_approved_is_refused_every_session_route_and_bills_nothing(bworld, status):
    made = bworld.book(bworld.slots()[0])
    other = bworld.book(bworld.slots()[1])
    bworld.clock.now = made.start + timedelta(minutes=20)  # a no-show could be recorded now
    bworld.set_coach_status(status)
    committed = list(bworld.store.committed)
    ctx, done = bworld.booking_ctx, bworld.completion_ctx
    window = (made.start - timedelta(days=1), made.start + timedelta(days=1))
    refusals = {
        "sessions": lambda: booking.coach_sessions(as_coach(), *window, ctx),
        "cancel": lambda: booking.coach_cancel(as_coach(), other.booking_id, "ill", ctx),
        "complete": lambda: completion.complete(as_coach(), made.booking_id, 30, done),
        "no-show": lambda: completion.no_show(as_coach(), made.booking_id, done),
        "someone else's id": lambda: completion.no_show(as_coach(), "no-such-session", done),
    }
    for name, call in refusals.items():
        with pytest.raises(Forbidden, match=f"coach {COACH} is {status.value}") as refused:
            call()
        assert refused.value.field == "coach_id", name
    # Nothing changed, nothing billed, nothing announced.
    assert (bworld.store.stored(made).status, bworld.store.stored(other).status) == (BookingStatus.BOOKED,) * 2
    assert bworld.store.ledger.entries == {}
    assert bworld.store.committed == committed
    # Approved again, the same coach records the no-show (billed once).
    bworld.set_coach_status(VettingStatus.APPROVED)
    assert completion.no_show(as_coach(), made.booking_id, done).status is BookingStatus.NO_SHOW
    assert len(bworld.store.ledger.for_booking(made.booking_id)) == 1


def test_the_coach_status_comes_with_the_locator_in_one_read(bworld):
    made = bworld.book(bworld.slots()[0])
    bworld.clock.now = made.end + timedelta(minutes=5)
    before = bworld.store.coach_reads
    completion.complete(as_coach(), made.booking_id, 30, bworld.completion_ctx)
    assert bworld.store.coach_reads == before + 1
    assert [type(e) for e in bworld.store.committed[-1:]] == [SessionCompleted]


def test_a_token_naming_no_coach_record_reaches_nothing(bworld):
    made = bworld.book(bworld.slots()[0])
    stranger = as_coach("not-a-coach")
    with pytest.raises(NotFound):  # nothing is theirs: as for any other coach's session
        booking.coach_cancel(stranger, made.booking_id, "", bworld.booking_ctx)
    with pytest.raises(Forbidden, match="not in the coach network"):
        booking.coach_sessions(stranger, made.start, made.end, bworld.booking_ctx)
    # Were a session to name a coach without a record, it would still be refused.
    bworld.coaches.coaches.pop(COACH)
    with pytest.raises(Forbidden, match="not in the coach network") as refused:
        booking.coach_cancel(as_coach(), made.booking_id, "", bworld.booking_ctx)
    assert refused.value.field == "coach_id"
    assert bworld.store.stored(made).status is BookingStatus.BOOKED


def test_a_suspended_coach_no_longer_sees_a_coachees_context(mworld):
    coach = make_coach("ada")
    mworld.coaches(coach)
    employee_ = mworld.person()
    engagement = engage(mworld, employee_, coach.coach_id)
    assert matching.engagement_context(coach_caller(coach), engagement.engagement_id, mworld.ctx).person_name
    mworld.network.set_status(coach.coach_id, VettingStatus.SUSPENDED)
    with pytest.raises(Forbidden, match="is suspended") as refused:
        matching.engagement_context(coach_caller(coach), engagement.engagement_id, mworld.ctx)
    assert refused.value.field == "coach_id"
    with pytest.raises(Forbidden):  # whatever the id
        matching.engagement_context(coach_caller(coach), "no-such-engagement", mworld.ctx)
    with pytest.raises(NotFound):  # a token naming no coach finds nothing
        matching.engagement_context(coach_caller("not-a-coach"), engagement.engagement_id, mworld.ctx)


# ---------------------------------------------------------------------------- suspension ends engagements


def test_suspension_ends_each_engagement_and_proposes_a_rematch_without_the_coach(mworld):
    ada, bo, cy = mworld.coaches(make_coach("ada"), make_coach("bo"), make_coach("cy"))
    people = [mworld.person() for _ in range(3)]
    leaver = mworld.person()
    left = engage(mworld, leaver, ada.coach_id)
    matching.change_coach(leaver, left.engagement_id, "not a fit", mworld.ctx)  # ended already: skipped
    engagements = [engage(mworld, p, ada.coach_id) for p in people]
    grow = engage(mworld, people[0], bo.coach_id, program="GROW")  # another coach: untouched
    event = suspend(mworld, ada.coach_id)
    writes = mworld.store.writes

    outcome = rematches.on_coach_vetting_changed(event, mworld.ctx)

    assert sorted(outcome.ended) == sorted(e.engagement_id for e in engagements)
    assert outcome.unmatched == []
    assert len(outcome.rematch_ids) == 3
    assert mworld.store.writes == writes + 3  # one transaction per engagement: end + proposal + events
    for engagement in engagements:
        stored, _ = mworld.store.engagement(engagement.org_id, engagement.person_id, engagement.engagement_id)
        assert (stored.status, stored.end_reason, stored.ended_by) == (
            EngagementStatus.ENDED,
            COACH_SUSPENDED,
            "platform",
        )
        assert mworld.store.markers.get((engagement.org_id, engagement.person_id, "SCALE")) is None
    assert mworld.store.load[ada.coach_id] == 0
    stored_left, _ = mworld.store.engagement(left.org_id, left.person_id, left.engagement_id)
    assert (stored_left.ended_by, stored_left.end_reason) == ("person", "not a fit")
    stored_grow, _ = mworld.store.engagement(grow.org_id, grow.person_id, grow.engagement_id)
    assert stored_grow.is_active
    ended = [e for e in mworld.events_of(EngagementEnded) if e.end_reason == COACH_SUSPENDED]
    assert sorted(e.event_id for e in ended) == sorted(
        stable_event_id(EngagementEnded.detail_type, eid) for eid in outcome.ended
    )
    proposed = [e for e in mworld.events_of(MatchProposed) if e.trigger == "coach_suspended"]
    assert sorted(e.match_id for e in proposed) == sorted(outcome.rematch_ids)
    for event_ in proposed:
        assert ada.coach_id not in event_.coach_ids
        assert set(event_.coach_ids) <= {bo.coach_id, cy.coach_id}
    # The person sees the new proposal, and can choose from it.
    [rematch] = [m for m in matching.list_matches(people[1], mworld.ctx) if m.trigger == "coach_suspended"]
    chosen = matching.choose(people[1], rematch.match_id, rematch.proposals[0].coach_id, mworld.ctx)
    assert chosen.is_active
    assert chosen.coach_id != ada.coach_id


def test_suspension_is_idempotent_per_event_and_resumes_where_an_interrupted_run_stopped(mworld):
    ada, _ = mworld.coaches(make_coach("ada"), make_coach("bo"))
    people = [mworld.person() for _ in range(3)]
    for who in people:
        engage(mworld, who, ada.coach_id)
    event = suspend(mworld, ada.coach_id)
    # The first engagement commits, then the function dies on the second one.
    original = mworld.store.end_and_propose
    committed_once: list[str] = []

    def end_then_die(ended, version, match, situation, events=()):
        if committed_once:
            raise RuntimeError("the Lambda died")
        original(ended, version, match, situation, events)
        committed_once.append(ended.engagement_id)

    mworld.store.end_and_propose = end_then_die  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        rematches.on_coach_vetting_changed(event, mworld.ctx)
    mworld.store.end_and_propose = original  # type: ignore[method-assign]
    assert len(committed_once) == 1

    rerun = rematches.on_coach_vetting_changed(event, mworld.ctx)  # the bus retries the event
    assert len(rerun.ended) == 2
    assert committed_once[0] not in rerun.ended
    again = rematches.on_coach_vetting_changed(event, mworld.ctx)  # and delivers it once more
    assert (again.ended, again.rematch_ids) == ([], [])
    ended = [e for e in mworld.events_of(EngagementEnded) if e.end_reason == COACH_SUSPENDED]
    assert len(ended) == len({e.engagement_id for e in ended}) == 3
    proposed_again = [e for e in mworld.events_of(MatchProposed) if e.trigger == "coach_suspended"]
    assert len(proposed_again) == len({e.match_id for e in proposed_again}) == 3


def test_nobody_else_eligible_records_a_gap_and_the_engagement_still_ends(mworld):
    only = make_coach("only", languages=["is"])
    mworld.coaches(only, make_coach("english"))
    icelandic = mworld.person(languages=["is"])
    lonely = engage(mworld, icelandic, only.coach_id)
    outcome = rematches.on_coach_vetting_changed(suspend(mworld, only.coach_id), mworld.ctx)
    assert (outcome.ended, outcome.unmatched, outcome.rematch_ids) == (
        [lonely.engagement_id],
        [lonely.engagement_id],
        [],
    )
    [gap] = mworld.store.gap_log
    assert (gap["org_id"], gap["constraint"]) == (mworld.org.org_id, "language")
    [ended] = [e for e in mworld.events_of(EngagementEnded) if e.end_reason == COACH_SUSPENDED]
    assert ended.engagement_id == lonely.engagement_id
    assert not [e for e in mworld.events_of(MatchProposed) if e.trigger == "coach_suspended"]
    assert matching.list_engagements(icelandic, mworld.ctx)[0].status is EngagementStatus.ENDED


def test_an_inactive_persons_engagement_ends_without_a_proposal(mworld):
    ada, _ = mworld.coaches(make_coach("ada"), make_coach("bo"))
    leaving, staying = mworld.person(), mworld.person()
    gone = engage(mworld, leaving, ada.coach_id)
    kept = engage(mworld, staying, ada.coach_id)
    set_active(mworld, leaving, False)
    outcome = rematches.on_coach_vetting_changed(suspend(mworld, ada.coach_id), mworld.ctx)
    assert sorted(outcome.ended) == sorted([gone.engagement_id, kept.engagement_id])
    assert outcome.unmatched == [gone.engagement_id]
    proposed = [e for e in mworld.events_of(MatchProposed) if e.trigger == "coach_suspended"]
    assert [e.person_id for e in proposed] == [staying.person_id]
    assert mworld.store.gap_log == []


def test_a_coach_approved_again_before_the_event_arrives_keeps_their_engagements(mworld):
    ada, _ = mworld.coaches(make_coach("ada"), make_coach("bo"))
    engagement = engage(mworld, mworld.person(), ada.coach_id)
    event = suspend(mworld, ada.coach_id)
    mworld.network.set_status(ada.coach_id, VettingStatus.APPROVED)
    assert rematches.on_coach_vetting_changed(event, mworld.ctx).ended == []
    approved = event.model_copy(update={"event_id": "vetting-2", "vetting_status": "approved"})
    assert rematches.on_coach_vetting_changed(approved, mworld.ctx).ended == []
    stored, _ = mworld.store.engagement(engagement.org_id, engagement.person_id, engagement.engagement_id)
    assert stored.is_active


def test_an_engagement_the_person_ends_at_the_same_moment_is_left_to_them(mworld):
    ada, _, _ = mworld.coaches(make_coach("ada"), make_coach("bo"), make_coach("cy"))
    who = mworld.person()
    engagement = engage(mworld, who, ada.coach_id)
    event = suspend(mworld, ada.coach_id)

    def person_changes_coach(store) -> None:
        found = store.engagement(engagement.org_id, engagement.person_id, engagement.engagement_id)
        store.end_engagement(found[0].end("not a fit", "person", mworld.now), found[1])

    mworld.store.before_commit = person_changes_coach
    outcome = rematches.on_coach_vetting_changed(event, mworld.ctx)
    assert outcome.ended == []
    stored, _ = mworld.store.engagement(engagement.org_id, engagement.person_id, engagement.engagement_id)
    assert (stored.ended_by, stored.end_reason) == ("person", "not a fit")
    assert not [e for e in mworld.events_of(MatchProposed) if e.trigger == "coach_suspended"]


def test_a_lagging_coach_index_listing_an_ended_engagement_changes_nothing(mworld):
    ada, _, _ = mworld.coaches(make_coach("ada"), make_coach("bo"), make_coach("cy"))
    who = mworld.person()
    engagement = engage(mworld, who, ada.coach_id)
    matching.change_coach(who, engagement.engagement_id, "not a fit", mworld.ctx)
    stale = engagement  # what a lagging index still shows: active

    mworld.store.coach_engagements = lambda coach_id: [stale]  # type: ignore[method-assign]
    writes = mworld.store.writes
    assert rematches.on_coach_vetting_changed(suspend(mworld, ada.coach_id), mworld.ctx).ended == []
    assert mworld.store.writes == writes


def test_a_suspended_coachs_ended_engagement_cancels_its_future_sessions_unbilled(bworld):
    future = [bworld.book(start) for start in bworld.slots()[:2]]
    ended = bworld.engagement.end(COACH_SUSPENDED, "platform", bworld.clock.now)
    bworld.store.add_engagement(ended)
    event = EngagementEnded(
        event_id=stable_event_id(EngagementEnded.detail_type, ended.engagement_id),
        occurred_at=bworld.clock.now,
        org_id=ORG,
        person_id=PERSON,
        engagement_id=ended.engagement_id,
        coach_id=COACH,
        program="SCALE",
        end_reason=COACH_SUSPENDED,
    )
    cancelled = booking.on_engagement_ended(event, bworld.booking_ctx)
    assert sorted(b.booking_id for b in cancelled) == sorted(b.booking_id for b in future)
    for session in future:
        stored = bworld.store.stored(session)
        assert (stored.status, stored.cancelled_by, stored.billable) == (BookingStatus.CANCELLED, "platform", False)
    assert bworld.store.allowance_used[(ORG, PERSON, future[0].program, "2027-03")] == 0
    assert bworld.store.ledger.entries == {}
    assert len(bworld.store.events(SessionCancelled)) == 2


# ---------------------------------------------------------------------------- an inactive person


def test_an_inactive_person_can_neither_ask_decline_choose_nor_change_coach(mworld):
    network = mworld.coaches(*(make_coach(f"c{i}") for i in range(6)))
    who = mworld.person()
    open_match = ask(mworld, who)
    engagement = engage(mworld, who, network[0].coach_id, program="GROW")
    set_active(mworld, who, False)
    writes, events = mworld.store.writes, list(mworld.store.events)
    refusals = {
        "request": lambda: ask(mworld, who),
        "decline": lambda: matching.decline_all(who, open_match.match_id, mworld.ctx),
        "choose": lambda: matching.choose(who, open_match.match_id, open_match.proposals[0].coach_id, mworld.ctx),
        "change coach": lambda: matching.change_coach(who, engagement.engagement_id, "moving on", mworld.ctx),
    }
    for name, call in refusals.items():
        with pytest.raises(Forbidden, match=f"person {who.person_id} is inactive") as refused:
            call()
        assert refused.value.field == "person_id", name
    assert (mworld.store.writes, mworld.store.events) == (writes, events)
    # Reading their own history stays open.
    assert open_match.match_id in {m.match_id for m in matching.list_matches(who, mworld.ctx)}


def test_a_promotion_rematch_for_an_inactive_person_proposes_nothing(mworld):
    plain = make_coach("plain", roles_held=[])
    mworld.coaches(plain, make_coach("other"))
    who = mworld.person(level="manager")
    engage(mworld, who, plain.coach_id)
    set_active(mworld, who, False)
    writes = mworld.store.writes
    assert who.org_id is not None
    event = PersonPromoted(
        event_id="promoted-1",
        org_id=who.org_id,
        person_id=who.person_id,
        previous_level="manager",
        new_level="executive",
        effective_date="2026-12-01",
    )
    outcome = rematches.on_person_promoted(event, mworld.ctx)
    assert (outcome.kept, outcome.rematch_ids) == ([], [])
    assert mworld.store.writes == writes
    assert mworld.store.gap_log == []


def test_an_inactive_person_cannot_book_or_reschedule_but_can_cancel(bworld):
    slots = bworld.slots()
    made = bworld.book(slots[0])
    bworld.set_active(False)
    committed = list(bworld.store.committed)
    ctx = bworld.booking_ctx
    with pytest.raises(Forbidden, match=f"person {PERSON} is inactive") as refused:
        bworld.book(slots[1])
    assert refused.value.field == "person_id"
    with pytest.raises(Forbidden, match="is inactive") as moved:
        booking.reschedule(employee(), made.booking_id, RescheduleRequest(start=slots[2]), ctx)
    assert moved.value.field == "person_id"
    assert bworld.store.committed == committed
    assert bworld.store.stored(made).start == made.start
    # Looking is not booking: the open slots still show.
    assert booking.slots(employee(), bworld.engagement.engagement_id, slots[1], slots[1] + timedelta(days=1), ctx)
    # Cancelling frees the coach: still allowed, and free this far ahead.
    cancelled: Booking = booking.cancel(employee(), made.booking_id, "leaving", ctx)
    assert (cancelled.status, cancelled.billable) == (BookingStatus.CANCELLED, False)
    assert bworld.store.coach_locks == {}
