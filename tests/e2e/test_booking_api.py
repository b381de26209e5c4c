"""Booking over HTTP on DynamoDB Local: no double-booking under races, DST, invites, bad input."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import boto3
import pytest

from .helpers import Api, Tenant, make_tenant
from .test_matching_api import ask, coach, employee_person_id, person, refresh

pytestmark = pytest.mark.e2e

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ALL_WEEK = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]


@pytest.fixture(scope="module")
def tenant(local_stack, operator) -> Tenant:
    return make_tenant(local_stack, operator, "Booking org")


def engaged(local_stack, tenant, operator, lang: str, coach_id: str | None = None, program: str = "SCALE", **who):
    """A person engaged with the (only) coach speaking `lang`; returns (employee api, engagement)."""
    employee = person(local_stack, tenant, lang, time_zone=who.pop("time_zone", "America/New_York"), **who)
    match = ask(employee, program=program).json()
    chosen = coach_id or match["proposals"][0]["coach_id"]
    engagement = employee.call("POST", f"/matches/{match['match_id']}/choose", {"coach_id": chosen})
    assert engagement.status_code == 201, engagement.text
    return employee, engagement.json()


def next_slot(employee: Api, engagement_id: str, days_ahead: int = 3) -> dict:
    start = datetime.now(UTC) + timedelta(days=days_ahead)
    slots = employee.call(
        "GET",
        f"/engagements/{engagement_id}/slots",
        params={"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()},
    )
    assert slots.status_code == 200, slots.text
    assert slots.json()["items"], "expected open slots"
    return slots.json()["items"][0]


def booking_body(engagement_id: str, start: str) -> dict:
    return {
        "engagement_id": engagement_id,
        "start": start,
        "focus_competencies": ["delegation"],
        "situation": "Preparing a feedback conversation with a direct report.",
    }


def locks(coach_id: str, booking_id: str | None = None) -> list[dict]:
    table = boto3.resource("dynamodb").Table("test-MainTable")
    items = table.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"NETWORK#COACH#{coach_id}#CAL"}
    )["Items"]
    return [i for i in items if booking_id is None or i["ref"] == booking_id]


def test_fifty_concurrent_requests_for_one_slot_book_it_once(local_stack, operator, tenant):
    lang = "hr"
    the_coach = coach(operator, lang, capacity=60, weekly_availability=ALL_WEEK, time_zone="Europe/Berlin")
    refresh(local_stack)
    people = [engaged(local_stack, tenant, operator, lang) for _ in range(50)]
    slot = next_slot(people[0][0], people[0][1]["engagement_id"])

    def attempt(pair):
        employee, engagement = pair
        return employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], slot["start"]))

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(attempt, people))
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(201) == 1, [r.text for r in results if r.status_code not in {201, 409}][:3]
    assert statuses.count(409) == 49
    winner = next(r.json() for r in results if r.status_code == 201)
    # No orphans: the coach's calendar holds exactly the winner's buckets (30 min + 10 min buffer).
    held = locks(the_coach["coach_id"])
    assert len(held) == 8
    assert {item["ref"] for item in held} == {winner["booking_id"]}
    bookings = [b for employee, _ in people for b in employee.call("GET", "/bookings").json()["items"]]
    assert [b["booking_id"] for b in bookings] == [winner["booking_id"]]


def test_overlapping_starts_race_and_a_person_cannot_double_book_themselves(local_stack, operator, tenant):
    lang = "bg"
    first_coach = coach(operator, lang, capacity=10, weekly_availability=ALL_WEEK, programs=["SCALE"])
    coach(operator, lang, capacity=10, weekly_availability=ALL_WEEK, programs=["GROW"])
    refresh(local_stack)
    (a, engagement_a), (b, engagement_b) = (engaged(local_stack, tenant, operator, lang) for _ in range(2))
    slot = next_slot(a, engagement_a["engagement_id"])
    later = (datetime.fromisoformat(slot["start"]) + timedelta(minutes=15)).isoformat()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(
                lambda args: args[0].call("POST", "/bookings", booking_body(*args[1:])),
                [(a, engagement_a["engagement_id"], slot["start"]), (b, engagement_b["engagement_id"], later)],
            )
        )
    assert sorted(r.status_code for r in results) == [201, 409]
    assert len({i["ref"] for i in locks(first_coach["coach_id"])}) == 1

    # The same person, another coach (GROW), the same time: their own calendar refuses it.
    grow = ask(a, program="GROW").json()
    grow_engagement = a.call(
        "POST", f"/matches/{grow['match_id']}/choose", {"coach_id": grow["proposals"][0]["coach_id"]}
    ).json()
    mine = next(r for r in results if r.status_code == 201).json()
    if mine["person_id"] != employee_person_id(a):
        mine = a.call(
            "POST",
            "/bookings",
            booking_body(
                engagement_a["engagement_id"], (datetime.fromisoformat(slot["start"]) + timedelta(hours=2)).isoformat()
            ),
        ).json()
    clash = a.call("POST", "/bookings", booking_body(grow_engagement["engagement_id"], mine["start"]))
    assert clash.status_code == 409, clash.text
    assert clash.json()["error"]["message"] == "you already have a session at that time"


def test_cancel_frees_the_slot_for_the_next_person_and_the_invite_follows(local_stack, operator, tenant):
    lang = "sr"
    the_coach = coach(operator, lang, capacity=10, weekly_availability=ALL_WEEK, time_zone="Europe/Berlin")
    refresh(local_stack)
    (a, engagement_a), (b, engagement_b) = (engaged(local_stack, tenant, operator, lang) for _ in range(2))
    slot = next_slot(a, engagement_a["engagement_id"])
    booked = a.call("POST", "/bookings", booking_body(engagement_a["engagement_id"], slot["start"])).json()
    assert b.call("POST", "/bookings", booking_body(engagement_b["engagement_id"], slot["start"])).status_code == 409

    invite = a.call("GET", f"/bookings/{booked['booking_id']}/calendar.ics")
    assert invite.status_code == 200
    assert invite.headers["Content-Type"].startswith("text/calendar")
    text = invite.text
    assert "BEGIN:VTIMEZONE\r\nTZID:America/New_York" in text
    assert f"UID:{booked['booking_id']}@coaching-platform" in text
    local = datetime.fromisoformat(booked["start"]).astimezone(NEW_YORK).strftime("%Y%m%dT%H%M%S")
    assert f"DTSTART;TZID=America/New_York:{local}" in text
    assert "SEQUENCE:0" in text

    cancelled = a.call("POST", f"/bookings/{booked['booking_id']}/cancel", {"reason": "clash"})
    assert cancelled.status_code == 200, cancelled.text
    assert locks(the_coach["coach_id"], booked["booking_id"]) == []
    again = a.call("GET", f"/bookings/{booked['booking_id']}/calendar.ics").text
    assert f"UID:{booked['booking_id']}@coaching-platform" in again
    assert "SEQUENCE:1" in again
    assert "STATUS:CANCELLED" in again
    assert a.call("POST", f"/bookings/{booked['booking_id']}/cancel", {}).status_code == 409
    rebooked = b.call("POST", "/bookings", booking_body(engagement_b["engagement_id"], slot["start"]))
    assert rebooked.status_code == 201, rebooked.text


def test_slots_across_the_2027_spring_transitions_berlin_coach_new_york_person(local_stack, operator, tenant):
    lang = "sl"
    monday = [{"weekday": 0, "start": "15:00", "end": "16:00"}]
    coach(operator, lang, weekly_availability=monday, time_zone="Europe/Berlin", horizon_days=180)
    refresh(local_stack)
    # The coach offers only Mondays 15:00-16:00 Berlin: the availability bar must not hide them.
    org = make_tenant(local_stack, operator, "DST org")
    operator.call("PATCH", f"/orgs/{org.org_id}", {"matching": {"min_bookable_hours": 0}})
    employee, engagement = engaged(local_stack, org, operator, lang)
    expected = {  # New York wall time of Monday 15:00 Berlin
        "2027-03-08": "09:00",  # both on standard time
        "2027-03-15": "10:00",  # New York moved on 03-14, Berlin not until 03-28
        "2027-03-22": "10:00",
        "2027-03-29": "09:00",  # both on summer time
    }
    for day, wall in expected.items():
        start = datetime.fromisoformat(day).replace(tzinfo=BERLIN)
        slots = employee.call(
            "GET",
            f"/engagements/{engagement['engagement_id']}/slots",
            params={"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()},
        ).json()["items"]
        assert [datetime.fromisoformat(s["start"]).strftime("%H:%M") for s in slots] == [
            wall,
            f"{wall[:2]}:15",
            f"{wall[:2]}:30",
        ], day
        assert all(
            datetime.fromisoformat(s["start"]).utcoffset()
            == datetime.fromisoformat(day).replace(hour=12, tzinfo=NEW_YORK).utcoffset()
            for s in slots
        )


def test_bad_booking_input_gets_a_clear_4xx_and_writes_nothing(local_stack, operator, tenant, tenant_b):
    lang = "ca"
    the_coach = coach(operator, lang, capacity=10, weekly_availability=ALL_WEEK)
    refresh(local_stack)
    employee, engagement = engaged(local_stack, tenant, operator, lang)
    eid = engagement["engagement_id"]
    slot = next_slot(employee, eid)
    cases = {
        "past": (booking_body(eid, (datetime.now(UTC) - timedelta(days=1)).replace(minute=0).isoformat()), "start"),
        "off-grid": (
            booking_body(eid, (datetime.fromisoformat(slot["start"]) + timedelta(minutes=7)).isoformat()),
            "start",
        ),
        "naive": (booking_body(eid, "2027-01-05T10:00:00"), "start"),
        "length": (booking_body(eid, slot["start"]) | {"length_minutes": 60}, "length_minutes"),
        "focus": (booking_body(eid, slot["start"]) | {"focus_competencies": ["juggling"]}, "focus_competencies"),
    }
    for name, (body, field) in cases.items():
        response = employee.call("POST", "/bookings", body)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["error"]["fields"][0]["field"] == field, name
    stranger = Api(
        local_stack.url, local_stack.token(["employee"], org_id=tenant_b.org_id, person_id=str(uuid.uuid4()))
    )
    assert stranger.call("POST", "/bookings", booking_body(eid, slot["start"])).status_code == 404
    assert (
        stranger.call("GET", f"/engagements/{eid}/slots", params={"from": slot["start"], "to": slot["end"]}).status_code
        == 404
    )
    assert locks(the_coach["coach_id"]) == []
    assert employee.call("GET", "/bookings").json()["items"] == []
