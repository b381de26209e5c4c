"""The deployment's security properties, read from template.yaml (no build, no AWS).

Each test names the finding it keeps fixed (docs/operations.md, "Threat model").
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from coaching import auth
from coaching.adapters import keys
from coaching_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def _props(name: str) -> dict[str, Any]:
    return RESOURCES[name].get("Properties") or {}


def _ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def _arn(name: str, attribute: str = "Arn") -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, attribute]}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


FUNCTIONS = _of_type("AWS::Serverless::Function")
GLOBAL_ENV: dict[str, Any] = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


def _statements(function: str) -> list[dict[str, Any]]:
    found = []
    for policy in _props(function).get("Policies") or []:
        if isinstance(policy, dict):
            found.extend(policy.get("Statement", []))
    return found


def _service_name(function: str) -> str:
    return str(_props(function)["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"])


# ------------------------------------------------------------------ identity


def test_nobody_signs_themselves_up_and_sign_in_does_not_reveal_who_has_an_account() -> None:
    pools, clients = _of_type("AWS::Cognito::UserPool"), _of_type("AWS::Cognito::UserPoolClient")
    assert pools
    for name, pool in pools.items():
        assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True, name
    assert {c["Properties"]["UserPoolId"]["Ref"] for c in clients.values()} == set(pools)
    for name, client in clients.items():
        props = client["Properties"]
        assert props["PreventUserExistenceErrors"] == "ENABLED", name
        assert props["GenerateSecret"] is False, name  # browser clients cannot keep a secret
        assert "ALLOW_USER_PASSWORD_AUTH" not in props["ExplicitAuthFlows"], name  # SRP only
        # The tenant and person claims are set by administrators only.
        assert not {"custom:org_id", "custom:person_id"} & set(props["WriteAttributes"]), name
        assert {"custom:org_id", "custom:person_id"} <= set(props["ReadAttributes"]), name


def _groups() -> dict[str, str]:
    """Group name -> the pool it belongs to."""
    groups = _of_type("AWS::Cognito::UserPoolGroup").values()
    return {g["Properties"]["GroupName"]: g["Properties"]["UserPoolId"]["Ref"] for g in groups}


def test_every_role_is_a_group_and_the_staff_roles_live_in_a_pool_that_requires_totp() -> None:
    groups = _groups()
    assert set(groups) == {role.value for role in auth.Role}
    staff_pools = {groups[role.value] for role in auth.STAFF_ROLES}
    assert len(staff_pools) == 1
    (staff_pool,) = staff_pools
    staff = _props(staff_pool)
    assert staff["MfaConfiguration"] == "ON"
    assert staff["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]  # TOTP: no SMS to intercept or pay for
    # Nobody else's groups are in the staff pool, and no staff group is anywhere else.
    assert {name for name, pool in groups.items() if pool == staff_pool} == {r.value for r in auth.STAFF_ROLES}
    for pool in _of_type("AWS::Cognito::UserPool"):
        schema = {attribute["Name"] for attribute in _props(pool)["Schema"]}
        assert {"org_id", "person_id"} <= schema, pool  # the handlers' tenant and person claims


def test_the_authorizer_accepts_both_pools_and_the_handlers_pin_their_clients() -> None:
    pools = set(_of_type("AWS::Cognito::UserPool"))
    authorizer = _props("CoachingApi")["Auth"]["Authorizers"]["CognitoAuthorizer"]
    assert sorted(arn["Fn::GetAtt"][0] for arn in authorizer["UserPoolArn"]) == sorted(pools)
    assert _props("CoachingApi")["Auth"]["DefaultAuthorizer"] == "CognitoAuthorizer"
    clients = _of_type("AWS::Cognito::UserPoolClient")
    joined = GLOBAL_ENV[auth.CLIENT_IDS_ENV]["Fn::Join"]
    assert joined[0] == ","
    assert sorted(ref["Ref"] for ref in joined[1]) == sorted(clients)
    (staff_pool,) = {_groups()[role.value] for role in auth.STAFF_ROLES}
    staff_clients = [name for name, c in clients.items() if c["Properties"]["UserPoolId"] == _ref(staff_pool)]
    assert staff_clients == [GLOBAL_ENV[auth.STAFF_CLIENT_IDS_ENV]["Ref"]]
    for function in FUNCTIONS:  # no function overrides what Globals pins
        variables = (_props(function).get("Environment") or {}).get("Variables") or {}
        assert not {auth.CLIENT_IDS_ENV, auth.STAFF_CLIENT_IDS_ENV} & set(variables), function


# Routes without a token that verify each request's signature instead (Standard Webhooks, per-org secret).
SIGNED_ROUTES = {("HrWebhooksFunction", "/webhooks/hr/{org_id}")}
# Routes without a token that take a single-use 360 rater link token in the body instead (checked by the handler).
LINK_ROUTES = {("DevelopmentFunction", "/360/invite"), ("DevelopmentFunction", "/360/answers")}


def test_every_route_but_health_needs_a_token() -> None:
    open_routes = []
    for name, function in FUNCTIONS.items():
        for event in (function["Properties"].get("Events") or {}).values():
            if event["Type"] == "Api" and (event["Properties"].get("Auth") or {}).get("Authorizer") == "NONE":
                open_routes.append((name, event["Properties"]["Path"]))
    assert open_routes
    unsigned = [route for route in open_routes if route not in SIGNED_ROUTES | LINK_ROUTES]
    assert all(path.endswith("/health") for _, path in unsigned), unsigned


# ------------------------------------------------------------------ alarms


def test_the_alarm_topic_uses_a_rotated_key_of_our_own_that_cloudwatch_may_use() -> None:
    (topic,) = _of_type("AWS::SNS::Topic")
    key_ref = _props(topic)["KmsMasterKeyId"]
    assert isinstance(key_ref, dict), "an AWS-managed alias (alias/aws/sns) cannot be used by CloudWatch"
    key = RESOURCES[key_ref["Ref"]]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    grants = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Effect"] == "Allow" and s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert len(grants) == 1
    assert set(grants[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    # Only this account's alarms, and only the platform's (every alarm name starts coaching-).
    assert grants[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == _ref("AWS::AccountId")
    source = grants[0]["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert source.endswith(":alarm:coaching-*")
    for name, alarm in _of_type("AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"]["AlarmName"]["Fn::Sub"].startswith("coaching-"), name


def test_every_alarm_notifies_the_topic() -> None:
    (topic,) = _of_type("AWS::SNS::Topic")
    alarms = _of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for name, alarm in alarms.items():
        assert _ref(topic) in alarm["Properties"]["AlarmActions"], name


def _alarms_on(namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        a["Properties"]
        for a in _of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == namespace and a["Properties"]["MetricName"] == metric
    ]


def test_lost_or_late_events_alarm_where_event_publish_failed_never_existed() -> None:
    # Dead letters: any message at all.
    (dead,) = _alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dead["Dimensions"] == [{"Name": "QueueName", "Value": _arn("EventRelayDeadLetterQueue", "QueueName")}]
    assert (dead["Threshold"], dead["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    relay = [{"Name": "FunctionName", "Value": _ref("EventRelayFunction")}]
    # The relay more than five minutes behind the stream.
    (age,) = _alarms_on("AWS/Lambda", "IteratorAge")
    assert age["Dimensions"] == relay
    assert age["Statistic"] == "Maximum"
    assert age["ComparisonOperator"] == "GreaterThanThreshold"
    assert age["Threshold"] <= 5 * 60 * 1000
    # The relay failing.
    (errors,) = _alarms_on("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == relay
    assert (errors["Threshold"], errors["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    # The relay's stream failures land in the queue the first alarm watches.
    stream = FUNCTIONS["EventRelayFunction"]["Properties"]["Events"]["OutboxStream"]["Properties"]
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] == _arn("EventRelayDeadLetterQueue")


# ------------------------------------------------------------------ data access: who writes which partition

# Sample ids shaped like the real ones (uuids; keys never contain a '#' of an id's own: PathId).
ORG, PERSON, COACH = "0f8fad5b-d9cb-469f-a165-70867728950e", "7c9e6679-7425-40de-944b-e07fc1f90ae7", "c0a8012e-c3c1"
BOOKING, EVENT, MONTH = "e4eaaaf2-d142-11e1-b3e4-080027620cdd", "evt-6fa459ea-ee8a-3ca4", "2026-05"
# Every function that consumes events (checked below).
CONSUMERS = ("matching", "booking", "metering", "rollups", "report_generation", "development")

# Every partition family the platform writes, built with its function in keys.py.
FAMILIES: dict[str, str] = {
    "org": keys.org_pk(ORG),
    "people": keys.people_pk(ORG),
    "person": keys.person_pk(ORG, PERSON),
    "person_calendar": keys.person_calendar_pk(ORG, PERSON),
    "coach_calendar": keys.coach_calendar_pk(COACH),
    "locator": keys.locator_key(BOOKING)[0],
    "coaches": keys.COACHES_PK,
    "roster": keys.ROSTER_PK,
    "gaps": keys.gaps_pk(ORG),
    "ledger": keys.ledger_pk(ORG, MONTH),
    "billing": keys.billing_pk(ORG),
    "session": keys.session_pk(ORG, BOOKING),
    "cohort_job": keys.cohort_job_pk(ORG, EVENT),
    "outbox": keys.outbox_pk(EVENT),
    "waitlist": keys.waitlist_pk(ORG, "new_manager"),
    "cohort": keys.cohort_pk(ORG, BOOKING),
    "workshop": keys.workshop_pk(ORG, BOOKING),
    **{f"idempotency:{name}": keys.idempotency_pk(name) for name in CONSUMERS},
    "tally": keys.tally_pk(ORG, MONTH),
    "development": keys.development_pk(ORG),
    "invite": keys.invite_pk("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    "contribution": keys.contribution_pk(ORG, MONTH),
    "rollup": keys.rollup_pk(ORG, MONTH),
    "report": keys.report_pk(ORG),
    "rollups_index": keys.rollups_index_pk(MONTH),
}
# The key functions that build another family's partition key (with the sort key beside it).
COMPOSED: dict[str, tuple[Callable[[], tuple[str, str]], str]] = {
    "meter_key": (lambda: keys.meter_key(ORG, "cap", MONTH), "org"),
    "allowance_key": (lambda: keys.allowance_key(ORG, PERSON, "core", MONTH), "person"),
    "upcoming_key": (lambda: keys.upcoming_key(ORG, PERSON, 1), "person"),
    "locator_key": (lambda: keys.locator_key(BOOKING), "locator"),
    "period_key": (lambda: keys.period_key(ORG, MONTH), "billing"),
    "invoice_key": (lambda: keys.invoice_key(ORG, MONTH), "billing"),
    "guard_key": (lambda: keys.guard_key(ORG, BOOKING, "usage"), "session"),
    "history_summary_key": (lambda: keys.history_summary_key(ORG, PERSON), "person"),
}
# gsi1 partition keys: never a table partition, so never a LeadingKey.
INDEX_ONLY = {
    "ORGS_INDEX_PK",
    "GAPS_INDEX_PK",
    "FOLLOW_UP_INDEX_PK",
    "coach_engagements_pk",
    "coach_bookings_pk",
    "sessions_index_pk",
    "coaches_by_status_pk",
    "cohorts_index_pk",
    "checkins_index_pk",
    "OPEN_ASSESSMENTS_INDEX_PK",
}
FAMILY_SOURCES = {
    "org_pk", "people_pk", "person_pk", "person_calendar_pk", "coach_calendar_pk", "COACHES_PK",
    "ROSTER_PK", "gaps_pk", "ledger_pk", "billing_pk", "session_pk", "outbox_pk", "idempotency_pk",
    "waitlist_pk", "cohort_job_pk", "cohort_pk", "workshop_pk",
    "tally_pk", "development_pk", "invite_pk", "contribution_pk", "rollup_pk", "report_pk", "rollups_index_pk",
}  # fmt: skip

# What each function's code writes in the main table (its adapters and, for consumers, Powertools
# Idempotency). A TransactWriteItems is authorised per item, so every family a transaction touches
# is here: e.g. booking's late cancel writes the ledger entry and its guard with the booking.
MAIN_TABLE_WRITERS: dict[str, set[str]] = {
    # OrgRepository, PersonRepository, CoachRepository (modify_with_events writes CoachVettingChanged).
    "AdminFunction": {"org", "people", "coaches", "outbox"},
    # MatchingStore (matches, engagements, active markers, coach loads, gaps), RosterStore.publish.
    "MatchingFunction": {"person", "gaps", "coaches", "roster", "outbox", "idempotency:matching", "cohort_job"},
    # CohortJobStore (progress, result) and, committing, MatchingStore.start_engagement.
    "CohortJobFunction": {"cohort_job", "person", "coaches"},
    # BookingStore: booking, places, allowances, locks, locator, org meters and threshold markers;
    # commit_with_entry for billed late cancels and reschedules.
    "BookingFunction": {
        "org",
        "person",
        "person_calendar",
        "coach_calendar",
        "locator",
        "ledger",
        "session",
        "outbox",
        "idempotency:booking",
    },
    # BookingStore.end (release=False, refund=False) with commit_with_entry.
    "SessionCompletionFunction": {"person", "locator", "ledger", "session", "outbox"},
    # BillingStore: price books, periods, invoices; the schedules' fan-out events (commit_events).
    "MeteringFunction": {"org", "billing", "outbox", "idempotency:metering"},
    "EventRelayFunction": set(),
    # HrWebhookStore: people with their delivery receipts and per-event markers, PersonPromoted/PersonTerminated,
    # and the promotion wait-lists its transition policy fills (PersonTransitioned).
    "HrWebhooksFunction": {"people", "waitlist", "outbox"},
    # ContextStore: the person's consent; an erasure rewrites the person, their HR record and markers, removes
    # them from wait-lists and writes PersonErased.
    "PrivacyFunction": {"person", "people", "waitlist", "outbox"},
    # ProgrammeStore: the catalogue, cohorts with seats, members and group sessions (coach calendar locks, the
    # same as 1:1s), GROW engagements, workshops, the wait-list; billed units' locators, entries and guards.
    "ProgrammesFunction": {
        "org",
        "person",
        "cohort",
        "workshop",
        "waitlist",
        "coach_calendar",
        "locator",
        "ledger",
        "session",
        "outbox",
    },
    # ReportWriter: report settings and the artefacts' index; Powertools Idempotency for ReportDue.
    "ReportGenerationFunction": {"report", "idempotency:report_generation"},
    # RollupStore: contributions and cells in one transaction, the month's META and index, ReportDue.
    "RollupsFunction": {"contribution", "rollup", "rollups_index", "outbox", "idempotency:rollups"},
    # DevelopmentStore: goals, 360 rounds, the active-goal counter and respondent markers (person), capture
    # tallies, role profiles and policy (development), rater link lookups (invite), its events.
    "DevelopmentFunction": {"person", "tally", "development", "invite", "outbox", "idempotency:development"},
}
# The confidential table: situations, in the person's partition.
CONFIDENTIAL_WRITERS: dict[str, set[str]] = {
    "MatchingFunction": {"person"},
    "BookingFunction": {"person"},
    "HrWebhooksFunction": {"people"},  # the raw HR payloads, beside the org's people
    "PrivacyFunction": {"people"},  # an erasure rewrites the raw HR payloads that name the person
    "DevelopmentFunction": {"person"},  # feedback, raters' answers and released 360 results
}
# Who reads what people said back, per action and partition family: the privacy function (a person's own
# situations, for them or their coach with consent, and the raw HR payloads an erasure redacts) and the
# development function (a person's own feedback and 360 results, and a released result for their coach).
# Every other function, the reports above all, has no read of it.
CONFIDENTIAL_READERS: dict[str, dict[str, set[str]]] = {
    "PrivacyFunction": {"dynamodb:Query": {"person", "people"}, "dynamodb:DeleteItem": {"person"}},
    "DevelopmentFunction": {"dynamodb:GetItem": {"person"}, "dynamodb:Query": {"person"}},
}
CONFIDENTIAL_READS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:Scan")
WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
NEVER_GRANTED = ("dynamodb:BatchWriteItem", "dynamodb:Scan", "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate",
                 "dynamodb:PartiQLDelete", "dynamodb:DeleteTable", "dynamodb:UpdateTable")  # fmt: skip
# IAM condition operators on dynamodb:LeadingKeys this test evaluates (anything else fails it).
_OPERATORS: dict[str, Callable[[str, list[str]], bool]] = {
    "ForAllValues:StringLike": lambda key, patterns: any(fnmatch.fnmatchcase(key, p) for p in patterns),
    "ForAllValues:StringNotLike": lambda key, patterns: not any(fnmatch.fnmatchcase(key, p) for p in patterns),
}


def test_the_families_cover_every_partition_key_keys_py_can_build() -> None:
    builders = {
        name for name in dir(keys) if name.endswith(("_pk", "_PK", "_key")) and not name.startswith(("is_", "_"))
    }
    accounted = FAMILY_SOURCES | set(COMPOSED) | INDEX_ONLY
    assert builders == accounted, "a new key in keys.py needs an owner in MAIN_TABLE_WRITERS (or INDEX_ONLY)"
    for name, (build, family) in COMPOSED.items():
        assert build()[0] == FAMILIES[family], name
    assert len(set(FAMILIES.values())) == len(FAMILIES)


def test_every_consumer_has_its_own_idempotency_partition_and_only_consumers_do() -> None:
    consumers = {
        _service_name(name)
        for name, function in FUNCTIONS.items()
        for event in (function["Properties"].get("Events") or {}).values()
        if event["Type"] == "EventBridgeRule"
    }
    assert consumers == set(CONSUMERS)
    for name in FUNCTIONS:
        source = (ROOT / _props(name)["CodeUri"] / "app.py").read_text()
        entry = re.search(r"function_entry\(.*?name=\"(\w+)\"", source, re.DOTALL)
        if entry and "on_events=" in source:  # the name Powertools Idempotency keys its records by (_run_once)
            assert entry.group(1) == _service_name(name), name
            assert f"idempotency:{entry.group(1)}" in MAIN_TABLE_WRITERS[name], name


def _covers(resource: Any, table: str) -> bool:
    return _arn(table) in _listed(resource)


def _admits(statement: dict[str, Any], key: str) -> bool:
    conditions: dict[str, Any] = statement.get("Condition") or {}
    for operator, by_key in conditions.items():
        assert set(by_key) == {"dynamodb:LeadingKeys"}, f"{statement['Sid']}: unexpected condition {by_key}"
        assert operator in _OPERATORS, f"{statement['Sid']}: {operator} is not evaluated by this test"
        patterns = _listed(by_key["dynamodb:LeadingKeys"])
        assert all("[" not in p and "]" not in p for p in patterns)  # IAM has no character classes
        if not _OPERATORS[operator](key, patterns):
            return False
    return True


def _admitted(function: str, table: str, action: str) -> set[str]:
    """The families `function` may `action` in `table`, evaluating its Allow statements' conditions."""
    allowed = [
        s
        for s in _statements(function)
        if s["Effect"] == "Allow" and action in _listed(s["Action"]) and _covers(s["Resource"], table)
    ]
    return {family for family, key in FAMILIES.items() if any(_admits(s, key) for s in allowed)}


