"""HTTP for the local stack: werkzeug's threaded WSGI server and its request/response wrappers.

Two things are added to werkzeug's request handler, both for API Gateway fidelity and speed:
- the request target and header list exactly as sent (WSGI decodes the path and folds repeated
  headers; API Gateway passes the path still percent-encoded and keeps every header value);
- TCP_NODELAY on every accepted connection: the handler writes the status line and headers, then
  the body, in two sends, and with Nagle's algorithm the second waits for the client's delayed ACK
  (a 40 ms stall per response was measured).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from werkzeug.datastructures import Headers
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from coaching_local.runtime import LocalStackError

log = logging.getLogger("coaching_local.http")

RAW_TARGET = "coaching_local.raw_target"
RAW_HEADERS = "coaching_local.raw_headers"


class _Handler(WSGIRequestHandler):
    # socketserver.StreamRequestHandler.setup() sets TCP_NODELAY on the accepted socket when true.
    disable_nagle_algorithm = True

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ[RAW_TARGET] = self.path
        environ[RAW_HEADERS] = list(self.headers.items())
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s %s", self.address_string(), self.requestline, code)

    def log_error(self, format: str, *args: Any) -> None:
        log.info("%s " + format, self.address_string(), *args)


def make_http_server(host: str, port: int, app: Any) -> BaseWSGIServer:
    """A threaded werkzeug server bound to (host, port); port 0 picks a free one (see `.port`)."""
    try:
        return make_server(host, port, app, threaded=True, request_handler=_Handler)
    except SystemExit as exc:  # werkzeug prints why it cannot bind, then exits; a library must not
        raise LocalStackError(f"cannot listen on {host}:{port} (see the message above)") from exc


class LocalRequest(Request):
    """A werkzeug request that also knows the raw target and headers as the client sent them."""

    @cached_property
    def raw_target(self) -> str:
        return str(self.environ.get(RAW_TARGET) or self.environ.get("RAW_URI") or self.path)

    @cached_property
    def raw_path(self) -> str:
        return urlsplit(self.raw_target).path or "/"

    @cached_property
    def raw_query(self) -> str:
        return urlsplit(self.raw_target).query

    @cached_property
    def header_items(self) -> list[tuple[str, str]]:
        raw = self.environ.get(RAW_HEADERS)
        return list(raw) if raw is not None else list(self.headers.items())

    def header(self, name: str) -> str | None:
        """The last value of a header (API Gateway keeps the last of repeated headers)."""
        value = None
        for key, item in self.header_items:
            if key.lower() == name.lower():
                value = item
        return value

    @cached_property
    def body(self) -> bytes:
        return self.get_data(cache=True)

    @property
    def client_ip(self) -> str:
        return self.remote_addr or ""


class LocalResponse(Response):
    """No default Content-Type: like API Gateway, a response carries only the headers it was given."""

    default_mimetype = None


def response(status: int, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()) -> LocalResponse:
    return LocalResponse(body, status=status, headers=Headers(list(headers)))


def json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> LocalResponse:
    body = json.dumps(payload, default=str).encode("utf-8")
    return response(status, body, [("Content-Type", "application/json"), *headers])
