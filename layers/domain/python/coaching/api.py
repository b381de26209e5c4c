"""What every HTTP handler shares: the resolver, the caller, and the one error mapping.

Handlers stay thin: parse (Powertools + pydantic), call one domain function, return.
Every domain error and validation failure becomes a 4xx here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.request import Request
from aws_lambda_powertools.logging import correlation_paths
from pydantic import BaseModel, Field

from coaching.adapters import keys
from coaching.auth import Principal, principal_from_event
from coaching.config import settings
from coaching.domain.errors import DomainError
from coaching.domain.events import Event, UnknownEvent, event_type

CORRELATION_HEADER = "X-Correlation-Id"


def error_body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or []}}


def _field_name(location: Any) -> str:
    # ("body", "people", 3, "email") -> "people[3].email"; ("query", "limit") -> "limit"
    parts = list(location) if isinstance(location, list | tuple) else [location]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] if len(parts) > 1 else parts
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def validation_fields(errors: Any) -> list[dict[str, str]]:
    fields = []
    for error in errors:
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            fields.append({"field": "body", "message": "the body is not valid JSON"})
            continue
        fields.append({"field": _field_name(error.get("loc", ())), "message": message})
    return fields


def created[T](body: T) -> Response[T]:
    """201 Created with the new object as JSON (the route's return type documents it)."""
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=body)


type JsonResponse = Response[dict[str, Any]]


def _json(status: int, body: dict[str, Any]) -> JsonResponse:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _domain_error(error: DomainError) -> JsonResponse:
    fields = [{"field": error.field, "message": error.message}] if error.field else []
    body = error_body(error.code, error.message, fields)
    if error.details:
        body["error"]["details"] = error.details
    return _json(error.status, body)


def _too_deep(error: RecursionError) -> JsonResponse:
    # json.loads gives up on absurd nesting; that is the client's body, not our bug.
    fields = [{"field": "body", "message": "the body is nested too deeply"}]
    return _json(422, error_body("validation_failed", "the body is nested too deeply", fields))


def _not_utf8(error: UnicodeDecodeError) -> JsonResponse:
    fields = [{"field": "body", "message": "the body is not valid UTF-8"}]
    return _json(422, error_body("validation_failed", "the body is not valid UTF-8", fields))


def _unsupported(error: RequestUnsupportedContentType) -> JsonResponse:
    return _json(415, error_body("unsupported_media_type", "send the body as application/json"))


def _invalid(error: RequestValidationError) -> JsonResponse:
    fields = validation_fields(error.errors())
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return _json(422, error_body("validation_failed", f"the request is invalid: {summary}", fields))


# The one error mapping: every domain error and every malformed request becomes a 4xx here.
ERROR_MAPPING: tuple[tuple[type[Exception], Callable[[Any], JsonResponse]], ...] = (
    (DomainError, _domain_error),
    (RecursionError, _too_deep),
    (UnicodeDecodeError, _not_utf8),
    (RequestUnsupportedContentType, _unsupported),
    (RequestValidationError, _invalid),
)


def rest_resolver() -> APIGatewayRestResolver:
    """A REST resolver with pydantic validation and the platform's error mapping."""
    app = APIGatewayRestResolver(enable_validation=True)
    for error, handler in ERROR_MAPPING:
        # Registered by call, not as a decorator: Powertools' decorator is untyped.
        app.exception_handler(error)(handler)
    return app


def current_caller(request: Request) -> Principal:
    return principal_from_event(request.resolved_event.raw_event)


Caller = Annotated[Principal, Depends(current_caller)]
# An id in a path (orgs, people, coaches, engagements, bookings): what ids.new_id makes, and
# nothing a key could be built from by accident (no '#', no '/').
PathId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
PageLimit = Annotated[int, Query(ge=1, le=100, description="Items per page.")]
PageCursor = Annotated[str | None, Query(max_length=2048, description="Cursor from the previous page.")]
NonEmpty = Annotated[str, Field(min_length=1)]


class Health(BaseModel):
    status: str
    service: str


def add_health_route(app: APIGatewayRestResolver, path: str, service: str) -> None:
    """Unauthenticated liveness route; it touches no dependency, so it stays cheap."""

    def health() -> Health:
        return Health(status="ok", service=service)

    app.get(path, summary=f"Health of the {service} function", tags=["health"])(health)


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


def _run_once(name: str) -> Callable[[Callable[[Event], dict[str, Any]], Event], dict[str, Any]]:
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
    consumers: dict[Callable[[Event], dict[str, Any]], Callable[..., dict[str, Any]]] = {}

    def run(consume: Callable[[Event], dict[str, Any]], event: Event) -> dict[str, Any]:
        once = consumers.get(consume)
        if once is None:

            def consume_detail(detail: dict[str, Any]) -> dict[str, Any]:
                return consume(type(event).model_validate(detail))

            once = idempotent_function(
                consume_detail,
                data_keyword_argument="detail",
                persistence_store=persistence,
                config=idempotency,
                key_prefix=f"{name}.{type(event).detail_type}",
            )
            consumers[consume] = once
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

    def run_once(consume: Callable[[Event], dict[str, Any]], event: Event) -> dict[str, Any]:
        if not runner:
            runner.append(_run_once(name))
        return runner[0](consume, event)

    @logger.inject_lambda_context(correlation_id_path="id")
    @tracer.capture_lambda_handler
    @metrics.log_metrics(capture_cold_start_metric=True)
    def background(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event_kind(event) == "eventbridge":
            return dispatch_event(name, handlers, event, run_once)
        if on_schedule is not None:
            return on_schedule(str(event["schedule"]))
        raise ValueError(f"{name} has no schedule handler")

    http = http_entry(app, logger=logger, tracer=tracer, metrics=metrics)
    return FunctionEntry(handlers, http, background, name, on_schedule is not None)
