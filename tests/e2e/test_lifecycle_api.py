"""Lifecycle rules over HTTP on the local stack: a suspended coach reaches nothing of a coachee's
and cannot bill, their engagements end with the future sessions cancelled unbilled and a
re-match without them; an inactive person can neither be matched nor book.

Each test has its own coaches speaking a language nobody else in the suite uses.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .helpers import Tenant, make_tenant
from .test_booking_api import ALL_WEEK, booking_body, engaged, open_starts
from .test_matching_api import SITUATION, ask, coach, employee_person_id, refresh
from .test_sessions_api import as_coach, ledger_entries, time_travel

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tenant(local_stack, operator) -> Tenant:
    return make_tenant(local_stack, operator, "Lifecycle org")


def eventually[T](check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll until `check` returns something truthy: events are delivered asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def assert_forbidden(response: Any, field: str, what: str) -> None:
    assert response.status_code == 403, f"{what}: {response.status_code} {response.text[:300]}"
    error = response.json()["error"]
    assert error["code"] == "forbidden", what
    assert [f["field"] for f in error["fields"]] == [field], what


def test_a_suspended_coach_reaches_nothing_and_their_coachees_are_rematched(local_stack, operator, tenant):
    lang = "be"
    suspect = coach(operator, lang, capacity=5, weekly_availability=ALL_WEEK, horizon_days=60)
    other = coach(operator, lang, capacity=5, weekly_availability=ALL_WEEK, horizon_days=60)
    refresh(local_stack)
    employee, engagement = engaged(local_stack, tenant, operator, lang, coach_id=suspect["coach_id"])
    eid = engagement["engagement_id"]
    person_id = employee_person_id(employee)
    starts = open_starts(employee, eid, days=10)
    future = employee.call("POST", "/bookings", booking_body(eid, starts[-1]))
    assert future.status_code == 201, future.text
    future = future.json()
    held = employee.call("POST", "/bookings", booking_body(eid, starts[-3]))
    assert held.status_code == 201, held.text
    past = held.json()
    time_travel(tenant.org_id, person_id, past["booking_id"], hours_ago=1)  # a no-show could be recorded now
    the_coach = as_coach(local_stack, suspect["coach_id"])
    assert the_coach.call("GET", f"/engagements/{eid}/context").status_code == 200

    suspended = operator.call(
        "PUT", f"/coaches/{suspect['coach_id']}/vetting", {"status": "suspended", "reason": "complaint under review"}
    )
    assert suspended.status_code == 200, suspended.text

    # At once, before any event: every coachee-facing route refuses them, naming the coach.
    window = {"from": datetime.now(UTC).isoformat(), "to": (datetime.now(UTC) + timedelta(days=14)).isoformat()}
    refusals = {
        "context": ("GET", f"/engagements/{eid}/context", None, None),
        "sessions": ("GET", "/coach/sessions", None, window),
        "cancel": ("POST", f"/coach/sessions/{future['booking_id']}/cancel", {"reason": "ill"}, None),
        "complete": ("POST", f"/coach/sessions/{past['booking_id']}/complete", {"actual_minutes": 30}, None),
        "no-show": ("POST", f"/coach/sessions/{past['booking_id']}/no-show", None, None),
    }
    for name, (method, path, body, params) in refusals.items():
        assert_forbidden(the_coach.call(method, path, body, params=params), "coach_id", name)
    # No bill: the no-show was refused and nothing reached the ledger.
    assert ledger_entries(tenant.org_id, past["booking_id"]) == []
    assert employee.call("GET", f"/bookings/{past['booking_id']}").json()["status"] == "booked"

    # The suspension's event reaches matching: the engagement ends, by the platform, with its reason.
    assert local_stack.drain_streams(timeout=30)["drained"]

    def ended_engagement() -> dict | None:
        items = employee.call("GET", "/engagements").json()["items"]
        return next((e for e in items if e["engagement_id"] == eid and e["status"] == "ended"), None)

    ended = eventually(ended_engagement, "the engagement to end")
    assert (ended["end_reason"], ended["ended_by"]) == ("coach suspended", "platform")

    # The person has a new proposal without the suspended coach, in the same programme.
    def rematch() -> dict | None:
        items = employee.call("GET", "/matches").json()["items"]
        return next((m for m in items if m["trigger"] == "coach_suspended"), None)

    proposed = eventually(rematch, "the re-match")
    coach_ids = [p["coach_id"] for p in proposed["proposals"]]
    assert suspect["coach_id"] not in coach_ids
    assert other["coach_id"] in coach_ids
    assert (proposed["status"], proposed["program"]) == ("proposed", "SCALE")

    # EngagementEnded reaches booking: the future session is cancelled, unbilled.
    assert local_stack.drain_streams(timeout=30)["drained"]

    def cancelled() -> dict | None:
        session = employee.call("GET", f"/bookings/{future['booking_id']}").json()
        return session if session["status"] != "booked" else None

    session = eventually(cancelled, "the future session to be cancelled")
    assert (session["status"], session["cancelled_by"], session["billable"]) == ("cancelled", "platform", False)
    assert ledger_entries(tenant.org_id, future["booking_id"]) == []
    # Still refused after the engagement ended; and the person moves on with another coach.
    assert_forbidden(the_coach.call("GET", f"/engagements/{eid}/context"), "coach_id", "context after the end")
    chosen = employee.call("POST", f"/matches/{proposed['match_id']}/choose", {"coach_id": other["coach_id"]})
    assert chosen.status_code == 201, chosen.text


def test_an_inactive_person_cannot_be_matched_or_book_but_can_cancel(local_stack, operator, tenant):
    lang = "uk"
    coach(operator, lang, capacity=5, weekly_availability=ALL_WEEK, horizon_days=60)
    coach(operator, lang, capacity=5, weekly_availability=ALL_WEEK, horizon_days=60)
    refresh(local_stack)
    employee, engagement = engaged(local_stack, tenant, operator, lang)
    eid = engagement["engagement_id"]
    person_id = employee_person_id(employee)
    starts = open_starts(employee, eid, days=10)
    booked = employee.call("POST", "/bookings", booking_body(eid, starts[-1]))
    assert booked.status_code == 201, booked.text
    booked = booked.json()
    open_match = ask(employee, program="GROW")
    assert open_match.status_code == 201, open_match.text
    open_match = open_match.json()

    deactivated = tenant.admin.call("PATCH", f"/people/{person_id}", {"active": False})
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["active"] is False

    choice = {"coach_id": open_match["proposals"][0]["coach_id"]}
    refusals = {
        "request a match": (
            "POST",
            "/matches",
            {"program": "GROW", "focus_competencies": ["delegation"], "situation": SITUATION},
        ),
        "decline": ("POST", f"/matches/{open_match['match_id']}/decline", None),
        "choose": ("POST", f"/matches/{open_match['match_id']}/choose", choice),
        "change coach": ("POST", f"/engagements/{eid}/change-coach", {"reason": "moving on"}),
        "book": ("POST", "/bookings", booking_body(eid, starts[-3])),
        "reschedule": ("POST", f"/bookings/{booked['booking_id']}/reschedule", {"start": starts[-5]}),
    }
    for name, (method, path, body) in refusals.items():
        response = employee.call(method, path, body)
        assert_forbidden(response, "person_id", name)
        assert person_id in response.json()["error"]["message"], name
    # Nothing moved: the engagement runs, the booking keeps its time, the match is still open.
    assert [e["status"] for e in employee.call("GET", "/engagements").json()["items"]] == ["active"]
    assert employee.call("GET", f"/bookings/{booked['booking_id']}").json()["start"] == booked["start"]
    assert employee.call("GET", f"/matches/{open_match['match_id']}").json()["status"] == "proposed"

    # Cancelling frees the coach: still allowed, and free this far ahead.
    cancelled = employee.call("POST", f"/bookings/{booked['booking_id']}/cancel", {"reason": "leaving"})
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["billable"]) == ("cancelled", False)
