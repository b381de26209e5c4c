"""HR webhooks: hires, promotions, manager changes and leavers pushed by HR systems (Standard Webhooks).

Unauthenticated at API Gateway: every delivery is verified by its signature with the org's secret
(`HR_WEBHOOK_SECRETS` locally, Secrets Manager `HR_WEBHOOK_SECRET_PREFIX<org id>` deployed).
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from coaching.adapters.hr_store import HrWebhookStore, secrets_from_environment
from coaching.api import JSON_MEDIA_TYPE, Caller, PathId, add_health_route, http_entry, rest_resolver
from coaching.domain.common import utc_now
from coaching.domain.errors import DomainError, InvalidInput
from coaching.domain.hr import WebhookResult
from coaching.domain.people import rows_from_csv
from coaching.domain.reconciliation import SyncReport
from coaching.domain.taxonomy import Transition
from coaching.domain.transitions import Waitlist
from coaching.services import hr
from coaching.services.admin import check_csv_rows, check_import_body
from coaching.services.hr import HrContext
from pydantic import AwareDatetime, BaseModel, ValidationError

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/webhooks/hr/health", service="hr_webhooks")

ctx = HrContext(secrets=secrets_from_environment(), store=HrWebhookStore(), clock=utc_now)


def _error(description: str) -> OpenAPIResponse:
    return {
        "description": description,
        "content": {JSON_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


WEBHOOK_RESPONSES: dict[int, OpenAPIResponse] = {
    400: _error("The payload is not a batch of 1-100 known HR events; `fields` names each field at fault."),
    401: _error(
        "A webhook-id, webhook-timestamp or webhook-signature header is missing or malformed, the timestamp is more "
        "than 5 minutes from now, or no signature verifies with the organisation's secret."
    ),
    409: _error("The webhook-id was delivered before with another body, or is being processed right now; retry."),
    422: _error("The org_id in the path is not an id."),
}


@app.post(
    "/webhooks/hr/<org_id>",
    summary="Receive a signed batch of HR events (Standard Webhooks)",
    tags=["people"],
    responses=WEBHOOK_RESPONSES,
)
def receive_webhook(org_id: PathId) -> WebhookResult:
    """Verify, store and apply a delivery; each event's outcome is in the answer, in payload order.

    Idempotent on `webhook-id` for 8 days: a replay answers the first delivery's outcomes (`duplicate`)
    and changes nothing. Events apply by effective time and sequence, not arrival.
    """
    event = app.current_event
    raw = event.body or ""
    if event.is_base64_encoded:
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DomainError("the body is not valid base64", field="body") from exc
    else:
        body = raw.encode("utf-8", errors="surrogatepass")
    return hr.receive(org_id, dict(event.headers or {}), body, ctx)


@app.get(
    "/orgs/<org_id>/waitlists/<transition>",
    summary="Who waits for the next cohort after a promotion (org_admin, operator)",
    tags=["people"],
)
def get_waitlist(caller: Caller, org_id: PathId, transition: Transition) -> Waitlist:
    """`new_manager`: individual contributors promoted to first-time manager, waiting for the next GROW cohort
    for new managers; `senior_leader`: kept for programmes that open from it. Oldest first."""
    return hr.get_waitlist(caller, org_id, transition, ctx)


class RosterUpload(BaseModel):
    people: list[dict[str, Any]]


@app.post("/people/roster-sync", summary="Reconcile people with the HR system's full list (org_admin)", tags=["people"])
def roster_sync(
    caller: Caller,
    checksum: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9a-f]{64}$",
            description="The dry run's checksum: apply exactly that plan. Without it, a dry run.",
        ),
    ] = None,
    as_of: Annotated[
        AwareDatetime | None, Query(description="When the list is true (the stamp of its changes); the dry run's.")
    ] = None,
) -> SyncReport:
    """JSON `{"people": [...]}` or CSV with a header row. A dry run reports the creates, updates and terminations
    (everyone active missing from the list); applying sends the same list with the dry run's `checksum` and
    `as_of`. Nothing is applied when a row is invalid (422 naming `people[i].field`)."""
    event = app.current_event
    check_import_body(event.body or "")
    content_type = (event.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    rows: list[Any]
    if content_type == "text/csv":
        text = event.decoded_body or ""
        check_csv_rows(io.StringIO(text.removeprefix("\ufeff")))
        rows = rows_from_csv(text)
    elif content_type == "application/json":
        try:
            rows = RosterUpload.model_validate_json(event.decoded_body or "").people
        except (ValidationError, ValueError) as exc:
            raise InvalidInput(f'the body must be JSON {{"people": [...]}}: {exc}', field="people") from exc
    else:
        raise InvalidInput("send application/json or text/csv", field="content-type")
    return hr.sync_roster(caller, rows, as_of, checksum, ctx)


lambda_handler = http_entry(app, logger=logger, tracer=tracer, metrics=metrics)
