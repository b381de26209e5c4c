"""Matching: contextual coach matching.

Today it keeps the compact coach roster snapshot current, on coach events from the bus and
on a schedule; the match routes arrive with the matching issue.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.dynamo import CoachRepository
from coaching.adapters.roster_store import RosterStore
from coaching.api import add_health_route, event_kind, rest_resolver
from coaching.services.roster import rebuild_roster

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/matching/health", service="matching")
coaches = CoachRepository()
roster_store = RosterStore()


@tracer.capture_method
def refresh_roster(trigger: str) -> dict[str, Any]:
    result = rebuild_roster(coaches, roster_store)
    metrics.add_metric(name="RosterRebuilt", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RosterCoaches", unit=MetricUnit.Count, value=result.coach_count)
    logger.info("roster rebuilt", extra={"trigger": trigger, "version": result.version, "coaches": result.coach_count})
    return {"roster_version": result.version, "coach_count": result.coach_count}


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId || id")
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = event_kind(event)
    if kind == "http":
        return app.resolve(event, context)
    if kind == "eventbridge":
        return refresh_roster(trigger=str(event["detail-type"]))
    if kind == "schedule":
        return refresh_roster(trigger=str(event["schedule"]))
    # Raising makes the async invoker retry and then dead-letter: an unknown event is a bug.
    raise ValueError(f"matching cannot handle this event: keys {sorted(event)[:10]}")
