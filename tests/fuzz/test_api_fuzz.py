"""Property-based fuzzing of every operation with every role's token (Schemathesis, against /openapi.json).

Each operation gets the examples in the document, the coverage phase (boundary and invalid values of each
parameter and body field, missing and extra ones) and FUZZ_MAX_EXAMPLES generated cases, positive and
negative, for each role. Every answer must hold the contract: no server error, a documented status code
and media type, a body that matches its declared schema (formats included), and malformed input refused.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
import schemathesis
from schemathesis.core import NotSet

from .conftest import NEGATIVE_COVERAGE_ROLE

pytestmark = pytest.mark.fuzz

schema = schemathesis.pytest.from_fixture("fuzz_schema")

# What API Gateway answers when a request matches no resource or method (the coverage phase sends methods the
# path does not declare, and an empty path parameter makes `/bookings//cancel`): the request never reached the
# operation being tested, so its contract does not apply; the gateway's answer is a 403 or 404, never a 5xx.
NO_RESOURCE = {"message": "Missing Authentication Token"}


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


# Bodies the API refuses for their media type, whatever they hold: the fuzzer's 502 was multipart/form-data
# without a boundary. Each body the fuzzing phase generates is sent again with one of them, by the role whose
# run covers invalid input (the media type is checked before the role).
WRONG_MEDIA_TYPES = (
    "multipart/form-data",
    "multipart/form-data; boundary=fuzz",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/xml",
    "application/json; charset=latin-1",
)


def generated_body(case: Any) -> bool:
    """A body the fuzzing phase generated (the coverage phase's bodies are mostly invalid on purpose)."""
    fuzzing = case.meta is not None and case.meta.phase.name.value == "fuzzing"
    return fuzzing and bool(case.operation.get_request_payload_content_types()) and not isinstance(case.body, NotSet)


@schema.parametrize()
def test_every_answer_keeps_the_contract(case: Any, fuzz_progress: Any, request: pytest.FixtureRequest) -> None:
    role = request.node.callspec.params.get("fuzz_schema", "?")
    response = case.call()
    fuzz_progress.count(role, case.operation.label, response.status_code)
    if response.status_code in (403, 404) and _json(response) == NO_RESOURCE:
        undeclared_method = case.method.upper() != case.operation.method.upper()
        assert undeclared_method or "//" in response.request.path_url, f"{case.method} {response.request.path_url}"
        return
    case.validate_response(response)
    if role == NEGATIVE_COVERAGE_ROLE and generated_body(case):
        media_type = WRONG_MEDIA_TYPES[zlib.crc32(repr(case.body).encode()) % len(WRONG_MEDIA_TYPES)]
        refused = case.call(headers={"Content-Type": media_type})
        fuzz_progress.count(role, case.operation.label, refused.status_code)
        assert refused.status_code == 415, f"{media_type}: {refused.status_code} {refused.text[:300]}"
        case.validate_response(refused)
