"""Local API Gateway (REST, Cognito-authorised), EventBridge and EventBridge Scheduler in one process.

Everything listens on one ThreadingHTTPServer:
- template routes → the real handlers, with genuine REST (v1) proxy events;
- `POST /` with `X-Amz-Target: AWSEvents.PutEvents` → the local event bus, so the handlers' own
  boto3 events client works with AWS_ENDPOINT_URL_EVENTBRIDGE (the name botocore reads) pointing here;
- `/_local/...` → inspection and control (schedules, deliveries, dead letters, health);
- `/openapi.json` and `/docs` → the merged OpenAPI document and a Swagger UI page.

API Gateway behaviour reproduced on purpose:
- unknown path → 404 `{"message": "Missing Authentication Token"}` (the real REST API answers 403 with
  that message; 404 makes typos obvious locally); known path, wrong method → 403 with the same message,
  exactly like API Gateway;
- authorised route without a valid token → 401 `{"message": "Unauthorized"}`, handler not invoked;
- handler exception or malformed proxy response → 502 `{"message": "Internal server error"}`, with the
  traceback logged at ERROR: a 5xx is always a bug.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from coaching_local import event_patterns, schedules, tokens
from coaching_local.paths import default_template
from coaching_local.template import (
    LOCAL_ACCOUNT_ID,
    LOCAL_REGION,
    FunctionSpec,
    LocalNames,
    Route,
    Rule,
    Schedule,
    TemplateError,
    event_buses,
    function_specs,
    load_template,
)

log = logging.getLogger("coaching_local.gateway")

MAX_CONTAINERS = 16
DELIVERY_LOG_SIZE = 1000
OPENAPI_TITLE = "coaching-platform API"
SWAGGER_UI_VERSION = "5.17.14"
SECURITY_SCHEME = "bearerAuth"
# Methods API Gateway supports; ANY in the template expands to all of them.
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_TEXT_TYPES = re.compile(
    r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded|graphql)|application/[\w.+-]+\+(json|xml))",
    re.IGNORECASE,
)
# One lock for every handler import: os.environ and sys.path are process-wide.
_IMPORT_LOCK = threading.RLock()


class LocalStackError(RuntimeError):
    """The local stack cannot start: broken template, missing handler, import failure."""


# --------------------------------------------------------------------------- Lambda emulation


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools and handlers read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_function_module(spec: FunctionSpec, module_name: str, env: Mapping[str, str] | None = None) -> ModuleType:
    """Import the function's handler file as its own module object (a fresh resolver per call).

    `env` is applied only while the module executes, then restored; the code folder is on sys.path
    during the import (as /var/task is in Lambda), and sibling modules it pulls in are dropped from
    sys.modules afterwards so another function's same-named helper modules cannot shadow them.
    """
    path = spec.handler_file
    if not path.is_file():
        raise LocalStackError(f"{spec.logical_id}: handler file {path} does not exist")
    with _IMPORT_LOCK:
        saved = {key: os.environ.get(key) for key in (env or {})}
        os.environ.update(env or {})
        before = set(sys.modules)
        code_dir = str(spec.code_dir)
        sys.path.insert(0, code_dir)
        try:
            import_spec = importlib.util.spec_from_file_location(module_name, path)
            if import_spec is None or import_spec.loader is None:
                raise LocalStackError(f"{spec.logical_id}: cannot import {path}")
            module = importlib.util.module_from_spec(import_spec)
            # Registered so pydantic and dataclasses can resolve the module by name.
            sys.modules[module_name] = module
            try:
                import_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(code_dir)
            for name in set(sys.modules) - before - {module_name}:
                file = getattr(sys.modules.get(name), "__file__", None)
                if file and Path(file).resolve().is_relative_to(spec.code_dir):
                    del sys.modules[name]
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return module


class _PerThread:
    """A resolver attribute whose value is per thread (see make_powertools_thread_safe)."""

    def __init__(self, state: threading.local, name: str) -> None:
        self.state = state
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return getattr(self.state, self.name, None)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(self.state, self.name, value)


def make_powertools_thread_safe() -> None:
    """Give every thread its own `app.current_event` and `app.lambda_context`.

    Powertools keeps both as class attributes of BaseRouter (one value per process), which is right
    in Lambda, where a process serves one invocation at a time, but makes concurrent invocations in
    this one process read each other's requests. A per-thread value restores Lambda's isolation.
    """
    try:
        from aws_lambda_powertools.event_handler import api_gateway
    except ImportError:  # handlers that do not use Powertools need nothing
        return
    resolver = api_gateway.ApiGatewayResolver
    if getattr(resolver, "_coaching_local_thread_safe", False):
        return
    state = threading.local()
    original_resolve = resolver.resolve
    original_resolve_async = resolver.resolve_async

    def _remember(self: Any, event: Any, context: Any) -> None:
        raw = getattr(event, "raw_event", event)
        state.current_event = self._to_proxy_event(raw)
        state.lambda_context = context

    def resolve(self: Any, event: Any, context: Any) -> dict[str, Any]:
        _remember(self, event, context)
        return original_resolve(self, event, context)

    async def resolve_async(self: Any, event: Any, context: Any) -> dict[str, Any]:
        _remember(self, event, context)
        return await original_resolve_async(self, event, context)

    resolver.current_event = _PerThread(state, "current_event")  # type: ignore[assignment]
    resolver.lambda_context = _PerThread(state, "lambda_context")  # type: ignore[assignment]
    resolver.resolve = resolve  # type: ignore[method-assign]
    resolver.resolve_async = resolve_async  # type: ignore[method-assign]
    resolver._coaching_local_thread_safe = True  # type: ignore[attr-defined]


class _Container:
    """One warm execution environment: its own module object, one invocation at a time."""

    def __init__(self, number: int, module: ModuleType, handler: Callable[[Any, Any], Any]) -> None:
        self.number = number
        self.module = module
        self.handler = handler
        self.invocations = 0


class FunctionPool:
    """The containers of one function; grows on demand up to `max_containers`, like Lambda scaling."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        import_env: Mapping[str, str],
        prefix: str,
        region: str = LOCAL_REGION,
        max_containers: int = MAX_CONTAINERS,
    ) -> None:
        self.spec = spec
        self.import_env = dict(import_env)
        self.max_containers = max_containers
        self.function_name = f"{prefix}-{spec.logical_id}"
        self.arn = f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{self.function_name}"
        self._idle: list[_Container] = []
        self._count = 0
        self._serial = 0
        self._cond = threading.Condition()

    @property
    def size(self) -> int:
        return self._count

    def _new_container(self) -> _Container:
        with self._cond:
            self._serial += 1
            number = self._serial
        started = time.monotonic()
        module = load_function_module(self.spec, f"_coaching_fn_{self.spec.logical_id}_{number}", self.import_env)
        handler = getattr(module, self.spec.handler_attr, None)
        if not callable(handler):
            raise LocalStackError(
                f"{self.spec.logical_id}: {self.spec.handler_file} defines no callable {self.spec.handler_attr!r}"
            )
        log.info(
            "%s: cold start of container %d (%.0f ms)",
            self.spec.logical_id,
            number,
            (time.monotonic() - started) * 1000,
        )
        return _Container(number, module, handler)

    def preload(self) -> None:
        """Start one container now, so import errors surface at startup rather than on first request."""
        with self._cond:
            if self._count:
                return
            self._count += 1
        try:
            container = self._new_container()
        except BaseException:
            with self._cond:
                self._count -= 1
            raise
        self._release(container)

    def _acquire(self) -> _Container:
        with self._cond:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._count < self.max_containers:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return self._new_container()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, container: _Container) -> None:
        with self._cond:
            self._idle.append(container)  # LIFO: the warmest container serves next
            self._cond.notify()

    def invoke(self, event: Any) -> Any:
        container = self._acquire()
        request_id = str(uuid.uuid4())
        context = LambdaContext(
            function_name=self.function_name,
            memory_limit_in_mb=self.spec.memory_size,
            invoked_function_arn=self.arn,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{self.function_name}",
            log_stream_name=f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{container.number:032x}",
            timeout_seconds=self.spec.timeout,
        )
        started = time.monotonic()
        try:
            container.invocations += 1
            return container.handler(event, context)
        finally:
            elapsed = time.monotonic() - started
            if elapsed > self.spec.timeout:
                log.error(
                    "%s: invocation %s ran %.1fs, over its %ss Timeout; Lambda would have killed it",
                    self.spec.logical_id,
                    request_id,
                    elapsed,
                    self.spec.timeout,
                )
            self._release(container)


