"""Programmes: the org's catalogue, GROW cohorts and group sessions, TOGETHER workshops, a person's timeline.

SCALE and EXEC 1:1s are booked through the booking function; this one runs what is more than a 1:1.
"""

from typing import Annotated

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.programme_store import ProgrammeStore
from coaching.adapters.roster_store import RosterStore
from coaching.api import Caller, PathId, add_health_route, created, http_entry, rest_resolver
from coaching.config import settings
from coaching.domain.common import utc_now
from coaching.domain.grow import (
    AttendanceRequest,
    Cohort,
    Enrolment,
    EnrolRequest,
    GroupSession,
    GrowCohortRequest,
    WaitRequest,
)
from coaching.domain.programmes import CatalogueInput, ProgrammeCatalogue
from coaching.domain.workshops import Workshop, WorkshopCancel, WorkshopCompletion, WorkshopRequest
from coaching.services import grow, grow_waitlist, programmes, workshops
from coaching.services.grow import CohortView, GrowContext
from coaching.services.grow_waitlist import WaitOutcome
from coaching.services.programmes import ProgrammesContext, Timeline
from coaching.services.roster import RosterCache
from coaching.services.workshops import WorkshopContext
from pydantic import BaseModel

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/programmes/health", service="programmes")
# The composition root: the services get the real adapters here (tests build theirs).
store = ProgrammeStore()
roster = RosterCache(RosterStore(), ttl_seconds=settings().roster_cache_ttl_seconds)
programmes_ctx = ProgrammesContext(catalogues=store, timeline=store, clock=utc_now)
grow_ctx = GrowContext(store=store, waitlist=store, waitlist_writer=store, roster=roster, clock=utc_now)
workshop_ctx = WorkshopContext(store=store, roster=roster, clock=utc_now)
ICS = "text/calendar; charset=utf-8"


class CohortList(BaseModel):
    items: list[Cohort]


class GroupSessionList(BaseModel):
    items: list[GroupSession]


@app.get(
    "/orgs/<org_id>/programmes",
    summary="The org's programme catalogue (org admin, finance, leader)",
    tags=["programmes"],
)
def get_catalogue(caller: Caller, org_id: PathId) -> ProgrammeCatalogue:
    return programmes.get_catalogue(caller, org_id, programmes_ctx)


@app.put(
    "/orgs/<org_id>/programmes",
    summary="Replace the org's programme catalogue (org admin)",
    description="Bookings, cohorts and workshops already made keep the policy they snapshotted.",
    tags=["programmes"],
)
def put_catalogue(caller: Caller, org_id: PathId, body: Annotated[CatalogueInput, Body()]) -> ProgrammeCatalogue:
    return programmes.put_catalogue(caller, org_id, body, programmes_ctx)


@app.post("/orgs/<org_id>/cohorts", summary="Open a GROW cohort (org admin)", tags=["programmes"])
def open_cohort(caller: Caller, org_id: PathId, body: Annotated[GrowCohortRequest, Body()]) -> Response[Cohort]:
    cohort = grow.open_cohort(caller, org_id, body, grow_ctx)
    metrics.add_metric(name="CohortOpened", unit=MetricUnit.Count, value=1)
    return created(cohort)


@app.get("/orgs/<org_id>/cohorts", summary="The org's GROW cohorts (org admin)", tags=["programmes"])
def list_cohorts(caller: Caller, org_id: PathId) -> CohortList:
    return CohortList(items=grow.list_cohorts(caller, org_id, grow_ctx))


@app.get(
    "/orgs/<org_id>/cohorts/<cohort_id>",
    summary="A GROW cohort, its people and sessions (org admin)",
    tags=["programmes"],
)
def get_cohort(caller: Caller, org_id: PathId, cohort_id: PathId) -> CohortView:
    return grow.get_cohort(caller, org_id, cohort_id, grow_ctx)


@app.post(
    "/orgs/<org_id>/cohorts/<cohort_id>/enrolments",
    summary="Enrol a person in a GROW cohort (org admin)",
    tags=["programmes"],
)
def enrol(
    caller: Caller, org_id: PathId, cohort_id: PathId, body: Annotated[EnrolRequest, Body()]
) -> Response[Enrolment]:
    return created(grow.enrol(caller, org_id, cohort_id, body.person_id, grow_ctx))


@app.post(
    "/orgs/<org_id>/cohorts/<cohort_id>/match",
    summary="Assign the cohort's coaches and schedule its group sessions (org admin)",
    tags=["programmes"],
)
def match(caller: Caller, org_id: PathId, cohort_id: PathId) -> CohortView:
    return grow.match_coaches(caller, org_id, cohort_id, grow_ctx)


