"""The request body of every HTTP route: JSON, in UTF-8, of the JSON type the route takes, with bounded nesting,
checked before Powertools parses it. A failure raises the Powertools validation error `coaching.api`'s one error
mapping turns into a 4xx naming the field.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, get_origin

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import BaseModel

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import Route
    from aws_lambda_powertools.event_handler.types import EventHandlerInstance
    from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

JSON_MEDIA_TYPE = "application/json"
# Deeper than any body the API takes (a price book is 5 levels), shallow enough for every parser and validator.
MAX_BODY_DEPTH = 32


def _body_error(message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "body_invalid", "loc": ("body",), "msg": message}])


def _unsupported_media_type(content_type: str) -> RequestUnsupportedContentType:
    error = {"type": "unsupported_content_type", "loc": ("body",), "msg": f"unsupported content type {content_type}"}
    return RequestUnsupportedContentType("unsupported content type", errors=[error])


def _check_media_type(content_type: str) -> None:
    """JSON only: `application/json`, with no charset or UTF-8. A missing Content-Type is read as JSON."""
    if not content_type:
        return
    media_type, *params = (part.strip() for part in content_type.split(";"))
    if media_type.lower() != JSON_MEDIA_TYPE:
        # Forms and multipart (with or without a boundary) included: no route takes them.
        raise _unsupported_media_type(content_type)
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {"utf-8", "utf8"}:
            raise _unsupported_media_type(content_type)


def _decoded(event: BaseProxyEvent) -> str:
    raw = event.body or ""
    if not event.is_base64_encoded:
        return raw
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _body_error("the body is not valid base64") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _body_error("the body is not valid UTF-8") from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level > MAX_BODY_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _json_kind(annotation: Any) -> str | None:
    """The JSON type a body parameter takes: "object", "array", or None when it is not one of those."""
    origin = get_origin(annotation) or annotation
    if isinstance(origin, type):
        if issubclass(origin, (BaseModel, dict, Mapping)):
            return "object"
        if issubclass(origin, (list, tuple, set, frozenset)):
            return "array"
    return None


_JSON_TYPE_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def check_json_body(event: BaseProxyEvent, annotation: Any, *, required: bool) -> Any:
    """Check a request body before Powertools parses it; return the parsed value.

    Every way a body can be malformed becomes a 4xx naming the body: a media type other than JSON (415,
    multipart without a boundary included), no body where one is required, bytes that are not UTF-8,
    text that is not JSON (NaN and Infinity included), nesting deeper than MAX_BODY_DEPTH, and a JSON type
    the route does not take (an array for an object).
    """
    _check_media_type((event.headers.get("content-type") or "").strip())
    text = _decoded(event)
    if not text.strip():
        if required:
            raise _body_error("a JSON body is required")
        return None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise _body_error(f"the body is nested deeper than {MAX_BODY_DEPTH} levels") from exc
    except json.JSONDecodeError as exc:
        raise _body_error(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except ValueError as exc:
        raise _body_error(f"the body is not valid JSON: {exc}") from exc
    if _depth(value) > MAX_BODY_DEPTH:
        raise _body_error(f"the body is nested deeper than {MAX_BODY_DEPTH} levels")
    kind = _json_kind(annotation)
    expected = {"object": dict, "array": list}.get(kind or "")
    if expected is not None and not isinstance(value, expected):
        sent = _JSON_TYPE_NAMES.get(type(value), "a number")
        raise _body_error(f"the body must be a JSON {kind}, not {sent}")
    return value


class RequestBodyValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, after the body check above for routes that take a body."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Powertools' __init__ is unannotated

    def handler(self, app: EventHandlerInstance, next_middleware: Any) -> Response[Any]:
        route: Route = app.context["_route"]
        body_params = route.dependant.body_params
        if body_params:
            # Several body parameters are embedded in one object by name.
            field = body_params[0]
            annotation = field.type_ if len(body_params) == 1 else dict
            check_json_body(app.current_event, annotation, required=any(param.required for param in body_params))
        return super().handler(app, next_middleware)
