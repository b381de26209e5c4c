"""What every HTTP handler shares: the resolver, the caller, and the one error mapping.

Handlers stay thin: parse (Powertools + pydantic), call one domain function, return.
Every domain error and validation failure becomes a 4xx here, in one place: a body is checked before
Powertools parses it (JSON only, UTF-8, bounded nesting, the JSON type the route takes: `coaching.api_body`),
and the resolver documents, for every operation, each error it can answer with the one `Error` schema. The
Lambda entry points are `coaching.api_entry`; handlers import all of it from here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.request import Request
from pydantic import BaseModel, ConfigDict, Field

# The body check and the entry points have their own modules; handlers import everything from here.
from coaching.api_body import JSON_MEDIA_TYPE, MAX_BODY_DEPTH, RequestBodyValidation
from coaching.api_entry import FunctionEntry, function_entry, http_entry
from coaching.auth import Principal, principal_from_event
from coaching.domain.errors import DomainError

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import Route
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse


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


def _not_utf8(error: UnicodeDecodeError) -> JsonResponse:
    fields = [{"field": "body", "message": "the body is not valid UTF-8"}]
    return _json(422, error_body("validation_failed", "the body is not valid UTF-8", fields))


def _unsupported(error: RequestUnsupportedContentType) -> JsonResponse:
    message = f"send the body as {JSON_MEDIA_TYPE} in UTF-8"
    fields = [{"field": "Content-Type", "message": message}]
    return _json(415, error_body("unsupported_media_type", message, fields))


def _invalid(error: RequestValidationError) -> JsonResponse:
    fields = validation_fields(error.errors())
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return _json(422, error_body("validation_failed", f"the request is invalid: {summary}", fields))


# The one error mapping: every domain error and every malformed request becomes a 4xx here.
ERROR_MAPPING: tuple[tuple[type[Exception], Callable[[Any], JsonResponse]], ...] = (
    (DomainError, _domain_error),
    (UnicodeDecodeError, _not_utf8),  # a route that reads its own body (the people import) and gets no UTF-8
    (RequestUnsupportedContentType, _unsupported),
    (RequestValidationError, _invalid),
)

# --- The contract: every operation documents each error it can answer, all with the one error schema ---


class FieldError(BaseModel):
    """One input at fault."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    field: str = Field(
        description="The input at fault: a body path such as `people[3].email`, a path or query parameter, "
        "`body` for the body as a whole, or `Content-Type`."
    )
    message: str = Field(description="What is wrong with it.")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    code: str = Field(
        description="Stable and machine-readable: `validation_failed` (malformed request), `unsupported_media_type`, "
        "`unauthorized`, `forbidden`, `not_found`, `conflict`, `invalid` (a business rule), `policy_refused`, "
        "`no_eligible_coach`."
    )
    message: str = Field(description="What went wrong, for people.")
    fields: list[FieldError] = Field(description="Each input at fault; empty when the request as a whole is refused.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Facts some errors add, such as the rule that refused a booking."
    )


class Error(BaseModel):
    """The body of every error the platform's handlers answer."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    error: ErrorDetail


class GatewayError(BaseModel):
    """What API Gateway answers itself, before any handler runs: `Unauthorized` for a missing or invalid token."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    message: str