# --------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class _Resource:
    path: str
    regex: re.Pattern[str]
    rank: tuple[int, ...]  # per segment: 0 literal, 1 {param}, 2 {proxy+}; smaller is more specific
    methods: dict[str, tuple[Route, FunctionPool]]


def _compile_path(path: str) -> tuple[re.Pattern[str], tuple[int, ...]]:
    parts: list[str] = []
    rank: list[int] = []
    for segment in path.strip("/").split("/") if path.strip("/") else []:
        greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
        param = re.fullmatch(r"\{(\w+)\}", segment)
        if greedy:
            parts.append(f"(?P<{greedy.group(1)}>.+)")
            rank.append(2)
        elif param:
            parts.append(f"(?P<{param.group(1)}>[^/]+)")
            rank.append(1)
        else:
            parts.append(re.escape(segment))
            rank.append(0)
    return re.compile("^/" + "/".join(parts) + "$"), tuple(rank)


class Router:
    def __init__(self) -> None:
        self._resources: dict[str, _Resource] = {}

    def add(self, route: Route, pool: FunctionPool) -> None:
        resource = self._resources.get(route.path)
        if resource is None:
            regex, rank = _compile_path(route.path)
            resource = _Resource(route.path, regex, rank, {})
            self._resources[route.path] = resource
        if route.method in resource.methods:
            other = resource.methods[route.method][1].spec.logical_id
            raise TemplateError(f"{route.method} {route.path} is routed to both {other} and {pool.spec.logical_id}")
        resource.methods[route.method] = (route, pool)

    def match(self, path: str) -> tuple[_Resource, dict[str, str]] | None:
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        found = [(r, m) for r in self._resources.values() if (m := r.regex.match(path))]
        if not found:
            return None
        # API Gateway prefers literal segments over parameters, and parameters over greedy ones.
        resource, match = min(found, key=lambda item: item[0].rank)
        return resource, {name: unquote(value) for name, value in match.groupdict().items()}

    def routes(self) -> list[tuple[str, str, Route, FunctionPool]]:
        return [
            (path, method, route, pool)
            for path, res in sorted(self._resources.items())
            for method, (route, pool) in sorted(res.methods.items())
        ]


