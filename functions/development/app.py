"""Development: session feedback, goals, role profiles, the development policy and 360 assessments.

What people answer (feedback, each rater's ratings, a released result) goes to the confidential table;
only this function reads it back, for the person themselves (and a released 360 for their coach).
Every capture adds to a tally cell in the same transaction: the reports read those, never a person.
Raters answer 360s without an account: `/360/...` routes take the link's token in the body instead.

The DevelopmentDaily schedule nudges the check-ins due today (`CheckInDue`, once per goal and day),
releases the 360 rounds the release rule releases by time (14 and 21 days) and nudges the follow-ups of
released baselines whose date has come (`FollowUpDue`). `EngagementEnded` nudges them at the end of a programme.
This module is the composition root: it builds the services' contexts with the DynamoDB adapters.
"""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.development_store import DevelopmentStore
from coaching.api import Caller, PathId, add_health_route, created, error_response, function_entry, rest_resolver
from coaching.domain.assessments import (
    AnswerRequest,
    AssessmentRequest,
    AssessmentResult,
    DevelopmentPolicy,
    Growth,
    RaterAnswerRequest,
)
from coaching.domain.common import StrictModel, utc_now
from coaching.domain.events import EngagementEnded
from coaching.domain.feedback import FeedbackRequest, SessionFeedback
from coaching.domain.goals import CheckInRequest, Goal, GoalClose, GoalCreate, RoleProfile, RoleProfileRequest
from coaching.domain.taxonomy import Level
from coaching.services import assessments, feedback, goals
from coaching.services.assessments import AssessmentContext, AssessmentView, OpenedAssessment, RaterView
from coaching.services.feedback import FeedbackContext
from coaching.services.goals import GoalContext, ProfileContext
from pydantic import BaseModel, Field

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/development/health", service="development")
store = DevelopmentStore()
feedback_ctx = FeedbackContext(store=store, clock=utc_now)
goal_ctx = GoalContext(store=store, clock=utc_now)
profile_ctx = ProfileContext(store=store, clock=utc_now)
assessment_ctx = AssessmentContext(store=store, clock=utc_now)

LevelPath = Annotated[Level, Path(description="The role (level) the profile describes.")]
# Routes a rater reaches by link, without a token: their errors are documented here (no 401/403 from a caller).
LINK_ERRORS = {status: error_response(status) for status in (403, 404, 409, 415, 422)}


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


class GoalList(BaseModel):
    items: list[Goal]


class RoleProfileList(BaseModel):
    items: list[RoleProfile]


class GrowthList(BaseModel):
    items: list[Growth]


class RaterLink(StrictModel):
    token: Annotated[str, Field(min_length=20, max_length=200, description="The token of the invite link.")]


# ------------------------------------------------------------------ session feedback


@app.post(
    "/bookings/<booking_id>/feedback",
    summary="Give feedback on one's own completed session, once (employee)",
    description="Satisfaction 1-5, would-recommend 0-10 (NPS), progress on the session's goal 1-5. Given once: the "
    "same answers again return the same feedback (201, an idempotent retry); other answers are a 409, because "
    "feedback is never edited.",
    tags=["development"],
)
def give_feedback(
    caller: Caller, booking_id: PathId, body: Annotated[FeedbackRequest, Body()]
) -> Response[SessionFeedback]:
    outcome = feedback.give(caller, booking_id, body, feedback_ctx)
    if outcome.created:
        _count("SessionFeedbackGiven")
    return created(outcome.feedback)


@app.get("/bookings/<booking_id>/feedback", summary="One's own feedback on a session (employee)", tags=["development"])
def my_feedback(caller: Caller, booking_id: PathId) -> SessionFeedback:
    return feedback.mine(caller, booking_id, feedback_ctx)


# ------------------------------------------------------------------ goals


@app.post(
    "/goals",
    summary="Set a development goal (employee; at most 3 active)",
    description="Tied to competencies of the org's framework, aiming at the current role or a target role, with "
    "actions and a check-in rhythm. A fourth active goal is refused (422 policy_refused).",
    tags=["development"],
)
def set_goal(caller: Caller, body: Annotated[GoalCreate, Body()]) -> Response[Goal]:
    _count("GoalSet")
    return created(goals.set_goal(caller, body, goal_ctx))


@app.get("/goals", summary="One's own goals (employee)", tags=["development"])
def my_goals(caller: Caller) -> GoalList:
    return GoalList(items=goals.my_goals(caller, goal_ctx))


@app.post("/goals/<goal_id>/check-ins", summary="Check in on a goal's progress (employee)", tags=["development"])
def check_in(caller: Caller, goal_id: PathId, body: Annotated[CheckInRequest, Body()]) -> Goal:
    return goals.check_in(caller, goal_id, body, goal_ctx)


@app.post("/goals/<goal_id>/close", summary="Close a goal as achieved or abandoned (employee)", tags=["development"])
def close_goal(caller: Caller, goal_id: PathId, body: Annotated[GoalClose, Body()]) -> Goal:
    return goals.close(caller, goal_id, body, goal_ctx)


# ------------------------------------------------------------------ role profiles and policy


