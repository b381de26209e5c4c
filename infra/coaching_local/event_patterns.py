"""EventBridge event-pattern matching, as documented in the EventBridge user guide.

Semantics reproduced here:
- every key of a pattern must match (AND); the array of conditions under a leaf key is an OR;
- a nested object in the pattern descends into the event; arrays in the event are flattened, so
  `{"detail": {"items": {"sku": ["a"]}}}` matches `{"detail": {"items": [{"sku": "a"}]}}`;
- when the event value is an array, the leaf matches if any element matches any condition;
- exact values compare by type (the string "5" does not match the number 5, true does not match 1);
- content filters: prefix, suffix (both also with equals-ignore-case), anything-but (value, list,
  prefix, suffix, equals-ignore-case), exists, numeric, equals-ignore-case, wildcard, cidr, and `$or`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any


class PatternError(ValueError):
    """The pattern itself is malformed (EventBridge would reject it at PutRule)."""


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True when `event` matches the EventBridge `pattern`."""
    if not isinstance(pattern, Mapping):
        raise PatternError("an event pattern must be a JSON object")
    return _match_object(pattern, [event])


def _match_object(pattern: Mapping[str, Any], nodes: list[Any]) -> bool:
    for key, sub in pattern.items():
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2:
                raise PatternError("$or needs a list of at least two patterns")
            if not any(_match_object(alternative, nodes) for alternative in sub):
                return False
        elif isinstance(sub, Mapping):
            # Descend: the children are every object found under `key`, arrays flattened.
            if not _match_object(sub, _children(nodes, key)):
                return False
        elif isinstance(sub, list):
            present, values = _leaf_values(nodes, key)
            if not sub:
                raise PatternError(f"empty condition list under {key!r}")
            if not any(_condition(cond, present, values) for cond in sub):
                return False
        else:
            raise PatternError(f"pattern value under {key!r} must be an object or an array, got {sub!r}")
    return True


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [item for element in value for item in _flatten(element)]
    return [value]


def _children(nodes: list[Any], key: str) -> list[Any]:
    children: list[Any] = []
    for node in nodes:
        if isinstance(node, Mapping) and key in node:
            children.extend(v for v in _flatten(node[key]) if isinstance(v, Mapping))
    return children


def _leaf_values(nodes: list[Any], key: str) -> tuple[bool, list[Any]]:
    """The scalar values at `key` across all nodes; objects are not leaves, so they do not count."""
    values: list[Any] = []
    for node in nodes:
        if isinstance(node, Mapping) and key in node:
            values.extend(v for v in _flatten(node[key]) if not isinstance(v, Mapping))
    return bool(values), values


def _same_scalar(expected: Any, actual: Any) -> bool:
    if _is_number(expected) and _is_number(actual):
        return float(expected) == float(actual)
    return type(expected) is type(actual) and expected == actual


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _condition(cond: Any, present: bool, values: list[Any]) -> bool:
    if not isinstance(cond, Mapping):
        if isinstance(cond, list):
            raise PatternError(f"nested arrays are not allowed in a pattern: {cond!r}")
        return any(_same_scalar(cond, value) for value in values)
    if len(cond) != 1:
        # Only numeric takes several comparisons, and they live inside its one list.
        raise PatternError(f"a content filter has exactly one key, got {sorted(cond)}")
    ((kind, arg),) = cond.items()
    if kind == "exists":
        if not isinstance(arg, bool):
            raise PatternError("exists takes true or false")
        return present is arg
    return any(_filter(kind, arg, value) for value in values)


def _filter(kind: str, arg: Any, value: Any) -> bool:
    if kind == "prefix":
        return _affix(arg, value, str.startswith, kind)
    if kind == "suffix":
        return _affix(arg, value, str.endswith, kind)
    if kind == "equals-ignore-case":
        if not isinstance(arg, str):
            raise PatternError("equals-ignore-case takes a string")
        return isinstance(value, str) and value.casefold() == arg.casefold()
    if kind == "anything-but":
        return _anything_but(arg, value)
    if kind == "numeric":
        return _numeric(arg, value)
    if kind == "wildcard":
        if not isinstance(arg, str):
            raise PatternError("wildcard takes a string")
        return isinstance(value, str) and _wildcard_regex(arg).fullmatch(value) is not None
    if kind == "cidr":
        if not isinstance(value, str):
            return False
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
        except ValueError:
            return False
    raise PatternError(f"unknown content filter {kind!r}")


def _affix(arg: Any, value: Any, test: Any, kind: str) -> bool:
    if not isinstance(value, str):
        return False
    if isinstance(arg, Mapping):
        if set(arg) != {"equals-ignore-case"} or not isinstance(arg["equals-ignore-case"], str):
            raise PatternError(f"{kind} takes a string or {{'equals-ignore-case': string}}")
        return bool(test(value.casefold(), arg["equals-ignore-case"].casefold()))
    if not isinstance(arg, str):
        raise PatternError(f"{kind} takes a string")
    return bool(test(value, arg))


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, Mapping):
        if len(arg) != 1:
            raise PatternError("anything-but takes one nested filter")
        ((kind, inner),) = arg.items()
        if kind in ("prefix", "suffix", "wildcard"):
            if not isinstance(value, str):
                return False
            inner_list = inner if isinstance(inner, list) else [inner]
            return not any(_filter(kind, item, value) for item in inner_list)
        if kind == "equals-ignore-case":
            if not isinstance(value, str):
                return False
            inner_list = inner if isinstance(inner, list) else [inner]
            return all(value.casefold() != str(item).casefold() for item in inner_list)
        raise PatternError(f"anything-but does not support {kind!r}")
    excluded = arg if isinstance(arg, list) else [arg]
    return not any(_same_scalar(item, value) for item in excluded)


_NUMERIC_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _numeric(arg: Any, value: Any) -> bool:
    if not isinstance(arg, list) or not arg or len(arg) % 2:
        raise PatternError("numeric takes [op, number, op, number, ...]")
    if not _is_number(value):
        return False
    for op, bound in zip(arg[0::2], arg[1::2], strict=True):
        if op not in _NUMERIC_OPS or not _is_number(bound):
            raise PatternError(f"bad numeric comparison {op!r} {bound!r}")
        if not _NUMERIC_OPS[op](float(value), float(bound)):
            return False
    return True


def _wildcard_regex(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.DOTALL)


def validate(pattern: Mapping[str, Any]) -> None:
    """Raise PatternError for a pattern EventBridge would reject (matching alone short-circuits)."""
    if not isinstance(pattern, Mapping):
        raise PatternError("an event pattern must be a JSON object")
    for key, sub in pattern.items():
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2:
                raise PatternError("$or needs a list of at least two patterns")
            for alternative in sub:
                validate(alternative)
        elif isinstance(sub, Mapping):
            validate(sub)
        elif isinstance(sub, list):
            if not sub:
                raise PatternError(f"empty condition list under {key!r}")
            for cond in sub:
                # Exercising each condition on sample values surfaces malformed filter arguments.
                for sample in ("x", 1):
                    _condition(cond, True, [sample])
        else:
            raise PatternError(f"pattern value under {key!r} must be an object or an array, got {sub!r}")
