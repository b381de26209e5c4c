"""The relay from the outbox stream to the bus: order, partial failures, and what it never relays."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from coaching.adapters import keys
from coaching.adapters.outbox import EventBridgeRelay, outbox_item
from coaching.domain.events import EngagementEnded, SessionBooked

ROOT = Path(__file__).resolve().parents[2]


def _relay_module() -> Any:
    name = "_event_relay_app"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / "event_relay" / "app.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class FakeBus:
    """Accepts entries until `refuse_from` entries have been accepted, then refuses the rest of that call."""

    def __init__(self, refuse_from: int | None = None) -> None:
        self.entries: list[dict[str, Any]] = []
        self.refuse_from = refuse_from
        self.calls = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        results: list[dict[str, Any]] = []
        for entry in Entries:
            if self.refuse_from is not None and len(self.entries) >= self.refuse_from:
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                self.entries.append(entry)
                results.append({"EventId": f"bus-{len(self.entries)}"})
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}


def _image(event: Any) -> dict[str, Any]:
    item = outbox_item(event)
    return {name: ({"N": str(value)} if isinstance(value, int) else {"S": value})
            for name, value in item.attribute_values.items()}  # fmt: skip


def _record(sequence: int, image: dict[str, Any], name: str = "INSERT") -> dict[str, Any]:
    return {
        "eventID": f"e{sequence}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": {
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "NewImage": image,
            "SequenceNumber": f"{sequence:021d}",
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/main/stream/x",
    }


def _events(count: int) -> list[Any]:
    return [
        EngagementEnded(org_id="o", person_id=f"p{n}", engagement_id=f"e{n}", coach_id="c", program="SCALE")
        for n in range(count)
    ]


class _Context:
    function_name = "event_relay"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:event_relay"
    aws_request_id = "request-1"


@pytest.fixture
def relay_with(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = _relay_module()

    def install(bus: FakeBus) -> Any:
        monkeypatch.setattr(module, "_relay", [EventBridgeRelay(bus, "coaching-platform")])
        return module.lambda_handler

    return install


def test_relays_every_outbox_insert_in_stream_order_in_batches_of_ten(relay_with: Any) -> None:
    bus = FakeBus()
    events = _events(23)
    response = relay_with(bus)({"Records": [_record(n, _image(e)) for n, e in enumerate(events)]}, _Context())
    assert response == {"batchItemFailures": []}
    assert bus.calls == 3
    assert [json.loads(entry["Detail"])["event_id"] for entry in bus.entries] == [e.event_id for e in events]
    assert {entry["DetailType"] for entry in bus.entries} == {"EngagementEnded"}
    assert {entry["Source"] for entry in bus.entries} == {"coaching.matching"}


def test_a_refused_entry_fails_it_and_everything_after_it_so_order_holds(relay_with: Any) -> None:
    bus = FakeBus(refuse_from=12)
    events = _events(15)
    records = [_record(n, _image(e)) for n, e in enumerate(events)]
    response = relay_with(bus)({"Records": records}, _Context())
    failed = [failure["itemIdentifier"] for failure in response["batchItemFailures"]]
    assert failed == [r["dynamodb"]["SequenceNumber"] for r in records[12:]]
    assert len(bus.entries) == 12


def test_items_that_are_not_outbox_inserts_are_never_relayed(relay_with: Any) -> None:
    bus = FakeBus()
    booked = SessionBooked(org_id="o", person_id="p", booking_id="b", coach_id="c", program="SCALE",
                           start="2026-12-01T09:00:00+00:00")  # fmt: skip
    other = {
        "pk": {"S": keys.person_pk("o", "p")},
        "sk": {"S": keys.booking_sk("b")},
        "kind": {"S": "booking"},
        "body": {"S": "{}"},
    }
    response = relay_with(bus)({"Records": [_record(1, other), _record(2, _image(booked))]}, _Context())
    assert response == {"batchItemFailures": []}
    assert [entry["DetailType"] for entry in bus.entries] == ["SessionBooked"]


def test_the_outbox_item_carries_the_detail_exactly_as_the_catalogue_renders_it() -> None:
    event = _events(1)[0]
    item = outbox_item(event)
    assert item.pk == f"OUTBOX#{event.event_id}"
    assert json.loads(item.detail) == event.detail()
    assert item.expires_at > int(event.occurred_at.timestamp())
