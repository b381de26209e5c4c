"""A function's `Events` as the local stack serves them: API routes, bus rules, schedules, table streams.

Event sources the local stack has no counterpart for (SQS, S3, ...) are ignored; a DynamoDB stream
source it cannot follow (a stream that is not `!GetAtt <Table>.StreamArn` of a table with a
StreamSpecification) is a `TemplateError`, because silently dropping it would hide lost events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coaching_local.cfn import Resolver, TemplateError

# Amazon's defaults (185 retries over 24 h for rules and schedules, retry until the record expires for
# streams) make no sense on a laptop; an event without a retry setting is retried this many times locally.
LOCAL_DEFAULT_MAX_RETRIES = 2
LOCAL_DEFAULT_MAX_EVENT_AGE = 3600


@dataclass(frozen=True)
class Route:
    event_name: str
    method: str  # upper case; "ANY" matches every method
    path: str  # the resource path template, e.g. /people/{person_id}
    auth_none: bool  # True when the route opts out of the authorizer (Auth.Authorizer: NONE)

    @property
    def requires_auth(self) -> bool:
        return not self.auth_none


@dataclass(frozen=True)
class Rule:
    event_name: str
    bus: str  # the local bus name (resolved from !Ref EventBus), "default" when absent
    pattern: dict[str, Any]
    max_retries: int
    max_event_age_seconds: int


@dataclass(frozen=True)
class Schedule:
    event_name: str
    name: str  # the scheduler's Name when given, else the event name
    expression: str
    timezone: str
    input: Any  # the parsed Input JSON; None when the template has no Input
    max_retries: int
    max_event_age_seconds: int
    enabled: bool
    kind: str  # "ScheduleV2" (EventBridge Scheduler) or "Schedule" (EventBridge scheduled rule)


@dataclass(frozen=True)
class StreamSource:
    """A `Type: DynamoDB` event: an event source mapping from a table's change stream to the function."""

    event_name: str
    table: str  # the table's logical id, from !GetAtt <Table>.StreamArn
    starting_position: str  # TRIM_HORIZON or LATEST
    batch_size: int
    batching_window_seconds: float
    max_retries: int  # -1: retry until the record expires (as written in the template)
    max_record_age_seconds: int  # -1: no limit
    bisect_on_error: bool
    report_batch_item_failures: bool
    filters: tuple[dict[str, Any], ...]  # Lambda event-filter patterns; a record passes if any matches
    on_failure: str | None  # the OnFailure destination: a logical id, or the ARN/name as written
    enabled: bool


def _retry(props: Mapping[str, Any]) -> tuple[int, int]:
    policy = props.get("RetryPolicy") or {}
    return (
        int(policy.get("MaximumRetryAttempts", LOCAL_DEFAULT_MAX_RETRIES)),
        int(policy.get("MaximumEventAgeInSeconds", LOCAL_DEFAULT_MAX_EVENT_AGE)),
    )


def _api_default_authorizer(template: Mapping[str, Any], resolver: Resolver, props: Mapping[str, Any]) -> bool:
    """Whether the route's API applies an authorizer by default (SAM's DefaultAuthorizer)."""
    api_ref = props.get("RestApiId")
    api_props: Mapping[str, Any] = {}
    if isinstance(api_ref, dict) and "Ref" in api_ref:
        api_props = resolver.resources.get(api_ref["Ref"], {}).get("Properties", {}) or {}
    else:
        api_props = (template.get("Globals") or {}).get("Api", {}) or {}
    default = (api_props.get("Auth") or {}).get("DefaultAuthorizer")
    return bool(default) and default not in ("NONE", "AWS_IAM")


def function_events(
    template: Mapping[str, Any], resolver: Resolver, logical_id: str, events: Mapping[str, Any]
) -> tuple[list[Route], list[Rule], list[Schedule], list[StreamSource]]:
    routes: list[Route] = []
    rules: list[Rule] = []
    schedules: list[Schedule] = []
    streams: list[StreamSource] = []
    for event_name, event in events.items():
        kind = event.get("Type")
        props = event.get("Properties", {}) or {}
        where = f"{logical_id}.Events.{event_name}"
        if kind == "Api":
            authorizer = (props.get("Auth") or {}).get("Authorizer")
            if authorizer is None:
                auth_none = not _api_default_authorizer(template, resolver, props)
            else:
                auth_none = authorizer == "NONE"
            method = str(props["Method"]).upper()
            routes.append(Route(event_name, "ANY" if method == "ANY" else method, str(props["Path"]), auth_none))
        elif kind in ("EventBridgeRule", "CloudWatchEvent"):
            bus = props.get("EventBusName")
            bus_name = "default" if bus is None else str(resolver.resolve(bus, where))
            max_retries, max_age = _retry(props)
            pattern = resolver.resolve(props.get("Pattern") or {}, where)
            rules.append(Rule(event_name, bus_name, pattern, max_retries, max_age))
        elif kind in ("ScheduleV2", "Schedule"):
            schedules.append(_schedule(resolver, event_name, kind, props, where))
        elif kind == "DynamoDB":
            streams.append(_stream(resolver, event_name, props, where))
        # Other event sources (SQS, S3, ...) are not part of this template; they are ignored locally.
    return routes, rules, schedules, streams


