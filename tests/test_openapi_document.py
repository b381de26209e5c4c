"""docs/openapi.json is generated from the handlers and must be current."""

from pathlib import Path

from coaching_local.gateway import build_openapi, dump_openapi
from coaching_local.template import function_specs, load_template

ROOT = Path(__file__).parents[1]


def test_committed_openapi_document_is_current():
    fresh = dump_openapi(build_openapi(ROOT / "template.yaml"))
    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert committed == fresh, "docs/openapi.json is stale: run `make openapi`"


def test_every_template_route_is_documented_with_its_errors():
    document = build_openapi(ROOT / "template.yaml")
    for spec in function_specs(load_template(ROOT / "template.yaml")):
        for route in spec.routes:
            operation = document["paths"][route.path][route.method.lower()]
            assert operation.get("summary"), f"{route.method} {route.path} has no summary"
            if not route.auth_none:
                assert "422" in operation["responses"], f"{route.method} {route.path} documents no validation error"
