"""Session feedback: the person rates their own completed session, once.

The record goes to the confidential table; in the same transaction its scores are added to a capture
tally cell (`coaching.domain.measures`) and `SessionFeedbackGiven` (without the scores) to the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from coaching.auth import Principal, Role
from coaching.domain.booking import Booking
from coaching.domain.common import Clock
from coaching.domain.errors import Conflict, NotFound
from coaching.domain.events import Event, SessionFeedbackGiven, stable_event_id
from coaching.domain.feedback import FeedbackRequest, SessionFeedback
from coaching.domain.measures import Dimensions, TallyDelta, dimensions_of, feedback_delta
from coaching.domain.people import Person


@dataclass(frozen=True, slots=True)
class FeedbackRead:
    booking: Booking | None
    person: Person | None
    existing: SessionFeedback | None
    # The cell the person was first counted in this month and programme, if they were.
    counted_in: Dimensions | None


class FeedbackPort(Protocol):
    def read_for_feedback(self, org_id: str, person_id: str, booking_id: str) -> FeedbackRead:
        """The booking, the person, any feedback already given, and where the person was counted in the
        month (`period_of(booking.start)`) and programme of the session."""
        ...

    def give_feedback(
        self, feedback: SessionFeedback, delta: TallyDelta, first_this_month: bool, events: Sequence[Event]
    ) -> None: ...

    def feedback(self, org_id: str, person_id: str, booking_id: str) -> SessionFeedback | None: ...


@dataclass(frozen=True, slots=True)
class FeedbackContext:
    store: FeedbackPort
    clock: Clock


@dataclass(frozen=True, slots=True)
class FeedbackOutcome:
    feedback: SessionFeedback
    created: bool


def give(caller: Principal, booking_id: str, answers: FeedbackRequest, ctx: FeedbackContext) -> FeedbackOutcome:
    """Give feedback on one's own completed session; the same answers again are a retry, others a 409."""
    org_id = caller.require_org(Role.EMPLOYEE)
    for _ in range(2):
        read = ctx.store.read_for_feedback(org_id, caller.person_id, booking_id)
        if read.booking is None:
            raise NotFound(f"session {booking_id} not found", field="booking_id")
        if read.existing is not None:
            return FeedbackOutcome(read.existing.check_repeat(answers), created=False)
        if read.person is None:
            raise NotFound("the caller is not a person of this organisation")
        now = ctx.clock()
        feedback = SessionFeedback.give(read.booking, caller.person_id, answers, now)
        counted = read.counted_in
        dims = counted or dimensions_of(read.person, feedback.program, feedback.session_start)
        delta = feedback_delta(feedback, dims, first_this_month=counted is None)
        event = SessionFeedbackGiven(
            event_id=stable_event_id("feedback", org_id, booking_id),
            occurred_at=now,
            org_id=org_id,
            person_id=caller.person_id,
            booking_id=booking_id,
            program=feedback.program,
            period=feedback.period,
            cell_id=dims.cell_id(),
        )
        try:
            ctx.store.give_feedback(feedback, delta, counted is None, [event])
        except Conflict:
            continue  # a concurrent submission (or this person's first of the month) landed: read again
        return FeedbackOutcome(feedback, created=True)
    raise Conflict("feedback on this session is being given right now; try again", field="booking_id")


def mine(caller: Principal, booking_id: str, ctx: FeedbackContext) -> SessionFeedback:
    """The person's own feedback on one of their sessions (nobody else reads it)."""
    org_id = caller.require_org(Role.EMPLOYEE)
    found = ctx.store.feedback(org_id, caller.person_id, booking_id)
    if found is None:
        raise NotFound(f"no feedback on session {booking_id}", field="booking_id")
    return found
