"""Session feedback: what a person says about one of their own completed sessions, once.

Satisfaction (1-5), would-recommend (0-10, for NPS) and progress on the session's goal (1-5). The
record is confidential: it is stored in the confidential table, readable only by the person through
the development function; aggregates see it only folded into capture tallies
(`coaching.domain.measures`), never as an item of its own.

A second submission with the same answers returns the stored feedback (a retry); different answers
are a 409: feedback is given once and never edited, so nobody can tune a figure after the fact.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from coaching.domain.booking import Booking, BookingStatus
from coaching.domain.common import DeferredModel, StrictModel
from coaching.domain.errors import Conflict, Forbidden, InvalidInput

# Feedback is taken up to this long after the session's outcome was recorded.
FEEDBACK_WINDOW = timedelta(days=30)


class NpsCategory(StrEnum):
    PROMOTER = "promoter"  # 9-10
    PASSIVE = "passive"  # 7-8
    DETRACTOR = "detractor"  # 0-6


def nps_category(would_recommend: int) -> NpsCategory:
    if would_recommend >= 9:
        return NpsCategory.PROMOTER
    if would_recommend >= 7:
        return NpsCategory.PASSIVE
    return NpsCategory.DETRACTOR


class FeedbackRequest(StrictModel):
    satisfaction: Annotated[int, Field(ge=1, le=5, description="How satisfied with the session, 1 (not) to 5.")]
    would_recommend: Annotated[
        int, Field(ge=0, le=10, description="How likely to recommend coaching to a colleague, 0 to 10 (NPS).")
    ]
    goal_progress: Annotated[
        int, Field(ge=1, le=5, description="Progress on the goal brought to this session, 1 (none) to 5 (reached).")
    ]
    comment: Annotated[str, Field(max_length=2000, description="Optional; only the person ever reads it.")] = ""


class SessionFeedback(DeferredModel):
    """One person's feedback on one session (confidential table)."""

    org_id: str
    person_id: str
    booking_id: str
    program: str
    session_start: datetime
    satisfaction: int
    would_recommend: int
    goal_progress: int
    comment: str = ""
    given_at: datetime

    @classmethod
    def give(cls, booking: Booking, person_id: str, answers: FeedbackRequest, now: datetime) -> SessionFeedback:
        """Feedback on `booking` by `person_id`: their own session, completed, within the window."""
        if booking.person_id != person_id:
            raise Forbidden("feedback is given only on one's own session")
        if booking.status is not BookingStatus.COMPLETED:
            raise InvalidInput(
                f"feedback is given on a completed session; this one is {booking.status.value}", field="booking_id"
            )
        ended = booking.outcome_at or booking.end
        if now > ended + FEEDBACK_WINDOW:
            raise InvalidInput(
                f"feedback is taken within {FEEDBACK_WINDOW.days} days of the session", field="booking_id"
            )
        return cls(
            org_id=booking.org_id,
            person_id=person_id,
            booking_id=booking.booking_id,
            program=booking.program.value,
            session_start=booking.start,
            satisfaction=answers.satisfaction,
            would_recommend=answers.would_recommend,
            goal_progress=answers.goal_progress,
            comment=answers.comment,
            given_at=now,
        )

    def same_answers(self, answers: FeedbackRequest) -> bool:
        return (self.satisfaction, self.would_recommend, self.goal_progress, self.comment) == (
            answers.satisfaction,
            answers.would_recommend,
            answers.goal_progress,
            answers.comment,
        )

    def check_repeat(self, answers: FeedbackRequest) -> SessionFeedback:
        """A repeat submission: the same answers are a retry (this feedback); others are refused."""
        if not self.same_answers(answers):
            raise Conflict("feedback on this session was already given and cannot be changed", field="booking_id")
        return self

    @property
    def period(self) -> str:
        """The month the session belongs to (yyyy-mm, UTC), which its tallies count in."""
        return self.session_start.strftime("%Y-%m")
