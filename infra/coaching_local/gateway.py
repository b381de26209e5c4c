"""The local stack for one template, in this process: it wires the parts, each in its own module.

One werkzeug server (`server`) answers everything:
- template routes → the real handlers, with genuine REST (v1) proxy events (`apigateway`);
- `POST /` with `X-Amz-Target: AWSEvents.PutEvents` → the local event bus (`bus`), so the handlers'
  own boto3 events client works with AWS_ENDPOINT_URL_EVENTBRIDGE pointing here;
- `POST /2015-03-31/functions/{name}/invocations` → Lambda's Invoke API (`lambda_invoke`): asynchronous
  invocations run in-process with the function's EventInvokeConfig retries and dead letters;
- `/_local/...` → inspection and control (`control`);
- `/openapi.json` and `/docs` → the merged OpenAPI document and Swagger UI (`openapi`).
Schedules fire from `scheduler`, table streams are polled by `streams`, and every function runs in
the Lambda runtime of `runtime` (with `powertools_patch` for thread safety).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Response

from coaching_local import tokens
from coaching_local.apigateway import HTTP_METHODS, ApiGateway, Resource, Router, claims_as_strings
from coaching_local.artefacts import LocalArtefactServer
from coaching_local.bus import EventBus
from coaching_local.clock import StackClock
from coaching_local.control import ControlRoutes
from coaching_local.deliveries import AsyncDelivery, DeliveryLog, Target
from coaching_local.lambda_invoke import LambdaInvoke
from coaching_local.openapi import OpenAPIConflict, build_openapi, docs_response, dump_openapi
from coaching_local.paths import default_template, local_dir
from coaching_local.powertools_patch import make_powertools_thread_safe
from coaching_local.runtime import (
    MAX_CONTAINERS,
    FunctionPool,
    LambdaContext,
    LocalStackError,
    load_function_module,
    split_environment,
)
from coaching_local.scheduler import Scheduler, ScheduleState
from coaching_local.server import LocalRequest, json_response, make_http_server
from coaching_local.stream_sources import StreamSources
from coaching_local.template import (
    LOCAL_REGION,
    LocalNames,
    Rule,
    event_buses,
    function_specs,
    load_template,
    local_table_name,
)

__all__ = [
    "MAX_CONTAINERS",
    "FunctionPool",
    "LambdaContext",
    "LocalGateway",
    "LocalStackError",
    "OpenAPIConflict",
    "Resource",
    "Router",
    "build_openapi",
    "claims_as_strings",
    "dump_openapi",
    "load_function_module",
]

log = logging.getLogger("coaching_local.gateway")


class LocalGateway:
    """API Gateway + EventBridge + Scheduler + DynamoDB stream sources for one template, in this process."""

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
        run_streams: bool = True,
        streams_paused: bool = False,
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
        self.signing_key = tokens.check_key(signing_key if signing_key is not None else tokens.signing_key())
        self.max_containers = max_containers
        self.run_scheduler = run_scheduler
        self.run_streams = run_streams
        self.streams_paused = streams_paused
        self.preload = preload
        self.specs = function_specs(self.template, prefix=prefix, parameters=parameters, region=region)
        names = LocalNames(prefix=prefix, parameters=dict(parameters or {}), region=region)
        self.pools: dict[str, FunctionPool] = {}
        self._stopping = threading.Event()
        self.delivery_log = DeliveryLog()
        self.delivery = AsyncDelivery(self.delivery_log, retry_base_delay, self._stopping)
        self.bus = EventBus(set(event_buses(self.template, names).values()), region, self.delivery)
        self.scheduler = Scheduler(self.delivery, self.delivery_log, region)
        # The process's wall clock, movable over `/_local/clock` (coaching_local.clock); schedules follow it.
        self.clock = StackClock()
        self.clock.on_move(self.scheduler.clock_moved)
        self.api = ApiGateway(self.signing_key, self.stage)
        self.streams = StreamSources(self.delivery_log, region, dynamodb_endpoint, retry_base_delay)
        self.lambda_invoke = LambdaInvoke(self.delivery)
        self.control = ControlRoutes(self)
        # The report bucket: a folder, and the signed links report_generation hands out (coaching_local.artefacts).
        self.artefacts = LocalArtefactServer(local_dir() / "artefacts" / prefix)
        self._server: BaseWSGIServer | None = None
        self._server_thread: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}
        self._openapi: dict[str, Any] | None = None
        self._openapi_lock = threading.Lock()
        self._started = False

    # ------------------------------------------------------------------ the parts, by their old names

    @property
    def router(self) -> Router:
        return self.api.router

    @property
    def rules(self) -> list[tuple[Rule, Target]]:
        return self.bus.rules

    @property
    def schedule_states(self) -> list[ScheduleState]:
        return self.scheduler.states

    @property
    def port(self) -> int:
        return self.requested_port if self._server is None else int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ lifecycle

    def _environment(self) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        shared, per_function = split_environment(self.specs)
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
                # Functions invoke functions (InvocationType=Event) through Lambda's Invoke API on this server.
                "AWS_ENDPOINT_URL_LAMBDA": self.url,
                # Locally, HR webhook secrets per org live in a git-ignored file (coaching.adapters.hr_store).
                "HR_WEBHOOK_SECRETS_FILE": str(local_dir() / "hr-webhook-secrets.json"),
            }
        )
        if self.dynamodb_endpoint:
            shared["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb_endpoint
        shared.update(self.artefacts.environment(self.url))
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

    def _wire(self, per_function: Mapping[str, Mapping[str, str]]) -> None:
        now = datetime.now(UTC)
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
                self.api.router.add(route, pool)
            for rule in spec.rules:
                self.bus.add_rule(spec.logical_id, rule, pool)
            for schedule in spec.schedules:
                self.scheduler.add(schedule, pool, now)
            for source in spec.streams:
                self.streams.add(source, pool, local_table_name(self.prefix, source.table))
            resource = self.template.get("Resources", {}).get(spec.logical_id, {})
            self.lambda_invoke.add(pool, resource.get("Properties", {}) or {})

    def start(self) -> LocalGateway:
        if self._started:
            return self
        self._server = make_http_server(self.host, self.requested_port, self.wsgi_app)
        self.api.domain = f"{self.host}:{self.port}"
        try:
            shared, per_function = self._environment()
            self._apply_env(shared)
            make_powertools_thread_safe()
            self._wire(per_function)
            if self.preload:
                for pool in self.pools.values():
                    pool.preload()
            if self.run_streams:
                self.streams.prepare()
        except BaseException:
            self._server.server_close()
            self._server = None
            self._restore_env()
            raise
        self.delivery.start()
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="local-gateway", daemon=True
        )
        self._server_thread.start()
        if self.run_scheduler:
            self.scheduler.start()
        if self.run_streams:
            self.streams.start(paused=self.streams_paused)
        self._started = True
        log.info(
            "local gateway listening on %s (%d routes, %d rules, %d schedules, %d streams)",
            self.url,
            len(self.router.routes()),
            len(self.rules),
            len(self.schedule_states),
            len(self.streams.pollers),
        )
        return self

    def stop(self) -> None:
        """Stop the scheduler and stream pollers, let deliveries finish (retries cut short), then the server.

        The server goes last: functions invoked by pollers and deliveries call back into it (PutEvents).
        """
        if not self._started:
            return
        self._started = False
        self._stopping.set()
        self.scheduler.stop()
        self.streams.stop()
        self.delivery.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._server_thread is not None:
            self._server_thread.join(timeout=10)
            self._server_thread = None
        self.clock.reset()
        self._restore_env()
        log.info("local gateway stopped")

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP dispatch

    def wsgi_app(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.handle(LocalRequest(environ))(environ, start_response)

    def handle(self, request: LocalRequest) -> Response:
        path = request.raw_path
        try:
            if request.method not in HTTP_METHODS:
                return self.api.handle(request)  # 403, as API Gateway answers methods it does not know
            if self.artefacts.handles(path):
                return self.artefacts.serve(request)
            if path == "/_local" or path.startswith("/_local/"):
                return self.control.handle(request)
            if LambdaInvoke.matches(request):
                return self.lambda_invoke.handle(request)
            if request.method == "POST" and request.header("X-Amz-Target"):
                return self.bus.handle(request)
            if self.api.router.match(path) is None:
                if path == "/openapi.json" and request.method == "GET":
                    return json_response(200, self.openapi())
                docs = docs_response(request)
                if docs is not None:
                    return docs
            return self.api.handle(request)
        except Exception:
            log.exception("local gateway failed on %s %s", request.method, path)
            return json_response(500, {"message": "local gateway error (see its log)"})

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "template": str(self.template_path),
            "prefix": self.prefix,
            "dynamodb_endpoint": self.dynamodb_endpoint,
            "functions": {fid: {"containers": pool.size} for fid, pool in self.pools.items()},
            "routes": [f"{m} {p} → {pool.spec.logical_id}" for p, m, _, pool in self.router.routes()],
            "rules": [f"{r.bus}/{t.name} → {t.pool.spec.logical_id}" for r, t in self.rules],
            "schedules": len(self.schedule_states),
            "streams": [f"{p.table_name} → {p.name}" for p in self.streams.pollers],
        }

    def openapi(self) -> dict[str, Any]:
        with self._openapi_lock:
            if self._openapi is None:
                self._openapi = build_openapi(self.template_path, prefix=self.prefix)
            return self._openapi

    # ------------------------------------------------------------------ conveniences for tests and tools

    def put_events(self, entries: Any) -> dict[str, Any]:
        return self.bus.put_events(entries)

    def deliveries(self, kind: str | None = None) -> list[dict[str, Any]]:
        return self.delivery_log.deliveries(kind)

    def dead_letters(self, kind: str | None = None) -> list[dict[str, Any]]:
        return self.delivery_log.dead_letters(kind)

    def schedule_list(self) -> list[dict[str, Any]]:
        return self.scheduler.listing()

    def find_schedule(self, name: str) -> ScheduleState:
        return self.scheduler.find(name)

    def run_due(self, now: datetime) -> list[str]:
        return self.scheduler.run_due(now)

    def fire(self, name: str) -> dict[str, Any]:
        return self.scheduler.fire(name)

    def stream_list(self) -> list[dict[str, Any]]:
        return self.streams.listing()

    def pause_stream(self, name: str) -> dict[str, Any]:
        return self.streams.pause(name)

    def resume_stream(self, name: str) -> dict[str, Any]:
        return self.streams.resume(name)

    def drain_streams(self, timeout: float = 30.0, name: str | None = None) -> dict[str, Any]:
        return self.streams.drain(timeout, name)

    def stream_dead_letters(self) -> list[dict[str, Any]]:
        return self.delivery_log.dead_letters("stream")
