"""Booking over HTTP on DynamoDB Local: no double-booking under races, DST, invites, bad input."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import boto3
import pytest
from coaching.adapters import keys

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
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": keys.coach_calendar_pk(coach_id)}
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


def counter(pk: str, sk: str) -> int:
    item = boto3.resource("dynamodb").Table("test-MainTable").get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True)
    return int(item.get("Item", {}).get("used", 0))


def open_starts(employee: Api, engagement_id: str, days: int = 14) -> list[str]:
    start = datetime.now(UTC) + timedelta(days=1)
    slots = employee.call(
        "GET",
        f"/engagements/{engagement_id}/slots",
        params={"from": start.isoformat(), "to": (start + timedelta(days=days)).isoformat()},
    ).json()["items"]
    # Every other slot, an hour apart, so no two chosen sessions overlap with their buffers.
    starts, last = [], None
    for slot in slots:
        moment = datetime.fromisoformat(slot["start"])
        if last is None or moment - last >= timedelta(hours=1):
            starts.append(slot["start"])
            last = moment
    return starts


def test_allowance_max_upcoming_cap_and_thresholds(local_stack, operator):
    lang = "lt"
    org = make_tenant(local_stack, operator, "Policy org")
    policy = {
        "allowances": {"SCALE": {"sessions": 2, "by_level": {"manager": 3}}},
        "max_upcoming": 2,
        "monthly_session_cap": 5,
        "late_cancel_hours": 24,
    }
    assert operator.call("PATCH", f"/orgs/{org.org_id}", {"booking": policy}).status_code == 200
    coach(operator, lang, capacity=20, weekly_availability=ALL_WEEK, horizon_days=90)
    refresh(local_stack)
    employee, engagement = engaged(local_stack, org, operator, lang)
    starts = open_starts(employee, engagement["engagement_id"], days=10)
    month = {}
    for s in starts:  # group the candidate starts by the org's calendar month (org zone: Europe/Berlin)
        month.setdefault(datetime.fromisoformat(s).astimezone(BERLIN).strftime("%Y-%m"), []).append(s)
    period, same_month = next((p, items) for p, items in sorted(month.items()) if len(items) >= 9)

    first = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], same_month[0]))
    second = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], same_month[1]))
    assert (first.status_code, second.status_code) == (201, 201)
    third = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], same_month[2]))
    assert third.status_code == 422
    error = third.json()["error"]
    assert error["code"] == "policy_refused"
    assert error["details"]["rule"] == "max_upcoming"

    # A free cancel gives the unit back; the allowance of 2 then refuses a third in the month.
    assert employee.call("POST", f"/bookings/{second.json()['booking_id']}/cancel", {}).status_code == 200
    person_id = employee_person_id(employee)
    assert counter(*keys.allowance_key(org.org_id, person_id, "SCALE", period)) == 1
    again = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], same_month[1]))
    assert again.status_code == 201, again.text
    over = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], same_month[3]))
    assert over.status_code == 422
    refusal = over.json()["error"]
    assert refusal["details"]["rule"] in {"max_upcoming", "allowance"}
    assert counter(*keys.meter_key(org.org_id, "cap", period)) == 2

    # Colleagues fill the org's monthly cap of 5: markers at 80 % and 100 %, then a refusal.
    table = boto3.resource("dynamodb").Table("test-MainTable")
    others = [engaged(local_stack, org, operator, lang) for _ in range(3)]
    results = [
        other.call("POST", "/bookings", booking_body(other_engagement["engagement_id"], same_month[i + 4]))
        for i, (other, other_engagement) in enumerate(others)
    ]
    assert [r.status_code for r in results] == [201, 201, 201], [r.text for r in results]
    assert counter(*keys.meter_key(org.org_id, "cap", period)) == 5
    for percent in (80, 100):
        marker = table.get_item(Key={"pk": keys.org_pk(org.org_id), "sk": keys.threshold_sk("cap", period, percent)})
        assert "Item" in marker, percent
    capped = others[0][0].call("POST", "/bookings", booking_body(others[0][1]["engagement_id"], same_month[8]))
    assert capped.status_code == 422
    assert capped.json()["error"]["details"]["rule"] == "cap"
    assert capped.json()["error"]["details"]["resets_at"].startswith(period_reset_prefix(period))


def period_reset_prefix(period: str) -> str:
    year, month = (int(p) for p in period.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}-01T00:00:00"


def test_a_late_cancel_is_billable_and_keeps_the_unit(local_stack, operator):
    lang = "et"
    org = make_tenant(local_stack, operator, "Late org")
    operator.call("PATCH", f"/orgs/{org.org_id}", {"booking": {"late_cancel_hours": 72}})
    coach(operator, lang, capacity=5, weekly_availability=ALL_WEEK)
    refresh(local_stack)
    employee, engagement = engaged(local_stack, org, operator, lang)
    soon = open_starts(employee, engagement["engagement_id"], days=2)[0]  # within 72 h
    booked = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], soon)).json()
    cancelled = employee.call("POST", f"/bookings/{booked['booking_id']}/cancel", {"reason": "sick"}).json()
    assert (cancelled["status"], cancelled["billable"]) == ("late_cancelled", True)
    period = booked["policy"]["allowance_period"]
    person_id = employee_person_id(employee)
    assert counter(*keys.allowance_key(org.org_id, person_id, "SCALE", period)) == 1
    # The coach's time is free again for others even though the unit stays used.
    assert employee.call("GET", f"/bookings/{booked['booking_id']}/calendar.ics").text.count("STATUS:CANCELLED") == 1


def test_counters_stay_exact_under_200_concurrent_books_and_cancels(local_stack, operator):
    lang = "ms"
    org = make_tenant(local_stack, operator, "Busy org")
    operator.call(
        "PATCH",
        f"/orgs/{org.org_id}",
        {"booking": {"allowances": {"SCALE": {"sessions": 3}}, "max_upcoming": 3, "late_cancel_hours": 0}},
    )
    coach(operator, lang, capacity=40, weekly_availability=ALL_WEEK, horizon_days=60)
    refresh(local_stack)
    people = [engaged(local_stack, org, operator, lang) for _ in range(20)]
    starts = open_starts(people[0][0], people[0][1]["engagement_id"], days=20)

    def book(index: int):
        employee, engagement = people[index % 20]
        return employee.call(
            "POST", "/bookings", booking_body(engagement["engagement_id"], starts[index % len(starts)])
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        first = list(pool.map(book, range(100)))
        made = [(people[i % 20][0], r.json()["booking_id"]) for i, r in enumerate(first) if r.status_code == 201]
        cancels = list(pool.map(lambda pair: pair[0].call("POST", f"/bookings/{pair[1]}/cancel", {}), made[::2]))
        second = list(pool.map(book, range(100, 200 - len(cancels))))
    assert all(r.status_code in {201, 409, 422} for r in first + second), {r.status_code for r in first + second}
    assert all(c.status_code == 200 for c in cancels)
    # Recount: every person's allowance counters equal their booked sessions per month.
    for employee, _ in people:
        mine = employee.call("GET", "/bookings").json()["items"]
        person_id = employee_person_id(employee)
        by_period = {}
        for b in mine:
            if b["status"] == "booked":
                by_period[b["policy"]["allowance_period"]] = by_period.get(b["policy"]["allowance_period"], 0) + 1
        for period in {b["policy"]["allowance_period"] for b in mine}:
            used = counter(*keys.allowance_key(org.org_id, person_id, "SCALE", period))
            assert used == by_period.get(period, 0), (person_id, period)
        assert sum(by_period.values()) <= 3


def test_matching_counts_only_the_hours_a_coach_has_left(local_stack, operator):
    lang = "fo"
    org = make_tenant(local_stack, operator, "Scarce org")
    operator.call(
        "PATCH",
        f"/orgs/{org.org_id}",
        {
            "matching": {"min_bookable_hours": 3},
            "booking": {"allowances": {"SCALE": {"sessions": 10}}, "max_upcoming": 5},
        },
    )
    scarce = [{"weekday": 0, "start": "09:00", "end": "10:00"}, {"weekday": 1, "start": "09:00", "end": "10:00"}]
    the_coach = coach(
        operator, lang, capacity=10, weekly_availability=scarce, time_zone="Europe/London", languages=[lang, "kl"]
    )
    refresh(local_stack)
    employee, engagement = engaged(local_stack, org, operator, lang, time_zone="Europe/London")
    assert engagement["coach_id"] == the_coach["coach_id"]
    start = datetime.now(UTC) + timedelta(hours=13)
    slots = employee.call(
        "GET",
        f"/engagements/{engagement['engagement_id']}/slots",
        params={"from": start.isoformat(), "to": (start + timedelta(days=13)).isoformat()},
    ).json()["items"]
    taken, last = 0, None
    for slot in slots:  # one session per one-hour window: each takes the window with its buffers
        moment = datetime.fromisoformat(slot["start"])
        if last is not None and moment - last < timedelta(hours=2):
            continue
        if (
            employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], slot["start"])).status_code
            == 201
        ):
            taken += 1
            last = moment
        if taken == 3:
            break
    assert taken == 3
    newcomer = person(local_stack, org, "kl", time_zone="Europe/London")
    refused = ask(newcomer)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"]["constraint"] == "availability"