@app.post(
    "/orgs/<org_id>/grow/waitlist",
    summary="Put a person on the GROW wait-list; a cohort opens when enough wait (org admin)",
    tags=["programmes"],
)
def wait(caller: Caller, org_id: PathId, body: Annotated[WaitRequest, Body()]) -> WaitOutcome:
    return grow_waitlist.add_to_waitlist(caller, org_id, body.person_id, grow_ctx)


@app.post(
    "/orgs/<org_id>/grow/waitlist/open",
    summary="Open GROW cohorts for everyone waiting, once enough wait (org admin); a repeat opens nothing new",
    tags=["programmes"],
)
def open_waiting(caller: Caller, org_id: PathId) -> WaitOutcome:
    return grow_waitlist.open_waiting(caller, org_id, grow_ctx)


@app.get(
    "/orgs/<org_id>/cohorts/<cohort_id>/sessions",
    summary="A cohort's group sessions (its coaches, participants, org admin)",
    tags=["programmes"],
)
def sessions(caller: Caller, org_id: PathId, cohort_id: PathId) -> GroupSessionList:
    return GroupSessionList(items=grow.list_sessions(caller, org_id, cohort_id, grow_ctx))


@app.get(
    "/orgs/<org_id>/cohorts/<cohort_id>/sessions/<session_id>/calendar.ics",
    summary="A group session's invite (RFC 5545)",
    tags=["programmes"],
)
def session_invite(caller: Caller, org_id: PathId, cohort_id: PathId, session_id: PathId) -> Response[str]:
    return Response(
        status_code=200, content_type=ICS, body=grow.invite(caller, org_id, cohort_id, session_id, grow_ctx)
    )


@app.post(
    "/orgs/<org_id>/cohorts/<cohort_id>/sessions/<session_id>/attendance",
    summary="Record a group session's attendance per participant; bills each participant once (coach)",
    tags=["programmes"],
)
def attendance(
    caller: Caller, org_id: PathId, cohort_id: PathId, session_id: PathId, body: Annotated[AttendanceRequest, Body()]
) -> GroupSession:
    return grow.record_attendance(caller, org_id, cohort_id, session_id, body, grow_ctx)


@app.post(
    "/workshops",
    summary="Book a TOGETHER team workshop with a matched facilitator (leader, org admin)",
    tags=["programmes"],
)
def book_workshop(caller: Caller, body: Annotated[WorkshopRequest, Body()]) -> Response[Workshop]:
    booked = workshops.book(caller, body, workshop_ctx)
    metrics.add_metric(name="WorkshopBooked", unit=MetricUnit.Count, value=1)
    return created(booked)


@app.get("/workshops/<workshop_id>", summary="A workshop (its booker, participants, org admin)", tags=["programmes"])
def get_workshop(caller: Caller, workshop_id: PathId) -> Workshop:
    return workshops.get_workshop(caller, workshop_id, workshop_ctx)


@app.post("/workshops/<workshop_id>/cancel", summary="Cancel a workshop (its booker, org admin)", tags=["programmes"])
def cancel_workshop(caller: Caller, workshop_id: PathId, body: Annotated[WorkshopCancel, Body()]) -> Workshop:
    return workshops.cancel(caller, workshop_id, body, workshop_ctx)


@app.get("/workshops/<workshop_id>/calendar.ics", summary="A workshop's invite (RFC 5545)", tags=["programmes"])
def workshop_invite(caller: Caller, workshop_id: PathId) -> Response[str]:
    return Response(status_code=200, content_type=ICS, body=workshops.invite(caller, workshop_id, workshop_ctx))


@app.post(
    "/orgs/<org_id>/workshops/<workshop_id>/complete",
    summary="Record a workshop as delivered; bills it once (its facilitator)",
    tags=["programmes"],
)
def complete_workshop(
    caller: Caller, org_id: PathId, workshop_id: PathId, body: Annotated[WorkshopCompletion, Body()]
) -> Workshop:
    return workshops.complete(caller, org_id, workshop_id, body, workshop_ctx)


@app.get("/timeline", summary="Your history across every programme (employee)", tags=["programmes"])
def my_timeline(caller: Caller) -> Timeline:
    return programmes.my_timeline(caller, programmes_ctx)


@app.get(
    "/coach/engagements/<engagement_id>/timeline",
    summary="Your coachee's history across programmes, while your engagement runs (coach)",
    tags=["programmes"],
)
def coachee_timeline(caller: Caller, engagement_id: PathId) -> Timeline:
    return programmes.coachee_timeline(caller, engagement_id, programmes_ctx)


lambda_handler = http_entry(app, logger=logger, tracer=tracer, metrics=metrics)
