"""API Gateway (REST, Cognito-authorised), locally: routing, the authorizer, proxy events and responses.

Behaviour reproduced on purpose:
- unknown path → 404 `{"message": "Missing Authentication Token"}` (the real REST API answers 403 with
  that message; 404 makes typos obvious locally); known path, wrong method → 403 with the same message,
  exactly like API Gateway; a method API Gateway does not know at all (TRACE, CONNECT, PROPFIND, ...)
  → 403 with that message too, never 501;
- authorised route without a valid token → 401 `{"message": "Unauthorized"}`, handler not invoked;
- handler exception or malformed proxy response → 502 `{"message": "Internal server error"}`, with the
  traceback logged at ERROR: a 5xx is always a bug.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, MapAdapter
from werkzeug.routing import Rule as UrlRule

from coaching_local import tokens
from coaching_local.runtime import FunctionPool
from coaching_local.server import LocalRequest, LocalResponse, json_response, response
from coaching_local.template import LOCAL_ACCOUNT_ID, Route, TemplateError

log = logging.getLogger("coaching_local.apigateway")

# Methods API Gateway supports; ANY in the template expands to all of them.
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_MISSING_TOKEN = {"message": "Missing Authentication Token"}
_TEXT_TYPES = re.compile(
    r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded|graphql)|application/[\w.+-]+\+(json|xml))",
    re.IGNORECASE,
)


@dataclass
class Resource:
    """One resource path of the API and the function behind each of its methods."""

    path: str
    methods: dict[str, tuple[Route, FunctionPool]] = field(default_factory=dict)


def _url_rule(path: str) -> str:
    """API Gateway's `{name}` and greedy `{name+}` as werkzeug placeholders."""
    path = re.sub(r"\{(\w+)\+\}", r"<path:\1>", path)
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


class Router:
    """Resource paths matched with werkzeug's router: literal segments beat `{param}`, which beats `{proxy+}`."""

    def __init__(self) -> None:
        self._resources: dict[str, Resource] = {}
        self._map = Map(strict_slashes=False, merge_slashes=False)
        self._adapter: MapAdapter | None = None

    def add(self, route: Route, pool: FunctionPool) -> None:
        resource = self._resources.get(route.path)
        if resource is None:
            resource = self._resources[route.path] = Resource(route.path)
            self._map.add(UrlRule(_url_rule(route.path), endpoint=route.path))
            self._adapter = None
        if route.method in resource.methods:
            other = resource.methods[route.method][1].spec.logical_id
            raise TemplateError(f"{route.method} {route.path} is routed to both {other} and {pool.spec.logical_id}")
        resource.methods[route.method] = (route, pool)

    def match(self, raw_path: str) -> tuple[Resource, dict[str, str]] | None:
        """The resource for a still percent-encoded path, and its decoded path parameters."""
        if self._adapter is None:
            self._adapter = self._map.bind("local")
        path = (raw_path.rstrip("/") or "/") if len(raw_path) > 1 else raw_path
        try:
            endpoint, values = self._adapter.match(path)
        except HTTPException:
            return None
        return self._resources[str(endpoint)], {name: unquote(str(value)) for name, value in values.items()}

    def routes(self) -> list[tuple[str, str, Route, FunctionPool]]:
        return [
            (path, method, route, pool)
            for path, res in sorted(self._resources.items())
            for method, (route, pool) in sorted(res.methods.items())
        ]


def _cognito_date(value: Any) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(float(value)))


