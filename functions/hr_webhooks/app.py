"""HR webhooks: hires, promotions, manager changes and leavers pushed by HR systems (Standard Webhooks).

Unauthenticated at API Gateway: every delivery is verified by its signature with the org's secret
(`HR_WEBHOOK_SECRETS` locally, Secrets Manager `HR_WEBHOOK_SECRET_PREFIX<org id>` deployed).
"""

from __future__ import annotations

import base64
import binascii

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from coaching.adapters.hr_store import HrWebhookStore, secrets_from_environment
from coaching.api import JSON_MEDIA_TYPE, PathId, add_health_route, http_entry, rest_resolver
from coaching.domain.common import utc_now
from coaching.domain.errors import DomainError
from coaching.domain.hr import WebhookResult
from coaching.services import hr
from coaching.services.hr import HrContext

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


lambda_handler = http_entry(app, logger=logger, tracer=tracer, metrics=metrics)
