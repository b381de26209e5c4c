"""The seeded demo's month, as `make up` makes it, checked over HTTP only; and the stack's movable clock.

`python -m coaching_local up --scale small` runs in its own process with its own DynamoDB Local (moving its
clock disturbs no other stack): the roster is seeded at the first morning of last month, then last month's
matches, bookings, sessions, feedback, goals and 360s are driven over HTTP with the clock moved over
`/_local/clock`, and the month's report is run. Here the report API answers with the headline figures and
their group sizes, the HTML report downloads by its short-lived link and draws its charts in headless
Chromium, and the clock route moves every handler's time and back.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from coaching_local import tokens
from coaching_local.demo_month import SUPPRESSED_DEPARTMENT
from coaching_local.paths import local_dir
from coaching_local.testing import UpProcess

from tests.report_charts import assert_report_charts_drawn

pytestmark = pytest.mark.e2e

PREFIX = "demo"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    key = tokens.signing_key()  # the session's key (LOCAL_DEV_SIGNING_KEY), shared with the subprocess
    stack = UpProcess(
        # Its own DynamoDB Local, as `make up` starts one: the session's, busy with every other test's tables and
        # streams by now, would only make the demo slower.
        dynamodb_port=_free_port(),
        data_dir=tmp_path_factory.mktemp("demo-up"),
        prefix=PREFIX,
        port=_free_port(),
        scale="small",
        signing_key=key,
    ).start()
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(local_dir() / "artefacts" / PREFIX, ignore_errors=True)
    failed = [line for line in stack.output if re.search(r" → \w+ 5\d\d \(", line)]
    assert not failed, f"the demo answered 5xx: {failed[:5]}"


def _call(stack: UpProcess, token: str | None, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, stack.url + path, headers=headers, timeout=120, **kwargs)


def _leader(stack: UpProcess, org_id: str) -> str:
    return tokens.dev_token("leader", org_id, "leader-of-the-demo", stack.signing_key)


def _previous_month() -> str:
    first = datetime.now(UTC).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def test_make_up_seeds_last_month_over_http_and_its_report_answers_with_the_headline_figures(demo):
    month = demo.summary["demo_month"]
    assert month["period"] == _previous_month()  # the month the ReportsMonthly schedule reports
    assert demo.lines("[demo month]"), "make up shows the demo month's progress"
    assert demo.lines("[seed] base roster seeded in")
    assert month["participants"] < month["sessions_booked"] < 2 * month["participants"]  # some booked one only
    assert month["sessions_completed"] + month["no_shows"] == month["sessions_booked"]
    assert month["no_shows"] > 0
    assert month["capture"]["assessments_released"] == 2 * month["participants"]  # baseline and follow-up each
    assert month["capture"]["feedback_given"] == month["sessions_completed"]
    completed = 0
    for org in demo.summary["orgs"]:
        org_id = org["org_id"]
        driven = month["per_org"][org_id]
        answer = _call(demo, _leader(demo, org_id), "GET", f"/orgs/{org_id}/reports/{month['period']}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        headline, leading = body["headline"], body["leading"]
        assert leading["sessions"]["value"] == driven["completed"]
        completed += driven["completed"]
        assert leading["active_people"]["value"] == org["people"]  # the whole roster joined before the month
        people = driven["participants"]
        assert headline["attendance_percent"] == {
            "value": round(100 * driven["completed"] / driven["booked"], 2), "group_size": people, "suppressed": None,
        }  # fmt: skip
        assert headline["nps"]["group_size"] == people
        assert -100 <= headline["nps"]["value"] <= 100
        growth = headline["competency_growth_percent"]
        assert growth["group_size"] == people
        assert growth["value"] > 0  # the follow-ups were rated higher than the baselines
        assert body["lagging"]["competency_growth_points"]["value"] > 0
        # Two people were coached in Finance: their figures are never shown.
        finance = _call(demo, _leader(demo, org_id), "GET", f"/orgs/{org_id}/reports/{month['period']}",
                        params={"department": SUPPRESSED_DEPARTMENT})  # fmt: skip
        if finance.status_code == 422:
            assert finance.json()["error"]["code"] == "group_too_small"
        else:
            assert finance.status_code == 200, finance.text
            for figure in finance.json()["headline"].values():
                assert figure["value"] is None, figure
                assert figure["suppressed"], figure
    assert completed == month["sessions_completed"]


def test_the_months_html_report_downloads_by_its_short_lived_link_and_draws_its_charts(demo, tmp_path):
    month = demo.summary["demo_month"]
    # `make up` printed a working link to each org's report.
    printed = [line.split()[2] for line in demo.lines("HTML report")]
    assert len(printed) == len(demo.summary["orgs"])
    assert requests.get(printed[0], timeout=30).status_code == 200
    org_id = demo.summary["orgs"][0]["org_id"]
    link = _call(demo, _leader(demo, org_id), "GET", f"/orgs/{org_id}/reports/{month['period']}/download")
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    page = requests.get(url, timeout=30)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<script" not in page.text
    assert requests.get(url.replace("signature=", "signature=0"), timeout=30).status_code == 403

    assert_report_charts_drawn(url, tmp_path)
    Path(tmp_path / "report.html").write_text(page.text)


def _schedule(demo: UpProcess, name: str) -> dict:
    listing = _call(demo, None, "GET", "/_local/schedules").json()
    return next(s for s in listing if s["event"].endswith(f".{name}") or s["name"].endswith(name))


def test_the_clock_moves_over_http_for_every_handler_and_schedule_and_returns_to_real_time(demo):
    operator = tokens.dev_token("operator", None, "operator-clock", demo.signing_key)  # minted at real time
    leader_org = demo.summary["orgs"][0]["org_id"]
    period = demo.summary["demo_month"]["period"]
    link = _call(demo, _leader(demo, leader_org), "GET", f"/orgs/{leader_org}/reports/{period}/download").json()["url"]
    assert _call(demo, None, "GET", "/_local/clock").json()["moved"] is False
    # Bad input is refused, naming the field; the clock stays where it was.
    for body in ({}, {"travel_to": "2026-01-15T10:00:00"}, {"travel_to": "soon"}, {"travel_to": 5}):
        refused = _call(demo, None, "POST", "/_local/clock", json=body)
        assert refused.status_code == 400, body
        assert refused.json()["field"] == "travel_to"
    assert _call(demo, None, "GET", "/_local/clock").json()["moved"] is False

    past = (datetime.now(UTC) - timedelta(days=300)).replace(day=10, hour=10, minute=0, second=0, microsecond=0)
    moved = _call(demo, None, "POST", "/_local/clock", json={"travel_to": past.isoformat()})
    try:
        assert moved.status_code == 200, moved.text
        state = moved.json()
        assert state["moved"] is True
        assert state["offset_seconds"] < -290 * 86400
        # A handler sees the moved time: the org it creates is dated then (a token minted at real time, with
        # its `iat` in the moved clock's future, still verifies; DynamoDB Local takes requests signed "then").
        created = _call(demo, operator, "POST", "/orgs",
                        json={"name": "Clock org", "time_zone": "Europe/Berlin", "currency": "EUR",
                              "industry": "technology"})  # fmt: skip
        assert created.status_code == 201, created.text
        assert json.dumps(created.json()).count(past.date().isoformat()) >= 1
        # Schedules are re-planned from the moved time: the monthly report is due on the next 1st at 13:00.
        next_first = (past.replace(day=1) + timedelta(days=32)).replace(day=1, hour=13)
        assert datetime.fromisoformat(_schedule(demo, "ReportsMonthly")["next_fire"]) == next_first
        # A move forward fires, once, what fell due in between.
        before = {d["seq"] for d in _call(demo, None, "GET", "/_local/deliveries?kind=schedule").json()}
        _call(demo, None, "POST", "/_local/clock", json={"travel_to": (next_first + timedelta(minutes=1)).isoformat()})
        deadline = time.monotonic() + 60
        fired: list[dict] = []
        while time.monotonic() < deadline and not fired:
            fired = [d for d in _call(demo, None, "GET", "/_local/deliveries?kind=schedule").json()
                     if d["seq"] not in before and "reports-monthly" in d["rule"]]  # fmt: skip
            time.sleep(0.2)
        assert fired, "the monthly report schedule did not fire when the clock passed it"
        assert fired[0]["time"].startswith(next_first.date().isoformat())
        # Report links are checked against the same clock: a link minted at real time is expired a day later.
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        assert _call(demo, None, "POST", "/_local/clock", json={"travel_to": tomorrow.isoformat()}).status_code == 200
        expired = requests.get(link, timeout=30)
        assert expired.status_code == 403
        assert "expired" in expired.json()["message"]
    finally:
        back = _call(demo, None, "DELETE", "/_local/clock")
    assert back.status_code == 200
    assert back.json()["moved"] is False
    assert abs(datetime.fromisoformat(back.json()["now"]) - datetime.now(UTC)) < timedelta(minutes=5)
    # Back in real time, the same link verifies again (it expires five minutes after it was minted).
    assert requests.get(link, timeout=30).status_code == 200
