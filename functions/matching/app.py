"""Matching: contextual coach matching, engagements, promotion re-match and the roster.

HTTP routes serve people and operators; coach events and a schedule keep the roster
snapshot current; a coach's suspension ends their engagements with a re-match each;
PersonPromoted events trigger a continuity check and, if needed, a re-match.
"""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.booking_store import BookingStore
from coaching.adapters.cohort_job_store import CohortJobStore, LambdaJobLauncher
from coaching.adapters.dynamo import CoachRepository, OrgRepository, PersonRepository
from coaching.adapters.matching_store import MatchingStore
from coaching.adapters.roster_store import RosterStore
from coaching.api import Caller, PathId, add_health_route, created, function_entry, rest_resolver
from coaching.config import settings
from coaching.domain.common import utc_now
from coaching.domain.engagements import Engagement
from coaching.domain.events import CoachProfileUpdated, CoachVettingChanged, PersonPromoted, PersonTerminated
from coaching.domain.matching import MatchRequestIn
from coaching.services import cohort_jobs, cohorts, matching, rematches
from coaching.services.cohort_jobs import CohortJob, CohortJobContext
from coaching.services.cohorts import CohortContext, CohortPlan, CohortRequest
from coaching.services.matching import EngagementContext, MatchingContext, MatchView
from coaching.services.roster import RosterCache, rebuild_roster
from pydantic import BaseModel, Field

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/matching/health", service="matching")

# The composition root: the services' ports on the real tables.
coaches = CoachRepository()
people = PersonRepository()
roster_store = RosterStore()
# A warm container re-checks the roster version at most this often (one small GetItem).
roster_cache = RosterCache(roster_store, ttl_seconds=settings().roster_cache_ttl_seconds)
store = MatchingStore()
bookings = BookingStore()
ctx = MatchingContext(
    roster=roster_cache,
    store=store,
    people=people,
    coaches=coaches,
    bookings=bookings,
    clock=utc_now,
)
cohort_ctx = CohortContext(
    roster=roster_cache, store=store, orgs=OrgRepository(), people=people, bookings=bookings, clock=utc_now
)
job_ctx = CohortJobContext(cohorts=cohort_ctx, jobs=CohortJobStore(), clock=utc_now, launcher=LambdaJobLauncher())


class ChooseBody(BaseModel):
    coach_id: Annotated[str, Field(min_length=1, max_length=64)]


class ChangeCoachBody(BaseModel):
    reason: Annotated[str, Field(min_length=3, max_length=500)]


class EngagementList(BaseModel):
    items: list[Engagement]


class MatchList(BaseModel):
    items: list[MatchView]


class GapList(BaseModel):
    items: list[dict[str, Any]]


@app.post("/matches", summary="Ask for a coach: the top 3 who fit, with reasons (employee)", tags=["matching"])
def request_match(caller: Caller, body: Annotated[MatchRequestIn, Body()]) -> Response[MatchView]:
    view = matching.request_match(caller, body, ctx)
    metrics.add_metric(name="MatchProposed", unit=MetricUnit.Count, value=1)
    return created(view)


@app.get("/matches", summary="The caller's match requests (employee)", tags=["matching"])
def list_matches(caller: Caller) -> MatchList:
    return MatchList(items=matching.list_matches(caller, ctx))


@app.get("/matches/<match_id>", summary="One of the caller's match requests (employee)", tags=["matching"])
def get_match(caller: Caller, match_id: PathId) -> MatchView:
    return matching.get_match(caller, match_id, ctx)


@app.post("/matches/<match_id>/decline", summary="Decline all three; get the next three (employee)", tags=["matching"])
def decline(caller: Caller, match_id: PathId) -> MatchView:
    return matching.decline_all(caller, match_id, ctx)


@app.post(
    "/matches/<match_id>/choose",
    summary="Choose a proposed coach: starts an engagement (employee)",
    description="Takes one unit of the coach's capacity atomically; 409 when the coach has just filled up.",
    tags=["matching"],
)
def choose(caller: Caller, match_id: PathId, body: Annotated[ChooseBody, Body()]) -> Response[Engagement]:
    engagement = matching.choose(caller, match_id, body.coach_id, ctx)
    metrics.add_metric(name="EngagementStarted", unit=MetricUnit.Count, value=1)
    return created(engagement)


@app.get("/engagements", summary="The caller's engagements, past and present (employee)", tags=["matching"])
def list_engagements(caller: Caller) -> EngagementList:
    return EngagementList(items=matching.list_engagements(caller, ctx))


@app.post(
    "/engagements/<engagement_id>/change-coach",
    summary="End this engagement and get new proposals (employee)",
    tags=["matching"],
)
def change_coach(caller: Caller, engagement_id: PathId, body: Annotated[ChangeCoachBody, Body()]) -> MatchView:
    return matching.change_coach(caller, engagement_id, body.reason, ctx)


