"""The event catalogue against the template's rules, each consumer's dispatch table and docs/events.md."""

from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from coaching.api import FunctionEntry
from coaching.domain import events as catalogue
from coaching.domain.events import CATALOGUE, UnknownEvent
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[2]


class _IgnoreTags(yaml.SafeLoader):
    """Reads the template's structure; CloudFormation intrinsics (!Ref, !Sub, ...) become None."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)


def _template() -> dict[str, Any]:
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=_IgnoreTags)  # noqa: S506 (a SafeLoader)


def _functions() -> dict[str, dict[str, Any]]:
    resources = _template()["Resources"]
    return {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}


def _load(code_uri: str) -> ModuleType:
    path = ROOT / code_uri / "app.py"
    name = f"_catalogue_test_{code_uri.strip('/').replace('/', '_')}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _routed() -> dict[str, set[tuple[str, str]]]:
    """(source, detail-type) pairs each function's EventBridge rules deliver to it."""
    routed: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for name, function in _functions().items():
        for event in (function["Properties"].get("Events") or {}).values():
            if event["Type"] != "EventBridgeRule":
                continue
            pattern = event["Properties"]["Pattern"]
            for source in pattern["source"]:
                for detail_type in pattern["detail-type"]:
                    routed[name].add((source, detail_type))
    return routed


def _entries() -> dict[str, FunctionEntry]:
    entries = {}
    for name, function in _functions().items():
        handler = _load(function["Properties"]["CodeUri"]).lambda_handler
        if isinstance(handler, FunctionEntry):
            entries[name] = handler
    return entries


def test_every_rule_routes_catalogue_events_from_their_own_source() -> None:
    by_type = {event.detail_type: event for event in CATALOGUE}
    for function, pairs in _routed().items():
        for source, detail_type in pairs:
            assert detail_type in by_type, f"{function}'s rule routes {detail_type}, which is not in the catalogue"
            assert by_type[detail_type].source == source, f"{detail_type} comes from {by_type[detail_type].source}"


def test_each_consumer_dispatches_exactly_what_its_rules_deliver() -> None:
    routed = _routed()
    entries = _entries()
    assert set(routed) <= set(entries), "a function with rules has no event dispatch"
    for function, entry in entries.items():
        consumed = {(event.source, event.detail_type) for event in entry.consumes}
        assert consumed == routed.get(function, set()), function


def test_catalogue_names_are_unique_and_sources_are_the_platforms() -> None:
    assert len({event.detail_type for event in CATALOGUE}) == len(CATALOGUE)
    assert {event.source for event in CATALOGUE} <= {
        catalogue.ADMIN,
        catalogue.MATCHING,
        catalogue.BOOKING,
        catalogue.SESSIONS,
        catalogue.METERING,
        catalogue.HR,
        catalogue.PROGRAMMES,
        catalogue.DEVELOPMENT,
        catalogue.REPORTS,
    }


def test_only_the_relay_may_put_events_and_only_the_platforms_sources() -> None:
    publishers = {}
    for name, function in _functions().items():
        for policy in function["Properties"].get("Policies") or []:
            if not isinstance(policy, dict):
                continue
            assert "EventBridgePutEventsPolicy" not in policy, f"{name} may publish directly"
            for statement in policy.get("Statement", []):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "events:PutEvents" in actions:
                    publishers[name] = statement["Condition"]["ForAllValues:StringEquals"]["events:source"]
    assert set(publishers) == {"EventRelayFunction"}
    assert set(publishers["EventRelayFunction"]) == {event.source for event in CATALOGUE}


def _bus_event(detail_type: str, source: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0", "id": "bus-id", "detail-type": detail_type, "source": source, "account": "1",
            "time": "2026-11-30T00:00:00Z", "region": "eu-west-1", "resources": [], "detail": detail}  # fmt: skip


class _Context:
    function_name = "booking"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:booking"
    aws_request_id = "request-1"


def test_an_unknown_type_a_foreign_source_or_a_bad_detail_raise_so_the_bus_dead_letters_them() -> None:
    entry = _entries()["BookingFunction"]
    context = _Context()
    with pytest.raises(UnknownEvent, match="no event"):
        entry(_bus_event("SomethingNew", catalogue.MATCHING, {}), context)
    with pytest.raises(UnknownEvent, match=r"comes from coaching\.matching"):
        entry(_bus_event("EngagementEnded", catalogue.HR, {}), context)
    with pytest.raises(UnknownEvent, match="does not consume SessionBooked"):
        entry(_bus_event("SessionBooked", catalogue.BOOKING, {}), context)
    with pytest.raises(ValidationError):
        entry(_bus_event("EngagementEnded", catalogue.MATCHING, {"org_id": "o"}), context)


def test_detail_round_trips_through_the_catalogue() -> None:
    event = catalogue.EngagementEnded(
        org_id="o", person_id="p", engagement_id="e", coach_id="c", program="SCALE", end_reason="change"
    )
    detail = event.detail()
    assert detail["version"] == 1
    assert detail["event_id"] == event.event_id
    assert catalogue.parse_detail("EngagementEnded", catalogue.MATCHING, detail) == event


def test_stable_ids_repeat_for_the_same_subject_only() -> None:
    assert catalogue.stable_event_id("InvoiceDue", "o", "2026-10") == catalogue.stable_event_id(
        "InvoiceDue", "o", "2026-10"
    )
    assert catalogue.stable_event_id("InvoiceDue", "o", "2026-10") != catalogue.stable_event_id(
        "InvoiceDue", "o", "2026-11"
    )


def test_docs_events_md_is_generated_from_the_catalogue() -> None:
    spec = importlib.util.spec_from_file_location("_events_doc", ROOT / "infra" / "events_doc.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "events.md").read_text() == module.render(), "run `make docs` to regenerate docs/events.md"
