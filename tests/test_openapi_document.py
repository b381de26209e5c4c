"""docs/openapi.json: generated from the handlers, current, valid OpenAPI 3.1, and a contract clients can trust.

The linter: openapi-spec-validator, then the platform's own rules. Every operation has an operationId, a
summary and a described tag, and lists each error it can give with the one error schema; every `$ref`
resolves; every example fits its schema; and every declared `format` is one the served values satisfy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from coaching_local.gateway import build_openapi, dump_openapi
from coaching_local.template import function_specs, load_template
from openapi_spec_validator import validate
from pydantic import TypeAdapter

ROOT = Path(__file__).parents[1]
DOCUMENT = ROOT / "docs" / "openapi.json"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
GATEWAY_401 = {"oneOf": [ERROR_REF, {"$ref": "#/components/schemas/GatewayError"}]}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Each format the document may declare, with a value as the API serves it (pydantic's JSON mode). Instants
# are stored and served in UTC, so with an offset; the fuzz tier checks every served value against its format.
SERVED_FORMATS: dict[str, Any] = {
    "date-time": datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
    "date": date(2026, 3, 29),
}
FORMAT_CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def nodes(value: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object in the document, with its JSON pointer."""
    if isinstance(value, dict):
        yield where, value
        for key, child in value.items():
            yield from nodes(child, f"{where}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from nodes(child, f"{where}/{index}")


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    target: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(target, dict), f"{ref} does not resolve"
        assert part in target, f"{ref} does not resolve"
        target = target[part]
    return target


def test_committed_openapi_document_is_current():
    fresh = dump_openapi(build_openapi(ROOT / "template.yaml"))
    committed = DOCUMENT.read_text(encoding="utf-8")
    assert committed == fresh, "docs/openapi.json is stale: run `make openapi`"


def test_the_document_is_valid_openapi(document):
    validate(document)  # openapi-spec-validator: raises on the first violation of the OpenAPI 3.1 schema
    assert document["openapi"].startswith("3.1")


def test_every_template_route_is_an_operation_with_an_id_a_summary_and_a_described_tag(document):
    described = {tag["name"]: tag.get("description") for tag in document["tags"]}
    assert all(described.values()), f"tags without a description: {described}"
    seen_ids: set[str] = set()
    for spec in function_specs(load_template(ROOT / "template.yaml")):
        for route in spec.routes:
            operation = document["paths"][route.path][route.method.lower()]
            name = f"{route.method} {route.path}"
            assert operation.get("summary"), f"{name} has no summary"
            assert operation.get("operationId"), f"{name} has no operationId"
            assert operation["operationId"] not in seen_ids, f"{name} repeats operationId {operation['operationId']}"
            seen_ids.add(operation["operationId"])
            assert operation.get("tags"), f"{name} has no tag"
            assert set(operation["tags"]) <= set(described), f"{name} has an undeclared tag"
            expected_security = [] if route.auth_none else [{"bearerAuth": []}]
            assert operation["security"] == expected_security, name
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def expected_errors(method: str, path: str, operation: dict[str, Any]) -> set[str]:
    """The errors an operation can give, from what it takes (see coaching.api.documented_responses)."""
    authorised = bool(operation.get("security"))
    has_input = bool(operation.get("parameters") or operation.get("requestBody"))
    names_objects = "{" in path or "requestBody" in operation
    errors = set()
    if authorised:
        errors |= {"401", "403", "422"}
        if names_objects:
            errors.add("404")
        if method in {"post", "put", "patch", "delete"}:
            errors.add("409")
    if has_input:
        errors.add("422")
    if "requestBody" in operation:
        errors.add("415")
    return errors


def test_every_operation_lists_its_error_responses_with_the_error_schema(document):
    for method, path, operation in operations(document):
        name = f"{method.upper()} {path}"
        responses = operation["responses"]
        errors = {status for status in responses if status.startswith(("4", "5"))}
        # A route may declare more (a signed webhook's 400, 401 and 409: functions/hr_webhooks), never fewer.
        missing = expected_errors(method, path, operation) - errors
        assert not missing, f"{name} does not document {sorted(missing)}"
        assert not any(status.startswith("5") for status in errors), f"{name} documents a server error"
        successes = sorted(status for status in responses if status.startswith("2"))
        # One success; or 200 with a 202 beside it, where a large request becomes a background job
        # (POST /cohorts/match above 300 participants answers 202 with the job).
        assert len(successes) == 1 or successes == ["200", "202"], f"{name} documents {successes}"
        for status in errors:
            schema = responses[status]["content"]["application/json"]["schema"]
            # On an authorised route the authorizer answers 401 before any handler: its body or the handler's.
            expected = GATEWAY_401 if status == "401" and operation.get("security") else ERROR_REF
            assert schema == expected, f"{name} {status}"
            assert responses[status]["description"], f"{name} {status} has no description"


def test_health_routes_are_unauthenticated_and_answer_only_200(document):
    health = [(method, path, op) for method, path, op in operations(document) if "health" in op["tags"]]
    assert health
    for _, path, operation in health:
        assert operation["security"] == [], path
        assert list(operation["responses"]) == ["200"], path


def test_creations_answer_201_and_files_their_media_type(document):
    assert "201" in document["paths"]["/bookings"]["post"]["responses"]
    assert "201" in document["paths"]["/orgs"]["post"]["responses"]
    assert "200" in document["paths"]["/people/import"]["post"]["responses"]
    calendar = document["paths"]["/bookings/{booking_id}/calendar.ics"]["get"]["responses"]["200"]
    assert list(calendar["content"]) == ["text/calendar"]
    csv = document["paths"]["/orgs/{org_id}/invoices/{period}/invoice.csv"]["get"]["responses"]["200"]
    assert list(csv["content"]) == ["text/csv"]


def test_every_ref_resolves(document):
    refs = [(where, node["$ref"]) for where, node in nodes(document) if isinstance(node.get("$ref"), str)]
    assert refs
    for where, ref in refs:
        assert isinstance(resolve(document, ref), dict), f"{where}: {ref}"


def test_every_pattern_compiles_and_every_example_fits_its_schema(document):
    for _, node in nodes(document):
        if isinstance(node.get("pattern"), str):
            re.compile(node["pattern"])
        examples = node.get("examples")
        if isinstance(examples, list) and "type" in node and "$ref" not in json.dumps(node):
            for example in examples:
                jsonschema.validate(example, node, format_checker=FORMAT_CHECKER)


def declared_formats(document: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for where, node in nodes(document):
        if isinstance(node.get("format"), str):
            found.setdefault(node["format"], []).append(where)
    return found


def test_every_declared_format_is_one_the_served_values_satisfy(document):
    declared = declared_formats(document)
    unproven = {name: places[:3] for name, places in declared.items() if name not in SERVED_FORMATS}
    assert not unproven, f"formats without a served value that satisfies them: {unproven}"
    # The checker is live (a naive instant is not an RFC 3339 date-time), and each served value passes it.
    assert not FORMAT_CHECKER.conforms("2026-03-29T01:30:00", "date-time")
    for name, value in SERVED_FORMATS.items():
        served = TypeAdapter(type(value)).dump_python(value, mode="json")
        assert FORMAT_CHECKER.conforms(served, name), f"{served!r} does not satisfy format {name}"
    # Why wall-clock times are patterns, not `format: time`: RFC 3339's full-time needs an offset.
    assert not FORMAT_CHECKER.conforms(TypeAdapter(time).dump_python(time(8), mode="json"), "time")


def test_wall_times_are_hh_mm_patterns(document):
    rule = document["components"]["schemas"]["AvailabilityRule"]["properties"]
    for name in ("start", "end"):
        assert "format" not in rule[name]
        pattern = re.compile(rule[name]["pattern"])
        assert pattern.match("08:00")
        assert pattern.match("17:30:15")
        assert not pattern.match("8:00")
        assert not pattern.match("08:00:00Z")
        assert not pattern.match("24:00")


def test_wall_times_are_served_as_they_are_declared_and_read_as_tests_send_them(document):
    from coaching.domain.coaches import AvailabilityException, AvailabilityRule

    pattern = re.compile(document["components"]["schemas"]["AvailabilityRule"]["properties"]["start"]["pattern"])
    rule = AvailabilityRule.model_validate({"weekday": 0, "start": "08:00", "end": "12:30:15"})
    served = rule.model_dump(mode="json")
    assert served == {"weekday": 0, "start": "08:00", "end": "12:30:15"}
    assert all(pattern.match(served[name]) for name in ("start", "end"))
    # What earlier versions stored ("08:00:00") still reads; Python callers keep datetime.time values.
    assert AvailabilityRule.model_validate({"weekday": 0, "start": "08:00:00", "end": "09:00"}).start == time(8)
    assert rule.model_dump()["start"] == time(8)
    for wrong in ("8:00", "08:00Z", "08:00:00+01:00", "08:00:00.5", "24:00", 28800):
        with pytest.raises(ValueError, match="HH:MM"):
            AvailabilityRule.model_validate({"weekday": 0, "start": wrong, "end": "23:00"})
    day_off = AvailabilityException.model_validate(
        {"date": "2026-06-02", "kind": "extra", "start": "10:00", "end": "11:00"}
    )
    assert day_off.model_dump(mode="json")["start"] == "10:00"