@app.get(
    "/engagements/<engagement_id>/context",
    summary="What the coach may know: goals and competency history, never notes (coach)",
    tags=["matching"],
)
def engagement_context(caller: Caller, engagement_id: PathId) -> EngagementContext:
    return matching.engagement_context(caller, engagement_id, ctx)


@app.post(
    "/cohorts/match",
    summary="Assign a whole cohort at once, optimally (org_admin)",
    description="Up to 5,000 participants. mode 'best_fit' maximises total fit; 'everyone_matched' matches as "
    "many people as possible first. With commit=true each assignment becomes an engagement. Up to 300 "
    "participants the plan is the response (200); beyond, a background job is created and the response is "
    "202 with the job: GET /cohorts/jobs/{job_id} shows its status, progress and, once done, the plan.",
    tags=["matching"],
    responses={
        202: {
            "description": "More than 300 participants: the job that plans the launch.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CohortJob"}}},
        }
    },
)
def cohort_match(caller: Caller, body: Annotated[CohortRequest, Body()]) -> Response[CohortPlan | CohortJob]:
    if len(dict.fromkeys(body.participant_ids)) > cohorts.SYNC_COHORT:
        job = cohort_jobs.start_job(caller, body, job_ctx)
        return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=job)
    plan = cohorts.match_cohort_for_org(caller, body, cohort_ctx)
    metrics.add_metric(name="CohortMatched", unit=MetricUnit.Count, value=plan.matched)
    if plan.unassigned_by_reason:
        # Counts by reason, never who: the response gives every unassigned person the same reason.
        logger.info("cohort launch: not assigned, by reason", extra={"unassigned_by_reason": plan.unassigned_by_reason})
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=plan)


@app.get(
    "/cohorts/jobs/<job_id>",
    summary="A cohort launch job: status, progress and, once succeeded, the plan (org_admin)",
    tags=["matching"],
)
def cohort_job(caller: Caller, job_id: PathId) -> CohortJob:
    return cohort_jobs.get_job(caller, job_id, job_ctx)


@app.get("/matching/gaps", summary="Requests no coach could serve, newest first (operator)", tags=["matching"])
def gaps(caller: Caller, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> GapList:
    return GapList(items=matching.gap_report(caller, limit, ctx))


@tracer.capture_method
def refresh_roster(trigger: str) -> dict[str, Any]:
    result = rebuild_roster(coaches, roster_store)
    details = {"trigger": trigger, "version": result.version, "coaches": result.coach_count}
    if result.coalesced:
        # Normal under a burst: another rebuild published a snapshot read after this change.
        metrics.add_metric(name="RosterRebuildCoalesced", unit=MetricUnit.Count, value=1)
        logger.info("roster already covered by another rebuild", extra=details)
    else:
        metrics.add_metric(name="RosterRebuilt", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RosterCoaches", unit=MetricUnit.Count, value=result.coach_count)
        logger.info("roster rebuilt", extra=details)
    return {"roster_version": result.version, "coach_count": result.coach_count, "coalesced": result.coalesced}


def on_person_promoted(event: PersonPromoted) -> dict[str, Any]:
    outcome = rematches.on_person_promoted(event, ctx)
    metrics.add_metric(name="PromotionRematch", unit=MetricUnit.Count, value=len(outcome.rematch_ids))
    return outcome.model_dump()


def on_person_terminated(event: PersonTerminated) -> dict[str, Any]:
    """HR ended the person's employment: their engagements end (booking cancels the future sessions)."""
    outcome = rematches.on_person_terminated(event, ctx)
    metrics.add_metric(name="EngagementsEndedByTermination", unit=MetricUnit.Count, value=len(outcome.ended))
    return outcome.model_dump()


def on_coach_changed(event: CoachProfileUpdated) -> dict[str, Any]:
    return refresh_roster(trigger=event.detail_type)


def on_vetting_changed(event: CoachVettingChanged) -> dict[str, Any]:
    """Rebuild the roster; a suspension also ends the coach's engagements with a re-match each."""
    rebuilt = refresh_roster(trigger=event.detail_type)
    roster_cache.invalidate()  # re-matches below read the roster just published
    outcome = rematches.on_coach_vetting_changed(event, ctx)
    if outcome.ended:
        metrics.add_metric(name="EngagementsEndedBySuspension", unit=MetricUnit.Count, value=len(outcome.ended))
        logger.info("suspended coach's engagements ended", extra=outcome.model_dump())
    return rebuilt | outcome.model_dump()


lambda_handler = function_entry(
    app,
    name="matching",
    logger=logger,
    tracer=tracer,
    metrics=metrics,
    on_events={
        PersonPromoted: on_person_promoted,
        PersonTerminated: on_person_terminated,
        CoachVettingChanged: on_vetting_changed,
        CoachProfileUpdated: on_coach_changed,
    },
    on_schedule=lambda name: refresh_roster(trigger=name),
)
