"""The Lambda entry points: an API function's (`http_entry`) and that of a function the API, the bus and
schedules all invoke (`function_entry`), which parses each bus event into its catalogue model and runs its
consumer once per event id. Handlers import them from `coaching.api`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths

from coaching.adapters import keys
from coaching.config import settings
from coaching.domain.events import Event, UnknownEvent, event_type

CORRELATION_HEADER = "X-Correlation-Id"


def event_kind(event: Mapping[str, Any]) -> str:
    """Which of the three callers invoked the function: the API, the bus, or a schedule."""
    if "httpMethod" in event and "requestContext" in event:
        return "http"
    if "detail-type" in event and "source" in event:
        return "eventbridge"
    if "schedule" in event:
        return "schedule"
    return "unknown"


def http_entry(
    app: APIGatewayRestResolver, *, logger: Logger, tracer: Tracer, metrics: Metrics
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for an API function, with Powertools' observability."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response = app.resolve(event, context)
        correlation_id = logger.get_correlation_id()
        if correlation_id:
            response.setdefault("headers", {})[CORRELATION_HEADER] = correlation_id
            multi = response.get("multiValueHeaders")
            if isinstance(multi, dict):
                multi[CORRELATION_HEADER] = [correlation_id]
        return response

    return handler


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
EventHandlers = Mapping[type[Event], Callable[[Any], dict[str, Any]]]
# How long a consumer remembers an event id: longer than the bus's retries (24 h) and the
# stream's retention (24 h), so a redelivered event is always recognised.
EVENT_MEMORY_SECONDS = 7 * 24 * 3600


def _run_once(name: str) -> Callable[[Callable[[Event], dict[str, Any]], Event, Any], dict[str, Any]]:
    """Run a consumer at most once per event id (Powertools Idempotency on the main table).

    Built on first use: functions that only serve the API never import it. The records live
    under `IDEMPOTENCY#<function>` and expire with the table's TTL attribute.
    """
    import boto3
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    config = settings()
    persistence = DynamoDBPersistenceLayer(
        table_name=config.main_table,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=keys.idempotency_pk(name),
        expiry_attr="expires_at",
        boto3_client=boto3.client("dynamodb", region_name=config.region, endpoint_url=config.dynamodb_endpoint),
    )
    idempotency = IdempotencyConfig(event_key_jmespath="event_id", expires_after_seconds=EVENT_MEMORY_SECONDS)
    # One wrapper per (handler, event type): a handler may serve several types, and each must be parsed
    # as its own model under its own key prefix.
    consumers: dict[tuple[Callable[[Event], dict[str, Any]], type[Event]], Callable[..., dict[str, Any]]] = {}

    def run(consume: Callable[[Event], dict[str, Any]], event: Event, context: Any) -> dict[str, Any]:
        if context is not None:
            # Lets an in-progress record expire with the invocation, so a timed-out run is retried.
            idempotency.register_lambda_context(context)
        model = type(event)
        once = consumers.get((consume, model))
        if once is None:

            def consume_detail(detail: dict[str, Any]) -> dict[str, Any]:
                return consume(model.model_validate(detail))

            once = idempotent_function(
                consume_detail,
                data_keyword_argument="detail",
                persistence_store=persistence,
                config=idempotency,
                key_prefix=f"{name}.{model.detail_type}",
            )
            consumers[(consume, model)] = once
        return once(detail=event.model_dump(mode="json"))

    return run


def dispatch_event(
    name: str, handlers: EventHandlers, event: Mapping[str, Any], run_once: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """Parse a bus delivery into its catalogue model and hand it to its consumer, once per event id.

    Anything the function does not consume (a type outside the catalogue, a source that does
    not own the type, a type this function has no handler for, a detail that fails its model)
    raises, so the bus retries and then dead-letters it: an unknown event is never guessed at.
    """
    model = event_type(str(event.get("detail-type")), str(event.get("source")))
    consume = handlers.get(model)
    if consume is None:
        raise UnknownEvent(f"{name} does not consume {model.detail_type}")
    parsed = model.model_validate(event.get("detail") or {})
    return run_once(consume, parsed)


class FunctionEntry:
    """The Lambda entry point of a function the API, the bus and schedules all invoke.

    `consumes` is the function's dispatch table, readable so that tests can hold it against
    the catalogue and the template's rules.
    """

    def __init__(self, consumes: EventHandlers, http: Handler, background: Handler, name: str, scheduled: bool) -> None:
        self.consumes = dict(consumes)
        self._http = http
        self._background = background
        self._name = name
        self._scheduled = scheduled

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        kind = event_kind(event)
        if kind == "http":
            return self._http(event, context)
        if (kind == "eventbridge" and self.consumes) or (kind == "schedule" and self._scheduled):
            return self._background(event, context)
        # Raising makes the async invoker retry and then dead-letter: an unknown event is a bug.
        raise ValueError(f"{self._name} cannot handle this event: keys {sorted(event)[:10]}")


def function_entry(
    app: APIGatewayRestResolver,
    *,
    name: str,
    logger: Logger,
    tracer: Tracer,
    metrics: Metrics,
    on_events: EventHandlers | None = None,
    on_schedule: Callable[[str], dict[str, Any]] | None = None,
) -> FunctionEntry:
    """The entry point of a function the API, the bus and schedules all invoke.

    `on_events` maps each catalogue event this function consumes to its handler, which gets
    the parsed model. Each caller gets the right correlation id: the API request id, or the
    event's id.
    """
    handlers = dict(on_events or {})
    runner: list[Callable[..., dict[str, Any]]] = []

    def run_once(consume: Callable[[Event], dict[str, Any]], event: Event, context: Any) -> dict[str, Any]:
        if not runner:
            runner.append(_run_once(name))
        return runner[0](consume, event, context)

    @logger.inject_lambda_context(correlation_id_path="id")
    @tracer.capture_lambda_handler
    @metrics.log_metrics(capture_cold_start_metric=True)
    def background(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event_kind(event) == "eventbridge":
            return dispatch_event(name, handlers, event, lambda consume, parsed: run_once(consume, parsed, context))
        if on_schedule is not None:
            return on_schedule(str(event["schedule"]))
        raise ValueError(f"{name} has no schedule handler")

    http = http_entry(app, logger=logger, tracer=tracer, metrics=metrics)
    return FunctionEntry(handlers, http, background, name, on_schedule is not None)