@pytest.mark.parametrize("function", sorted(MAIN_TABLE_WRITERS))
def test_each_function_writes_exactly_the_main_table_partitions_it_owns(function: str) -> None:
    granted = [
        a for s in _statements(function) if _covers(s.get("Resource"), "MainTable") for a in _listed(s["Action"])
    ]
    assert not set(NEVER_GRANTED) & set(granted)
    assert not [a for a in granted if "*" in a], "no wildcard actions"
    for action in WRITE_ACTIONS:
        if action in granted:
            admitted = _admitted(function, "MainTable", action)
            if action == "dynamodb:DeleteItem" and function == "DevelopmentFunction":
                # It deletes nothing of its own, only failed Idempotency records: narrower than its writes.
                assert admitted == {"idempotency:development"}, action
                continue
            assert admitted == MAIN_TABLE_WRITERS[function], action
    if MAIN_TABLE_WRITERS[function]:
        assert {"dynamodb:PutItem", "dynamodb:UpdateItem"} <= set(granted)


@pytest.mark.parametrize("function", sorted(MAIN_TABLE_WRITERS))
def test_only_the_functions_that_write_situations_write_the_confidential_table(function: str) -> None:
    granted = {
        a
        for s in _statements(function)
        if _covers(s.get("Resource"), "ConfidentialTable")
        for a in _listed(s["Action"])
    }
    owned = CONFIDENTIAL_WRITERS.get(function, set())
    reads = CONFIDENTIAL_READERS.get(function, {})
    # No reads but the privacy and development functions': what people said is never read back elsewhere.
    assert granted <= ({"dynamodb:PutItem", "dynamodb:DescribeTable"} | set(reads) if owned else set())
    if owned:
        assert _admitted(function, "ConfidentialTable", "dynamodb:PutItem") == owned
    for action, families in reads.items():
        assert _admitted(function, "ConfidentialTable", action) == families, action


