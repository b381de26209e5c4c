"""Template parsing: short tags, tables, functions, routes, rules and schedules."""

from __future__ import annotations

from pathlib import Path

import pytest
from coaching_local.paths import default_template
from coaching_local.template import (
    TemplateError,
    event_buses,
    function_specs,
    load_template,
    local_table_name,
    table_definitions,
)

FIXTURE = Path(__file__).parent / "fixture_stack" / "template.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_short_tags_become_long_form(tmp_path: Path) -> None:
    template = load_template(
        _write(
            tmp_path,
            """
Resources:
  X:
    Type: Custom
    Properties:
      Ref: !Ref Thing
      Dotted: !GetAtt Pool.Arn
      DeepAttr: !GetAtt Db.Endpoint.Address
      ListAttr: !GetAtt [Pool, Arn]
      Sub: !Sub "a-${Stage}"
      SubList: !Sub ["${A}-x", {A: !Ref Stage}]
      Join: !Join ["-", [a, !Ref Stage]]
      If: !If [IsProd, 1, 2]
      Select: !Select [0, !Split [",", "a,b"]]
      Cond: !Condition IsProd
      B64: !Base64 text
      Map: !FindInMap [M, K, V]
""",
        )
    )
    props = template["Resources"]["X"]["Properties"]
    assert props["Ref"] == {"Ref": "Thing"}
    assert props["Dotted"] == {"Fn::GetAtt": ["Pool", "Arn"]}
    assert props["DeepAttr"] == {"Fn::GetAtt": ["Db", "Endpoint.Address"]}
    assert props["ListAttr"] == {"Fn::GetAtt": ["Pool", "Arn"]}
    assert props["Sub"] == {"Fn::Sub": "a-${Stage}"}
    assert props["SubList"] == {"Fn::Sub": ["${A}-x", {"A": {"Ref": "Stage"}}]}
    assert props["Join"] == {"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}
    assert props["If"] == {"Fn::If": ["IsProd", 1, 2]}
    assert props["Select"] == {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}
    assert props["Cond"] == {"Condition": "IsProd"}
    assert props["B64"] == {"Fn::Base64": "text"}
    assert props["Map"] == {"Fn::FindInMap": ["M", "K", "V"]}
    assert template.path == (tmp_path / "template.yaml").resolve()


def test_not_a_template(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no Resources"):
        load_template(_write(tmp_path, "just: a mapping\n"))


def test_table_definitions_from_fixture() -> None:
    definitions = {d["TableName"]: d for d in table_definitions(load_template(FIXTURE), lambda lid: f"t-{lid}")}
    assert set(definitions) == {"t-MainTable", "t-OutboxTable"}
    main = definitions["t-MainTable"]
    assert "StreamSpecification" not in main
    assert definitions["t-OutboxTable"]["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert local_table_name("t", "MainTable") == "t-MainTable"
    assert main["TableName"] == "t-MainTable"
    assert main["BillingMode"] == "PAY_PER_REQUEST"
    assert main["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {a["AttributeName"] for a in main["AttributeDefinitions"]} == {"pk", "sk", "gsi1pk", "gsi1sk"}
    (gsi,) = main["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1"
    assert gsi["Projection"] == {"ProjectionType": "ALL"}


def test_real_template_tables() -> None:
    defs = table_definitions(load_template(default_template()), lambda lid: f"test-{lid}")
    assert sorted(d["TableName"] for d in defs) == ["test-ConfidentialTable", "test-MainTable"]
    # SSE/PITR/KMS settings are deployment concerns and must not leak into create_table.
    assert all(
        set(d)
        <= {
            "TableName",
            "KeySchema",
            "AttributeDefinitions",
            "BillingMode",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "StreamSpecification",
        }
        for d in defs
    )


def test_function_specs_fixture() -> None:
    specs = {s.logical_id: s for s in function_specs(load_template(FIXTURE), prefix="t")}
    assert set(specs) == {"EchoFunction", "SinkFunction", "FlakyFunction", "JobsFunction", "RelayFunction"}
    echo = specs["EchoFunction"]
    assert echo.code_dir == (FIXTURE.parent / "functions" / "echo").resolve()
    assert echo.handler == "app.lambda_handler"
    assert echo.handler_file == echo.code_dir / "app.py"
    assert echo.memory_size == 1024
    assert specs["SinkFunction"].memory_size == 256
    assert echo.timeout == 10
    assert echo.environment == {
        "MAIN_TABLE_NAME": "t-MainTable",
        "EVENT_BUS_NAME": "coaching-platform-t",  # Stage defaults to the prefix locally
        "GREETING": "hello",  # a parameter's Default
        "BUS_ARN": "arn:aws:events:eu-west-1:123456789012:event-bus/coaching-platform-t",
        "POWERTOOLS_SERVICE_NAME": "echo",  # function variables merge over Globals
    }
    routes = {(r.method, r.path): r for r in echo.routes}
    assert routes[("GET", "/public")].auth_none
    assert routes[("GET", "/echo/{item_id}")].requires_auth
    assert routes[("GET", "/echo/{item_id}")].event_name == "EchoGet"

    (rule,) = specs["SinkFunction"].rules
    assert rule.bus == "coaching-platform-t"
    assert rule.pattern["detail"] == {"size": [{"numeric": [">", 0]}]}
    assert rule.max_retries == 0
    (flaky,) = specs["FlakyFunction"].rules
    assert (flaky.max_retries, flaky.max_event_age_seconds) == (2, 60)

    schedules = {s.event_name: s for s in specs["JobsFunction"].schedules}
    assert schedules["Tick"].expression == "rate(1 minute)"
    assert schedules["Tick"].timezone == "UTC"
    assert schedules["Tick"].input == {"job": "tick"}
    assert schedules["Tick"].max_retries == 1
    assert schedules["Monthly"].name == "monthly-invoices-t"
    assert schedules["Monthly"].timezone == "Europe/Berlin"
    assert schedules["Legacy"].kind == "Schedule"
    assert schedules["Legacy"].input is None
    assert not schedules["Paused"].enabled


def test_stream_source_fixture() -> None:
    specs = {s.logical_id: s for s in function_specs(load_template(FIXTURE), prefix="t")}
    (source,) = specs["RelayFunction"].streams
    assert source.event_name == "Outbox"
    assert source.table == "OutboxTable"
    assert (source.starting_position, source.batch_size, source.batching_window_seconds) == ("TRIM_HORIZON", 10, 0)
    assert (source.max_retries, source.max_record_age_seconds) == (2, -1)
    assert source.bisect_on_error
    assert source.report_batch_item_failures
    assert source.filters == ({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["outbox"]}}}},)
    assert source.on_failure == "RelayDeadLetters"
    assert source.enabled
    assert not specs["EchoFunction"].streams


@pytest.mark.parametrize(
    ("table", "stream", "message"),
    [
        ("StreamSpecification: {StreamViewType: NEW_IMAGE}", "arn:aws:dynamodb:x:1:table/T/stream/1", "GetAtt"),
        ("StreamSpecification: {StreamViewType: NEW_IMAGE}", "!GetAtt T.Arn", "GetAtt"),
        ("BillingMode: PAY_PER_REQUEST", "!GetAtt T.StreamArn", "no StreamSpecification"),
        ("StreamSpecification: {StreamViewType: NEW_IMAGE}", "!GetAtt Nope.StreamArn", "not an AWS::DynamoDB::Table"),
    ],
)
def test_stream_sources_the_stack_cannot_follow_are_errors(
    tmp_path: Path, table: str, stream: str, message: str
) -> None:
    template = load_template(
        _write(
            tmp_path,
            f"""
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      {table}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Events:
        Changes:
          Type: DynamoDB
          Properties: {{Stream: {stream}, StartingPosition: LATEST}}
""",
        )
    )
    with pytest.raises(TemplateError, match=message) as info:
        function_specs(template)
    assert "Fn.Events.Changes" in str(info.value)


def test_parameter_override_and_buses() -> None:
    template = load_template(FIXTURE)
    (echo, *_) = function_specs(template, prefix="t", parameters={"Greeting": "hi", "Stage": "demo"})
    assert echo.environment["GREETING"] == "hi"
    assert echo.environment["EVENT_BUS_NAME"] == "coaching-platform-demo"
    assert event_buses(template) == {"EventBus": "coaching-platform-local", "default": "default"}


def test_real_template_functions() -> None:
    specs = {s.logical_id: s for s in function_specs(load_template(default_template()), prefix="test")}
    admin = specs["AdminFunction"]
    assert admin.environment["MAIN_TABLE_NAME"] == "test-MainTable"
    assert admin.environment["CONFIDENTIAL_TABLE_NAME"] == "test-ConfidentialTable"
    assert admin.environment["EVENT_BUS_NAME"] == "coaching-platform-test"
    assert admin.environment["VETTING_MIN_OPERATING_YEARS"] == "10"
    assert {(r.method, r.path) for r in admin.routes} >= {("GET", "/people/{person_id}"), ("POST", "/orgs")}
    assert next(r for r in admin.routes if r.path == "/admin/health").auth_none
    assert not next(r for r in admin.routes if r.path == "/orgs").auth_none
    matching = specs["MatchingFunction"]
    assert matching.rules[0].pattern == {
        "source": ["coaching.admin"],
        "detail-type": ["CoachVettingChanged", "CoachProfileUpdated"],
    }
    assert matching.schedules[0].name == "coaching-roster-refresh-test"
    assert matching.schedules[0].input == {"schedule": "RosterRefresh"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!Ref Nowhere", "names no parameter or resource"),
        ("!GetAtt Table.Arn", "Fn::GetAtt cannot be resolved locally"),
        ("!Sub '${Table.Arn}'", "GetAtt"),
        ("!Ref Pool", "has no local equivalent"),
        ("!Ref NoDefault", "has no Default"),
    ],
)
def test_unresolvable_environment_is_a_clear_error(tmp_path: Path, value: str, message: str) -> None:
    template = load_template(
        _write(
            tmp_path,
            f"""
Parameters:
  NoDefault: {{Type: String}}
Resources:
  Table: {{Type: "AWS::DynamoDB::Table", Properties: {{}}}}
  Pool: {{Type: "AWS::Cognito::UserPool"}}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Environment:
        Variables:
          BAD: {value}
""",
        )
    )
    with pytest.raises(TemplateError, match=message) as info:
        function_specs(template)
    assert "Fn.Environment.BAD" in str(info.value)
