"""Read the SAM template the way the local stack needs it: tables, functions, routes, rules, schedules.

Only the intrinsic functions that make sense without a deployment are resolved; anything else in a
value the local stack must use raises `TemplateError` naming the offending resource, so a template
change never silently produces a wrong local environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_REGION = "eu-west-1"

# Amazon's defaults (185 retries over 24 h) make no sense on a laptop; a rule or schedule
# without RetryPolicy is retried this many times locally.
LOCAL_DEFAULT_MAX_RETRIES = 2
LOCAL_DEFAULT_MAX_EVENT_AGE = 3600


class TemplateError(ValueError):
    """The template uses something the local stack cannot resolve or does not understand."""


# --------------------------------------------------------------------------- YAML loading

_SHORT_TAGS = {
    "Base64": "Fn::Base64",
    "Cidr": "Fn::Cidr",
    "FindInMap": "Fn::FindInMap",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "Sub": "Fn::Sub",
    "Transform": "Fn::Transform",
    "And": "Fn::And",
    "Equals": "Fn::Equals",
    "If": "Fn::If",
    "Not": "Fn::Not",
    "Or": "Fn::Or",
    "Length": "Fn::Length",
    "ToJsonString": "Fn::ToJsonString",
    "ForEach": "Fn::ForEach",
}


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags (!Ref, !Sub, ...) into their long-form dicts."""


def _node_value(loader: CfnLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unsupported YAML node {node!r}")


def _long_form(long_name: str) -> Callable[[CfnLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
        return {long_name: _node_value(loader, node)}

    return construct


def _construct_ref(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Ref": _node_value(loader, node)}


def _construct_condition(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Condition": _node_value(loader, node)}


def _construct_getatt(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
    value = _node_value(loader, node)
    if isinstance(value, str):
        # "!GetAtt A.B.C" means resource A, attribute "B.C" (attributes may contain dots).
        resource, _, attribute = value.partition(".")
        if not attribute:
            raise TemplateError(f"!GetAtt {value!r} needs Resource.Attribute")
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


for _short, _long in _SHORT_TAGS.items():
    CfnLoader.add_constructor(f"!{_short}", _long_form(_long))
CfnLoader.add_constructor("!Ref", _construct_ref)
CfnLoader.add_constructor("!Condition", _construct_condition)
CfnLoader.add_constructor("!GetAtt", _construct_getatt)


class Template(dict[str, Any]):
    """The parsed template; `path` remembers where it came from so CodeUri resolves against it."""

    path: Path | None = None


def load_template(path: str | Path) -> Template:
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader subclass
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources mapping)")
    template = Template(data)
    template.path = path.resolve()
    return template


# --------------------------------------------------------------------------- tables


def local_table_name(prefix: str, logical_id: str) -> str:
    return f"{prefix}-{logical_id}"


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if isinstance(resource, dict) and resource.get("Type") == resource_type
    }


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
        definitions.append(definition)
    return definitions


def _key(element: Mapping[str, Any]) -> dict[str, str]:
    return {"AttributeName": element["AttributeName"], "KeyType": element["KeyType"]}


def _projection(projection: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"ProjectionType": projection.get("ProjectionType", "ALL")}
    if projection.get("NonKeyAttributes"):
        result["NonKeyAttributes"] = list(projection["NonKeyAttributes"])
    return result


# --------------------------------------------------------------------------- intrinsic resolution


@dataclass(frozen=True)
class LocalNames:
    """How logical resources are named locally; `Stage` defaults to the prefix so names stay distinct."""

    prefix: str = "local"
    parameters: Mapping[str, str] = field(default_factory=dict)
    region: str = LOCAL_REGION
    account_id: str = LOCAL_ACCOUNT_ID


class Resolver:
    """Evaluates the intrinsic functions that have a sensible local meaning."""

    def __init__(self, template: Mapping[str, Any], names: LocalNames) -> None:
        self.template = template
        self.names = names
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.parameters: dict[str, Any] = template.get("Parameters", {}) or {}

    def parameter(self, name: str, where: str = "template") -> str:
        if name in self.names.parameters:
            return str(self.names.parameters[name])
        if name == "Stage" and "Stage" not in self.names.parameters:
            return self.names.prefix
        definition = self.parameters.get(name, {})
        if "Default" not in definition:
            raise TemplateError(f"{where}: parameter {name} has no Default; pass a local value for it")
        default = definition["Default"]
        return str(default).lower() if isinstance(default, bool) else str(default)

    def ref(self, name: str, where: str) -> str:
        pseudo = {
            "AWS::Region": self.names.region,
            "AWS::AccountId": self.names.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": f"coaching-platform-{self.names.prefix}",
            "AWS::NoValue": "",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameter(name, where)
        resource = self.resources.get(name)
        if resource is None:
            raise TemplateError(f"{where}: !Ref {name} names no parameter or resource")
        kind = resource.get("Type")
        if kind == "AWS::DynamoDB::Table":
            return local_table_name(self.names.prefix, name)
        if kind == "AWS::Events::EventBus":
            return self.bus_name(name)
        raise TemplateError(f"{where}: !Ref {name} ({kind}) has no local equivalent")

    def bus_name(self, logical_id: str) -> str:
        props = self.resources[logical_id].get("Properties", {})
        if "Name" not in props:
            return f"{self.names.prefix}-{logical_id}"
        return self.resolve(props["Name"], f"{logical_id}.Name")

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            return [self.resolve(item, where) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg, where)
            if key == "Fn::Sub":
                return self._sub(arg, where)
            if key == "Fn::Join":
                delimiter, items = arg
                return str(delimiter).join(str(self.resolve(i, where)) for i in items)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items, where)[int(self.resolve(index, where))]
            if key == "Fn::Split":
                delimiter, text = arg
                return str(self.resolve(text, where)).split(delimiter)
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(arg, where))
            if key.startswith("Fn::") or key == "Condition":
                raise TemplateError(f"{where}: {key} cannot be resolved locally")
        return {k: self.resolve(v, f"{where}.{k}") for k, v in value.items()}

    def _sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, list):
            text, variables = arg
            variables = {k: self.resolve(v, where) for k, v in variables.items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} escapes a literal ${Literal}
            if name in variables:
                return str(variables[name])
            if "." in name:
                raise TemplateError(f"{where}: ${{{name}}} (GetAtt) cannot be resolved locally")
            return self.ref(name, where)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


# --------------------------------------------------------------------------- functions


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
        routes, rules, schedules = _events(template, resolver, logical_id, props.get("Events") or {})
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
            )
        )
    return specs


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        raise TemplateError(f"environment value {value!r} did not resolve to a string")
    return str(value)


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


def _events(
    template: Mapping[str, Any], resolver: Resolver, logical_id: str, events: Mapping[str, Any]
) -> tuple[list[Route], list[Rule], list[Schedule]]:
    routes: list[Route] = []
    rules: list[Rule] = []
    schedules: list[Schedule] = []
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
            schedules.append(
                Schedule(
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
            )
        # Other event sources (SQS, S3, ...) are not part of this template; they are ignored locally.
    return routes, rules, schedules
