"""The one error mapping (coaching.api), in process: crafted API Gateway events through a resolver.

Every malformed request is a 4xx naming the input at fault, with the one error body; a bug is not.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

import jsonschema
import pytest
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from coaching.api import (
    MAX_BODY_DEPTH,
    Caller,
    PathId,
    add_health_route,
    created,
    error_body,
    error_schemas,
    rest_resolver,
)
from coaching.domain import errors
from pydantic import BaseModel

app = rest_resolver()
add_health_route(app, "/things/health", service="things")


class Thing(BaseModel):
    name: str
    extra: dict[str, Any] = {}


class Note(BaseModel):
    text: str = ""


@app.post("/things", summary="Make a thing", tags=["orgs"])
def make_thing(caller: Caller, body: Annotated[Thing, Body()]) -> Response[Thing]:
    return created(body)


@app.get("/things/<thing_id>", summary="Get a thing", tags=["orgs"])
def get_thing(caller: Caller, thing_id: PathId, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Thing:
    return Thing(name=f"{thing_id}:{limit}")


@app.post("/things/<thing_id>/notes", summary="Add a note", tags=["orgs"])
def add_note(caller: Caller, thing_id: PathId, body: Annotated[Note | None, Body()] = None) -> Note:
    return body or Note(text="none")


@app.get("/things/<thing_id>/card.ics", summary="A calendar file", tags=["orgs"])
def card(caller: Caller, thing_id: PathId) -> Response[str]:
    return Response(status_code=200, content_type="text/calendar", body="BEGIN:VCALENDAR")


@app.post("/things/<thing_id>/raw", summary="Reads its own body", tags=["orgs"])
def raw(caller: Caller, thing_id: PathId) -> Note:
    return Note(text=app.current_event.decoded_body or "")


RAISED: dict[str, Exception] = {}


@app.post("/things/<thing_id>/refuse", summary="Raises what the test put in RAISED", tags=["orgs"])
def refuse(caller: Caller, thing_id: PathId) -> Note:
    raise RAISED[thing_id]


CLAIMS = {"custom:person_id": "person-1", "custom:org_id": "org-1", "cognito:groups": "org_admin"}


def event(
    method: str,
    path: str,
    body: str | bytes | None = None,
    *,
    content_type: str | None = "application/json",
    query: dict[str, str] | None = None,
    claims: dict[str, str] | None = CLAIMS,
) -> dict[str, Any]:
    """A REST API (v1) proxy event as API Gateway sends it: bodies that are not UTF-8 text arrive in base64."""
    headers = {"Content-Type": content_type} if content_type else {}
    is_base64 = isinstance(body, bytes)
    text = base64.b64encode(body).decode() if isinstance(body, bytes) else body
    parts = path.strip("/").split("/")
    context: dict[str, Any] = {"requestId": "r-1", "stage": "test", "path": f"/test{path}", "httpMethod": method}
    if claims is not None:
        context["authorizer"] = {"claims": claims}
    return {
        "resource": path,  # the resolver routes on the path
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"thing_id": parts[1]} if len(parts) > 1 else None,
        "requestContext": context,
        "body": text,
        "isBase64Encoded": is_base64,
    }


def call(*args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    answer = app.resolve(event(*args, **kwargs), None)
    body = json.loads(answer["body"]) if answer.get("body") else {}
    return answer["statusCode"], body


ERROR_SCHEMA = {"$ref": "#/components/schemas/Error", "components": {"schemas": error_schemas()}}


def assert_error(status: int, body: dict[str, Any], expected_status: int, code: str, field: str | None) -> str:
    """The status, the code, the field at fault, and a body that is the one error schema; returns the message."""
    assert status == expected_status, body
    jsonschema.validate(body, ERROR_SCHEMA)
    assert body["error"]["code"] == code
    if field is not None:
        assert field in {f["field"] for f in body["error"]["fields"]}, body
    return str(body["error"]["message"])


def test_a_well_formed_body_is_accepted_as_json_with_or_without_a_charset():
    assert call("POST", "/things", '{"name": "a"}') == (201, {"name": "a", "extra": {}})
    assert call("POST", "/things", '{"name": "b"}', content_type="application/json; charset=UTF-8")[0] == 201
    # A missing Content-Type is read as JSON (API Gateway passes the body as it came).
    assert call("POST", "/things", '{"name": "c"}', content_type=None)[0] == 201


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",  # no boundary: Powertools raised ValueError, a 502
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
def test_a_body_that_is_not_json_is_415_naming_the_content_type(content_type):
    status, body = call("POST", "/things", '{"name": "a"}', content_type=content_type)
    assert_error(status, body, 415, "unsupported_media_type", "Content-Type")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"name":', "not valid JSON"),
        ("{'name': 'a'}", "not valid JSON"),
        ('{"name": NaN}', "NaN is not a JSON value"),
        ('{"name": "a", "extra": {"x": Infinity}}', "Infinity is not a JSON value"),
        ("\ufeff{}", "not valid JSON"),
        ("[]", "must be a JSON object, not an array"),
        ('"name"', "must be a JSON object, not a string"),
        ("42", "must be a JSON object, not a number"),
        ("true", "must be a JSON object, not a boolean"),
        ("null", "must be a JSON object, not null"),
        ("", "a JSON body is required"),
        ("   ", "a JSON body is required"),
        (None, "a JSON body is required"),
        ("[" * 100_000 + "]" * 100_000, f"nested deeper than {MAX_BODY_DEPTH} levels"),
        ('{"name": "a", "extra": ' + '{"x": ' * MAX_BODY_DEPTH + "1" + "}" * MAX_BODY_DEPTH + "}", "nested deeper"),
    ],
)
def test_a_malformed_json_body_is_422_naming_the_body(raw, message):
    status, body = call("POST", "/things", raw)
    assert message in assert_error(status, body, 422, "validation_failed", "body")


def test_nesting_up_to_the_limit_is_fine():
    nested = '{"x": ' * (MAX_BODY_DEPTH - 2) + "1" + "}" * (MAX_BODY_DEPTH - 2)
    status, body = call("POST", "/things", '{"name": "deep", "extra": ' + nested + "}")
    assert status == 201, body


def test_bytes_that_are_not_utf8_are_422_naming_the_body():
    status, body = call("POST", "/things", b'{"name": "\xff\xfe"}')
    assert "not valid UTF-8" in assert_error(status, body, 422, "validation_failed", "body")


def test_a_base64_body_that_is_not_base64_is_422():
    answer = app.resolve(event("POST", "/things", '{"name": "a"}') | {"isBase64Encoded": True, "body": "!!"}, None)
    assert answer["statusCode"] == 422


def test_a_json_body_sent_base64_encoded_is_read():
    assert call("POST", "/things", b'{"name": "bytes"}')[0] == 201


def test_a_wrong_field_type_names_the_field():
    status, body = call("POST", "/things", '{"name": 3}')
    assert_error(status, body, 422, "validation_failed", "name")
    status, body = call("POST", "/things", '{"name": "a", "unknown": {"deep": [1]}, "extra": []}')
    assert_error(status, body, 422, "validation_failed", "extra")


def test_an_optional_body_may_be_left_out_but_not_malformed():
    assert call("POST", "/things/t-1/notes", None) == (200, {"text": "none"})
    assert call("POST", "/things/t-1/notes", '{"text": "hi"}') == (200, {"text": "hi"})
    status, body = call("POST", "/things/t-1/notes", "[1]")
    assert_error(status, body, 422, "validation_failed", "body")
    status, body = call("POST", "/things/t-1/notes", "{}", content_type="text/csv")
    assert_error(status, body, 415, "unsupported_media_type", "Content-Type")


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/things/has%23hash", None, "thing_id"),
        ("/things/" + "x" * 65, None, "thing_id"),
        ("/things/t-1", {"limit": "many"}, "limit"),
        ("/things/t-1", {"limit": "0"}, "limit"),
        ("/things/t-1", {"limit": "101"}, "limit"),
        ("/things/t-1", {"limit": "1e3"}, "limit"),
    ],
)
def test_path_and_query_values_are_validated_by_type(path, query, field):
    answer = app.resolve(event("GET", path, query=query) | {"pathParameters": {"thing_id": path.split("/")[2]}}, None)
    body = json.loads(answer["body"])
    assert_error(answer["statusCode"], body, 422, "validation_failed", field)


def test_a_valid_path_and_query_pass():
    assert call("GET", "/things/t-1", query={"limit": "5"}) == (200, {"name": "t-1:5", "extra": {}})


def test_a_route_that_reads_its_own_body_gets_422_for_bytes_that_are_not_utf8():
    status, body = call("POST", "/things/t-1/raw", b"\xff\xfe", content_type="text/csv")
    assert_error(status, body, 422, "validation_failed", "body")


def test_claims_without_a_person_are_401_and_without_a_role_403():
    status, body = call("GET", "/things/t-1", claims={"cognito:groups": "org_admin"})
    assert_error(status, body, 401, "unauthorized", None)
    status, body = call("GET", "/things/t-1", claims={"custom:person_id": "p", "cognito:groups": "nobody"})
    assert_error(status, body, 403, "forbidden", None)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.Unauthorized("who are you"), 401, "unauthorized"),
        (errors.Forbidden("not yours", field="org_id"), 403, "forbidden"),
        (errors.NotFound("no such thing", field="thing_id"), 404, "not_found"),
        (errors.Conflict("changed meanwhile", field="version"), 409, "conflict"),
        (errors.SlotTaken("taken", field="start"), 409, "conflict"),
        (errors.InvalidInput("too late", field="start"), 422, "invalid"),
        (errors.AllowanceExhausted("none left", field="cap", details={"resets": "2026-07"}), 422, "policy_refused"),
        (errors.NoEligibleCoachError("nobody fits"), 422, "no_eligible_coach"),
    ],
)  # fmt: skip
def test_each_domain_error_maps_to_its_status_code_and_field(error, status, code):
    RAISED["t-err"] = error
    answered, body = call("POST", "/things/t-err/refuse")
    assert_error(answered, body, status, code, error.field)
    assert body["error"]["message"] == error.message
    assert body["error"].get("details", {}) == error.details


def test_a_bug_is_not_disguised_as_a_client_error():
    RAISED["t-bug"] = ValueError("a bug in the handler")
    with pytest.raises(ValueError, match="a bug in the handler"):
        app.resolve(event("POST", "/things/t-bug/refuse"), None)
    RAISED["t-deep"] = RecursionError("a bug that recursed")
    with pytest.raises(RecursionError):
        app.resolve(event("POST", "/things/t-deep/refuse"), None)


def test_error_body_matches_the_documented_schema():
    jsonschema.validate(error_body("conflict", "x"), ERROR_SCHEMA)
    jsonschema.validate(error_body("invalid", "x", [{"field": "a", "message": "b"}]), ERROR_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"error": {"code": "x", "message": "y"}}, ERROR_SCHEMA)


# --- The documented responses, from each route's method, path and signature ---


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(app.get_openapi_json_schema(title="test", version="1"))


def responses(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return dict(document["paths"][path][method]["responses"])


def test_each_operation_documents_the_errors_it_can_answer(document):
    assert sorted(responses(document, "get", "/things/health")) == ["200"]
    assert sorted(responses(document, "get", "/things/{thing_id}")) == ["200", "401", "403", "404", "422"]
    assert sorted(responses(document, "post", "/things")) == ["201", "401", "403", "404", "409", "415", "422"]
    assert sorted(responses(document, "post", "/things/{thing_id}/refuse")) == [
        "200",
        "401",
        "403",
        "404",
        "409",
        "422",
    ]


def test_errors_use_the_error_schema_and_401_also_the_gateways(document):
    ref = {"$ref": "#/components/schemas/Error"}
    for method, path in [("get", "/things/{thing_id}"), ("post", "/things")]:
        for status, response in responses(document, method, path).items():
            schema = response["content"]["application/json"]["schema"]
            if status == "401":
                assert schema == {"oneOf": [ref, {"$ref": "#/components/schemas/GatewayError"}]}
            elif status.startswith("4"):
                assert schema == ref
                assert response["description"]
    schemas = document["components"]["schemas"]
    assert {"Error", "ErrorDetail", "FieldError", "GatewayError"} <= set(schemas)
    assert not {"HTTPValidationError", "ValidationError", "ResponseValidationError"} & set(schemas)


def test_created_routes_document_201_and_file_routes_their_media_type(document):
    created_response = responses(document, "post", "/things")["201"]
    assert created_response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Thing"}
    ics = responses(document, "get", "/things/{thing_id}/card.ics")["200"]
    assert ics["content"] == {"text/calendar": {"schema": {"type": "string"}}}


def test_tags_are_described(document):
    assert [tag["name"] for tag in document["tags"]] == ["health", "orgs"]
    assert all(tag["description"] for tag in document["tags"])


def test_a_tag_without_a_description_is_refused():
    other = rest_resolver()
    other.get("/x", summary="x", tags=["misc"])(lambda: {"x": 1})
    with pytest.raises(ValueError, match="misc"):
        other.get_openapi_json_schema()


def test_responses_a_route_declares_itself_win():
    other = rest_resolver()

    @other.get(
        "/y/<y_id>", summary="y", tags=["orgs"], responses={200: {"description": "a y"}, 410: {"description": "gone"}}
    )
    def get_y(caller: Caller, y_id: PathId) -> Note:
        return Note()

    declared = json.loads(other.get_openapi_json_schema())["paths"]["/y/{y_id}"]["get"]["responses"]
    assert declared["200"]["description"] == "a y"
    assert declared["410"]["description"] == "gone"
    assert "404" in declared