def _schedule(resolver: Resolver, event_name: str, kind: str, props: Mapping[str, Any], where: str) -> Schedule:
    expression_key = "ScheduleExpression" if kind == "ScheduleV2" else "Schedule"
    if expression_key not in props:
        raise TemplateError(f"{where}: {kind} needs {expression_key}")
    raw_input = props.get("Input")
    try:
        parsed_input = None if raw_input is None else json.loads(resolver.resolve(raw_input, where))
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{where}: Input is not valid JSON: {exc}") from exc
    state = str(props.get("State", "ENABLED" if props.get("Enabled", True) else "DISABLED"))
    max_retries, max_age = _retry(props)
    name = resolver.resolve(props["Name"], where) if "Name" in props else event_name
    return Schedule(
        event_name=event_name,
        name=str(name),
        expression=str(resolver.resolve(props[expression_key], where)),
        timezone=str(props.get("ScheduleExpressionTimezone", "UTC")),
        input=parsed_input,
        max_retries=max_retries,
        max_event_age_seconds=max_age,
        enabled=state.upper() == "ENABLED",
        kind=kind,
    )


def _stream(resolver: Resolver, event_name: str, props: Mapping[str, Any], where: str) -> StreamSource:
    table = _stream_table(resolver, props.get("Stream"), where)
    position = str(resolver.resolve(props.get("StartingPosition", "TRIM_HORIZON"), where)).upper()
    if position not in ("TRIM_HORIZON", "LATEST"):
        raise TemplateError(f"{where}: StartingPosition {position} is not TRIM_HORIZON or LATEST")
    filters: list[dict[str, Any]] = []
    for index, item in enumerate(((props.get("FilterCriteria") or {}).get("Filters")) or []):
        pattern = resolver.resolve((item or {}).get("Pattern"), f"{where}.FilterCriteria.Filters[{index}]")
        try:
            parsed = json.loads(pattern) if isinstance(pattern, str) else pattern
        except json.JSONDecodeError as exc:
            raise TemplateError(f"{where}: filter pattern {index} is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise TemplateError(f"{where}: filter pattern {index} must be a JSON object")
        filters.append(parsed)
    on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    response_types = resolver.resolve(props.get("FunctionResponseTypes") or [], where)
    return StreamSource(
        event_name=event_name,
        table=table,
        starting_position=position,
        batch_size=int(resolver.resolve(props.get("BatchSize", 100), where)),
        batching_window_seconds=float(resolver.resolve(props.get("MaximumBatchingWindowInSeconds", 0), where)),
        max_retries=int(resolver.resolve(props.get("MaximumRetryAttempts", LOCAL_DEFAULT_MAX_RETRIES), where)),
        max_record_age_seconds=int(resolver.resolve(props.get("MaximumRecordAgeInSeconds", -1), where)),
        bisect_on_error=_flag(resolver.resolve(props.get("BisectBatchOnFunctionError", False), where)),
        report_batch_item_failures="ReportBatchItemFailures" in response_types,
        filters=tuple(filters),
        on_failure=None if on_failure is None else _destination_name(on_failure),
        enabled=_flag(resolver.resolve(props.get("Enabled", True), where)),
    )


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _stream_table(resolver: Resolver, stream: Any, where: str) -> str:
    """The logical id of the table whose stream `!GetAtt <Table>.StreamArn` names."""
    target = stream.get("Fn::GetAtt") if isinstance(stream, dict) else None
    if not (isinstance(target, list) and len(target) == 2 and target[1] == "StreamArn"):
        raise TemplateError(f"{where}: Stream must be !GetAtt <Table>.StreamArn locally, got {stream!r}")
    table = str(target[0])
    resource = resolver.resources.get(table) or {}
    if resource.get("Type") != "AWS::DynamoDB::Table":
        raise TemplateError(f"{where}: {table} is not an AWS::DynamoDB::Table of this template")
    spec = (resource.get("Properties") or {}).get("StreamSpecification") or {}
    if not spec.get("StreamViewType"):
        raise TemplateError(f"{where}: table {table} has no StreamSpecification.StreamViewType")
    return table


def _destination_name(value: Any) -> str:
    if isinstance(value, dict):
        target = value.get("Fn::GetAtt")
        if isinstance(target, list) and target:
            return str(target[0])
        if "Ref" in value:
            return str(value["Ref"])
    return str(value)
