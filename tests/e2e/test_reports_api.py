"""The demo month through HTTP only: sessions, feedback, goals and a 360 round, then the month's report.

A tenant gets six engaged managers who each book two sessions (one a no-show) through the
booking and session routes, then give feedback, set goals and run a 360 baseline and follow-up through the
capture routes (`coaching_local.demo_month.drive_capture`). Booking times are moved into the past
(`time_travel`), which stands in for the clock moving on. The rollups come from the events and from the
rebuild the monthly run does; report_generation answers from them alone. The month's HTML report downloads
through a short-lived link and opens in headless Chromium with its charts drawn.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.report_charts import assert_report_charts_drawn

from .helpers import Api, Tenant, make_tenant
from .test_booking_api import ALL_WEEK, booking_body, engaged, open_starts
from .test_matching_api import coach, employee_person_id, person, refresh
from .test_sessions_api import as_coach, time_travel

pytestmark = pytest.mark.e2e

LANG = "kk"


def _complete(local_stack, tenant: Tenant, employee: Api, engagement: dict, start: str, *, no_show: bool) -> str:
    booking = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], start))
    assert booking.status_code == 201, booking.text
    booking_id = booking.json()["booking_id"]
    time_travel(tenant.org_id, employee_person_id(employee), booking_id, hours_ago=3)
    outcome = "no-show" if no_show else "complete"
    body = None if no_show else {"actual_minutes": 40}
    done = as_coach(local_stack, engagement["coach_id"]).call("POST", f"/coach/sessions/{booking_id}/{outcome}", body)
    assert done.status_code == 200, done.text
    return booking_id


@pytest.fixture(scope="module")
def demo(local_stack, operator) -> dict:
    """The demo month, through HTTP only (plus the time travel of stored booking times)."""
    from coaching_local.demo_month import Participant, drive_capture

    tenant = make_tenant(local_stack, operator, "Demo reports org")
    floor = operator.call("PATCH", f"/orgs/{tenant.org_id}", {"min_reporting_group_size": 3})
    assert floor.status_code == 200, floor.text
    coach(operator, LANG, capacity=20, weekly_availability=ALL_WEEK, horizon_days=60)
    refresh(local_stack)
    participants, person_ids = [], []
    for index in range(6):
        employee, engagement = engaged(local_stack, tenant, operator, LANG)
        person_ids.append(employee_person_id(employee))
        starts = open_starts(employee, engagement["engagement_id"], days=14)
        # Two sessions each (the org's monthly allowance); the first person did not come to their second.
        # (Slots of their own: a moved booking still holds the coach's lock on the slot it was booked in.)
        first, later = starts[4 * index], starts[4 * index + 2]
        completed = [_complete(local_stack, tenant, employee, engagement, first, no_show=False)]
        second = _complete(local_stack, tenant, employee, engagement, later, no_show=index == 0)
        completed += [] if index == 0 else [second]
        participants.append(Participant(token=employee.token or "", level="first_time_manager",
                                        completed_booking_ids=completed))  # fmt: skip
    # One person in a department of their own, never coached: a group of one the reports must never show.
    loner = person(local_stack, tenant, LANG, department="Legal")
    person_ids.append(employee_person_id(loner))
    summary = drive_capture(local_stack.url, tenant.org_id, tenant.admin.token or "", participants)
    assert summary.feedback_given == 11
    settings = tenant.admin.call("PUT", f"/orgs/{tenant.org_id}/report-settings", {
        "priorities": ["delegation"], "currency": "EUR",
        "replacement_cost": {"first_time_manager": {"factor": 1.5, "average_salary_minor": 6_000_000}}})  # fmt: skip
    assert settings.status_code == 200, settings.text
    period = datetime.now(UTC).strftime("%Y-%m")
    leader = Api(local_stack.url, local_stack.token(["leader"], org_id=tenant.org_id, person_id=str(uuid.uuid4())))
    return {"tenant": tenant, "period": period, "leader": leader, "person_ids": person_ids}


def _wait_for(call, timeout: float = 60.0) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = call()
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_the_monthly_schedule_runs_and_the_month_is_reported_from_rollups_alone(local_stack, operator, demo):
    tenant, period, leader = demo["tenant"], demo["period"], demo["leader"]
    # The schedule: rebuilds the month just closed for every org and fans out ReportDue.
    fired = local_stack.fire("ReportsMonthly")
    assert fired["status"] == "succeeded", fired
    # The demo month is this month: the operator runs the same idempotent monthly run for it now.
    run = operator.call("POST", f"/orgs/{tenant.org_id}/reports/{period}/run")
    assert run.status_code == 200, run.text
    assert run.json()["rebuilt"]["people"] == 7
    assert run.json()["rebuilt"]["cells_rewritten"] == 0  # the events had built the same cells already

    report = leader.call("GET", f"/orgs/{tenant.org_id}/reports/{period}")
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["min_group_size"] == 3
    headline = body["headline"]
    assert headline["attendance_percent"] == {"value": round(100 * 11 / 12, 2), "group_size": 6, "suppressed": None}
    assert headline["nps"]["group_size"] == 6
    assert headline["competency_growth_percent"]["value"] > 0  # follow-ups were rated higher than baselines
    assert headline["competency_growth_percent"]["group_size"] == 6
    assert body["leading"]["sessions"]["value"] == 11
    assert body["leading"]["active_people"]["value"] == 7
    assert body["north_star"]["priorities"] == ["delegation"]
    assert body["north_star"]["sessions_on_priorities_percent"]["suppressed"] == "minimum_group"  # 100 %: a tail
    roi = body["business"]["roi"]
    assert any("Replacement cost" in line for line in roi["assumptions"])
    assert roi["spend_minor"] > 0  # the ledger billed the month's sessions
    # The person alone in Legal, and the rest of the org that Legal would be derived from, are refused: 422.
    alone = leader.call("GET", f"/orgs/{tenant.org_id}/reports/{period}", params={"department": "Legal"})
    assert alone.status_code == 422
    assert alone.json()["error"]["code"] == "group_too_small"
    assert alone.json()["error"]["details"]["rule"] == "minimum_group"
    rest = leader.call("GET", f"/orgs/{tenant.org_id}/reports/{period}", params={"department": "Platform"})
    assert rest.status_code == 422
    assert rest.json()["error"]["details"]["rule"] == "complementary_suppression"
    # Deterministic: the same query gives the same answer.
    assert leader.call("GET", f"/orgs/{tenant.org_id}/reports/{period}").json() == body
    trends = leader.call("GET", f"/orgs/{tenant.org_id}/reports/{period}/trends", params={"months": 3})
    assert trends.status_code == 200, trends.text
    assert trends.json()["points"][-1]["period"] == period
    # Nobody else reads the org's reports.
    employee = Api(local_stack.url, local_stack.token(["employee"], org_id=tenant.org_id, person_id=str(uuid.uuid4())))
    assert employee.call("GET", f"/orgs/{tenant.org_id}/reports/{period}").status_code == 403
    stranger = Api(local_stack.url, local_stack.token(["leader"], org_id=str(uuid.uuid4()), person_id="x"))
    assert stranger.call("GET", f"/orgs/{tenant.org_id}/reports/{period}").status_code == 403
    topics = operator.call("GET", f"/reports/coach-topics/{period}")
    assert topics.status_code == 200, topics.text
    assert topics.json()["orgs"] >= 1


def test_the_report_downloads_by_short_lived_link_and_draws_its_charts_in_chromium(local_stack, demo, tmp_path):
    tenant, period, leader = demo["tenant"], demo["period"], demo["leader"]
    operator_run = local_stack.token(["operator"], person_id="op")
    Api(local_stack.url, operator_run).call("POST", f"/orgs/{tenant.org_id}/reports/{period}/run")
    download = f"/orgs/{tenant.org_id}/reports/{period}/download"
    link = _wait_for(lambda: leader.call("GET", download))  # ReportDue reaches report_generation by the bus
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    page = requests.get(url, timeout=30)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    # Self-contained, and nobody in it: no person id, no name.
    assert "<script" not in html
    assert 'src="http' not in html
    for person_id in demo["person_ids"]:
        assert person_id not in html
    assert "Person M-" not in html
    assert "6 people" in html  # the headline figures carry their group sizes
    # A tampered or foreign link is refused.
    assert requests.get(url.replace("signature=", "signature=0"), timeout=30).status_code == 403
    csv_link = leader.call("GET", download, params={"file": "figures.csv"})
    assert csv_link.status_code == 200, csv_link.text
    figures_csv = requests.get(csv_link.json()["url"], timeout=30).text
    assert f"headline,attendance_percent,{round(100 * 11 / 12, 2):g},6," in figures_csv

    assert_report_charts_drawn(url, tmp_path)
    Path(tmp_path / "report.html").write_text(html)