# --------------------------------------------------------------------------- helpers


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, default=str).encode("utf-8")


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


@dataclass
class _Request:
    method: str
    raw_path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    client_ip: str

    def header(self, name: str) -> str | None:
        value = None
        for key, item in self.headers:
            if key.lower() == name.lower():
                value = item
        return value


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, payload: Any, extra: Iterable[tuple[str, str]] = ()) -> _Response:
        return cls(status, _json_bytes(payload), [("Content-Type", "application/json"), *extra])


@dataclass
class _Target:
    """Something the local bus or scheduler delivers to: a rule or a schedule of one function."""

    kind: str  # "rule" or "schedule"
    name: str
    pool: FunctionPool
    max_retries: int
    max_event_age_seconds: int


@dataclass
class _ScheduleState:
    schedule: Schedule
    pool: FunctionPool
    anchor: datetime
    next_fire: datetime | None

    @property
    def qualified_name(self) -> str:
        return f"{self.pool.spec.logical_id}.{self.schedule.event_name}"


def _is_text(content_type: str | None) -> bool:
    return content_type is None or bool(_TEXT_TYPES.match(content_type.strip()))


# --------------------------------------------------------------------------- the gateway


class LocalGateway:
    """API Gateway + EventBridge + Scheduler for one template, in this process."""

    def __init__(
        self,
        template_path: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        prefix: str = "local",
        parameters: Mapping[str, str] | None = None,
        region: str = LOCAL_REGION,
        dynamodb_endpoint: str | None = None,
        env: Mapping[str, str] | None = None,
        signing_key: bytes | None = None,
        max_containers: int = MAX_CONTAINERS,
        retry_base_delay: float = 0.2,
        run_scheduler: bool = True,
        preload: bool = True,
        stage: str | None = None,
    ) -> None:
        self.template_path = Path(template_path) if template_path else default_template()
        self.template = load_template(self.template_path)
        self.host = host
        self.requested_port = port
        self.prefix = prefix
        self.region = region
        self.stage = stage or prefix
        self.dynamodb_endpoint = dynamodb_endpoint
        self.extra_env = dict(env or {})
        self.signing_key = signing_key if signing_key is not None else tokens.signing_key()
        self.max_containers = max_containers
        self.retry_base_delay = retry_base_delay
        self.run_scheduler = run_scheduler
        self.preload = preload
        self.specs = function_specs(self.template, prefix=prefix, parameters=parameters, region=region)
        self.buses = set(
            event_buses(
                self.template, LocalNames(prefix=prefix, parameters=dict(parameters or {}), region=region)
            ).values()
        )
        self.pools: dict[str, FunctionPool] = {}
        self.router = Router()
        self.rules: list[tuple[Rule, _Target]] = []
        self.schedule_states: list[_ScheduleState] = []
        self._deliveries: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG_SIZE)
        self._dead_letters: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG_SIZE)
        self._log_lock = threading.Lock()
        self._delivery_serial = 0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._executor: ThreadPoolExecutor | None = None
        self._saved_env: dict[str, str | None] = {}
        self._openapi: dict[str, Any] | None = None
        self._openapi_lock = threading.Lock()
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        if self._server is None:
            return self.requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _shared_environment(self) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        """(process-wide env, per-function env applied only while each function imports)."""
        keys = {key for spec in self.specs for key in spec.environment}
        shared: dict[str, str] = {}
        per_function: dict[str, dict[str, str]] = {spec.logical_id: {} for spec in self.specs}
        for key in sorted(keys):
            values = {spec.environment.get(key) for spec in self.specs}
            if len(values) == 1 and None not in values:
                shared[key] = values.pop()  # type: ignore[assignment]
            else:
                for spec in self.specs:
                    if key in spec.environment:
                        per_function[spec.logical_id][key] = spec.environment[key]
                if key != "POWERTOOLS_SERVICE_NAME":
                    log.warning(
                        "%s differs between functions; each sees its own value only at import time, "
                        "because os.environ is process-wide",
                        key,
                    )
        shared.update(
            {
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                # Dummy credentials, always: nothing the local stack runs may ever reach a real account.
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "POWERTOOLS_TRACE_DISABLED": "true",
                # botocore derives the variable from the service id "EventBridge"; *_EVENTS is what the
                # project's own code and docs name, so both point at this server.
                "AWS_ENDPOINT_URL_EVENTBRIDGE": self.url,
                "AWS_ENDPOINT_URL_EVENTS": self.url,
            }
        )
        if self.dynamodb_endpoint:
            shared["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb_endpoint
        shared.update(self.extra_env)
        return shared, per_function

    def _apply_env(self, env: Mapping[str, str]) -> None:
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", *env):
            self._saved_env.setdefault(key, os.environ.get(key))
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(env)

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def start(self) -> LocalGateway:
        if self._started:
            return self
        self._server = _Server((self.host, self.requested_port), _RequestHandler, self)
        try:
            shared, per_function = self._shared_environment()
            self._apply_env(shared)
            make_powertools_thread_safe()
            for spec in self.specs:
                pool = FunctionPool(
                    spec,
                    import_env=per_function[spec.logical_id],
                    prefix=self.prefix,
                    region=self.region,
                    max_containers=self.max_containers,
                )
                self.pools[spec.logical_id] = pool
                for route in spec.routes:
                    self.router.add(route, pool)
                for rule in spec.rules:
                    if rule.bus not in self.buses:
                        raise TemplateError(
                            f"{spec.logical_id}.{rule.event_name}: bus {rule.bus} is not in the template"
                        )
                    event_patterns.validate(rule.pattern)  # malformed patterns fail at startup, not per event
                    self.rules.append(
                        (rule, _Target("rule", rule.event_name, pool, rule.max_retries, rule.max_event_age_seconds))
                    )
                now = datetime.now(UTC)
                for schedule in spec.schedules:
                    next_at = (
                        schedules.next_fire(schedule.expression, now, schedule.timezone, anchor=now)
                        if schedule.enabled
                        else None
                    )
                    self.schedule_states.append(_ScheduleState(schedule, pool, now, next_at))
            if self.preload:
                for pool in self.pools.values():
                    pool.preload()
        except BaseException:
            self._server.server_close()
            self._server = None
            self._restore_env()
            raise
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="local-delivery")
        server_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="local-gateway", daemon=True
        )
        server_thread.start()
        self._threads.append(server_thread)
        if self.run_scheduler and self.schedule_states:
            scheduler_thread = threading.Thread(target=self._scheduler_loop, name="local-scheduler", daemon=True)
            scheduler_thread.start()
            self._threads.append(scheduler_thread)
        self._started = True
        log.info(
            "local gateway listening on %s (%d routes, %d rules, %d schedules)",
            self.url,
            len(self.router.routes()),
            len(self.rules),
            len(self.schedule_states),
        )
        return self

    def stop(self) -> None:
        """Stop accepting requests, stop the scheduler, let deliveries finish (retries are cut short)."""
        if not self._started:
            return
        self._started = False
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._restore_env()
        log.info("local gateway stopped")

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP dispatch

    def handle(self, request: _Request) -> _Response:
        path = request.raw_path
        try:
            if path == "/_local" or path.startswith("/_local/"):
                return self._control(request)
            if request.method == "POST" and request.header("X-Amz-Target"):
                return self._aws_json(request)
            if self.router.match(path) is None:
                if path == "/openapi.json" and request.method == "GET":
                    return _Response.json(200, self.openapi())
                if path in ("/docs", "/docs/") and request.method == "GET":
                    return _Response(200, _swagger_html().encode(), [("Content-Type", "text/html; charset=utf-8")])
            return self._api(request)
        except Exception:
            log.exception("local gateway failed on %s %s", request.method, path)
            return _Response.json(500, {"message": "local gateway error (see its log)"})

    # ------------------------------------------------------------------ API Gateway

    def _api(self, request: _Request) -> _Response:
        request_id = str(uuid.uuid4())
        extra = [("x-amzn-RequestId", request_id)]
        found = self.router.match(request.raw_path)
        if found is None:
            return _Response.json(404, {"message": "Missing Authentication Token"}, extra)
        resource, path_params = found
        target = resource.methods.get(request.method) or resource.methods.get("ANY")
        if target is None:
            return _Response.json(403, {"message": "Missing Authentication Token"}, extra)
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
                return _Response.json(401, {"message": "Unauthorized"}, extra)
        event = self.build_proxy_event(request, resource.path, path_params, claims, request_id)
        started = time.monotonic()
        try:
            result = pool.invoke(event)
        except Exception:
            log.exception("502 %s %s: %s raised", request.method, request.raw_path, pool.spec.logical_id)
            return _Response.json(502, {"message": "Internal server error"}, extra)
        response = self._proxy_response(result, pool.spec.logical_id, extra)
        log.info(
            "%s %s → %s %d (%.0f ms)",
            request.method,
            request.raw_path,
            pool.spec.logical_id,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return response

    def build_proxy_event(
        self,
        request: _Request,
        resource: str,
        path_params: Mapping[str, str],
        claims: Mapping[str, Any] | None,
        request_id: str,
    ) -> dict[str, Any]:
        """A REST API (v1) Lambda proxy integration event."""
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers[name] = value  # API Gateway keeps the last value of a repeated header
            multi_headers.setdefault(name, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(request.query, keep_blank_values=True):
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        body: str | None = None
        is_base64 = False
        if request.body:
            content_type = request.header("Content-Type")
            if _is_text(content_type):
                try:
                    body = request.body.decode("utf-8")
                except UnicodeDecodeError:
                    body, is_base64 = base64.b64encode(request.body).decode("ascii"), True
            else:
                body, is_base64 = base64.b64encode(request.body).decode("ascii"), True
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
            "domainName": request.header("Host") or f"{self.host}:{self.port}",
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

    def _proxy_response(self, result: Any, function: str, extra: list[tuple[str, str]]) -> _Response:
        status = result.get("statusCode") if isinstance(result, dict) else None
        if not isinstance(status, int) or isinstance(status, bool):
            log.error(
                "502: %s returned a malformed Lambda proxy response (no integer statusCode): %.500r", function, result
            )
            return _Response.json(502, {"message": "Internal server error"}, extra)
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
        return _Response(status, raw, headers + extra)

    # ------------------------------------------------------------------ EventBridge

    def _aws_json(self, request: _Request) -> _Response:
        target = request.header("X-Amz-Target") or ""
        content = [("Content-Type", "application/x-amz-json-1.1")]

        def error(kind: str, message: str) -> _Response:
            return _Response(400, _json_bytes({"__type": kind, "message": message}), content)

        if target != "AWSEvents.PutEvents":
            return error("UnknownOperationException", f"{target} is not supported by the local stack")
        try:
            payload = json.loads(request.body or b"{}")
        except json.JSONDecodeError:
            return error("SerializationException", "request body is not JSON")
        try:
            result = self.put_events(payload.get("Entries"))
        except _AwsError as exc:
            return error(exc.kind, exc.message)
        return _Response(200, _json_bytes(result), content)

    def put_events(self, entries: Any) -> dict[str, Any]:
        """EventBridge PutEvents: validate like AWS, answer per entry, deliver matches asynchronously."""
        if not isinstance(entries, list) or not 1 <= len(entries) <= 10:
            raise _AwsError("ValidationException", "Entries must hold between 1 and 10 entries")
        for entry in entries:
            bus = _bus_name(entry.get("EventBusName")) if isinstance(entry, dict) else "default"
            if bus not in self.buses:
                raise _AwsError("ResourceNotFoundException", f"Event bus {bus} does not exist.")
        results: list[dict[str, str]] = []
        accepted: list[tuple[str, dict[str, Any]]] = []
        for entry in entries:
            problem = _entry_problem(entry)
            if problem:
                results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
                continue
            event_id = str(uuid.uuid4())
            event = {
                "version": "0",
                "id": event_id,
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": LOCAL_ACCOUNT_ID,
                "time": _event_time(entry.get("Time")),
                "region": self.region,
                "resources": list(entry.get("Resources") or []),
                "detail": json.loads(entry["Detail"]),
            }
            results.append({"EventId": event_id})
            accepted.append((_bus_name(entry.get("EventBusName")), event))
        for bus, event in accepted:
            matched = [t for rule, t in self.rules if rule.bus == bus and event_patterns.matches(rule.pattern, event)]
            if not matched:
                log.info("event %s (%s) matched no rule on %s", event["id"], event["detail-type"], bus)
            for target in matched:
                self._submit(target, event, event["id"], event["detail-type"])
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}

    def _submit(self, target: _Target, event: Any, event_id: str, detail_type: str | None) -> None:
        if self._executor is None or self._stopping.is_set():
            log.warning("not delivering %s to %s: the local stack is stopping", event_id, target.name)
            return
        self._executor.submit(self._deliver, target, event, event_id, detail_type)

    def _deliver(self, target: _Target, event: Any, event_id: str, detail_type: str | None) -> None:
        """Invoke asynchronously with the target's retry policy; exhausted events go to the dead letters."""
        received = time.monotonic()
        attempts = 0
        error: str | None = None
        status = "failed"
        while attempts <= target.max_retries:
            if attempts and time.monotonic() - received > target.max_event_age_seconds:
                error = f"event older than MaximumEventAgeInSeconds={target.max_event_age_seconds}; {error}"
                break
            attempts += 1
            try:
                target.pool.invoke(event)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "%s %s → %s failed (attempt %d of %d)",
                    target.kind,
                    target.name,
                    target.pool.spec.logical_id,
                    attempts,
                    target.max_retries + 1,
                )
                # Short exponential backoff; stop() cuts the wait short.
                if attempts <= target.max_retries and self._stopping.wait(
                    min(self.retry_base_delay * 2 ** (attempts - 1), 5.0)
                ):
                    error = f"stopped while retrying; {error}"
                    break
                continue
            status, error = "succeeded", None
            break
        self._record(target, event_id, detail_type, status, attempts, error)
        if status != "succeeded":
            with self._log_lock:
                self._dead_letters.append(
                    {
                        "kind": target.kind,
                        "rule": target.name,
                        "function": target.pool.spec.logical_id,
                        "event_id": event_id,
                        "event": event,
                        "error": error,
                        "attempts": attempts,
                        "time": _now_iso(),
                    }
                )
            log.error(
                "%s %s → %s: dead-lettered event %s after %d attempt(s): %s",
                target.kind,
                target.name,
                target.pool.spec.logical_id,
                event_id,
                attempts,
                error,
            )

    def _record(
        self, target: _Target, event_id: str, detail_type: str | None, status: str, attempts: int, error: str | None
    ) -> dict[str, Any]:
        with self._log_lock:
            self._delivery_serial += 1
            record = {
                "seq": self._delivery_serial,
                "kind": target.kind,
                "rule": target.name,
                "function": target.pool.spec.logical_id,
                "event_id": event_id,
                "detail_type": detail_type,
                "status": status,
                "attempts": attempts,
                "error": error,
                "time": _now_iso(),
            }
            self._deliveries.append(record)
        return record

    def deliveries(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self._deliveries)

    def dead_letters(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self._dead_letters)

    # ------------------------------------------------------------------ Scheduler

    @staticmethod
    def schedule_event(schedule: Schedule) -> Any:
        if schedule.input is not None:
            return schedule.input
        if schedule.kind == "Schedule":
            # A scheduled EventBridge rule without Input sends the "Scheduled Event" envelope.
            return {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": LOCAL_ACCOUNT_ID,
                "time": _now_iso(),
                "region": LOCAL_REGION,
                "resources": [],
                "detail": {},
            }
        return {}

    def _scheduler_loop(self) -> None:
        while not self._stopping.is_set():
            now = datetime.now(UTC)
            self.run_due(now)
            upcoming = [s.next_fire for s in self.schedule_states if s.next_fire is not None]
            wait = min((min(upcoming) - now).total_seconds(), 1.0) if upcoming else 1.0
            self._stopping.wait(max(wait, 0.05))

    def run_due(self, now: datetime) -> list[str]:
        """Fire (asynchronously) every schedule due at `now`; returns their names."""
        fired: list[str] = []
        for state in self.schedule_states:
            if state.next_fire is None or state.next_fire > now:
                continue
            schedule = state.schedule
            target = _Target(
                "schedule", schedule.name, state.pool, schedule.max_retries, schedule.max_event_age_seconds
            )
            self._submit(target, self.schedule_event(schedule), str(uuid.uuid4()), None)
            fired.append(schedule.name)
            state.next_fire = schedules.next_fire(schedule.expression, now, schedule.timezone, anchor=state.anchor)
            log.info("schedule %s fired; next at %s", schedule.name, state.next_fire.isoformat())
        return fired

    def find_schedule(self, name: str) -> _ScheduleState:
        found = [s for s in self.schedule_states if name in (s.schedule.name, s.schedule.event_name, s.qualified_name)]
        if not found:
            raise KeyError(name)
        if len(found) > 1:
            raise LookupError(f"{name} is ambiguous: use one of {[s.qualified_name for s in found]}")
        return found[0]

    def fire(self, name: str) -> dict[str, Any]:
        """Invoke a schedule's function now, synchronously and once; the result or the error."""
        state = self.find_schedule(name)
        schedule = state.schedule
        target = _Target("schedule", schedule.name, state.pool, 0, schedule.max_event_age_seconds)
        event_id = str(uuid.uuid4())
        try:
            result = state.pool.invoke(self.schedule_event(schedule))
        except Exception as exc:
            log.exception("schedule %s → %s failed", schedule.name, state.pool.spec.logical_id)
            self._record(target, event_id, None, "failed", 1, f"{type(exc).__name__}: {exc}")
            return {
                "schedule": schedule.name,
                "function": state.pool.spec.logical_id,
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        self._record(target, event_id, None, "succeeded", 1, None)
        return {
            "schedule": schedule.name,
            "function": state.pool.spec.logical_id,
            "status": "succeeded",
            "result": result,
        }

    def schedule_list(self) -> list[dict[str, Any]]:
        return [
            {
                "name": s.schedule.name,
                "event": s.qualified_name,
                "function": s.pool.spec.logical_id,
                "expression": s.schedule.expression,
                "timezone": s.schedule.timezone,
                "enabled": s.schedule.enabled,
                "next_fire": s.next_fire.isoformat() if s.next_fire else None,
                "input": s.schedule.input,
            }
            for s in self.schedule_states
        ]

    # ------------------------------------------------------------------ control routes

    def _control(self, request: _Request) -> _Response:
        path = request.raw_path.rstrip("/")
        if request.method == "GET" and path == "/_local/health":
            return _Response.json(
                200,
                {
                    "status": "ok",
                    "template": str(self.template_path),
                    "prefix": self.prefix,
                    "dynamodb_endpoint": self.dynamodb_endpoint,
                    "functions": {fid: {"containers": pool.size} for fid, pool in self.pools.items()},
                    "routes": [f"{m} {p} → {pool.spec.logical_id}" for p, m, _, pool in self.router.routes()],
                    "rules": [f"{r.bus}/{t.name} → {t.pool.spec.logical_id}" for r, t in self.rules],
                    "schedules": len(self.schedule_states),
                },
            )
        if request.method == "GET" and path == "/_local/schedules":
            return _Response.json(200, self.schedule_list())
        if request.method == "GET" and path == "/_local/deliveries":
            return _Response.json(200, self.deliveries())
        if request.method == "GET" and path == "/_local/dead-letters":
            return _Response.json(200, self.dead_letters())
        fire = re.fullmatch(r"/_local/schedules/([^/]+)/fire", path)
        if fire and request.method == "POST":
            name = unquote(fire.group(1))
            try:
                result = self.fire(name)
            except KeyError:
                return _Response.json(
                    404,
                    {"message": f"no schedule named {name}", "schedules": [s["name"] for s in self.schedule_list()]},
                )
            except LookupError as exc:
                return _Response.json(409, {"message": str(exc)})
            return _Response.json(200 if result["status"] == "succeeded" else 502, result)
        return _Response.json(404, {"message": f"no local control route {request.method} {path}"})

    # ------------------------------------------------------------------ OpenAPI

    def openapi(self) -> dict[str, Any]:
        with self._openapi_lock:
            if self._openapi is None:
                self._openapi = build_openapi(self.template_path, prefix=self.prefix)
            return self._openapi


class _AwsError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _bus_name(value: Any) -> str:
    if not value:
        return "default"
    text = str(value)
    return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text  # ARN → name


def _entry_problem(entry: Any) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return "InvalidArgument", "Entry is not an object."
    for key in ("Source", "DetailType"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            return "InvalidArgument", f"Parameter {key} is not valid. Reason: {key} is a required argument."
    detail = entry.get("Detail")
    if not isinstance(detail, str):
        return "InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument."
    try:
        parsed = json.loads(detail)
    except json.JSONDecodeError:
        return "MalformedDetail", "Detail is malformed."
    if not isinstance(parsed, dict):
        return "MalformedDetail", "Detail is malformed."
    if len(json.dumps(entry)) > 256 * 1024:
        return "EntryTooLarge", "Entry exceeds the 256 KB limit."
    return None


def _event_time(value: Any) -> str:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str) and value:
        return value
    return _now_iso()


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops bursts of concurrent test requests
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], gateway: LocalGateway) -> None:
        self.gateway = gateway
        super().__init__(address, handler)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = _Request(
            method=self.command.upper(),
            raw_path=split.path or "/",
            query=split.query,
            headers=list(self.headers.items()),
            body=body,
            client_ip=self.client_address[0],
        )
        response = self.server.gateway.handle(request)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if request.method != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)