def test_nothing_but_the_privacy_and_development_functions_can_read_what_people_said() -> None:
    # Feedback, 360 ratings and results live in the confidential table (keys.feedback_sk, answer_sk, result_sk).
    for function in FUNCTIONS:
        readable = {
            a
            for s in _statements(function)
            if _covers(s.get("Resource"), "ConfidentialTable") or s.get("Resource") == "*"
            for a in _listed(s["Action"])
            if a in CONFIDENTIAL_READS or a == "dynamodb:*"
        }
        assert not readable or function in CONFIDENTIAL_READERS, function
    # The tallies, the only capture data reports may read, are written by the development function alone.
    tally_writers = {f for f in FUNCTIONS if "tally" in _admitted(f, "MainTable", "dynamodb:UpdateItem")}
    assert tally_writers == {"DevelopmentFunction"}


def test_a_booking_cannot_be_written_by_matching_nor_a_ledger_by_admin() -> None:
    # The findings in two lines: the ledger is billing's, the calendars are booking's.
    assert _admitted("AdminFunction", "MainTable", "dynamodb:PutItem").isdisjoint({"ledger", "session", "billing"})
    assert "person_calendar" not in _admitted("MatchingFunction", "MainTable", "dynamodb:PutItem")
    ledger_writers = {f for f in FUNCTIONS if "ledger" in _admitted(f, "MainTable", "dynamodb:PutItem")}
    assert ledger_writers == {"BookingFunction", "SessionCompletionFunction", "ProgrammesFunction"}


