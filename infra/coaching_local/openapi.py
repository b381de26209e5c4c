"""OpenAPI: one document merged from every function's Powertools resolver, and Swagger UI at `/docs`.

Swagger UI comes from the `swagger-ui-dist` npm package (installed by `npm ci`, see infra/bootstrap.sh)
and is served from node_modules under `/docs/static/`, so `/docs` works offline and loads nothing
from a CDN.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coaching.api import error_response
from werkzeug.exceptions import NotFound
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Response

from coaching_local.apigateway import HTTP_METHODS
from coaching_local.paths import default_template, repo_root
from coaching_local.runtime import load_function_module
from coaching_local.server import LocalRequest, json_response, response
from coaching_local.template import LOCAL_REGION, function_specs, load_template

log = logging.getLogger("coaching_local.openapi")

OPENAPI_TITLE = "coaching-platform API"
SECURITY_SCHEME = "bearerAuth"
SWAGGER_UI_DIST_ENV = "SWAGGER_UI_DIST"
DOCS_STATIC = "/docs/static/"


def swagger_ui_dir() -> Path:
    """The swagger-ui-dist package folder: $SWAGGER_UI_DIST, else node_modules/swagger-ui-dist."""
    override = os.environ.get(SWAGGER_UI_DIST_ENV)
    return Path(override) if override else repo_root() / "node_modules" / "swagger-ui-dist"


def docs_html() -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{OPENAPI_TITLE}</title>
  <link rel="stylesheet" href="{DOCS_STATIC}swagger-ui.css">
  <link rel="icon" type="image/png" href="{DOCS_STATIC}favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_STATIC}swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui", persistAuthorization: true}});
  </script>
</body>
</html>
"""


def docs_response(request: LocalRequest) -> Response | None:
    """`/docs` and its static files, or None when the request is not for them."""
    path = request.raw_path
    if request.method not in ("GET", "HEAD"):
        return None
    if path in ("/docs", "/docs/"):
        if not (swagger_ui_dir() / "swagger-ui-bundle.js").is_file():
            message = f"Swagger UI is not installed ({swagger_ui_dir()} is missing); run npm ci or make up"
            return json_response(503, {"message": message})
        return response(200, docs_html().encode(), [("Content-Type", "text/html; charset=utf-8")])
    if path.startswith(DOCS_STATIC):
        try:
            served = send_from_directory(swagger_ui_dir(), path.removeprefix(DOCS_STATIC), request.environ)
        except NotFound:
            return json_response(404, {"message": f"no Swagger UI file {path}"})
        return served
    return None


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
    tags: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if not spec.routes:
            continue  # a function the API never invokes (the stream relay) has nothing to document
        if not spec.handler_file.is_file():
            log.warning("OpenAPI: %s has no %s; skipped", spec.logical_id, spec.handler_file)
            continue
        # Handlers read their settings at import; a region is all the template does not give them. What the
        # process already has wins: the domain package binds table names when first imported, and building the
        # document must not point a test session's adapters at the template's tables.
        env = {"AWS_REGION": LOCAL_REGION, "AWS_DEFAULT_REGION": LOCAL_REGION, **spec.environment}
        env |= {name: os.environ[name] for name in env if name in os.environ}
        module = load_function_module(spec, f"_coaching_openapi_{spec.logical_id}", env)
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
                        if not route.auth_none:
                            # The authorizer answers 401 before any handler runs, whatever the handler takes.
                            operation.setdefault("responses", {}).setdefault("401", error_response(401))
                if method in merged and merged[method] != operation:
                    raise OpenAPIConflict(
                        f"{method.upper()} {path} is declared differently by two functions (second: {spec.logical_id})"
                    )
                merged[method] = operation
        for tag in part.get("tags") or []:
            if tags.setdefault(tag["name"], tag) != tag:
                raise OpenAPIConflict(f"tag {tag['name']} is described differently by two functions")
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
    used = {tag for item in doc["paths"].values() for operation in item.values() for tag in operation.get("tags", [])}
    if used:
        doc["tags"] = [tags.get(name, {"name": name}) for name in sorted(used)]
    return doc


def dump_openapi(doc: Mapping[str, Any]) -> str:
    """The canonical text form: sorted keys, indent 2, trailing newline (what `openapi --check` compares)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
