"""Competency growth by GROW cohort and programme, end to end over HTTP on the local stack.

A GROW cohort forms from the wait-list and its first group session runs (it begins the cohort for its
members); some members and three people in no programme each take a 360 baseline and a follow-up, rated by
link-only raters. The month's report shows the cohort's growth (points, % of baseline, the people measured) in its
lagging section once at least k members were measured, and hides it, with the row that would give it away,
while fewer were. The monthly HTML report draws it in its "competency growth by cohort" chart.
"""

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from coaching.adapters import keys

from .helpers import Api, make_tenant
from .test_booking_api import ALL_WEEK
from .test_matching_api import coach, refresh
from .test_programmes_api import _move, as_coach, new_person

pytestmark = pytest.mark.e2e

GROWTH_LANG, OTHER_LANG = "ln", "so"  # no other test's coaches speak these
COMPETENCIES = ("delegation", "giving-feedback", "decision-making")


def _ratings(value: int) -> dict[str, int]:
    return dict.fromkeys(COMPETENCIES, value)


def _round(local_stack, employee: Api, others: int, baseline_id: str | None = None) -> str:
    """Open a round with three peers (by link, no account), they rate `others`, the person rates themselves."""
    body: dict[str, object] = {"raters": [{"group": "peer"}] * 3}
    body |= {"kind": "follow_up", "baseline_id": baseline_id} if baseline_id else {"competencies": list(COMPETENCIES)}
    opened = employee.call("POST", "/assessments", body)
    assert opened.status_code == 201, opened.text
    assessment_id = opened.json()["assessment"]["assessment_id"]
    anonymous = Api(local_stack.url, None)
    for invite in opened.json()["invites"]:
        answered = anonymous.call("POST", "/360/answers", {"token": invite["token"], "ratings": _ratings(others)})
        assert answered.status_code == 200, answered.text
    done = employee.call("POST", f"/assessments/{assessment_id}/self", {"ratings": _ratings(3)})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "released"
    return assessment_id


def _baseline_and_follow_up(local_stack, employee: Api, before: int, after: int) -> None:
    _round(local_stack, employee, after, _round(local_stack, employee, before))


def _growth_rows(report: dict, dimension: str) -> dict[str, dict]:
    (found,) = [b for b in report["lagging"]["growth_by_cohort"] if b["dimension"] == dimension]
    return {row["value"]: row for row in found["rows"]}


