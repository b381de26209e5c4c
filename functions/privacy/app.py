"""Privacy: what a person's coach sees of them (context handoff), the person's consent, right to erasure.

The one function that reads the confidential table, and only a person's own partition: for the person, or
for the coach of their active engagement when the person consented to share.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.context_store import ContextStore
from coaching.adapters.development_store import DevelopmentStore
from coaching.adapters.dynamo import CoachRepository
from coaching.api import Caller, PathId, add_health_route, http_entry, rest_resolver
from coaching.domain.common import utc_now
from coaching.domain.context import ConsentChange, ErasureReport, Handoff, SharingView
from coaching.services import context
from coaching.services.context import ContextContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/privacy/health", service="privacy")

# Goals and released 360 results travel with the person: read from the development function's records.
ctx = ContextContext(store=ContextStore(), coaches=CoachRepository(), development=DevelopmentStore(), clock=utc_now)


@app.get(
    "/engagements/<engagement_id>/handoff",
    summary="The coachee's context for their coach: growth always, situations only with consent (coach)",
    tags=["people"],
)
def get_handoff(caller: Caller, engagement_id: PathId) -> Handoff:
    """Level history, focus history and past engagements (programme, dates, coach); the situations the person
    consented to share. Only for the approved coach of an active engagement (404 for anyone else)."""
    return context.coach_handoff(caller, engagement_id, ctx)


@app.get("/me/context-sharing", summary="What your coaches see of you, and who they are (employee)", tags=["people"])
def get_sharing(caller: Caller) -> SharingView:
    return context.my_sharing(caller, ctx)


@app.put(
    "/me/context-consent",
    summary="Share your situations with your coaches: all, or the ones listed (employee)",
    tags=["people"],
)
def put_consent(caller: Caller, body: Annotated[ConsentChange, Body()]) -> SharingView:
    """Replaces the consent whole; takes effect on the coach's next read."""
    return context.set_consent(caller, body, ctx)


@app.delete(
    "/me/context-consent",
    summary="Revoke sharing your situations, at once (employee)",
    tags=["people"],
)
def delete_consent(caller: Caller) -> SharingView:
    return context.revoke_consent(caller, ctx)


@app.post(
    "/orgs/<org_id>/people/<person_id>/erasure",
    summary="Right to erasure: anonymise a person's personal data (org_admin, operator)",
    tags=["people"],
)
def erase_person(caller: Caller, org_id: PathId, person_id: PathId) -> ErasureReport:
    """Names, email, HR ids, situations and raw HR payloads go; ledger amounts and published aggregates stay
    (they refer to the person id only). Idempotent: a repeat answers the first erasure's time."""
    report = context.erase_person(caller, org_id, person_id, ctx)
    metrics.add_metric(name="PersonErased", unit=MetricUnit.Count, value=1)
    return report


lambda_handler = http_entry(app, logger=logger, tracer=tracer, metrics=metrics)
