"""Session feedback and goals on in-memory fakes: once per own completed session, at most 3 active goals
(also under a race), distinct people counted once a month, the nudge once per goal and day, role profiles."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from coaching.auth import Principal, Role
from coaching.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, PolicyRefused
from coaching.domain.events import CheckInDue, GoalSet, SessionFeedbackGiven
from coaching.domain.feedback import FeedbackRequest, NpsCategory, nps_category
from coaching.domain.goals import CheckInRequest, GoalClose, GoalCreate, GoalStatus, RoleProfileRequest
from coaching.domain.measures import Dimensions
from coaching.domain.taxonomy import Level
from coaching.services import completion, feedback, goals
from coaching.services.feedback import FeedbackContext
from coaching.services.goals import GoalContext, ProfileContext

from .fakes.booking import ORG, PERSON, START, World, as_coach, employee
from .fakes.development import FakeDevelopmentStore

ANSWERS = FeedbackRequest(satisfaction=4, would_recommend=10, goal_progress=3, comment="useful")


@pytest.fixture
def world() -> World:
    return World.create()


@pytest.fixture
def store(world: World) -> FakeDevelopmentStore:
    def booking(org_id: str, person_id: str, booking_id: str):  # type: ignore[no-untyped-def]
        state = world.store.read_booking(org_id, person_id, booking_id)
        return state.booking if state else None

    store = FakeDevelopmentStore(booking)
    store.orgs[ORG] = world.store.orgs[ORG]
    store.people[(ORG, PERSON)] = world.store.people[(ORG, PERSON)]
    return store


@pytest.fixture
def fctx(store: FakeDevelopmentStore, world: World) -> FeedbackContext:
    return FeedbackContext(store=store, clock=world.clock)


@pytest.fixture
def gctx(store: FakeDevelopmentStore, world: World) -> GoalContext:
    return GoalContext(store=store, clock=world.clock)


def completed(world: World, count: int = 1) -> list[str]:
    """`count` sessions booked now, then each completed after its end (the clock moving on)."""
    made = [world.book(start) for start in world.slots()[:count]]
    for booking in made:
        world.clock.now = booking.end + timedelta(minutes=5)
        completion.complete(as_coach(), booking.booking_id, 30, world.completion_ctx)
    return [booking.booking_id for booking in made]


def test_nps_categories_follow_the_standard_bands():
    assert [nps_category(v) for v in (0, 6, 7, 8, 9, 10)] == [NpsCategory.DETRACTOR] * 2 + [NpsCategory.PASSIVE] * 2 + [
        NpsCategory.PROMOTER
    ] * 2


def test_feedback_is_given_once_on_ones_own_completed_session_within_30_days(world, store, fctx):
    booked = world.book(world.slots()[3])
    with pytest.raises(InvalidInput):  # not completed yet
        feedback.give(employee(), booked.booking_id, ANSWERS, fctx)
    (booking_id,) = completed(world)
    with pytest.raises(NotFound):
        feedback.give(employee("person-2"), booking_id, ANSWERS, fctx)
    with pytest.raises(Forbidden):
        feedback.give(as_coach(), booking_id, ANSWERS, fctx)
    given = feedback.give(employee(), booking_id, ANSWERS, fctx)
    assert given.created
    again = feedback.give(employee(), booking_id, ANSWERS, fctx)
    assert not again.created
    assert again.feedback == given.feedback
    with pytest.raises(Conflict):
        feedback.give(employee(), booking_id, ANSWERS.model_copy(update={"satisfaction": 1}), fctx)
    assert feedback.mine(employee(), booking_id, fctx).comment == "useful"
    (event,) = [e for e in store.outbox if isinstance(e, SessionFeedbackGiven)]
    assert not {"satisfaction", "would_recommend", "goal_progress", "comment"} & set(event.model_dump())


def test_feedback_after_the_window_is_refused(world, fctx):
    (booking_id,) = completed(world)
    world.clock.now += timedelta(days=31)
    with pytest.raises(InvalidInput, match="30 days"):
        feedback.give(employee(), booking_id, ANSWERS, fctx)


def test_a_person_is_one_respondent_a_month_in_the_cell_of_their_first_feedback(world, store, fctx):
    first, second = completed(world, 2)
    feedback.give(employee(), first, ANSWERS, fctx)
    # Promoted between the two sessions: the second still counts in the first cell, as the same respondent.
    person = store.people[(ORG, PERSON)]
    store.people[(ORG, PERSON)] = person.model_copy(update={"level": Level.SENIOR_LEADER})
    feedback.give(employee(), second, ANSWERS.model_copy(update={"would_recommend": 5}), fctx)
    period = world.slots()[0].strftime("%Y-%m")
    cells = store.cells(ORG, period)
    assert len(cells) == 1
    (counters,) = cells.values()
    assert counters["feedback_responses"] == 2
    assert counters["feedback_respondents"] == 1
    assert (counters["promoters"], counters["detractors"], counters["satisfaction_sum"]) == (1, 1, 8)


def test_the_same_dimensions_give_the_same_cell_and_any_difference_another():
    a = Dimensions(program="SCALE", level="manager", department="Ops", location="Berlin")
    assert a.cell_id() == Dimensions.model_validate(a.model_dump()).cell_id()
    assert a.cell_id() != a.model_copy(update={"newly_promoted": True}).cell_id()


GOAL = GoalCreate(title="Delegate releases", competencies=["delegation"], checkin_every_days=7)


def test_at_most_three_active_goals_and_closing_one_gives_the_place_back(store, gctx, world):
    made = [goals.set_goal(employee(), GOAL, gctx) for _ in range(3)]
    with pytest.raises(PolicyRefused):
        goals.set_goal(employee(), GOAL, gctx)
    goals.close(employee(), made[0].goal_id, GoalClose(status=GoalStatus.ABANDONED), gctx)
    goals.set_goal(employee(), GOAL, gctx)
    period = START.strftime("%Y-%m")
    assert store.total(ORG, period, "goals_set") == 4
    assert store.total(ORG, period, "goal_people") == 1
    assert store.total(ORG, period, "focus_people:delegation") == 1
    assert store.total(ORG, period, "focus:delegation") == 4
    assert store.total(ORG, period, "goals_abandoned") == 1


def test_a_race_of_goal_requests_never_passes_three(store, gctx):
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            goals.set_goal(employee(), GOAL, gctx)
            outcomes.append("set")
        except PolicyRefused:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["set"] * 3
    assert len([e for e in store.outbox if isinstance(e, GoalSet)]) == 3


def test_goals_use_the_orgs_framework_and_a_target_role_needs_a_level(gctx):
    with pytest.raises(InvalidInput) as unknown:
        goals.set_goal(employee(), GOAL.model_copy(update={"competencies": ["delegation", "juggling"]}), gctx)
    assert unknown.value.field == "competencies[1]"
    with pytest.raises(ValueError, match="target_level"):
        GoalCreate.model_validate({"title": "x", "competencies": ["delegation"], "aim": "target_role"})


def test_check_ins_record_progress_and_actions_and_a_closed_goal_takes_none(store, gctx, world):
    goal = goals.set_goal(employee(), GOAL.model_copy(update={"actions": [{"text": "List my tasks"}]}), gctx)
    checked = goals.check_in(employee(), goal.goal_id, CheckInRequest(progress=30, actions_done=[0]), gctx)
    assert checked.progress == 30
    assert checked.actions[0].done
    assert checked.next_checkin_on == world.clock.now.date() + timedelta(days=7)
    with pytest.raises(InvalidInput):
        goals.check_in(employee(), goal.goal_id, CheckInRequest(progress=40, actions_done=[3]), gctx)
    goals.close(employee(), goal.goal_id, GoalClose(status=GoalStatus.ACHIEVED), gctx)
    with pytest.raises(Conflict):
        goals.check_in(employee(), goal.goal_id, CheckInRequest(progress=100), gctx)
    with pytest.raises(NotFound):
        goals.check_in(employee("person-2"), goal.goal_id, CheckInRequest(progress=1), gctx)
    assert store.total(ORG, START.strftime("%Y-%m"), "checkin_people") == 1


def test_the_nudge_emits_one_check_in_due_per_goal_and_day_whatever_the_runs(store, gctx, world):
    today = world.clock.now.date()
    due = goals.set_goal(employee(), GOAL.model_copy(update={"first_checkin_on": today}), gctx)
    goals.set_goal(employee(), GOAL, gctx)  # due in a week
    first = goals.nudge(today, gctx)
    second = goals.nudge(today, gctx)
    assert [e.goal_id for e in first] == [due.goal_id]
    assert first[0].event_id == second[0].event_id
    assert len([e for e in store.outbox if isinstance(e, CheckInDue)]) == 1
    goals.close(employee(), due.goal_id, GoalClose(status=GoalStatus.ACHIEVED), gctx)
    assert goals.nudge(today, gctx) == []


def test_role_profiles_are_set_by_the_orgs_admin_on_its_framework(store, world):
    ctx = ProfileContext(store=store, clock=world.clock)
    admin = Principal(person_id="admin", org_id=ORG, roles=frozenset({Role.ORG_ADMIN}))
    body = RoleProfileRequest.model_validate(
        {"name": "Manager", "competencies": [{"competency": "delegation", "behaviours": ["Hands over outcomes"]}]}
    )
    with pytest.raises(Forbidden):
        goals.set_role_profile(employee(), ORG, Level.MANAGER, body, ctx)
    with pytest.raises(Forbidden):
        goals.set_role_profile(Principal("a", "org-2", frozenset({Role.ORG_ADMIN})), ORG, Level.MANAGER, body, ctx)
    goals.set_role_profile(admin, ORG, Level.MANAGER, body, ctx)
    assert [p.level for p in goals.role_profiles(employee(), ORG, ctx)] == [Level.MANAGER]
    with pytest.raises(ValueError, match="once"):
        RoleProfileRequest.model_validate(
            {"name": "M", "competencies": [{"competency": "hiring", "behaviours": ["a"]}] * 2}
        )