def test_a_grow_cohorts_growth_is_reported_once_k_members_were_measured_and_hidden_before(local_stack, operator):
    tenant = make_tenant(local_stack, operator, "Growth by cohort org")
    org_id = tenant.org_id
    assert operator.call("PATCH", f"/orgs/{org_id}", {"min_reporting_group_size": 3}).status_code == 200
    grow_coach = coach(operator, GROWTH_LANG, programs=["SCALE", "GROW"], capacity=12, time_zone="Europe/Berlin",
                       weekly_availability=ALL_WEEK, horizon_days=90)  # fmt: skip
    refresh(local_stack)
    now = datetime.now(UTC)
    ran = max(now - timedelta(hours=1), now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    period = ran.strftime("%Y-%m")

    # Eight first-time managers from the wait-list form a GROW cohort; its first session ran earlier this month.
    members = [new_person(local_stack, tenant, GROWTH_LANG, "first_time_manager") for _ in range(8)]
    waited = [tenant.admin.call("POST", f"/orgs/{org_id}/grow/waitlist", {"person_id": pid}) for pid, _ in members]
    assert [w.status_code for w in waited] == [200] * 8, [w.text for w in waited]
    cohort_id = waited[-1].json()["opened_cohort_id"]
    matched = tenant.admin.call("POST", f"/orgs/{org_id}/cohorts/{cohort_id}/match")
    assert matched.status_code == 200, matched.text
    session = matched.json()["sessions"][0]
    _move({"pk": keys.cohort_pk(org_id, cohort_id), "sk": keys.group_session_sk(0)}, ran)
    recorded = as_coach(local_stack, grow_coach["coach_id"]).call(
        "POST", f"/orgs/{org_id}/cohorts/{cohort_id}/sessions/{session['session_id']}/attendance",
        {"attendance": dict.fromkeys((pid for pid, _ in members), "attended")},
    )  # fmt: skip
    assert recorded.status_code == 200, recorded.text
    label = matched.json()["cohort"]["start_date"][:7]  # a GROW cohort is named by its start month

    # Three managers in no programme, and two cohort members, take a baseline (others rate them 2) and a
    # follow-up (3 for the cohort, 4 for the others).
    others = [new_person(local_stack, tenant, OTHER_LANG, "manager") for _ in range(3)]
    for _, employee in others:
        _baseline_and_follow_up(local_stack, employee, 2, 4)
    for _, employee in members[:2]:
        _baseline_and_follow_up(local_stack, employee, 2, 3)
    run = operator.call("POST", f"/orgs/{org_id}/reports/{period}/run")
    assert run.status_code == 200, run.text
    leader = Api(local_stack.url, local_stack.token(["leader"], org_id=org_id, person_id=str(uuid.uuid4())))

    # Two measured members are fewer than k: their cohort's growth is hidden, and so is the row that would give it
    # away with the org's total; the GROW programme the same.
    early = leader.call("GET", f"/orgs/{org_id}/reports/{period}")
    assert early.status_code == 200, early.text
    cohorts = _growth_rows(early.json(), "grow_cohort")
    assert cohorts[label]["competency_growth"] == {"value": None, "group_size": None, "suppressed": "minimum_group"}
    assert cohorts[label]["competency_growth_percent"]["suppressed"] == "minimum_group"
    assert cohorts["none"]["competency_growth"]["suppressed"] == "complementary_suppression"
    assert _growth_rows(early.json(), "programme")["GROW"]["competency_growth"]["suppressed"] == "minimum_group"

    # A third member's follow-up: the cohort now shows its growth, with the number of people it counts.
    _baseline_and_follow_up(local_stack, members[2][1], 2, 3)
    report = leader.call("GET", f"/orgs/{org_id}/reports/{period}")
    assert report.status_code == 200, report.text
    body = report.json()
    cohorts = _growth_rows(body, "grow_cohort")
    assert cohorts[label]["competency_growth"] == {"value": 1.0, "group_size": 3, "suppressed": None}
    assert cohorts[label]["competency_growth_percent"] == {"value": 50.0, "group_size": 3, "suppressed": None}
    assert cohorts["none"]["competency_growth"] == {"value": 2.0, "group_size": 3, "suppressed": None}
    assert cohorts["none"]["competency_growth_percent"]["value"] == 100.0
    programmes = _growth_rows(body, "programme")
    assert programmes["GROW"]["competency_growth"] == {"value": 1.0, "group_size": 3, "suppressed": None}
    # The org's headline: (3 x 1 + 3 x 2) points over a baseline of 6 x 2, the way "23 %" is stated.
    assert body["headline"]["competency_growth_percent"] == {"value": 75.0, "group_size": 6, "suppressed": None}
    # The cohort as a filter: its people are a group of eight, and its growth is the same cell.
    filtered = leader.call("GET", f"/orgs/{org_id}/reports/{period}", params={"grow_cohort": label})
    assert filtered.status_code == 200, filtered.text
    assert filtered.json()["lagging"]["competency_growth_points"] == {"value": 1.0, "group_size": 3,
                                                                      "suppressed": None}  # fmt: skip
    for person_id, _ in [*members, *others]:
        assert person_id not in report.text

    # The month's HTML report draws the cohort's growth in its chart and lists it with its group size. (The first
    # run rendered the month already, before the third follow-up: wait until the re-run's render replaced it.)
    assert operator.call("POST", f"/orgs/{org_id}/reports/{period}/run").status_code == 200
    row = f"<td>GROW cohort: {label}</td><td>1</td><td>50%</td><td>3</td>"
    html = ""
    for _ in range(120):  # ReportDue reaches report_generation by the bus
        link = leader.call("GET", f"/orgs/{org_id}/reports/{period}/download")
        assert link.status_code in (200, 404), link.text  # 404: not rendered yet
        html = requests.get(link.json()["url"], timeout=30).text if link.status_code == 200 else ""
        if row in html:
            break
        time.sleep(0.5)
    assert row in html
    assert "Competency growth by cohort" in html
    assert html.count("<svg") >= 6