ERROR_MODELS: tuple[type[BaseModel], ...] = (Error, GatewayError)
_SCHEMA_REF = "#/components/schemas/{model}"
ERROR_DESCRIPTIONS: dict[int, str] = {
    401: "No valid bearer token (API Gateway answers with `GatewayError`), or a token that names no person.",
    403: "The caller's roles or organisation do not allow this.",
    404: "An object the request names does not exist, or is not the caller's to see.",
    409: "The request collides with the object's current state or another request (e.g. a slot just taken); "
    "re-read and retry.",
    415: f"The body is not `{JSON_MEDIA_TYPE}` in UTF-8.",
    422: "The request is malformed (not JSON, a wrong type, a value out of range) or breaks a business rule; "
    "`fields` names each input at fault.",
}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes that serve a file answer its media type (deterministic here, unlike the `mimetypes` module).
FILE_MEDIA_TYPES = {".ics": "text/calendar", ".csv": "text/csv"}
# Each operation group (tag) and what it holds.
OPERATION_GROUPS: dict[str, str] = {
    "health": "Liveness of each function; unauthenticated, touches no dependency.",
    "orgs": "Organisations: settings, reporting floor, matching settings, competency framework.",
    "people": "People of an organisation, one at a time or by bulk import (JSON or CSV).",
    "coaches": "The global coach network: profiles, availability and vetting (operators).",
    "matching": "Coach matches with reasons, choosing a coach, engagements, changes of coach, cohort launches.",
    "booking": "Open slots, bookings, cancels and reschedules, coach calendars and calendar invites.",
    "sessions": "Session outcomes: completed or no-show, confirmations, disputes and their resolution, credits.",
    "billing": "Price books, month-to-date usage, invoices (JSON and CSV) and reconciliation.",
    "programmes": "The programme catalogue, GROW cohorts and group sessions, TOGETHER workshops, the timeline.",
    "development": "Session feedback, development goals and check-ins, role profiles, 360 assessments (raters "
    "answer by single-use link, without an account) and their released results for the person and their coach.",
    "reports": "Aggregate reports for leaders, org admins and finance (every figure at least the org's minimum "
    "group, small groups and their complements suppressed), report settings, monthly artefacts by short-lived "
    "link, and the operators' cross-org coaching topics.",
}


