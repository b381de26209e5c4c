"""Malformed requests over HTTP through the local stack: always a 4xx naming the input, never a 5xx.

Each answer is checked against the error schema the stack's /openapi.json declares for it, and a refused
write leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import requests

from .helpers import Api

pytestmark = pytest.mark.e2e

ORG = {"name": "Malformed Ltd", "time_zone": "Europe/Berlin", "currency": "EUR", "industry": "retail"}


@pytest.fixture(scope="module")
def openapi(local_stack) -> dict[str, Any]:
    response = requests.get(f"{local_stack.url}/openapi.json", timeout=30)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def send(api: Api, method: str, path: str, body: bytes | None, content_type: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {api.token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.request(method, api.url + path, data=body, headers=headers, timeout=60)


def assert_documented_error(openapi, response, method: str, path: str, status: int, field: str | None) -> None:
    """The status, a body that is the schema /openapi.json declares for it, and the input it names."""
    assert response.status_code == status, response.text
    declared = openapi["paths"][path][method.lower()]["responses"][str(status)]
    schema = declared["content"]["application/json"]["schema"]
    jsonschema.validate(response.json(), {**schema, "components": openapi["components"]})
    if field is not None:
        assert field in {f["field"] for f in response.json()["error"]["fields"]}, response.text


def org_count(operator: Api) -> int:
    count, cursor = 0, None
    while True:
        page = operator.call("GET", "/orgs", params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
        count += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return count


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",  # without a boundary: the fuzzer's 502 (ValueError while parsing the body)
        "multipart/form-data; boundary=----x",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/xml",
        "application/json; charset=iso-8859-1",
    ],
)
def test_a_body_that_is_not_json_gets_415_naming_the_content_type(openapi, operator, content_type):
    response = send(operator, "POST", "/orgs", b'{"name": "x"}', content_type)
    assert_documented_error(openapi, response, "POST", "/orgs", 415, "Content-Type")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"name": "Acme",', "not valid JSON"),
        (b"", "a JSON body is required"),
        (b"[]", "must be a JSON object, not an array"),
        (b'"an org"', "must be a JSON object, not a string"),
        (b'{"name": "Acme", "min_reporting_group_size": NaN}', "NaN is not a JSON value"),
        (b'{"name": "\xff\xfe"}', "not valid UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper"),
        (b'{"name": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}", "nested deeper"),
    ],
)
def test_a_malformed_json_body_gets_422_naming_the_body_and_writes_nothing(openapi, operator, body, message):
    before = org_count(operator)
    response = send(operator, "POST", "/orgs", body, "application/json")
    assert_documented_error(openapi, response, "POST", "/orgs", 422, "body")
    assert message in response.json()["error"]["message"]
    assert org_count(operator) == before


def test_a_body_on_an_id_route_is_checked_the_same_way(openapi, local_stack, tenant_a):
    path = f"/orgs/{tenant_a.org_id}"
    response = send(tenant_a.admin, "PATCH", path, b"[1, 2]", "application/json")
    assert_documented_error(openapi, response, "PATCH", "/orgs/{org_id}", 422, "body")
    response = send(tenant_a.admin, "PATCH", path, b'{"name": "x"}', "multipart/form-data")
    assert_documented_error(openapi, response, "PATCH", "/orgs/{org_id}", 415, "Content-Type")


def test_null_for_a_required_field_in_a_patch_is_422(openapi, operator, tenant_a):
    response = operator.call("PATCH", f"/orgs/{tenant_a.org_id}", {"name": None})
    assert_documented_error(openapi, response, "PATCH", "/orgs/{org_id}", 422, "name")


@pytest.mark.parametrize(
    ("path", "params", "template", "field"),
    [
        ("/people/not%23an-id", None, "/people/{person_id}", "person_id"),
        ("/people/" + "x" * 65, None, "/people/{person_id}", "person_id"),
        ("/people", {"limit": "ten"}, "/people", "limit"),
        ("/people", {"limit": "0"}, "/people", "limit"),
        ("/people", {"limit": "1.5"}, "/people", "limit"),
    ],
)
def test_path_and_query_values_are_validated_by_type(openapi, tenant_a, path, params, template, field):
    response = tenant_a.admin.call("GET", path, params=params)
    assert_documented_error(openapi, response, "GET", template, 422, field)


def test_an_invoice_period_is_typed(openapi, local_stack, tenant_a):
    finance = Api(local_stack.url, local_stack.token(["finance"], org_id=tenant_a.org_id, person_id="fin-1"))
    for period in ("0000-01", "2026-13", "2026-1", "latest"):
        response = finance.call("POST", f"/orgs/{tenant_a.org_id}/invoices/{period}/run")
        assert_documented_error(openapi, response, "POST", "/orgs/{org_id}/invoices/{period}/run", 422, "period")


def test_the_gateway_answers_what_api_gateway_would(openapi, local_stack, operator):
    trace = requests.request("TRACE", f"{local_stack.url}/orgs", timeout=30)
    assert trace.status_code == 403
    assert trace.json() == {"message": "Missing Authentication Token"}
    unknown = operator.call("GET", "/no-such-route")
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "Missing Authentication Token"}
    anonymous = Api(local_stack.url, None).call("POST", "/orgs", {"name": "x"})
    assert_documented_error(openapi, anonymous, "POST", "/orgs", 401, None)
    assert anonymous.json() == {"message": "Unauthorized"}
