"""Reschedules, coach cancels, the end of an engagement and session outcomes over HTTP.

Sessions can only be completed after they start, and bookings need notice; so the outcome
tests move a booked session into the past by rewriting its stored times (`time_travel`),
which stands in for the clock moving on. Everything else is the real path.
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from coaching.adapters import keys

from .helpers import Api, Tenant, make_tenant
from .test_booking_api import ALL_WEEK, booking_body, counter, engaged, open_starts
from .test_matching_api import coach, employee_person_id, refresh

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tenant(local_stack, operator) -> Tenant:
    return make_tenant(local_stack, operator, "Sessions org")


def as_coach(local_stack, coach_id: str) -> Api:
    return Api(local_stack.url, local_stack.token(["coach"], person_id=coach_id))


def table():
    return boto3.resource("dynamodb").Table("test-MainTable")


def time_travel(org_id: str, person_id: str, booking_id: str, hours_ago: float) -> None:
    """Move a stored booking so that it started `hours_ago` hours ago (the clock moving on)."""
    key = {"pk": keys.person_pk(org_id, person_id), "sk": keys.booking_sk(booking_id)}
    item = table().get_item(Key=key, ConsistentRead=True)["Item"]
    body = json.loads(item["body"])
    length = datetime.fromisoformat(body["end"]) - datetime.fromisoformat(body["start"])
    start = datetime.now(UTC) - timedelta(hours=hours_ago)
    body["start"], body["end"] = start.isoformat(), (start + length).isoformat()
    table().put_item(Item=item | {"body": json.dumps(body), "version": item["version"] + 1})


def ledger_entries(org_id: str, booking_id: str) -> list[dict]:
    months = {datetime.now(UTC).strftime("%Y-%m"), (datetime.now(UTC) + timedelta(days=32)).strftime("%Y-%m")}
    found = []
    for month in months:
        found += table().query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": keys.ledger_pk(org_id, month)}
        )["Items"]
    return [item for item in found if booking_id in item["sk"]]


def test_reschedule_keeps_the_invite_uid_and_a_coach_cancel_is_free(local_stack, operator, tenant):
    lang = "sq"
    coach(operator, lang, capacity=5, weekly_availability=ALL_WEEK, horizon_days=60)
    refresh(local_stack)
    employee, engagement = engaged(local_stack, tenant, operator, lang)
    starts = open_starts(employee, engagement["engagement_id"], days=10)
    booked = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], starts[-1])).json()
    moved = employee.call("POST", f"/bookings/{booked['booking_id']}/reschedule", {"start": starts[-3]})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["booking_id"], moved.json()["sequence"]) == (booked["booking_id"], 1)
    invite = employee.call("GET", f"/bookings/{booked['booking_id']}/calendar.ics").text
    assert f"UID:{booked['booking_id']}@coaching-platform" in invite
    assert "SEQUENCE:1" in invite
    # A reschedule onto a time the coach does not offer is refused, naming the field.
    refused = employee.call("POST", f"/bookings/{booked['booking_id']}/reschedule", {"start": "2020-01-01T03:00:00Z"})
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "start"

    the_coach = as_coach(local_stack, engagement["coach_id"])
    window = {"from": datetime.now(UTC).isoformat(), "to": (datetime.now(UTC) + timedelta(days=14)).isoformat()}
    listed = the_coach.call("GET", "/coach/sessions", params=window).json()["items"]
    assert [s["booking_id"] for s in listed] == [booked["booking_id"]]
    other_coach = as_coach(local_stack, "c0ffee00-0000-4000-8000-000000000000")
    assert other_coach.call("POST", f"/coach/sessions/{booked['booking_id']}/cancel", {}).status_code == 404
    cancelled = the_coach.call("POST", f"/coach/sessions/{booked['booking_id']}/cancel", {"reason": "ill"}).json()
    assert (cancelled["status"], cancelled["billable"], cancelled["cancelled_by"]) == ("cancelled", False, "coach")
    period = moved.json()["policy"]["allowance_period"]
    person_id = employee_person_id(employee)
    assert counter(*keys.allowance_key(tenant.org_id, person_id, "SCALE", period)) == 0
    assert ledger_entries(tenant.org_id, booked["booking_id"]) == []


def test_changing_coach_cancels_the_old_engagements_future_sessions(local_stack, operator, tenant):
    lang = "mk"
    for _ in range(2):
        coach(operator, lang, capacity=5, weekly_availability=ALL_WEEK, horizon_days=60)
    refresh(local_stack)
    employee, engagement = engaged(local_stack, tenant, operator, lang)
    starts = open_starts(employee, engagement["engagement_id"], days=10)
    booked = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], starts[-1])).json()
    changed = employee.call("POST", f"/engagements/{engagement['engagement_id']}/change-coach", {"reason": "fit"})
    assert changed.status_code == 200, changed.text
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status = employee.call("GET", f"/bookings/{booked['booking_id']}").json()
        if status["status"] != "booked":
            break
        time.sleep(0.1)
    assert (status["status"], status["cancelled_by"], status["billable"]) == ("cancelled", "platform", False)
    person_id = employee_person_id(employee)
    period = booked["policy"]["allowance_period"]
    assert counter(*keys.allowance_key(tenant.org_id, person_id, "SCALE", period)) == 0
    # The coach's calendar is free again.
    locks = table().query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": keys.coach_calendar_pk(booked["coach_id"])}
    )["Items"]
    assert [lock for lock in locks if lock["ref"] == booked["booking_id"]] == []


def test_completion_bills_once_under_replays_and_races_and_the_person_can_dispute(local_stack, operator, tenant):
    lang = "hy"
    coach(operator, lang, capacity=5, weekly_availability=ALL_WEEK, horizon_days=60)
    refresh(local_stack)
    employee, engagement = engaged(local_stack, tenant, operator, lang)
    person_id = employee_person_id(employee)
    starts = open_starts(employee, engagement["engagement_id"], days=10)
    first = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], starts[-1])).json()
    second = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], starts[-4])).json()
    the_coach = as_coach(local_stack, engagement["coach_id"])

    # Before it starts: refused, nothing written.
    early = the_coach.call("POST", f"/coach/sessions/{first['booking_id']}/complete", {"actual_minutes": 30})
    assert early.status_code == 409
    assert ledger_entries(tenant.org_id, first["booking_id"]) == []
    time_travel(tenant.org_id, person_id, first["booking_id"], hours_ago=1)
    time_travel(tenant.org_id, person_id, second["booking_id"], hours_ago=2)

    for bad in ({"actual_minutes": -5}, {"actual_minutes": 0}, {"actual_minutes": "thirty"}, {}):
        response = the_coach.call("POST", f"/coach/sessions/{first['booking_id']}/complete", bad)
        assert response.status_code == 422, bad
        assert response.json()["error"]["fields"][0]["field"] == "actual_minutes"
    # Replayed three times: the same answer, one ledger record.
    replies = [
        the_coach.call("POST", f"/coach/sessions/{first['booking_id']}/complete", {"actual_minutes": 31})
        for _ in range(3)
    ]
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert {r.json()["status"] for r in replies} == {"completed"}
    assert len(ledger_entries(tenant.org_id, first["booking_id"])) == 1
    # Ten at once: one record.
    with ThreadPoolExecutor(max_workers=10) as pool:
        raced = list(
            pool.map(
                lambda _: the_coach.call("POST", f"/coach/sessions/{second['booking_id']}/no-show"),
                range(10),
            )
        )
    assert [r.status_code for r in raced] == [200] * 10, [r.text for r in raced if r.status_code != 200]
    entries = ledger_entries(tenant.org_id, second["booking_id"])
    assert [json.loads(e["body"])["outcome"] for e in entries] == ["no_show"]
    # A no-show cannot later become completed.
    flip = the_coach.call("POST", f"/coach/sessions/{second['booking_id']}/complete", {"actual_minutes": 30})
    assert flip.status_code == 409

    # The person disputes; another org's operator path is closed; the platform upholds it.
    disputed = employee.call(
        "POST", f"/bookings/{first['booking_id']}/dispute", {"reason": "We ended after 5 minutes."}
    )
    assert disputed.status_code == 200, disputed.text
    assert disputed.json()["confirmation"] == "disputed"
    again = employee.call("POST", f"/bookings/{first['booking_id']}/confirm")
    assert again.status_code == 409
    upheld = operator.call(
        "POST",
        f"/orgs/{tenant.org_id}/sessions/{first['booking_id']}/resolve-dispute",
        {"upheld": True, "reason": "confirmed with the coach"},
    )
    assert upheld.status_code == 200, upheld.text
    assert upheld.json()["credited"] is True
    amounts = sorted(json.loads(e["body"])["amount_minor"] for e in ledger_entries(tenant.org_id, first["booking_id"]))
    assert amounts[0] == -amounts[1]
    assert amounts[1] > 0
    wrong_org = operator.call(
        "POST", f"/orgs/{tenant.org_id}x/sessions/{second['booking_id']}/credit", {"reason": "wrong org"}
    )
    assert wrong_org.status_code in {404, 422}


def test_coach_time_off_and_extra_hours_shape_the_open_slots(local_stack, operator, tenant):
    lang = "ka"
    created = coach(operator, lang, capacity=5, weekly_availability=ALL_WEEK, horizon_days=60, time_zone="UTC")
    refresh(local_stack)
    employee, engagement = engaged(local_stack, tenant, operator, lang, time_zone="UTC")
    day = (datetime.now(UTC) + timedelta(days=5)).date()
    window = {
        "from": datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat(),
        "to": datetime(day.year, day.month, day.day, 23, 59, tzinfo=UTC).isoformat(),
    }
    slots_url = f"/engagements/{engagement['engagement_id']}/slots"
    assert employee.call("GET", slots_url, params=window).json()["items"], "an all-week coach has slots that day"
    exceptions = [
        {"date": day.isoformat(), "kind": "time_off"},
        {"date": day.isoformat(), "kind": "extra", "start": "21:00", "end": "22:00"},
    ]
    patched = operator.call("PATCH", f"/coaches/{created['coach_id']}", {"availability_exceptions": exceptions})
    assert patched.status_code == 200, patched.text
    refresh(local_stack)
    starts = [s["start_utc"] for s in employee.call("GET", slots_url, params=window).json()["items"]]
    assert starts, "the extra hour is open"
    assert all(datetime.fromisoformat(s).hour == 21 for s in starts), starts
    bad = operator.call(
        "PATCH",
        f"/coaches/{created['coach_id']}",
        {"availability_exceptions": [{"date": "2027-01-01", "kind": "extra"}]},
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"].startswith("availability_exceptions")


def test_cancel_and_rebook_race_over_http_never_leaves_two_holders(local_stack, operator, tenant):
    """The holder cancels while three colleagues try to take the same slot, all at once, five rounds."""
    lang = "bs"
    coach(operator, lang, capacity=10, weekly_availability=ALL_WEEK, horizon_days=60)
    refresh(local_stack)
    people = [engaged(local_stack, tenant, operator, lang) for _ in range(4)]
    starts = open_starts(people[0][0], people[0][1]["engagement_id"], days=10)
    for round_number in range(5):
        slot = starts[round_number]
        holder, holder_engagement = people[0]
        held = holder.call("POST", "/bookings", booking_body(holder_engagement["engagement_id"], slot))
        assert held.status_code == 201, held.text

        def act(index: int, slot: str = slot, booking_id: str = held.json()["booking_id"]):
            who, engagement = people[index]
            if index == 0:
                return who.call("POST", f"/bookings/{booking_id}/cancel", {})
            return who.call("POST", "/bookings", booking_body(engagement["engagement_id"], slot))

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(act, range(4)))
        assert results[0].status_code == 200, results[0].text
        winners = [r.json()["booking_id"] for r in results[1:] if r.status_code == 201]
        assert all(r.status_code in {201, 409} for r in results[1:]), [r.text for r in results[1:]]
        assert len(winners) <= 1
        slot_key = keys.calendar_lock_sk(datetime.fromisoformat(slot).astimezone(UTC).strftime("%Y%m%dT%H%MZ"))
        coach_pk = keys.coach_calendar_pk(held.json()["coach_id"])
        holders = {
            lock["ref"]
            for lock in table().query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": coach_pk})[
                "Items"
            ]
            if lock["sk"] == slot_key
        }
        assert holders == set(winners), (round_number, holders, winners)
        for winner in winners:  # free the winner's upcoming place for the next round
            owner = next(p for p, r in zip(people[1:], results[1:], strict=True) if r.status_code == 201)[0]
            assert owner.call("POST", f"/bookings/{winner}/cancel", {}).status_code == 200
