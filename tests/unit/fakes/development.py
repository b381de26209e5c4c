"""In-memory capture store: the DynamoDB store's conditions (record absent, version unchanged, at most 3 active
goals, a person counted once a month), one lock for the whole "transaction", so races behave like DynamoDB's."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import date

from coaching.domain.assessments import Assessment, AssessmentResult, AssessmentStatus, DevelopmentPolicy, RaterAnswer
from coaching.domain.booking import Booking
from coaching.domain.errors import Conflict, PolicyRefused
from coaching.domain.events import Event
from coaching.domain.feedback import SessionFeedback
from coaching.domain.goals import MAX_ACTIVE_GOALS, Goal, RoleProfile
from coaching.domain.measures import Dimensions, TallyDelta, period_of
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.services.assessments import InviteRef, Participation
from coaching.services.feedback import FeedbackRead

Key = tuple[str, str]


class FakeDevelopmentStore:
    def __init__(self, bookings: Callable[[str, str, str], Booking | None] | None = None) -> None:
        self._lock = threading.RLock()
        self._bookings = bookings or (lambda org, person, booking: None)
        self.orgs: dict[str, Org] = {}
        self.people: dict[Key, Person] = {}
        self.feedback_records: dict[tuple[str, str, str], SessionFeedback] = {}
        self.markers: dict[tuple[str, str, str, str], Dimensions] = {}  # (org, person, period, name)
        self.tallies: dict[tuple[str, str, str], tuple[Dimensions, dict[str, int]]] = {}
        self.goal_items: dict[tuple[str, str, str], tuple[Goal, int]] = {}
        self.active: dict[Key, int] = {}
        self.profiles: dict[tuple[str, str], RoleProfile] = {}
        self.policies: dict[str, DevelopmentPolicy] = {}
        self.round_items: dict[tuple[str, str, str], tuple[Assessment, int]] = {}
        self.invites: dict[str, InviteRef] = {}
        self.answer_items: dict[tuple[str, str, str, str], RaterAnswer] = {}
        self.result_items: dict[tuple[str, str, str], AssessmentResult] = {}
        self.engagements: set[tuple[str, str, str]] = set()  # active (org, person, coach)
        self.participations: dict[Key, Participation] = {}  # engagements and GROW cohorts, by person
        self.outbox: list[Event] = []

    # ------------------------------------------------------------------ shared
    def org_and_person(self, org_id: str, person_id: str) -> tuple[Org | None, Person | None]:
        return self.orgs.get(org_id), self.people.get((org_id, person_id))

    def org(self, org_id: str) -> Org | None:
        return self.orgs.get(org_id)

    def commit_events(self, events: Sequence[Event]) -> None:
        with self._lock:
            known = {event.event_id for event in self.outbox}
            self.outbox.extend(event for event in events if event.event_id not in known)

    def _commit(self, delta: TallyDelta | None, events: Sequence[Event]) -> None:
        """The common tail of every transaction: markers (conditional), the tally, the outbox (stable ids once)."""
        known = {event.event_id for event in self.outbox}
        if any(event.event_id in known for event in events):
            raise Conflict("an event with this id was already committed")
        if delta is not None:
            for name in delta.first_counts:
                if (delta.org_id, delta.person_id or "", delta.period, name) in self.markers:
                    raise Conflict("counted already")
            for name in delta.first_counts:
                self.markers[(delta.org_id, delta.person_id or "", delta.period, name)] = delta.dimensions
            key = (delta.org_id, delta.period, delta.dimensions.cell_id())
            dims, counters = self.tallies.get(key, (delta.dimensions, {}))
            for name, value in delta.add.items():
                if value:
                    counters[name] = counters.get(name, 0) + value
            self.tallies[key] = (dims, counters)
        self.outbox.extend(events)

    def cells(self, org_id: str, period: str) -> dict[str, dict[str, int]]:
        return {cell: counters for (org, month, cell), (_, counters) in self.tallies.items()
                if (org, month) == (org_id, period)}  # fmt: skip

    def total(self, org_id: str, period: str, name: str) -> int:
        return sum(counters.get(name, 0) for counters in self.cells(org_id, period).values())

    # ------------------------------------------------------------------ feedback
    def read_for_feedback(self, org_id: str, person_id: str, booking_id: str) -> FeedbackRead:
        booking = self._bookings(org_id, person_id, booking_id)
        counted = None
        if booking is not None:
            counted = self.markers.get((org_id, person_id, period_of(booking.start), booking.program.value))
        return FeedbackRead(booking=booking, person=self.people.get((org_id, person_id)),
                            existing=self.feedback_records.get((org_id, person_id, booking_id)),
                            counted_in=counted)  # fmt: skip

    def give_feedback(
        self, feedback: SessionFeedback, delta: TallyDelta, first_this_month: bool, events: Sequence[Event]
    ) -> None:
        with self._lock:
            key = (feedback.org_id, feedback.person_id, feedback.booking_id)
            marker = (feedback.org_id, feedback.person_id, feedback.period, feedback.program)
            if key in self.feedback_records or (first_this_month and marker in self.markers):
                raise Conflict("changed at the same time")
            self._commit(delta, events)
            self.feedback_records[key] = feedback
            if first_this_month:
                self.markers[marker] = delta.dimensions

    def feedback(self, org_id: str, person_id: str, booking_id: str) -> SessionFeedback | None:
        return self.feedback_records.get((org_id, person_id, booking_id))

    # ------------------------------------------------------------------ goals
    def counted(self, org_id: str, person_id: str, period: str, names: Sequence[str]) -> set[str]:
        return {name for name in names if (org_id, person_id, period, name) in self.markers}

    def add_goal(self, goal: Goal, delta: TallyDelta, events: Sequence[Event]) -> None:
        with self._lock:
            person = (goal.org_id, goal.person_id)
            if self.active.get(person, 0) >= MAX_ACTIVE_GOALS:
                raise PolicyRefused("at most 3 active goals", field="body", details={"rule": "max_active_goals"})
            self._commit(delta, events)
            self.active[person] = self.active.get(person, 0) + 1
            self.goal_items[(goal.org_id, goal.person_id, goal.goal_id)] = (goal, 1)

    def goal(self, org_id: str, person_id: str, goal_id: str) -> tuple[Goal, int] | None:
        return self.goal_items.get((org_id, person_id, goal_id))

    def goals(self, org_id: str, person_id: str) -> list[Goal]:
        return [goal for (org, person, _), (goal, _) in self.goal_items.items() if (org, person) == (org_id, person_id)]

    def update_goal(
        self, goal: Goal, version: int, delta: TallyDelta, events: Sequence[Event], *, closed: bool
    ) -> None:
        with self._lock:
            key = (goal.org_id, goal.person_id, goal.goal_id)
            if self.goal_items[key][1] != version:
                raise Conflict("changed at the same time", field="goal_id")
            self._commit(delta, events)
            self.goal_items[key] = (goal, version + 1)
            if closed:
                self.active[(goal.org_id, goal.person_id)] -= 1

    def due_checkins(self, due_on: date) -> list[Goal]:
        return [goal for goal, _ in self.goal_items.values() if goal.next_checkin_on == due_on]

    # ------------------------------------------------------------------ profiles and policy
    def put_role_profile(self, profile: RoleProfile, events: Sequence[Event]) -> None:
        with self._lock:
            self._commit(None, events)
            self.profiles[(profile.org_id, profile.level.value)] = profile

    def role_profiles(self, org_id: str) -> list[RoleProfile]:
        return [p for (org, _), p in sorted(self.profiles.items()) if org == org_id]

    def role_profile(self, org_id: str, level: str) -> RoleProfile | None:
        return self.profiles.get((org_id, level))

    def put_policy(self, org_id: str, policy: DevelopmentPolicy, events: Sequence[Event]) -> None:
        with self._lock:
            self._commit(None, events)
            self.policies[org_id] = policy

    def policy(self, org_id: str) -> DevelopmentPolicy:
        return self.policies.get(org_id, DevelopmentPolicy())

    # ------------------------------------------------------------------ 360 rounds
    def open_assessment(self, assessment: Assessment, events: Sequence[Event]) -> None:
        with self._lock:
            self._commit(None, events)
            key = (assessment.org_id, assessment.person_id, assessment.assessment_id)
            self.round_items[key] = (assessment, 1)
            for invite in assessment.invites:
                self.invites[invite.token_hash] = InviteRef(*key)

    def assessment(self, org_id: str, person_id: str, assessment_id: str) -> tuple[Assessment, int] | None:
        return self.round_items.get((org_id, person_id, assessment_id))

    def invite(self, token_hash: str) -> InviteRef | None:
        return self.invites.get(token_hash)

    def record_answer(self, assessment: Assessment, version: int, answer: RaterAnswer, events: Sequence[Event]) -> None:
        with self._lock:
            key = (assessment.org_id, assessment.person_id, assessment.assessment_id)
            answer_key = (*key, answer.rater_id)
            if answer_key in self.answer_items:
                raise Conflict("this rater already answered", field="token")
            if self.round_items[key][1] != version:
                raise Conflict("changed at the same time", field="assessment_id")
            self._commit(None, events)
            self.round_items[key] = (assessment, version + 1)
            self.answer_items[answer_key] = answer

    def answers(self, org_id: str, person_id: str, assessment_id: str) -> list[RaterAnswer]:
        return [a for (o, p, i, _), a in self.answer_items.items() if (o, p, i) == (org_id, person_id, assessment_id)]

    def release(
        self, assessment: Assessment, version: int, result: AssessmentResult, delta: TallyDelta, events: Sequence[Event]
    ) -> None:
        with self._lock:
            key = (assessment.org_id, assessment.person_id, assessment.assessment_id)
            if self.round_items[key][1] != version or key in self.result_items:
                raise Conflict("changed at the same time", field="assessment_id")
            self._commit(delta, events)
            self.round_items[key] = (assessment, version + 1)
            self.result_items[key] = result

    def result(self, org_id: str, person_id: str, assessment_id: str) -> AssessmentResult | None:
        return self.result_items.get((org_id, person_id, assessment_id))

    def results(self, org_id: str, person_id: str) -> list[AssessmentResult]:
        return [r for (o, p, _), r in self.result_items.items() if (o, p) == (org_id, person_id)]

    def open_assessments(self) -> list[tuple[str, str, str]]:
        return [key for key, (a, _) in self.round_items.items() if a.status is AssessmentStatus.OPEN]

    def rounds(self, org_id: str, person_id: str) -> list[Assessment]:
        return [a for (o, p, _), (a, _) in self.round_items.items() if (o, p) == (org_id, person_id)]

    def baselines_due(self, first: date, last: date) -> list[tuple[str, str]]:
        found = {
            (a.org_id, a.person_id): None
            for a, _ in self.round_items.values()
            if a.status is AssessmentStatus.RELEASED and a.follow_up_due_on and first <= a.follow_up_due_on <= last
        }
        return list(found)

    def participation(self, org_id: str, person_id: str) -> Participation:
        return self.participations.get((org_id, person_id), Participation())

    def coach_engaged(self, org_id: str, person_id: str, coach_id: str) -> bool:
        return (org_id, person_id, coach_id) in self.engagements
