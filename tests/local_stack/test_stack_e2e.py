"""The stack as a subprocess (`python -m coaching_local serve`), the CLI, and the real template."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from coaching_local import tokens
from coaching_local.gateway import build_openapi, dump_openapi
from coaching_local.paths import default_template
from coaching_local.template import function_specs, load_template
from coaching_local.testing import StackProcess

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).parent / "fixture_stack" / "template.yaml"
KEY = os.environ["LOCAL_DEV_SIGNING_KEY"].encode()


def _cli(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coaching_local", *args], capture_output=True, text=True, timeout=120, check=check
    )


def _placeholder_handlers() -> list[str]:
    """Real handler files that are missing or still empty placeholders."""
    specs = function_specs(load_template(default_template()))
    return [
        str(s.handler_file)
        for s in specs
        if not s.handler_file.is_file() or "lambda_handler" not in s.handler_file.read_text(encoding="utf-8")
    ]


needs_real_handlers = pytest.mark.skipif(
    bool(_placeholder_handlers()),
    reason=f"real handlers missing or placeholders: {', '.join(_placeholder_handlers())}",
)


@pytest.fixture(scope="module")
def fixture_stack(dynamodb_local: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    sink = tmp_path_factory.mktemp("e2e-sink")
    stack = StackProcess(
        dynamodb_endpoint=dynamodb_local,
        prefix="test",
        template=FIXTURE,
        signing_key=KEY,
        env={"FIXTURE_SINK_DIR": str(sink)},
    ).start()
    yield stack
    assert stack.stop() == 0, "".join(stack.output[-50:])


def test_serve_prints_ready_and_serves(fixture_stack: StackProcess) -> None:
    assert fixture_stack.url.startswith("http://127.0.0.1:")
    assert requests.get(f"{fixture_stack.url}/public", timeout=10).json()["greeting"] == "hello"
    token = fixture_stack.token("employee", org_id="org-9", person_id="p-9")
    event = requests.get(
        f"{fixture_stack.url}/echo/x", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()["event"]
    assert event["requestContext"]["authorizer"]["claims"]["custom:org_id"] == "org-9"
    assert requests.get(f"{fixture_stack.url}/echo/x", timeout=10).status_code == 401


def test_subprocess_eventbridge_and_fire(fixture_stack: StackProcess) -> None:
    events = boto3.client(
        "events",
        endpoint_url=fixture_stack.url,
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    result = events.put_events(
        Entries=[
            {
                "EventBusName": "coaching-platform-test",
                "Source": "fixture.echo",
                "DetailType": "ThingHappened",
                "Detail": json.dumps({"size": 2}),
            }
        ]
    )
    event_id = result["Entries"][0]["EventId"]
    record = fixture_stack.wait_for_delivery(lambda d: d["event_id"] == event_id)
    assert (record["function"], record["status"]) == ("SinkFunction", "succeeded")
    fired = fixture_stack.fire("Tick")
    assert fired["status"] == "succeeded"
    assert fired["result"]["received"] == {"job": "tick"}


def test_fire_cli_exit_codes(fixture_stack: StackProcess) -> None:
    ok = _cli("fire", "Tick", "--url", fixture_stack.url)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "succeeded"
    missing = _cli("fire", "NoSuchSchedule", "--url", fixture_stack.url)
    assert missing.returncode == 1


def test_tracebacks_are_detected(fixture_stack: StackProcess) -> None:
    before = len(fixture_stack.tracebacks())
    assert requests.get(f"{fixture_stack.url}/boom", timeout=10).status_code == 502
    deadline = time.monotonic() + 5
    while len(fixture_stack.tracebacks()) == before and time.monotonic() < deadline:
        time.sleep(0.05)  # the output reader thread may lag the HTTP answer slightly
    assert "boom: fixture failure" in fixture_stack.tracebacks()[-1]


def test_stream_record_committed_before_a_crash_is_delivered_once_after_restart(
    dynamodb_local: str, tmp_path: Path
) -> None:
    """The outbox promise: a change committed while its event is unpublished is published after a crash."""

    def start(*, paused: bool = False) -> StackProcess:
        return StackProcess(
            dynamodb_endpoint=dynamodb_local,
            prefix="restart",  # its own tables and checkpoints, apart from the module's stack
            template=FIXTURE,
            signing_key=KEY,
            env={"FIXTURE_SINK_DIR": str(tmp_path)},
            scheduler=False,
            streams_paused=paused,
        ).start()

    ddb = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_local,
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )

    def put(item_id: str) -> None:
        item = {"pk": {"S": item_id}, "id": {"S": item_id}, "kind": {"S": "outbox"}}
        ddb.put_item(TableName="restart-OutboxTable", Item=item)

    def relayed() -> list[str]:
        path = tmp_path / "relayed.jsonl"
        return [json.loads(line)["id"] for line in path.read_text().splitlines()] if path.exists() else []

    first = start()
    try:
        put("before-crash")
        assert first.drain_streams()["drained"] is True
        assert first.pause_stream("Outbox")["paused"] is True
        put("committed-not-published")
        status, body = first.call("POST", "/_local/streams/drain?timeout=0.5")
        assert (status, body["drained"], body["paused"]) == (409, False, ["RelayFunction.Outbox"])
    finally:
        first.kill()
    assert relayed() == ["before-crash"]
    second = start(paused=True)
    try:
        assert second.drain_streams(timeout=0.5)["paused"] == ["RelayFunction.Outbox"]
        assert relayed() == ["before-crash"]
        assert second.resume_stream("RelayFunction.Outbox")["paused"] is False
        result = second.drain_streams()
        assert result["drained"] is True, result
        (state,) = second.streams()
        assert (state["paused"], state["pending"], state["dead_lettered"]) == (False, 0, 0)
    finally:
        assert second.stop() == 0
    assert relayed() == ["before-crash", "committed-not-published"]


def test_token_cli_verifies() -> None:
    result = _cli("token", "--role", "employee", "--role", "leader", "--org", "o1", "--person", "p1")
    assert result.returncode == 0, result.stderr
    claims = tokens.verify(result.stdout.strip(), KEY)
    assert claims["cognito:groups"] == ["employee", "leader"]
    assert claims["custom:org_id"] == "o1"
    assert _cli("token", "--role", "wizard").returncode == 2


def test_tables_cli_is_idempotent(dynamodb_local: str) -> None:
    for _ in range(2):
        result = _cli("tables", "--endpoint", dynamodb_local, "--prefix", "cli")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"MainTable": "cli-MainTable", "ConfidentialTable": "cli-ConfidentialTable"}


def test_openapi_cli_write_and_check(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    assert _cli("openapi", "--template", str(FIXTURE), "--write", str(target)).returncode == 0
    text = target.read_text(encoding="utf-8")
    assert text == dump_openapi(build_openapi(FIXTURE))
    assert text.endswith("}\n")
    assert _cli("openapi", "--template", str(FIXTURE), "--write", str(target), "--check").returncode == 0
    target.write_text(text.replace("coaching-platform API", "stale"), encoding="utf-8")
    assert _cli("openapi", "--template", str(FIXTURE), "--write", str(target), "--check").returncode == 1


@needs_real_handlers
def test_real_template_health_routes(local_stack: StackProcess) -> None:
    specs = function_specs(load_template(default_template()), prefix="test")
    public = [r.path for s in specs for r in s.routes if r.auth_none and r.method == "GET"]
    assert public
    for path in public:
        response = requests.get(f"{local_stack.url}{path}", timeout=30)
        assert response.status_code == 200, (path, response.text)
    protected = next(r.path for s in specs for r in s.routes if r.requires_auth and "{" not in r.path)
    assert requests.get(f"{local_stack.url}{protected}", timeout=30).status_code == 401


@needs_real_handlers
def test_real_template_openapi() -> None:
    doc = build_openapi(default_template())
    assert doc["info"]["title"] == "coaching-platform API"
    routes = {(r.path, r.method.lower()) for s in function_specs(load_template(default_template())) for r in s.routes}
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert routes <= documented, f"template routes missing from the OpenAPI document: {sorted(routes - documented)}"