def _swagger_html() -> str:
    cdn = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_UI_VERSION}"
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{OPENAPI_TITLE}</title>
  <link rel="stylesheet" href="{cdn}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{cdn}/swagger-ui-bundle.js" crossorigin></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui", persistAuthorization: true}});
  </script>
</body>
</html>
"""


# --------------------------------------------------------------------------- OpenAPI


class OpenAPIConflict(ValueError):
    """Two functions declare the same path+method or the same schema name differently."""


def _project_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("coaching-platform")
    except PackageNotFoundError:
        return "0.0.0"


def build_openapi(template_path: str | Path | None = None, *, prefix: str = "local") -> dict[str, Any]:
    """One OpenAPI 3 document merged from every function's Powertools resolver (`app`)."""
    template_path = Path(template_path) if template_path else default_template()
    template = load_template(template_path)
    specs = function_specs(template, prefix=prefix)
    template_routes = {(route.path, route.method): route for spec in specs for route in spec.routes}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": OPENAPI_TITLE, "version": _project_version()},
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {
            "schemas": {},
            "securitySchemes": {SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{SECURITY_SCHEME: []}],
    }
    documented: set[tuple[str, str]] = set()
    for spec in specs:
        if not spec.handler_file.is_file():
            log.warning("OpenAPI: %s has no %s; skipped", spec.logical_id, spec.handler_file)
            continue
        module = load_function_module(spec, f"_coaching_openapi_{spec.logical_id}", spec.environment)
        try:
            app = getattr(module, "app", None)
            if app is None or not hasattr(app, "get_openapi_json_schema"):
                log.warning("OpenAPI: %s defines no Powertools resolver `app`; skipped", spec.logical_id)
                continue
            part = json.loads(app.get_openapi_json_schema(title=OPENAPI_TITLE, version=_project_version()))
        finally:
            sys.modules.pop(module.__name__, None)
        for path, item in (part.get("paths") or {}).items():
            merged = doc["paths"].setdefault(path, {})
            for method, operation in item.items():
                if method.upper() in HTTP_METHODS:
                    route = template_routes.get((path, method.upper())) or template_routes.get((path, "ANY"))
                    if route is None:
                        log.warning(
                            "OpenAPI: %s serves %s %s but the template routes no such event to it",
                            spec.logical_id,
                            method.upper(),
                            path,
                        )
                    else:
                        documented.add((route.path, route.method))
                        operation["security"] = [] if route.auth_none else [{SECURITY_SCHEME: []}]
                if method in merged and merged[method] != operation:
                    raise OpenAPIConflict(
                        f"{method.upper()} {path} is declared differently by two functions (second: {spec.logical_id})"
                    )
                merged[method] = operation
        for name, schema in ((part.get("components") or {}).get("schemas") or {}).items():
            existing = doc["components"]["schemas"].get(name)
            if existing is not None and existing != schema:
                raise OpenAPIConflict(
                    f"schema {name} is declared differently by two functions (second: {spec.logical_id})"
                )
            doc["components"]["schemas"][name] = schema
    for key in sorted(set(template_routes) - documented):
        log.warning("OpenAPI: template route %s %s has no operation in its function's resolver", key[1], key[0])
    if not doc["components"]["schemas"]:
        del doc["components"]["schemas"]
    return doc


def dump_openapi(doc: Mapping[str, Any]) -> str:
    """The canonical text form: sorted keys, indent 2, trailing newline (what `openapi --check` compares)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
