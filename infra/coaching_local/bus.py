"""EventBridge, locally: `PutEvents` on the gateway's port, rule patterns, asynchronous delivery.

The handlers' own boto3 events client reaches this through AWS_ENDPOINT_URL_EVENTBRIDGE (the name
botocore derives from the service id) pointing at the gateway: `POST /` with
`X-Amz-Target: AWSEvents.PutEvents`. Entries are validated like AWS answers them, matched against every
rule of their bus, and delivered with each rule's retry policy (see `deliveries`).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from coaching_local import event_patterns
from coaching_local.deliveries import AsyncDelivery, Target, now_iso
from coaching_local.runtime import FunctionPool
from coaching_local.server import LocalRequest, LocalResponse, response
from coaching_local.template import LOCAL_ACCOUNT_ID, Rule, TemplateError

log = logging.getLogger("coaching_local.bus")

_AMZ_JSON = [("Content-Type", "application/x-amz-json-1.1")]


class AwsError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def bus_name(value: Any) -> str:
    if not value:
        return "default"
    text = str(value)
    return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text  # ARN → name


def _entry_problem(entry: Any) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return "InvalidArgument", "Entry is not an object."
    for key in ("Source", "DetailType"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            return "InvalidArgument", f"Parameter {key} is not valid. Reason: {key} is a required argument."
    detail = entry.get("Detail")
    if not isinstance(detail, str):
        return "InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument."
    try:
        parsed = json.loads(detail)
    except json.JSONDecodeError:
        return "MalformedDetail", "Detail is malformed."
    if not isinstance(parsed, dict):
        return "MalformedDetail", "Detail is malformed."
    if len(json.dumps(entry)) > 256 * 1024:
        return "EntryTooLarge", "Entry exceeds the 256 KB limit."
    return None


def _event_time(value: Any) -> str:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str) and value:
        return value
    return now_iso()


class EventBus:
    """Every bus of the template (and `default`), with the rules that listen on them."""

    def __init__(self, buses: set[str], region: str, delivery: AsyncDelivery) -> None:
        self.buses = buses
        self.region = region
        self.delivery = delivery
        self.rules: list[tuple[Rule, Target]] = []

    def add_rule(self, function: str, rule: Rule, pool: FunctionPool) -> None:
        if rule.bus not in self.buses:
            raise TemplateError(f"{function}.{rule.event_name}: bus {rule.bus} is not in the template")
        event_patterns.validate(rule.pattern)  # malformed patterns fail at startup, not per event
        self.rules.append((rule, Target("rule", rule.event_name, pool, rule.max_retries, rule.max_event_age_seconds)))

    def handle(self, request: LocalRequest) -> LocalResponse:
        """An AWS JSON-protocol request (`X-Amz-Target`); only PutEvents is served."""
        target = request.header("X-Amz-Target") or ""

        def error(kind: str, message: str) -> LocalResponse:
            return response(400, json.dumps({"__type": kind, "message": message}).encode(), _AMZ_JSON)

        if target != "AWSEvents.PutEvents":
            return error("UnknownOperationException", f"{target} is not supported by the local stack")
        try:
            payload = json.loads(request.body or b"{}")
        except json.JSONDecodeError:
            return error("SerializationException", "request body is not JSON")
        try:
            result = self.put_events(payload.get("Entries"))
        except AwsError as exc:
            return error(exc.kind, exc.message)
        return response(200, json.dumps(result).encode(), _AMZ_JSON)

    def put_events(self, entries: Any) -> dict[str, Any]:
        """EventBridge PutEvents: validate like AWS, answer per entry, deliver matches asynchronously."""
        if not isinstance(entries, list) or not 1 <= len(entries) <= 10:
            raise AwsError("ValidationException", "Entries must hold between 1 and 10 entries")
        for entry in entries:
            bus = bus_name(entry.get("EventBusName")) if isinstance(entry, dict) else "default"
            if bus not in self.buses:
                raise AwsError("ResourceNotFoundException", f"Event bus {bus} does not exist.")
        results: list[dict[str, str]] = []
        accepted: list[tuple[str, dict[str, Any]]] = []
        for entry in entries:
            problem = _entry_problem(entry)
            if problem:
                results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
                continue
            event_id = str(uuid.uuid4())
            event = {
                "version": "0",
                "id": event_id,
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": LOCAL_ACCOUNT_ID,
                "time": _event_time(entry.get("Time")),
                "region": self.region,
                "resources": list(entry.get("Resources") or []),
                "detail": json.loads(entry["Detail"]),
            }
            results.append({"EventId": event_id})
            accepted.append((bus_name(entry.get("EventBusName")), event))
        for bus, event in accepted:
            matched = [t for rule, t in self.rules if rule.bus == bus and event_patterns.matches(rule.pattern, event)]
            if not matched:
                log.info("event %s (%s) matched no rule on %s", event["id"], event["detail-type"], bus)
            for target in matched:
                self.delivery.submit(target, event, event["id"], event["detail-type"])
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}
