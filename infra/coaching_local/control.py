"""`/_local/...`: inspection and control of the running stack (health, schedules, deliveries, streams).

GET  /_local/health                        what is served: routes, rules, schedules, streams, containers
GET  /_local/schedules                     every schedule with its next fire time
POST /_local/schedules/{name}/fire         invoke a schedule's function now (200, or 502 with the error)
GET  /_local/deliveries[?kind=]            the last deliveries (kind: rule, schedule, stream)
GET  /_local/dead-letters[?kind=]          events and stream batches that exhausted their retries
GET  /_local/streams                       every stream poller: paused, caught up, pending, shards, counts
GET  /_local/streams/dead-letters          the stream batches sent to their OnFailure destination
POST /_local/streams/drain[?timeout=s]     wait until every stream is read to its end and delivered
POST /_local/streams/{name}/pause          stop delivering (records stay in the stream, checkpoint kept)
POST /_local/streams/{name}/resume         deliver again from the checkpoint
POST /_local/streams/{name}/drain[?timeout=s]
GET  /_local/clock                         the stack's clock: now, real now, moved, offset
POST /_local/clock {"travel_to": iso}      move the stack process's clock there (it ticks on); 400 names the field
DELETE /_local/clock                       back to real time
A stream's name is `Function.Event`, or the event or function name alone when that is unambiguous.
Drain answers 200 when drained, 409 when a stream is paused, 504 when the timeout passed first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response

from coaching_local.clock import parse_destination
from coaching_local.server import LocalRequest, json_response

if TYPE_CHECKING:
    from coaching_local.gateway import LocalGateway

DEFAULT_DRAIN_TIMEOUT = 30.0

_ROUTES = Map(
    [
        Rule("/_local/health", methods=["GET"], endpoint="health"),
        Rule("/_local/schedules", methods=["GET"], endpoint="schedules"),
        Rule("/_local/schedules/<name>/fire", methods=["POST"], endpoint="fire"),
        Rule("/_local/deliveries", methods=["GET"], endpoint="deliveries"),
        Rule("/_local/dead-letters", methods=["GET"], endpoint="dead_letters"),
        Rule("/_local/streams", methods=["GET"], endpoint="streams"),
        Rule("/_local/streams/dead-letters", methods=["GET"], endpoint="stream_dead_letters"),
        Rule("/_local/streams/drain", methods=["POST"], endpoint="drain"),
        Rule("/_local/streams/<name>/pause", methods=["POST"], endpoint="pause"),
        Rule("/_local/streams/<name>/resume", methods=["POST"], endpoint="resume"),
        Rule("/_local/streams/<name>/drain", methods=["POST"], endpoint="drain"),
        Rule("/_local/clock", methods=["GET"], endpoint="clock"),
        Rule("/_local/clock", methods=["POST"], endpoint="travel"),
        Rule("/_local/clock", methods=["DELETE"], endpoint="reset_clock"),
    ],
    strict_slashes=False,
    merge_slashes=False,
)


class ControlRoutes:
    def __init__(self, gateway: LocalGateway) -> None:
        self.gateway = gateway
        self._adapter = _ROUTES.bind("local")
        self._views: dict[str, Callable[..., Response]] = {
            "health": self.health,
            "schedules": self.schedules,
            "fire": self.fire,
            "deliveries": self.deliveries,
            "dead_letters": self.dead_letters,
            "streams": self.streams,
            "stream_dead_letters": self.stream_dead_letters,
            "drain": self.drain,
            "pause": self.pause,
            "resume": self.resume,
            "clock": self.clock,
            "travel": self.travel,
            "reset_clock": self.reset_clock,
        }

    def handle(self, request: LocalRequest) -> Response:
        path = request.raw_path.rstrip("/")
        try:
            endpoint, values = self._adapter.match(path, method=request.method)
        except HTTPException:
            return json_response(404, {"message": f"no local control route {request.method} {path}"})
        arguments = {key: unquote(str(value)) for key, value in values.items()}
        return self._views[str(endpoint)](request, **arguments)

    def health(self, request: LocalRequest) -> Response:
        return json_response(200, self.gateway.health())

    def schedules(self, request: LocalRequest) -> Response:
        return json_response(200, self.gateway.scheduler.listing())

    def fire(self, request: LocalRequest, name: str) -> Response:
        try:
            result = self.gateway.scheduler.fire(name)
        except KeyError:
            names = [s["name"] for s in self.gateway.scheduler.listing()]
            return json_response(404, {"message": f"no schedule named {name}", "schedules": names})
        except LookupError as exc:
            return json_response(409, {"message": str(exc)})
        return json_response(200 if result["status"] == "succeeded" else 502, result)

    def deliveries(self, request: LocalRequest) -> Response:
        return json_response(200, self.gateway.delivery_log.deliveries(request.args.get("kind")))

    def dead_letters(self, request: LocalRequest) -> Response:
        return json_response(200, self.gateway.delivery_log.dead_letters(request.args.get("kind")))

    def streams(self, request: LocalRequest) -> Response:
        return json_response(200, self.gateway.streams.listing())

    def stream_dead_letters(self, request: LocalRequest) -> Response:
        return json_response(200, self.gateway.delivery_log.dead_letters("stream"))

    def drain(self, request: LocalRequest, name: str | None = None) -> Response:
        timeout = request.args.get("timeout", DEFAULT_DRAIN_TIMEOUT, type=float)
        try:
            result = self.gateway.streams.drain(timeout, name)
        except KeyError:
            return self._no_stream(name)
        except LookupError as exc:
            return json_response(409, {"message": str(exc)})
        status = 200 if result["drained"] else 409 if result.get("paused") else 504
        return json_response(status, result)

    def pause(self, request: LocalRequest, name: str) -> Response:
        return self._toggle(name, paused=True)

    def resume(self, request: LocalRequest, name: str) -> Response:
        return self._toggle(name, paused=False)

    def _toggle(self, name: str, *, paused: bool) -> Response:
        try:
            state = self.gateway.streams.pause(name) if paused else self.gateway.streams.resume(name)
        except KeyError:
            return self._no_stream(name)
        except LookupError as exc:
            return json_response(409, {"message": str(exc)})
        return json_response(200, state)

    def _no_stream(self, name: Any) -> Response:
        names = [s["name"] for s in self.gateway.streams.listing()]
        return json_response(404, {"message": f"no stream named {name}", "streams": names})

    def clock(self, request: LocalRequest) -> Response:
        return json_response(200, self.gateway.clock.state())

    def travel(self, request: LocalRequest) -> Response:
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return json_response(400, {"message": "the body is not JSON", "field": "body"})
        if not isinstance(body, dict) or "travel_to" not in body:
            return json_response(400, {"message": 'send {"travel_to": "<ISO 8601 date-time>"}', "field": "travel_to"})
        try:
            destination = parse_destination(body["travel_to"])
        except ValueError as exc:
            return json_response(400, {"message": str(exc), "field": "travel_to"})
        return json_response(200, self.gateway.clock.travel(destination))

    def reset_clock(self, request: LocalRequest) -> Response:
        return json_response(200, self.gateway.clock.reset())
