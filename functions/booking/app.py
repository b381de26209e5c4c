"""Booking: open slots with your coach, sessions that can never double-book, calendar invites.

HTTP routes serve people and coaches; an EngagementEnded event cancels that engagement's
future sessions.
"""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.booking_store import BookingStore
from coaching.adapters.dynamo import CoachRepository
from coaching.adapters.roster_store import RosterStore
from coaching.api import Caller, PathId, add_health_route, created, function_entry, rest_resolver
from coaching.config import settings
from coaching.domain.booking import Booking, BookingRequest, CancelRequest, RescheduleRequest
from coaching.domain.common import utc_now
from coaching.domain.events import EngagementEnded
from coaching.services import booking
from coaching.services.booking import BookingContext, SlotView
from coaching.services.roster import RosterCache
from pydantic import AwareDatetime, BaseModel

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/booking/health", service="booking")
# The composition root: the services get the real adapters here (tests build theirs).
ctx = BookingContext(
    store=BookingStore(),
    roster=RosterCache(RosterStore(), ttl_seconds=settings().roster_cache_ttl_seconds),
    coaches=CoachRepository(),
    clock=utc_now,
)


class SlotList(BaseModel):
    items: list[SlotView]


class BookingList(BaseModel):
    items: list[Booking]


@app.get(
    "/engagements/<engagement_id>/slots",
    summary="Open slots with your coach, in your time zone (employee)",
    tags=["booking"],
)
def slots(
    caller: Caller,
    engagement_id: PathId,
    start: Annotated[AwareDatetime, Query(alias="from", description="ISO 8601 with offset")],
    end: Annotated[AwareDatetime, Query(alias="to", description="ISO 8601 with offset; at most 31 days after from")],
) -> SlotList:
    return SlotList(items=booking.slots(caller, engagement_id, start, end, ctx))


@app.post("/bookings", summary="Book a session with your coach (employee)", tags=["booking"])
def create_booking(caller: Caller, body: Annotated[BookingRequest, Body()]) -> Response[Booking]:
    new_booking = booking.book(caller, body, ctx)
    metrics.add_metric(name="SessionBooked", unit=MetricUnit.Count, value=1)
    return created(new_booking)


@app.get("/bookings", summary="Your bookings (employee)", tags=["booking"])
def list_bookings(caller: Caller) -> BookingList:
    return BookingList(items=booking.list_bookings(caller, ctx))


@app.get("/bookings/<booking_id>", summary="One of your bookings (employee)", tags=["booking"])
def get_booking(caller: Caller, booking_id: PathId) -> Booking:
    return booking.get_booking(caller, booking_id, ctx)


@app.post("/bookings/<booking_id>/cancel", summary="Cancel a booking (employee)", tags=["booking"])
def cancel_booking(caller: Caller, booking_id: PathId, body: Annotated[CancelRequest, Body()]) -> Booking:
    return booking.cancel(caller, booking_id, body.reason, ctx)


@app.post(
    "/bookings/<booking_id>/reschedule",
    summary="Move a booking to another open slot (employee)",
    description="Inside the late-cancel window this counts as a late cancel unless the org allows a free one; "
    "the calendar UID stays and its SEQUENCE goes up.",
    tags=["booking"],
)
def reschedule_booking(caller: Caller, booking_id: PathId, body: Annotated[RescheduleRequest, Body()]) -> Booking:
    return booking.reschedule(caller, booking_id, body, ctx)


@app.get("/coach/sessions", summary="Your sessions in a date range (coach)", tags=["booking"])
def coach_sessions(
    caller: Caller,
    start: Annotated[AwareDatetime, Query(alias="from", description="ISO 8601 with offset")],
    end: Annotated[AwareDatetime, Query(alias="to", description="ISO 8601 with offset; at most 31 days after from")],
) -> BookingList:
    return BookingList(items=booking.coach_sessions(caller, start, end, ctx))


@app.post(
    "/coach/sessions/<booking_id>/cancel",
    summary="Cancel a session as its coach: never billed, the unit comes back (coach)",
    tags=["booking"],
)
def coach_cancel(caller: Caller, booking_id: PathId, body: Annotated[CancelRequest, Body()]) -> Booking:
    return booking.coach_cancel(caller, booking_id, body.reason, ctx)


@app.get(
    "/bookings/<booking_id>/calendar.ics",
    summary="The calendar invite (RFC 5545, your time zone, stable UID)",
    tags=["booking"],
)
def calendar(caller: Caller, booking_id: PathId) -> Response[str]:
    return Response(
        status_code=200, content_type="text/calendar; charset=utf-8", body=booking.invite(caller, booking_id, ctx)
    )


def on_engagement_ended(ended: EngagementEnded) -> dict[str, Any]:
    cancelled = booking.on_engagement_ended(ended, ctx)
    metrics.add_metric(name="SessionsCancelledByEngagementEnd", unit=MetricUnit.Count, value=len(cancelled))
    return {"cancelled": [session.booking_id for session in cancelled]}


lambda_handler = function_entry(
    app, name="booking", logger=logger, tracer=tracer, metrics=metrics, on_events={EngagementEnded: on_engagement_ended}
)
