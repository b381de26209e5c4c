"""Session completion: the coach records the outcome, the person confirms or disputes,
operators credit. A billable outcome and its usage entry are one transaction."""

from typing import Annotated

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.billing_store import BillingStore
from coaching.adapters.booking_store import BookingStore
from coaching.api import Caller, PathId, add_health_route, http_entry, rest_resolver
from coaching.domain.booking import Booking, CompletionRequest, CreditRequest, DisputeRequest, DisputeResolution
from coaching.domain.common import utc_now
from coaching.services import completion
from coaching.services.completion import CompletionContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/sessions/health", service="session_completion")
# The composition root: the services get the real adapters here (tests build theirs).
ctx = CompletionContext(store=BookingStore(), billing=BillingStore(), clock=utc_now)


def _done(booking: Booking, metric: str | None = None) -> Booking:
    if metric:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    return booking


@app.post(
    "/coach/sessions/<booking_id>/complete",
    summary="Record a session as delivered, with its actual length (coach)",
    description="Idempotent: a retry returns the same session and never bills twice.",
    tags=["sessions"],
)
def complete(caller: Caller, booking_id: PathId, body: Annotated[CompletionRequest, Body()]) -> Booking:
    return _done(completion.complete(caller, booking_id, body.actual_minutes, ctx), "SessionCompleted")


@app.post(
    "/coach/sessions/<booking_id>/no-show",
    summary="Record a no-show, 15 minutes after the start at the earliest (coach)",
    tags=["sessions"],
)
def no_show(caller: Caller, booking_id: PathId) -> Booking:
    return _done(completion.no_show(caller, booking_id, ctx), "SessionNoShow")


@app.post("/bookings/<booking_id>/confirm", summary="Confirm the coach's record (employee)", tags=["sessions"])
def confirm(caller: Caller, booking_id: PathId) -> Booking:
    return _done(completion.confirm(caller, booking_id, ctx))


@app.post("/bookings/<booking_id>/dispute", summary="Dispute the coach's record (employee)", tags=["sessions"])
def dispute(caller: Caller, booking_id: PathId, body: Annotated[DisputeRequest, Body()]) -> Booking:
    return _done(completion.dispute(caller, booking_id, body.reason, ctx), "SessionDisputed")


@app.post(
    "/orgs/<org_id>/sessions/<booking_id>/resolve-dispute",
    summary="Uphold (credit with a reversing entry) or reject a dispute (operator)",
    tags=["sessions"],
)
def resolve_dispute(
    caller: Caller, org_id: PathId, booking_id: PathId, body: Annotated[DisputeResolution, Body()]
) -> Booking:
    return _done(completion.resolve_dispute(caller, org_id, booking_id, body.upheld, body.reason, ctx))


@app.post(
    "/orgs/<org_id>/sessions/<booking_id>/credit",
    summary="Credit a billed session with a reversing ledger entry (operator)",
    tags=["sessions"],
)
def credit(caller: Caller, org_id: PathId, booking_id: PathId, body: Annotated[CreditRequest, Body()]) -> Booking:
    return _done(completion.credit(caller, org_id, booking_id, body.reason, ctx), "SessionCredited")


lambda_handler = http_entry(app, logger=logger, tracer=tracer, metrics=metrics)
