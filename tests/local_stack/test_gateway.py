"""The local gateway in-process against the fixture template, its handlers and DynamoDB Local."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from coaching_local import tokens
from coaching_local.dynamodb_local import ensure_tables
from coaching_local.gateway import LocalGateway, build_openapi
from coaching_local.server import make_http_server
from coaching_local.template import load_template

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parent / "fixture_stack" / "template.yaml"
KEY = os.environ["LOCAL_DEV_SIGNING_KEY"].encode()


@pytest.fixture(scope="module")
def sink_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sink")


@pytest.fixture(scope="module")
def gateway(dynamodb_local: str, sink_dir: Path) -> Iterator[LocalGateway]:
    ensure_tables(dynamodb_local, load_template(FIXTURE), "test")
    saved = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    gw = LocalGateway(
        FIXTURE,
        port=0,
        prefix="test",
        dynamodb_endpoint=dynamodb_local,
        env={"FIXTURE_SINK_DIR": str(sink_dir)},
        signing_key=KEY,
        retry_base_delay=0.01,
        run_scheduler=False,
    )
    with gw:
        yield gw
    after = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    assert after == saved, "stop() must restore the environment it changed"


def bearer(
    roles: str | list[str] = "employee", org: str | None = "org-1", person: str | None = "p-1"
) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.dev_token(roles, org, person, KEY)}"}


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_public_route_runs_real_handler_with_context(gateway: LocalGateway) -> None:
    response = requests.get(f"{gateway.url}/public", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["greeting"] == "hello"
    assert body["service"] == "echo"  # per-function env applied while that function imported
    assert body["context"]["function_name"] == "test-EchoFunction"
    assert body["context"]["memory_limit_in_mb"] == 1024
    assert body["context"]["invoked_function_arn"].endswith(":function:test-EchoFunction")
    assert 0 < body["context"]["remaining_ms"] <= 10_000
    assert response.headers["x-amzn-RequestId"]


def test_proxy_event_shape(gateway: LocalGateway) -> None:
    response = requests.get(
        f"{gateway.url}/echo/a%20b%2Fc?x=1&tag=a&tag=b&empty=",
        headers={**bearer(["employee", "leader"]), "X-Custom": "v"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # Powertools routes on the (still encoded) path, as it does behind the real REST API; the
    # decoded value is in pathParameters.
    assert body["item_id"] == "a%20b%2Fc"
    event = body["event"]
    assert event["resource"] == "/echo/{item_id}"
    assert event["path"] == "/echo/a%20b%2Fc"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"item_id": "a b/c"}
    assert event["queryStringParameters"] == {"x": "1", "tag": "b", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"x": ["1"], "tag": ["a", "b"], "empty": [""]}
    assert event["headers"]["X-Custom"] == "v"
    assert event["multiValueHeaders"]["X-Custom"] == ["v"]
    assert event["stageVariables"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["resourcePath"] == "/echo/{item_id}"
    assert ctx["httpMethod"] == "GET"
    assert ctx["path"] == "/test/echo/a%20b%2Fc"
    assert ctx["stage"] == "test"
    assert ctx["requestId"] == response.headers["x-amzn-RequestId"]
    assert abs(ctx["requestTimeEpoch"] / 1000 - time.time()) < 30
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["accountId"] == "123456789012"
    assert ctx["apiId"]
    claims = ctx["authorizer"]["claims"]
    assert all(isinstance(v, str) for v in claims.values())
    assert claims["cognito:groups"] == "employee,leader"
    assert claims["custom:org_id"] == "org-1"
    assert claims["custom:person_id"] == "p-1"
    assert claims["token_use"] == "id"
    assert claims["exp"].endswith(str(datetime.now(UTC).year)) or "UTC" in claims["exp"]


def test_no_query_and_public_route_have_no_authorizer(gateway: LocalGateway) -> None:
    event = requests.get(f"{gateway.url}/echo/x", headers=bearer(), timeout=10).json()["event"]
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_literal_segment_beats_parameter(gateway: LocalGateway) -> None:
    assert requests.get(f"{gateway.url}/echo/static", headers=bearer(), timeout=10).json() == {"static": True}


def test_bodies_text_and_binary(gateway: LocalGateway) -> None:
    text = requests.post(f"{gateway.url}/echo", json={"a": "ü"}, headers=bearer(), timeout=10).json()["event"]
    assert json.loads(text["body"]) == {"a": "ü"}
    assert text["isBase64Encoded"] is False
    blob = bytes(range(256))
    binary = requests.post(
        f"{gateway.url}/echo", data=blob, timeout=10, headers={**bearer(), "Content-Type": "application/octet-stream"}
    ).json()["event"]
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == blob


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": f"Bearer {tokens.dev_token('employee', 'o', 'p', b'wrong-key' * 4)}"},
        {"Authorization": f"Bearer {tokens.dev_token('employee', 'o', 'p', KEY, ttl_seconds=-1)}"},
    ],
)
def test_unauthorized(gateway: LocalGateway, headers: dict[str, str]) -> None:
    response = requests.get(f"{gateway.url}/echo/x", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_raw_token_without_bearer_is_accepted(gateway: LocalGateway) -> None:
    token = tokens.dev_token("coach", "o", "p", KEY)
    assert requests.get(f"{gateway.url}/echo/x", headers={"Authorization": token}, timeout=10).status_code == 200


def test_unknown_path_and_wrong_method(gateway: LocalGateway) -> None:
    missing = requests.get(f"{gateway.url}/nope", timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {"message": "Missing Authentication Token"}
    wrong = requests.delete(f"{gateway.url}/public", timeout=10)
    assert wrong.status_code == 403
    assert wrong.json() == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "MKCOL", "LOCK"])
@pytest.mark.parametrize("path", ["/public", "/echo/x", "/nope"])
def test_methods_api_gateway_does_not_know_are_403_never_501(gateway: LocalGateway, method: str, path: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        assert response.status == 403
        assert json.loads(response.read()) == {"message": "Missing Authentication Token"}
        assert response.getheader("x-amzn-RequestId")
    finally:
        connection.close()


def test_accepted_connections_have_tcp_nodelay() -> None:
    """Headers and body leave in two sends; without TCP_NODELAY the body can wait for a delayed ACK."""

    def probe(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        value = environ["werkzeug.socket"].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        body = str(value).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    server = make_http_server("127.0.0.1", 0, probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        answers = {requests.get(f"http://127.0.0.1:{server.port}/", timeout=10).text for _ in range(3)}
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert answers != {"0"}
    assert len(answers) == 1


def test_handler_exception_is_502_and_logged(gateway: LocalGateway, caplog: pytest.LogCaptureFixture) -> None:
    response = requests.get(f"{gateway.url}/boom", timeout=10)
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}
    assert any("boom: fixture failure" in (r.exc_text or "") for r in caplog.records if r.levelname == "ERROR")


def test_validation_error_passes_through(gateway: LocalGateway) -> None:
    response = requests.put(f"{gateway.url}/items/v1", json={"size": 1}, headers=bearer(), timeout=10)
    assert response.status_code == 422  # Powertools' own validation answer, untouched


def test_concurrent_requests_overlap(gateway: LocalGateway) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: requests.get(f"{gateway.url}/slow", timeout=30).json(), range(20)))
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"20 x 0.5 s requests took {elapsed:.1f}s: they did not run concurrently"
    spans = sorted((r["start"], r["end"]) for r in results)
    max_overlap = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert max_overlap >= 8
    assert len({r["module"] for r in results}) >= 8  # separate containers, separate module objects
    assert gateway.pools["EchoFunction"].size <= 16


def test_fifty_concurrent_dynamodb_requests(gateway: LocalGateway) -> None:
    def put_then_get(i: int) -> dict[str, Any]:
        put = requests.put(f"{gateway.url}/items/c{i}", json={"name": f"n{i}", "size": i}, headers=bearer(), timeout=60)
        assert put.status_code == 200, put.text
        return requests.get(f"{gateway.url}/items/c{i}", headers=bearer(), timeout=60).json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(put_then_get, range(50)))
    assert results == [{"found": True, "name": f"n{i}", "size": i} for i in range(50)]


def test_handler_put_events_delivers_envelope_to_matching_rule(gateway: LocalGateway, sink_dir: Path) -> None:
    response = requests.post(
        f"{gateway.url}/emit",
        headers=bearer(),
        timeout=10,
        json={"source": "fixture.echo", "detail-type": "ThingHappened", "detail": {"size": 3, "name": "t"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["FailedEntryCount"] == 0
    event_id = body["Entries"][0]["EventId"]
    stored = wait_for(lambda: (sink_dir / f"sink-{event_id}.json").is_file())
    assert stored
    event = json.loads((sink_dir / f"sink-{event_id}.json").read_text())
    assert event["version"] == "0"
    assert event["id"] == event_id
    assert event["source"] == "fixture.echo"
    assert event["detail-type"] == "ThingHappened"
    assert event["detail"] == {"size": 3, "name": "t"}
    assert event["account"] == "123456789012"
    assert event["region"] == "eu-west-1"
    assert event["resources"] == []
    assert datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")  # noqa: DTZ007 - format check only
    record = wait_for(lambda: next((d for d in gateway.deliveries() if d["event_id"] == event_id), None))
    assert record["function"] == "SinkFunction"
    assert record["rule"] == "ThingHappened"
    assert record["status"] == "succeeded"
    assert record["attempts"] == 1


def _events_client(gateway: LocalGateway) -> Any:
    return boto3.client(
        "events", endpoint_url=gateway.url, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_put_events_validation_and_non_matching(gateway: LocalGateway, sink_dir: Path) -> None:
    client = _events_client(gateway)
    bus = "coaching-platform-test"
    result = client.put_events(
        Entries=[
            {"EventBusName": bus, "Source": "fixture.echo", "DetailType": "ThingHappened", "Detail": '{"size": 0}'},
            {"EventBusName": bus, "DetailType": "X", "Detail": "{}"},
            {"EventBusName": bus, "Source": "s", "DetailType": "X", "Detail": "not json"},
            {
                "EventBusName": f"arn:aws:events:eu-west-1:123456789012:event-bus/{bus}",
                "Source": "s",
                "DetailType": "X",
                "Detail": "{}",
            },
        ]
    )
    assert result["FailedEntryCount"] == 2
    entries = result["Entries"]
    assert "EventId" in entries[0]
    assert entries[1]["ErrorCode"] == "InvalidArgument"
    assert entries[2]["ErrorCode"] == "MalformedDetail"
    assert "EventId" in entries[3]
    time.sleep(0.3)
    assert not (sink_dir / f"sink-{entries[0]['EventId']}.json").exists()  # size 0 fails numeric > 0
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.put_events(Entries=[{"EventBusName": "nope", "Source": "s", "DetailType": "X", "Detail": "{}"}])


def test_failing_target_is_retried_then_dead_lettered(gateway: LocalGateway, sink_dir: Path) -> None:
    result = _events_client(gateway).put_events(
        Entries=[
            {
                "EventBusName": "coaching-platform-test",
                "Source": "fixture.flaky",
                "DetailType": "Anything",
                "Detail": json.dumps({"n": 1}),
            }
        ]
    )
    event_id = result["Entries"][0]["EventId"]
    dead = wait_for(lambda: next((d for d in gateway.dead_letters() if d["event_id"] == event_id), None))
    assert dead["function"] == "FlakyFunction"
    assert dead["attempts"] == 3  # 1 + MaximumRetryAttempts: 2
    assert "flaky fixture refuses" in dead["error"]
    assert dead["event"]["detail"] == {"n": 1}
    assert len(list(sink_dir.glob(f"flaky-{event_id}-*"))) == 3
    record = next(d for d in gateway.deliveries() if d["event_id"] == event_id)
    assert (record["status"], record["attempts"]) == ("failed", 3)
    over_http = requests.get(f"{gateway.url}/_local/dead-letters", timeout=10).json()
    assert any(d["event_id"] == event_id for d in over_http)


def test_schedules_listing_and_fire(gateway: LocalGateway) -> None:
    listing = {s["name"]: s for s in requests.get(f"{gateway.url}/_local/schedules", timeout=10).json()}
    assert set(listing) == {"Tick", "monthly-invoices-test", "Legacy", "Paused"}
    monthly = datetime.fromisoformat(listing["monthly-invoices-test"]["next_fire"])
    assert (monthly.day, monthly.hour, monthly.utcoffset() in (timedelta(hours=1), timedelta(hours=2))) == (1, 3, True)
    assert listing["Paused"]["next_fire"] is None

    fired = requests.post(f"{gateway.url}/_local/schedules/Tick/fire", timeout=10)
    assert fired.status_code == 200
    body = fired.json()
    assert body["status"] == "succeeded"
    assert body["function"] == "JobsFunction"
    assert body["result"]["received"] == {"job": "tick"}
    assert body["result"]["service"] == "jobs"
    # By schedule Name, and the scheduled-rule envelope when there is no Input.
    assert gateway.fire("monthly-invoices-test")["result"]["received"] == {"job": "monthly"}
    legacy = gateway.fire("JobsFunction.Legacy")["result"]["received"]
    assert legacy["detail-type"] == "Scheduled Event"
    assert legacy["source"] == "aws.events"
    assert requests.post(f"{gateway.url}/_local/schedules/nope/fire", timeout=10).status_code == 404


def test_scheduler_fires_due_schedules(gateway: LocalGateway) -> None:
    state = gateway.find_schedule("Tick")
    before = len([d for d in gateway.deliveries() if d["kind"] == "schedule" and d["rule"] == "Tick"])
    now = datetime.now(UTC)
    state.next_fire = now - timedelta(seconds=1)
    assert gateway.run_due(now) == ["Tick"]
    assert state.next_fire is not None
    assert state.next_fire > now
    wait_for(lambda: len([d for d in gateway.deliveries() if d["kind"] == "schedule" and d["rule"] == "Tick"]) > before)


def test_control_routes(gateway: LocalGateway) -> None:
    health = requests.get(f"{gateway.url}/_local/health", timeout=10).json()
    assert health["status"] == "ok"
    assert "GET /echo/{item_id} → EchoFunction" in health["routes"]
    assert requests.get(f"{gateway.url}/_local/deliveries", timeout=10).status_code == 200
    assert requests.get(f"{gateway.url}/_local/nope", timeout=10).status_code == 404


def test_openapi_and_docs(gateway: LocalGateway) -> None:
    doc = requests.get(f"{gateway.url}/openapi.json", timeout=30).json()
    assert doc["info"]["title"] == "coaching-platform API"
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert "/echo/{item_id}" in doc["paths"]
    assert doc["paths"]["/public"]["get"]["security"] == []
    assert doc["paths"]["/echo/{item_id}"]["get"]["security"] == [{"bearerAuth": []}]
    assert "Thing" in doc["components"]["schemas"]
    docs = requests.get(f"{gateway.url}/docs", timeout=10)
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert "/openapi.json" in docs.text


def test_docs_use_only_local_swagger_ui_assets(gateway: LocalGateway) -> None:
    html = requests.get(f"{gateway.url}/docs", timeout=10).text
    assert "://" not in html  # no CDN, no absolute URL of any kind: works offline
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert {"/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"} <= set(assets)
    assert all(asset.startswith("/docs/static/") for asset in assets), assets
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for asset in assets:
        response = requests.get(f"{gateway.url}{asset}", timeout=10)
        assert response.status_code == 200, asset
        assert kinds[Path(asset).suffix] in response.headers["Content-Type"], (asset, response.headers)
        assert len(response.content) > 100
    assert requests.get(f"{gateway.url}/docs/static/nope.js", timeout=10).status_code == 404
    assert requests.get(f"{gateway.url}/docs/static/..%2F..%2Fpackage.json", timeout=10).status_code == 404


def test_build_openapi_skips_functions_the_api_never_invokes(caplog: pytest.LogCaptureFixture) -> None:
    doc = build_openapi(FIXTURE)
    assert set(doc["paths"]) >= {"/public", "/echo", "/echo/{item_id}", "/items/{item_id}"}
    # JobsFunction has only rules and schedules: nothing to document, and nothing to warn about.
    assert not any("JobsFunction" in r.getMessage() for r in caplog.records)
    assert build_openapi(FIXTURE) == doc  # deterministic


def test_stop_is_clean_and_idempotent(dynamodb_local: str, sink_dir: Path) -> None:
    gw = LocalGateway(
        FIXTURE,
        port=0,
        prefix="test",
        dynamodb_endpoint=dynamodb_local,
        signing_key=KEY,
        env={"FIXTURE_SINK_DIR": str(sink_dir)},
    )
    gw.start()
    url = gw.url
    assert requests.get(f"{url}/public", timeout=10).status_code == 200
    gw.stop()
    gw.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/public", timeout=2)