def claims_as_strings(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as the REST API's Cognito authorizer passes them: every value a string."""
    result: dict[str, str] = {}
    for key, value in claims.items():
        if key == "cognito:groups" and isinstance(value, list):
            result[key] = ",".join(str(v) for v in value)
        elif key in ("exp", "iat", "auth_time") and isinstance(value, (int, float)):
            result[key] = _cognito_date(value)  # API Gateway renders these as dates, not epoch numbers
        elif isinstance(value, bool):
            result[key] = str(value).lower()
        elif isinstance(value, (list, dict)):
            result[key] = json.dumps(value)
        else:
            result[key] = str(value)
    return result


def _is_text(content_type: str | None) -> bool:
    return content_type is None or bool(_TEXT_TYPES.match(content_type.strip()))


class ApiGateway:
    """The REST API of the template: routes requests to function pools as Lambda proxy integrations."""

    def __init__(self, signing_key: bytes, stage: str) -> None:
        self.signing_key = signing_key
        self.stage = stage
        self.domain = "127.0.0.1"  # host:port, set once the server is bound
        self.router = Router()

    def handle(self, request: LocalRequest) -> LocalResponse:
        request_id = str(uuid.uuid4())
        extra = [("x-amzn-RequestId", request_id)]
        if request.method not in HTTP_METHODS:
            return json_response(403, _MISSING_TOKEN, extra)
        found = self.router.match(request.raw_path)
        if found is None:
            return json_response(404, _MISSING_TOKEN, extra)
        resource, path_params = found
        target = resource.methods.get(request.method) or resource.methods.get("ANY")
        if target is None:
            return json_response(403, _MISSING_TOKEN, extra)
        route, pool = target
        claims: dict[str, Any] | None = None
        if route.requires_auth:
            token = request.header("Authorization") or ""
            # Cognito authorizers accept the raw token as well as the Bearer form.
            token = re.sub(r"^\s*bearer\s+", "", token, flags=re.IGNORECASE).strip()
            try:
                claims = tokens.verify(token, self.signing_key)
            except tokens.InvalidToken as exc:
                log.info("401 %s %s: %s", request.method, request.raw_path, exc.reason)
                return json_response(401, {"message": "Unauthorized"}, extra)
        event = self.build_proxy_event(request, resource.path, path_params, claims, request_id)
        started = time.monotonic()
        try:
            result = pool.invoke(event)
        except Exception:
            log.exception("502 %s %s: %s raised", request.method, request.raw_path, pool.spec.logical_id)
            return json_response(502, {"message": "Internal server error"}, extra)
        answer = self.proxy_response(result, pool.spec.logical_id, extra)
        log.info(
            "%s %s → %s %d (%.0f ms)",
            request.method,
            request.raw_path,
            pool.spec.logical_id,
            answer.status_code,
            (time.monotonic() - started) * 1000,
        )
        return answer

    def build_proxy_event(
        self,
        request: LocalRequest,
        resource: str,
        path_params: Mapping[str, str],
        claims: Mapping[str, Any] | None,
        request_id: str,
    ) -> dict[str, Any]:
        """A REST API (v1) Lambda proxy integration event."""
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.header_items:
            headers[name] = value  # API Gateway keeps the last value of a repeated header
            multi_headers.setdefault(name, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(request.raw_query, keep_blank_values=True):
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        body: str | None = None
        is_base64 = False
        raw_body = request.body
        if raw_body:
            if _is_text(request.header("Content-Type")):
                try:
                    body = raw_body.decode("utf-8")
                except UnicodeDecodeError:
                    body, is_base64 = base64.b64encode(raw_body).decode("ascii"), True
            else:
                body, is_base64 = base64.b64encode(raw_body).decode("ascii"), True
        now = datetime.now(UTC)
        request_context: dict[str, Any] = {
            "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, resource).hex[:6],
            "resourcePath": resource,
            "httpMethod": request.method,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{self.stage}{request.raw_path}",
            "accountId": LOCAL_ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": self.stage,
            "domainPrefix": "local",
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.client_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.header("User-Agent"),
                "user": None,
            },
            "domainName": request.header("Host") or self.domain,
            "apiId": "local",
        }
        if claims is not None:
            request_context["authorizer"] = {"claims": claims_as_strings(claims)}
        return {
            "resource": resource,
            "path": request.raw_path,  # REST APIs pass the path still percent-encoded
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": dict(path_params) or None,
            "stageVariables": None,
            "requestContext": request_context,
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def proxy_response(self, result: Any, function: str, extra: list[tuple[str, str]]) -> LocalResponse:
        status = result.get("statusCode") if isinstance(result, dict) else None
        if not isinstance(status, int) or isinstance(status, bool):
            log.error(
                "502: %s returned a malformed Lambda proxy response (no integer statusCode): %.500r", function, result
            )
            return json_response(502, {"message": "Internal server error"}, extra)
        body = result.get("body")
        if body is None:
            raw = b""
        elif result.get("isBase64Encoded"):
            raw = base64.b64decode(body)
        else:
            raw = str(body).encode("utf-8")
        headers: list[tuple[str, str]] = []
        multi = result.get("multiValueHeaders") or {}
        single = result.get("headers") or {}
        for name, values in multi.items():
            headers.extend((name, str(v)) for v in values)
        multi_lower = {name.lower() for name in multi}
        # API Gateway merges both; a name in multiValueHeaders wins over the same single header.
        headers.extend((name, str(v)) for name, v in single.items() if name.lower() not in multi_lower)
        headers = [(n, v) for n, v in headers if n.lower() not in ("content-length", "transfer-encoding", "connection")]
        return response(status, raw, headers + extra)