def test_every_kms_grant_of_a_function_is_usable_only_through_dynamodb() -> None:
    grants = [
        (function, s)
        for function in FUNCTIONS
        for s in _statements(function)
        if any(a.startswith("kms:") for a in _listed(s["Action"]))
    ]
    assert grants
    for function, statement in grants:
        via = statement["Condition"]["StringEquals"]["kms:ViaService"]
        assert via == {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"}, function
        assert statement["Resource"] == _arn("ConfidentialKey"), function
        assert "kms:*" not in _listed(statement["Action"]), function


# ------------------------------------------------------------------ the API stage


def test_the_stage_is_throttled_as_a_whole_and_on_its_expensive_routes() -> None:
    settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in _props("CoachingApi")["MethodSettings"]}
    stage = settings[("/*", "*")]
    assert stage["ThrottlingRateLimit"] > 0
    assert stage["ThrottlingBurstLimit"] > 0
    assert stage["DataTraceEnabled"] is False  # execution logs with bodies: never
    routes = {
        (event["Properties"]["Path"], event["Properties"]["Method"].upper())
        for function in FUNCTIONS.values()
        for event in (function["Properties"].get("Events") or {}).values()
        if event["Type"] == "Api"
    }
    expensive = {
        ("/people/import", "POST"),
        ("/cohorts/match", "POST"),
        ("/orgs/{org_id}/invoices/{period}/run", "POST"),
        ("/orgs/{org_id}/billing/reconcile", "POST"),
    }
    assert expensive <= routes
    for path, method in expensive:
        limits = settings[("/" + path.replace("/", "~1"), method)]
        assert 0 < limits["ThrottlingRateLimit"] < stage["ThrottlingRateLimit"], path
        assert 0 < limits["ThrottlingBurstLimit"] < stage["ThrottlingBurstLimit"], path
    for (path, _), limits in settings.items():
        assert limits.get("DataTraceEnabled", False) is False, path


