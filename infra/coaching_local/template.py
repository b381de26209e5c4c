"""Read the SAM template the way the local stack needs it: tables, functions, routes, rules, schedules, streams.

The YAML loading and intrinsic resolution live in `cfn`, a function's events in `template_events`;
this module keeps the names the rest of the stack (and the tests) import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coaching_local.cfn import (
    LOCAL_ACCOUNT_ID,
    LOCAL_REGION,
    CfnLoader,
    LocalNames,
    Resolver,
    Template,
    TemplateError,
    load_template,
    local_table_name,
    resources_of_type,
)
from coaching_local.template_events import (
    LOCAL_DEFAULT_MAX_EVENT_AGE,
    LOCAL_DEFAULT_MAX_RETRIES,
    Route,
    Rule,
    Schedule,
    StreamSource,
    function_events,
)

__all__ = [
    "LOCAL_ACCOUNT_ID",
    "LOCAL_DEFAULT_MAX_EVENT_AGE",
    "LOCAL_DEFAULT_MAX_RETRIES",
    "LOCAL_REGION",
    "CfnLoader",
    "FunctionSpec",
    "LocalNames",
    "Resolver",
    "Route",
    "Rule",
    "Schedule",
    "StreamSource",
    "Template",
    "TemplateError",
    "event_buses",
    "function_specs",
    "load_template",
    "local_table_name",
    "resources_of_type",
    "stream_view_type",
    "table_definitions",
]


# --------------------------------------------------------------------------- tables


def table_definitions(template: Mapping[str, Any], table_name: Callable[[str], str]) -> list[dict[str, Any]]:
    """boto3 `create_table` kwargs for every AWS::DynamoDB::Table, named by `table_name(logical_id)`."""
    definitions: list[dict[str, Any]] = []
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        props = resource.get("Properties", {})
        try:
            definition: dict[str, Any] = {
                "TableName": table_name(logical_id),
                "KeySchema": [_key(k) for k in props["KeySchema"]],
                "AttributeDefinitions": [
                    {"AttributeName": a["AttributeName"], "AttributeType": a["AttributeType"]}
                    for a in props["AttributeDefinitions"]
                ],
                # DynamoDB Local ignores capacity; on-demand avoids inventing throughput numbers.
                "BillingMode": "PAY_PER_REQUEST",
            }
        except (KeyError, TypeError) as exc:
            raise TemplateError(f"table {logical_id}: missing or malformed {exc}") from exc
        indexes = [
            {
                "IndexName": gsi["IndexName"],
                "KeySchema": [_key(k) for k in gsi["KeySchema"]],
                "Projection": _projection(gsi.get("Projection", {"ProjectionType": "ALL"})),
            }
            for gsi in props.get("GlobalSecondaryIndexes", [])
        ]
        if indexes:
            definition["GlobalSecondaryIndexes"] = indexes
        local_indexes = [
            {
                "IndexName": lsi["IndexName"],
                "KeySchema": [_key(k) for k in lsi["KeySchema"]],
                "Projection": _projection(lsi.get("Projection", {"ProjectionType": "ALL"})),
            }
            for lsi in props.get("LocalSecondaryIndexes", [])
        ]
        if local_indexes:
            definition["LocalSecondaryIndexes"] = local_indexes
        stream = props.get("StreamSpecification") or {}
        if stream.get("StreamViewType"):
            definition["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        definitions.append(definition)
    return definitions


def _key(element: Mapping[str, Any]) -> dict[str, str]:
    return {"AttributeName": element["AttributeName"], "KeyType": element["KeyType"]}


def _projection(projection: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"ProjectionType": projection.get("ProjectionType", "ALL")}
    if projection.get("NonKeyAttributes"):
        result["NonKeyAttributes"] = list(projection["NonKeyAttributes"])
    return result


def stream_view_type(template: Mapping[str, Any], logical_id: str) -> str | None:
    """The table's StreamSpecification.StreamViewType, None when it has no stream."""
    props = (template.get("Resources", {}).get(logical_id) or {}).get("Properties") or {}
    return (props.get("StreamSpecification") or {}).get("StreamViewType")


# --------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    memory_size: int
    timeout: int
    routes: tuple[Route, ...] = ()
    rules: tuple[Rule, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    streams: tuple[StreamSource, ...] = ()

    @property
    def handler_file(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_dir / (module.replace(".", "/") + ".py")

    @property
    def handler_attr(self) -> str:
        return self.handler.rpartition(".")[2]


def event_buses(template: Mapping[str, Any], names: LocalNames | None = None) -> dict[str, str]:
    """Logical id → local bus name for every AWS::Events::EventBus (plus the always-present default)."""
    resolver = Resolver(template, names or LocalNames())
    buses = {
        logical_id: resolver.bus_name(logical_id) for logical_id in resources_of_type(template, "AWS::Events::EventBus")
    }
    buses["default"] = "default"
    return buses


def function_specs(
    template: Mapping[str, Any],
    *,
    prefix: str = "local",
    parameters: Mapping[str, str] | None = None,
    region: str = LOCAL_REGION,
    base_dir: Path | None = None,
) -> list[FunctionSpec]:
    """Every AWS::Serverless::Function with its environment resolved for the local stack."""
    names = LocalNames(prefix=prefix, parameters=dict(parameters or {}), region=region)
    resolver = Resolver(template, names)
    if base_dir is None:
        path = getattr(template, "path", None)
        base_dir = path.parent if path is not None else Path.cwd()
    globals_fn: dict[str, Any] = (template.get("Globals") or {}).get("Function", {}) or {}
    specs: list[FunctionSpec] = []
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        props = resource.get("Properties", {}) or {}
        code_uri = props.get("CodeUri", globals_fn.get("CodeUri"))
        if not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id}: CodeUri must be a local folder, got {code_uri!r}")
        handler = props.get("Handler", globals_fn.get("Handler"))
        if not isinstance(handler, str) or "." not in handler:
            raise TemplateError(f"{logical_id}: Handler must look like module.function, got {handler!r}")
        variables = {
            **((globals_fn.get("Environment") or {}).get("Variables") or {}),
            **((props.get("Environment") or {}).get("Variables") or {}),
        }
        environment = {
            key: _env_string(resolver.resolve(value, f"{logical_id}.Environment.{key}"))
            for key, value in variables.items()
        }
        routes, rules, schedules, streams = function_events(template, resolver, logical_id, props.get("Events") or {})
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                code_dir=(base_dir / code_uri).resolve(),
                handler=handler,
                environment=environment,
                memory_size=int(
                    resolver.resolve(props.get("MemorySize", globals_fn.get("MemorySize", 128)), logical_id)
                ),
                timeout=int(resolver.resolve(props.get("Timeout", globals_fn.get("Timeout", 3)), logical_id)),
                routes=tuple(routes),
                rules=tuple(rules),
                schedules=tuple(schedules),
                streams=tuple(streams),
            )
        )
    return specs


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        raise TemplateError(f"environment value {value!r} did not resolve to a string")
    return str(value)
