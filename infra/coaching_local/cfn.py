"""CloudFormation template text: YAML with short tags, and the intrinsic functions that resolve locally.

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
# Every Cognito app client of the template, locally: the development tokens (`tokens`) stand in for
# all user pools and carry this `aud`, so the handlers' client check passes for them and only them.
LOCAL_USER_POOL_CLIENT_ID = "coaching-platform-local-client"


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


def local_table_name(prefix: str, logical_id: str) -> str:
    return f"{prefix}-{logical_id}"


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if isinstance(resource, dict) and resource.get("Type") == resource_type
    }


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
        if kind == "AWS::Cognito::UserPoolClient":
            return LOCAL_USER_POOL_CLIENT_ID
        if kind == "AWS::Serverless::Function":
            return f"{self.names.prefix}-{name}"  # the local function name (runtime.FunctionPool)
        if kind == "AWS::S3::Bucket":  # a folder of the local stack (coaching_local.artefacts)
            return f"{self.names.prefix}-{name}".lower()
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