def error_schemas() -> dict[str, dict[str, Any]]:
    """The component schemas of the error bodies (Error and the schemas it uses, GatewayError)."""
    schemas: dict[str, dict[str, Any]] = {}
    for model in ERROR_MODELS:
        schema = model.model_json_schema(ref_template=_SCHEMA_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def error_response(status: int) -> OpenAPIResponse:
    """The documented response for an error status, with the error schema (401: or the gateway's)."""
    error = {"$ref": _SCHEMA_REF.format(model=Error.__name__)}
    schema = {"oneOf": [error, {"$ref": _SCHEMA_REF.format(model=GatewayError.__name__)}]} if status == 401 else error
    return {"description": ERROR_DESCRIPTIONS[status], "content": {JSON_MEDIA_TYPE: {"schema": schema}}}


def _takes_caller(route: Route) -> bool:
    return any(dependency.depends.dependency is current_caller for dependency in route.dependant.dependencies)


def _success_status(route: Route) -> int:
    """A route's own status_code, else 201 for a handler that answers with `created()`, else 200."""
    if route.status_code != 200:
        return route.status_code
    if getattr(route.func, "__globals__", {}).get("created") is created and _reads_global(route.func, "created"):
        return 201
    return 200


def _reads_global(func: Callable[..., Any], name: str) -> bool:
    """Whether a function's own code reads the global `name` (an attribute of that name does not count)."""
    import dis

    return any(op.opname == "LOAD_GLOBAL" and op.argval == name for op in dis.get_instructions(func))


def documented_responses(route: Route) -> dict[int, OpenAPIResponse]:
    """Every response a route can give, from its method, path and signature.

    Authenticated routes (they take the `Caller`) answer 401 and 403, and 422 for a business rule; 404 when the
    path or the body names an object; 409 when they write. A route with parameters or a body answers 422 for a
    malformed one, and one with a body 415 for a media type other than JSON. Health routes take nothing and
    answer only 200. The success response is the route's status (201 for `created()`), in JSON, or the media
    type of the file the path names (`FILE_MEDIA_TYPES`).
    """
    dependant = route.dependant
    status = _success_status(route)
    success: OpenAPIResponse = {"description": "Created" if status == 201 else "Successful Response"}
    suffix = route.path[route.path.rfind(".") :] if "." in route.path.rsplit("/", 1)[-1] else ""
    if suffix in FILE_MEDIA_TYPES:
        success["content"] = {FILE_MEDIA_TYPES[suffix]: {"schema": {"type": "string"}}}
    names_objects = bool(dependant.path_params or dependant.body_params)
    errors: set[int] = set()
    if _takes_caller(route):
        errors |= {401, 403, 422}
        if names_objects:
            errors.add(404)
        if route.method in WRITE_METHODS:
            errors.add(409)
    if dependant.path_params or dependant.query_params or dependant.body_params:
        errors.add(422)
    if dependant.body_params:
        errors.add(415)
    return {status: success, **{code: error_response(code) for code in sorted(errors)}}


# Powertools' own validation error schemas: unused once every 422 documents the platform's Error.
_POWERTOOLS_ERROR_SCHEMAS = ("HTTPValidationError", "ResponseValidationError", "ValidationError")


class CoachingResolver(APIGatewayRestResolver):
    """The REST resolver every function uses: pydantic validation, the body check, the documented errors."""

    def __init__(self) -> None:
        super().__init__(enable_validation=True)
        # The request validation middleware Powertools would create, with the body check in front of it.
        self._request_validation_middleware = RequestBodyValidation()
        self._declared_responses: dict[int, dict[int, OpenAPIResponse] | None] = {}

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> OpenAPI:
        """Powertools' document, with each operation's errors, the error schemas and the tags described."""
        from aws_lambda_powertools.event_handler.openapi.models import OpenAPI, Tag

        routes = [*self._static_routes, *self._dynamic_routes]
        for route in routes:
            # Responses a route declares itself win over the generic ones.
            declared = self._declared_responses.setdefault(id(route), route.responses)
            route.responses = {**documented_responses(route), **(declared or {})}
        if kwargs.get("tags") is None:
            used = sorted({tag for route in routes if route.include_in_schema for tag in route.tags})
            undescribed = [tag for tag in used if tag not in OPERATION_GROUPS]
            if undescribed:
                raise ValueError(f"tags without a description in coaching.api.OPERATION_GROUPS: {undescribed}")
            kwargs["tags"] = [Tag(name=tag, description=OPERATION_GROUPS[tag]) for tag in used]
        document = super().get_openapi_schema(*args, **kwargs)
        data = json.loads(document.model_dump_json(by_alias=True, exclude_none=True))
        for route in routes:
            # Powertools adds a 422 to every operation; one that takes no input cannot give it.
            operation = data.get("paths", {}).get(route.openapi_path, {}).get(route.method.lower())
            if operation is not None:
                documented = {str(status) for status in route.responses or {}}
                operation["responses"] = {k: v for k, v in operation["responses"].items() if k in documented}
        schemas = data.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in error_schemas().items():
            if schemas.setdefault(name, schema) != schema:
                raise ValueError(f"a model named {name} clashes with the error schema of that name")
        for name in _POWERTOOLS_ERROR_SCHEMAS:
            unused = schemas.pop(name, None)
            if unused is not None and f'"{_SCHEMA_REF.format(model=name)}"' in json.dumps(data):
                schemas[name] = unused
        return OpenAPI.model_validate(data)


def rest_resolver() -> CoachingResolver:
    """A REST resolver with pydantic validation, the body check and the platform's error mapping."""
    app = CoachingResolver()
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


__all__ = [
    "ERROR_MAPPING",
    "JSON_MEDIA_TYPE",
    "MAX_BODY_DEPTH",
    "Caller",
    "FunctionEntry",
    "NonEmpty",
    "PageCursor",
    "PageLimit",
    "PathId",
    "add_health_route",
    "created",
    "documented_responses",
    "error_body",
    "error_response",
    "error_schemas",
    "function_entry",
    "http_entry",
    "rest_resolver",
    "validation_fields",
]