@app.put(
    "/orgs/<org_id>/role-profiles/<level>",
    summary="Set a role's competencies and observable behaviours (org_admin)",
    tags=["development"],
)
def put_role_profile(
    caller: Caller, org_id: PathId, level: LevelPath, body: Annotated[RoleProfileRequest, Body()]
) -> RoleProfile:
    return goals.set_role_profile(caller, org_id, level, body, profile_ctx)


@app.get("/orgs/<org_id>/role-profiles", summary="The org's role profiles (org_admin, employee)", tags=["development"])
def list_role_profiles(caller: Caller, org_id: PathId) -> RoleProfileList:
    return RoleProfileList(items=goals.role_profiles(caller, org_id, profile_ctx))


@app.put(
    "/orgs/<org_id>/development-policy",
    summary="Set the development policy: manager shown alone in 360s, follow-up weeks (org_admin)",
    tags=["development"],
)
def put_policy(caller: Caller, org_id: PathId, body: Annotated[DevelopmentPolicy, Body()]) -> DevelopmentPolicy:
    return goals.set_policy(caller, org_id, body, profile_ctx)


@app.get("/orgs/<org_id>/development-policy", summary="The development policy (org_admin, employee)",
         tags=["development"])  # fmt: skip
def get_policy(caller: Caller, org_id: PathId) -> DevelopmentPolicy:
    return goals.policy(caller, org_id, profile_ctx)


# ------------------------------------------------------------------ 360 assessments


@app.post(
    "/assessments",
    summary="Open a 360 round, baseline or follow-up (employee)",
    description="Each rater gets a single-use link token, returned here once and never again; it expires when the "
    "round closes (21 days). The result is released when the self-assessment is done and every rater answered, "
    "or once 5 raters answered and 14 days passed, or at 21 days.",
    tags=["development"],
)
def open_assessment(caller: Caller, body: Annotated[AssessmentRequest, Body()]) -> Response[OpenedAssessment]:
    _count("AssessmentOpened")
    return created(assessments.open_round(caller, body, assessment_ctx))


@app.post("/assessments/<assessment_id>/self", summary="Rate oneself in an open round (employee)",
          tags=["development"])  # fmt: skip
def answer_self(caller: Caller, assessment_id: PathId, body: Annotated[AnswerRequest, Body()]) -> AssessmentView:
    return assessments.answer_self(caller, assessment_id, dict(body.ratings), assessment_ctx)


@app.get(
    "/orgs/<org_id>/people/<person_id>/assessments/<assessment_id>",
    summary="A 360 round's progress: raters invited and answered (the person, their coach)",
    tags=["development"],
)
def get_assessment(caller: Caller, org_id: PathId, person_id: PathId, assessment_id: PathId) -> AssessmentView:
    return assessments.view(caller, org_id, person_id, assessment_id, assessment_ctx)


@app.get(
    "/orgs/<org_id>/people/<person_id>/assessments/<assessment_id>/result",
    summary="A released 360 result (the person, their coach with an active engagement)",
    description="Rater groups below 3 responses are withheld, not folded into another group; the manager shows "
    "alone only under the org's policy and when the manager was told so at the invite.",
    tags=["development"],
)
def get_result(caller: Caller, org_id: PathId, person_id: PathId, assessment_id: PathId) -> AssessmentResult:
    return assessments.result(caller, org_id, person_id, assessment_id, assessment_ctx)


@app.get(
    "/orgs/<org_id>/people/<person_id>/growth",
    summary="Before and after: each baseline with its follow-up (the person, their coach)",
    tags=["development"],
)
def get_growth(caller: Caller, org_id: PathId, person_id: PathId) -> GrowthList:
    return GrowthList(items=assessments.growth(caller, org_id, person_id, assessment_ctx))


@app.post(
    "/360/invite",
    summary="What a rater's link asks: the competencies and the deadline (no account; the link's token)",
    tags=["development"],
    responses=LINK_ERRORS,
)
def rater_invite(body: Annotated[RaterLink, Body()]) -> RaterView:
    return assessments.rater_view(body.token, assessment_ctx)


@app.post(
    "/360/answers",
    summary="A rater answers by link, once, without an account",
    description="The token is single-use: a second answer is a 409, an expired link a 403, an unknown one a 404.",
    tags=["development"],
    responses=LINK_ERRORS,
)
def rater_answer(body: Annotated[RaterAnswerRequest, Body()]) -> RaterView:
    _count("AssessmentAnswered")
    return assessments.answer_by_link(body.token, dict(body.ratings), assessment_ctx)


def on_schedule(name: str) -> dict[str, Any]:
    if name != "DevelopmentDaily":
        raise ValueError(f"development has no schedule named {name!r}")
    now = utc_now()
    nudged = goals.nudge(now.date(), goal_ctx)
    released = assessments.release_due(assessment_ctx)
    follow_ups = assessments.nudge_follow_ups(now.date(), assessment_ctx)
    counts = {"checkins_due": len(nudged), "assessments_released": released, "follow_ups_due": len(follow_ups)}
    logger.info("daily development run", extra=counts)
    return counts


def on_engagement_ended(event: EngagementEnded) -> dict[str, Any]:
    due = assessments.on_engagement_ended(event, assessment_ctx)
    return {"follow_ups_due": len(due)}


lambda_handler = function_entry(
    app,
    name="development",
    logger=logger,
    tracer=tracer,
    metrics=metrics,
    on_events={EngagementEnded: on_engagement_ended},
    on_schedule=on_schedule,
)