def test_the_access_log_names_the_caller_and_tenant_and_never_a_body() -> None:
    access = _props("CoachingApi")["AccessLogSetting"]
    group = access["DestinationArn"]["Fn::GetAtt"][0]
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert _props(group)["RetentionInDays"] == _ref("LogRetentionDays")
    fields = json.loads(access["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert fields["ip"] == "$context.identity.sourceIp"
    assert fields["caller"] == "$context.authorizer.claims.sub"
    assert fields["org"] == "$context.authorizer.claims.custom:org_id"
    assert fields["method"] == "$context.httpMethod"
    assert fields["resourcePath"] == "$context.resourcePath"
    assert fields["status"] == "$context.status"
    assert fields["latency"] == "$context.responseLatency"
    # Resource paths, not paths (no ids), and nothing a request or response carries.
    for value in fields.values():
        assert not re.search(r"body|\$input|requestOverride|responseOverride|\$context\.path\b", value), value
    # API Gateway writes logs only once the account has its CloudWatch role.
    assert "ApiGatewayAccount" in _listed(RESOURCES["CoachingApi"]["DependsOn"])
    assert RESOURCES["ApiGatewayAccount"]["Type"] == "AWS::ApiGateway::Account"


def test_the_only_lint_exception_is_sams_list_of_user_pools() -> None:
    ignored = {
        name: r["Metadata"]["cfn-lint"]["config"]["ignore_checks"]
        for name, r in RESOURCES.items()
        if "cfn-lint" in (r.get("Metadata") or {})
    }
    assert ignored == {"CoachingApi": ["E3002", "E3003", "E3012", "E3017"]}


# ------------------------------------------------------------------ tracing


def test_traces_keep_no_response_of_any_function() -> None:
    assert GLOBAL_ENV["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    for function in FUNCTIONS:
        variables = (_props(function).get("Environment") or {}).get("Variables") or {}
        assert variables.get("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "false") == "false", function


def test_only_the_relay_may_put_events_and_no_function_may_read_another_queue_or_topic() -> None:
    # tests/unit/test_event_catalogue.py checks the relay's sources; here: nobody else publishes.
    for function in FUNCTIONS:
        actions = [a for s in _statements(function) for a in _listed(s["Action"])]
        assert not [a for a in actions if a.startswith(("events:", "sns:"))] or function == "EventRelayFunction"
        assert not [a for a in actions if a.startswith("sns:")], function


# ------------------------------------------------------------------ reports read aggregates only

# What report_generation may read: aggregate partitions, and its own idempotency record.
REPORT_READABLE = {"rollup", "tally", "report", "rollups_index"}


def test_report_generation_reads_only_aggregates_never_a_person_or_the_confidential_table() -> None:
    statements = _statements("ReportGenerationFunction")
    # Nothing on the confidential table (not even DescribeTable), nor on any index, nor any wildcard resource.
    assert not [s for s in statements if _covers(s.get("Resource"), "ConfidentialTable")]
    assert not [s for s in statements if s.get("Resource") == "*"]
    assert not [s for s in statements if "/index/" in json.dumps(s.get("Resource"))]
    assert not {a for s in statements for a in _listed(s["Action"])} & {"dynamodb:Scan", "dynamodb:BatchGetItem"}
    assert _admitted("ReportGenerationFunction", "MainTable", "dynamodb:Query") == REPORT_READABLE
    assert _admitted("ReportGenerationFunction", "MainTable", "dynamodb:GetItem") == {"idempotency:report_generation"}
    # A person's partition, the people, the contributions, bookings and ledger are beyond every statement.
    person_keys = [keys.person_pk(ORG, PERSON), keys.people_pk(ORG), keys.contribution_pk(ORG, MONTH),
                   keys.ledger_pk(ORG, MONTH), keys.locator_key(BOOKING)[0], keys.session_pk(ORG, BOOKING)]  # fmt: skip
    for statement in statements:
        if _covers(statement.get("Resource"), "MainTable"):
            assert statement.get("Condition"), statement["Sid"]  # every main-table grant is scoped
            for key in person_keys:
                assert not _admits(statement, key), (statement["Sid"], key)


def test_only_the_rollups_function_writes_the_contributions_and_cells() -> None:
    for family in ("contribution", "rollup"):
        writers = {f for f in FUNCTIONS if family in _admitted(f, "MainTable", "dynamodb:UpdateItem")}
        assert writers == {"RollupsFunction"}, family
    assert not [s for s in _statements("RollupsFunction") if _covers(s.get("Resource"), "ConfidentialTable")]


def test_the_report_bucket_is_private_encrypted_tls_only_and_expires_its_objects() -> None:
    props = _props("ReportBucket")
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] > 0
    (deny,) = _props("ReportBucketPolicy")["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": False}}
    readers = {f for f in FUNCTIONS for s in _statements(f) for a in _listed(s["Action"]) if a.startswith("s3:")}
    assert readers == {"ReportGenerationFunction"}
