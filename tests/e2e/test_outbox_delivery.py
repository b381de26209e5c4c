"""Events cannot be lost after a commit: the process that committed dies, the event still arrives, once.

The change of coach commits the ended engagement and its `EngagementEnded` outbox item in one
transaction. Here the stack that serves the request has its stream relay paused and is killed
(SIGKILL) right after answering, before anything could publish; another stack, whose relay was
paused meanwhile, resumes from the stream and delivers the event. Booking then cancels the old
engagement's future session. A second delivery of the very same event changes nothing.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3
import pytest
from coaching_local.testing import StackProcess

from .helpers import Api, Tenant, make_tenant
from .test_booking_api import ALL_WEEK, booking_body, engaged, open_starts
from .test_matching_api import coach, refresh

pytestmark = pytest.mark.e2e

RELAY = "EventRelayFunction.OutboxStream"


@pytest.fixture(scope="module")
def tenant(local_stack, operator) -> Tenant:
    return make_tenant(local_stack, operator, "Outbox org")


def outbox_events(detail_type: str, **match: str) -> list[dict[str, Any]]:
    """The outbox items of one type whose detail has the given values (a test-side Scan)."""
    table = boto3.resource("dynamodb").Table("test-MainTable")
    found, start = [], None
    while True:
        page = table.scan(
            FilterExpression="kind = :kind AND detail_type = :type",
            ExpressionAttributeValues={":kind": "outbox", ":type": detail_type},
            **({"ExclusiveStartKey": start} if start else {}),
        )
        found += [json.loads(item["detail"]) for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    return [d for d in found if all(d.get(k) == v for k, v in match.items())]


def status_of(employee: Api, booking_id: str) -> str:
    return employee.call("GET", f"/bookings/{booking_id}").json()["status"]


def test_an_event_committed_by_a_request_that_dies_right_after_is_delivered_exactly_once(
    local_stack, dynamodb_local, operator, tenant
):
    lang = "sk"  # a language no other end-to-end test gives its coaches
    for _ in range(2):
        coach(operator, lang, capacity=5, weekly_availability=ALL_WEEK, horizon_days=60)
    refresh(local_stack)
    employee, engagement = engaged(local_stack, tenant, operator, lang)
    starts = open_starts(employee, engagement["engagement_id"], days=10)
    booked = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], starts[-1])).json()
    assert local_stack.drain_streams(timeout=30)["drained"]

    # The shared stack stops relaying; a second stack, relay paused too, takes the request.
    local_stack.pause_stream(RELAY)
    doomed = StackProcess(
        dynamodb_endpoint=dynamodb_local,
        prefix="test",
        env={"AWS_ENDPOINT_URL_EVENTBRIDGE": local_stack.url, "ROSTER_CACHE_TTL_SECONDS": "0"},
        signing_key=os.environ["LOCAL_DEV_SIGNING_KEY"].encode(),
        scheduler=False,
        streams_paused=True,
    ).start()
    try:
        on_doomed = Api(doomed.url, employee.token)
        changed = on_doomed.call(
            "POST", f"/engagements/{engagement['engagement_id']}/change-coach", {"reason": "not a fit"}
        )
        assert changed.status_code == 200, changed.text
    finally:
        assert doomed.kill() is not None  # SIGKILL: no clean stop, no chance to publish anything
    [ended] = outbox_events("EngagementEnded", engagement_id=engagement["engagement_id"])
    time.sleep(1)  # nothing relays: the session is still booked
    assert status_of(employee, booked["booking_id"]) == "booked"

    # The relay resumes from the stream: the committed event arrives and booking acts on it.
    seen = max((d["seq"] for d in local_stack.deliveries()), default=0)
    local_stack.resume_stream(RELAY)
    assert local_stack.drain_streams(timeout=30)["drained"]
    delivered = local_stack.wait_for_delivery(
        lambda d: d["seq"] > seen and d["detail_type"] == "EngagementEnded" and d["function"] == "BookingFunction",
        timeout=30,
    )
    assert delivered["status"] == "succeeded", delivered
    deadline = time.monotonic() + 15
    while status_of(employee, booked["booking_id"]) == "booked" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status_of(employee, booked["booking_id"]) == "cancelled"
    assert assert_drained_and_count(local_stack, booked["booking_id"]) == 1

    # The same event again (a relay retry publishes it twice): booking changes nothing.
    events = boto3.client("events", endpoint_url=local_stack.url, region_name="eu-west-1")
    again = events.put_events(
        Entries=[
            {
                "Source": "coaching.matching",
                "DetailType": "EngagementEnded",
                "Detail": json.dumps(ended),
                "EventBusName": "coaching-platform-test",
            }
        ]
    )
    assert again["FailedEntryCount"] == 0
    bus_id = again["Entries"][0]["EventId"]
    redelivered = local_stack.wait_for_delivery(lambda d: d["event_id"] == bus_id, timeout=30)
    assert redelivered["status"] == "succeeded"
    assert assert_drained_and_count(local_stack, booked["booking_id"]) == 1


def assert_drained_and_count(local_stack, booking_id: str) -> int:
    assert local_stack.drain_streams(timeout=30)["drained"]
    return len(outbox_events("SessionCancelled", booking_id=booking_id))
