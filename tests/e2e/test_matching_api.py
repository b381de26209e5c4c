"""Contextual matching over HTTP on DynamoDB Local: constraints, reasons, continuity, capacity, re-match.

Each test builds its own little network of coaches who speak a language nobody else in the
suite uses, so the global roster cannot leak other tests' coaches into the proposals.
"""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from coaching.domain.events import PersonPromoted, stable_event_id
from coaching.ids import person_id_for

from .helpers import Api, Tenant, coach_profile, make_tenant, person_row

pytestmark = pytest.mark.e2e

WEEKDAYS_9_TO_17 = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]
SITUATION = "My first reorg as a manager: two teams merge next month and I lead both."


def coach(operator: Api, language: str, *, approve: bool = True, **overrides) -> dict:
    defaults = {"languages": [language], "time_zone": "Europe/London", "weekly_availability": WEEKDAYS_9_TO_17}
    profile = coach_profile(**(defaults | overrides))
    created = operator.call("POST", "/coaches", profile)
    assert created.status_code == 201, created.text
    body = created.json()
    if approve:
        approved = operator.call("PUT", f"/coaches/{body['coach_id']}/vetting", {"status": "approved"})
        assert approved.status_code == 200, approved.text
    return body


def person(local_stack, tenant: Tenant, language: str, **overrides) -> Api:
    row = person_row(
        f"M-{uuid.uuid4().hex[:8]}", **({"languages": [language], "time_zone": "Europe/London"} | overrides)
    )
    created = tenant.admin.call("POST", "/people", row)
    assert created.status_code == 201, created.text
    token = local_stack.token(["employee"], org_id=tenant.org_id, person_id=created.json()["person_id"])
    return Api(local_stack.url, token)


def ask(employee: Api, program: str = "SCALE", focus=("delegation",), **extra):
    body = {"program": program, "focus_competencies": list(focus), "situation": SITUATION, **extra}
    return employee.call("POST", "/matches", body)


def refresh(local_stack) -> None:
    fired = local_stack.fire("RosterRefresh")
    assert fired["status"] == "succeeded", fired


@pytest.fixture(scope="module")
def tenant(local_stack, operator) -> Tenant:
    return make_tenant(local_stack, operator, "Matching org")


def test_every_hard_constraint_holds_and_reasons_are_readable(local_stack, operator, tenant):
    lang = "is"
    job = [{"level": "first_time_manager", "function": "engineering", "industry": "technology", "years": 4}]
    best = coach(operator, lang, roles_held=job, specialties=["delegation", "change-leadership"])
    good = coach(operator, lang, roles_held=[{**job[0], "function": "sales"}])
    fair = coach(operator, lang)
    pending = coach(operator, lang, approve=False, roles_held=job)
    colleague = coach(operator, lang, roles_held=job, employer_org_ids=[tenant.org_id])
    night_owl = coach(
        operator, lang, roles_held=job, weekly_availability=[{"weekday": 6, "start": "20:00", "end": "23:00"}]
    )
    exec_only = coach(operator, lang, roles_held=job, programs=["EXEC"])
    refresh(local_stack)

    employee = person(local_stack, tenant, lang, level="first_time_manager", function="engineering")
    response = ask(employee, focus=("delegation", "change-leadership"))
    assert response.status_code == 201, response.text
    proposals = response.json()["proposals"]
    ids = [p["coach_id"] for p in proposals]
    assert ids[0] == best["coach_id"]
    assert set(ids) == {best["coach_id"], good["coach_id"], fair["coach_id"]}
    for excluded in (pending, colleague, night_owl, exec_only):
        assert excluded["coach_id"] not in ids
    reasons = proposals[0]["reasons"]
    assert "was a first time manager in engineering for 4 years" in reasons
    assert "specialises in delegation, change-leadership" in reasons
    assert "speaks Icelandic" in reasons
    assert any(r.endswith("h overlap with your working day") for r in reasons)
    assert proposals[0]["score"] > proposals[1]["score"] >= proposals[2]["score"]
    assert proposals[0]["factors"]["has_done_the_job"] > proposals[1]["factors"]["has_done_the_job"]


def test_no_eligible_coach_names_the_binding_constraint_and_is_recorded(local_stack, operator, tenant):
    coach(
        operator,
        "en",
        programs=["SCALE", "GROW", "EXEC"],
        roles_held=[{"level": "executive", "function": "finance", "industry": "retail", "years": 5}],
    )
    refresh(local_stack)
    executive = person(local_stack, tenant, "ja", level="executive", function="finance")
    refused = ask(executive, program="EXEC")
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "no_eligible_coach"
    assert error["message"] == "no approved EXEC coach speaks Japanese"
    assert error["fields"] == [{"field": "languages", "message": error["message"]}]
    gaps = operator.call("GET", "/matching/gaps", params={"limit": 20}).json()["items"]
    assert any(g["message"] == error["message"] and g["org_id"] == tenant.org_id for g in gaps)
    assert refused.json().keys() == {"error"}


def test_decline_returns_the_next_three_and_never_repeats(local_stack, operator, tenant):
    lang = "mt"
    network = [coach(operator, lang) for _ in range(7)]
    refresh(local_stack)
    employee = person(local_stack, tenant, lang)
    first = ask(employee).json()
    second = employee.call("POST", f"/matches/{first['match_id']}/decline")
    assert second.status_code == 200, second.text
    first_ids = {p["coach_id"] for p in first["proposals"]}
    second_ids = {p["coach_id"] for p in second.json()["proposals"]}
    assert len(second_ids) == 3
    assert first_ids.isdisjoint(second_ids)
    third = employee.call("POST", f"/matches/{first['match_id']}/decline")
    assert [p["coach_id"] for p in third.json()["proposals"]] == [
        c["coach_id"] for c in network if c["coach_id"] not in first_ids | second_ids
    ]
    exhausted = employee.call("POST", f"/matches/{first['match_id']}/decline")
    assert exhausted.status_code == 422
    assert exhausted.json()["error"]["code"] == "no_eligible_coach"
    # Declined coaches stay excluded from the person's next request too.
    assert ask(employee).status_code == 422


def test_capacity_holds_under_20_concurrent_picks(local_stack, operator, tenant):
    lang = "ga"
    star = coach(
        operator,
        lang,
        capacity=5,
        roles_held=[{"level": "manager", "function": "sales", "industry": "technology", "years": 9}],
    )
    coach(operator, lang)
    coach(operator, lang)
    refresh(local_stack)
    people = [person(local_stack, tenant, lang, level="manager", function="sales") for _ in range(20)]
    matches = [ask(p).json() for p in people]
    assert all(m["proposals"][0]["coach_id"] == star["coach_id"] for m in matches)

    def pick(pair):
        employee, match = pair
        return employee.call("POST", f"/matches/{match['match_id']}/choose", {"coach_id": star["coach_id"]})

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(pick, zip(people, matches, strict=True)))
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(201) == 5, [r.text for r in results if r.status_code != 201][:3]
    assert statuses.count(409) == 15
    refused = next(r for r in results if r.status_code == 409)
    assert refused.json()["error"]["fields"][0]["field"] == "coach_id"
    engaged = sum(
        1 for p in people for e in p.call("GET", "/engagements").json()["items"] if e["coach_id"] == star["coach_id"]
    )
    assert engaged == 5
    # The full coach is no longer proposed to anyone.
    newcomer = person(local_stack, tenant, lang, level="manager", function="sales")
    assert star["coach_id"] not in {p["coach_id"] for p in ask(newcomer).json()["proposals"]}


def test_choosing_twice_and_foreign_matches_are_refused(local_stack, operator, tenant, tenant_b):
    lang = "cy"
    coach(operator, lang)
    coach(operator, lang)
    refresh(local_stack)
    employee = person(local_stack, tenant, lang)
    match = ask(employee).json()
    first_coach = match["proposals"][0]["coach_id"]
    assert employee.call("POST", f"/matches/{match['match_id']}/choose", {"coach_id": first_coach}).status_code == 201
    again = employee.call("POST", f"/matches/{match['match_id']}/choose", {"coach_id": first_coach})
    assert again.status_code == 409
    stranger = Api(local_stack.url, local_stack.token(["employee"], org_id=tenant_b.org_id, person_id="x"))
    assert stranger.call("GET", f"/matches/{match['match_id']}").status_code == 404
    not_proposed = ask(person(local_stack, tenant, lang)).json()
    wrong = employee.call("POST", f"/matches/{not_proposed['match_id']}/choose", {"coach_id": first_coach})
    assert wrong.status_code == 404


def test_change_coach_keeps_history_and_continuity_prefers_the_previous_coach(local_stack, operator, tenant):
    lang = "lv"
    network = [coach(operator, lang, programs=["SCALE", "GROW"]) for _ in range(5)]
    refresh(local_stack)
    employee = person(local_stack, tenant, lang)
    match = ask(employee).json()
    current = match["proposals"][-1]["coach_id"]  # not the top one: continuity must lift it
    engagement = employee.call("POST", f"/matches/{match['match_id']}/choose", {"coach_id": current}).json()

    # A GROW request while the SCALE coach is active: the current coach is strongly preferred.
    grow = ask(employee, program="GROW").json()
    assert grow["proposals"][0]["coach_id"] == current
    assert "your previous coach" in grow["proposals"][0]["reasons"]

    changed = employee.call(
        "POST", f"/engagements/{engagement['engagement_id']}/change-coach", {"reason": "we did not click"}
    )
    assert changed.status_code == 200, changed.text
    assert current not in {p["coach_id"] for p in changed.json()["proposals"]}
    history = employee.call("GET", "/engagements").json()["items"]
    assert [(e["coach_id"], e["status"]) for e in history] == [(current, "ended")]
    assert len({c["coach_id"] for c in network}) == 5
    # The coach they left sees nothing of them any more.
    left = Api(local_stack.url, local_stack.token(["coach"], person_id=current))
    assert left.call("GET", f"/engagements/{engagement['engagement_id']}/context").status_code == 404


def test_change_of_coach_with_nobody_else_keeps_the_engagement(local_stack, operator, tenant):
    lang = "sw"
    only = coach(operator, lang)
    refresh(local_stack)
    employee = person(local_stack, tenant, lang)
    match = ask(employee).json()
    engagement = employee.call("POST", f"/matches/{match['match_id']}/choose", {"coach_id": only["coach_id"]}).json()
    refused = employee.call("POST", f"/engagements/{engagement['engagement_id']}/change-coach", {"reason": "try"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "no_eligible_coach"
    assert [e["status"] for e in employee.call("GET", "/engagements").json()["items"]] == ["active"]


def test_promotion_keeps_an_eligible_coach_and_rematches_otherwise(local_stack, operator, tenant):
    lang = "sq"
    manager_only = [{"level": "manager", "function": "engineering", "industry": "technology", "years": 5}]
    senior = [{"level": "senior_leader", "function": "engineering", "industry": "technology", "years": 4}]
    plain = coach(operator, lang, roles_held=manager_only)
    seasoned = coach(operator, lang, roles_held=senior)
    refresh(local_stack)
    employee = person(local_stack, tenant, lang, level="manager", function="engineering")
    person_id = employee_person_id(employee)
    match = ask(employee).json()
    engagement = employee.call("POST", f"/matches/{match['match_id']}/choose", {"coach_id": plain["coach_id"]}).json()
    kept_employee = person(local_stack, tenant, lang, level="individual_contributor", function="engineering")
    kept_match = ask(kept_employee).json()
    kept = kept_employee.call(
        "POST", f"/matches/{kept_match['match_id']}/choose", {"coach_id": plain["coach_id"]}
    ).json()

    template = json.loads((Path(__file__).parent / "events" / "person_promoted.json").read_text())
    events = boto3.client("events", endpoint_url=local_stack.url, region_name="eu-west-1")
    for who, old, new in [
        (person_id, "manager", "senior_leader"),
        (employee_person_id(kept_employee), "individual_contributor", "first_time_manager"),
    ]:
        detail = template["detail"] | {
            "org_id": tenant.org_id,
            "person_id": who,
            "previous_level": old,
            "new_level": new,
        }
        PersonPromoted.model_validate(detail)  # the test event honours the contract
        sent = events.put_events(
            Entries=[
                {
                    "Source": template["source"],
                    "DetailType": template["detail-type"],
                    "Detail": json.dumps(detail),
                    "EventBusName": "coaching-platform-test",
                }
            ]
        )
        assert sent["FailedEntryCount"] == 0

    deadline = time.monotonic() + 30
    rematch = []
    while time.monotonic() < deadline and not rematch:
        rematch = [m for m in employee.call("GET", "/matches").json()["items"] if m["trigger"] == "promotion"]
        time.sleep(0.2)
    assert rematch, local_stack.deliveries()[-3:]
    assert [p["coach_id"] for p in rematch[0]["proposals"]] == [seasoned["coach_id"]]
    # The engagement that stays: the IC-turned-first-time-manager keeps their coach.
    assert not [m for m in kept_employee.call("GET", "/matches").json()["items"] if m["trigger"] == "promotion"]
    assert [e["status"] for e in kept_employee.call("GET", "/engagements").json()["items"]] == ["active"]
    assert kept["status"] == "active"

    chosen = employee.call("POST", f"/matches/{rematch[0]['match_id']}/choose", {"coach_id": seasoned["coach_id"]})
    assert chosen.status_code == 201, chosen.text
    statuses = {e["engagement_id"]: e["status"] for e in employee.call("GET", "/engagements").json()["items"]}
    assert statuses[engagement["engagement_id"]] == "ended"
    assert statuses[chosen.json()["engagement_id"]] == "active"

    # The new coach sees goals and competency history, never what the person wrote.
    coach_api = Api(local_stack.url, local_stack.token(["coach"], person_id=seasoned["coach_id"]))
    context = coach_api.call("GET", f"/engagements/{chosen.json()['engagement_id']}/context")
    assert context.status_code == 200, context.text
    assert context.json()["focus_history"][0]["focus_competencies"] == ["delegation"]
    assert SITUATION not in context.text
    other_coach = Api(local_stack.url, local_stack.token(["coach"], person_id=plain["coach_id"]))
    assert other_coach.call("GET", f"/engagements/{chosen.json()['engagement_id']}/context").status_code == 404


def employee_person_id(employee: Api) -> str:
    import base64

    payload = employee.token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims["custom:person_id"]


def test_cohort_match_assigns_optimally_within_capacity_and_commits(local_stack, operator, tenant, tenant_b):
    from .test_outbox_delivery import outbox_events  # it imports this module

    lang = "eu"
    network = [coach(operator, lang, capacity=2, programs=["GROW"]) for _ in range(3)]
    refresh(local_stack)
    cohort = [person(local_stack, tenant, lang, level="first_time_manager") for _ in range(8)]
    stranded = person(local_stack, tenant, "tl")  # nobody in the network speaks Tagalog
    ids = [employee_person_id(p) for p in cohort] + [employee_person_id(stranded)]
    body = {"program": "GROW", "participant_ids": ids, "focus_competencies": ["delegation"]}

    plan = tenant.admin.call("POST", "/cohorts/match", body)
    assert plan.status_code == 200, plan.text
    result = plan.json()
    assert (result["participants"], result["matched"], result["mode"]) == (9, 6, "best_fit")
    assert result["load"] == {c["coach_id"]: 2 for c in network}
    reasons = {u["person_id"]: u["reason"] for u in result["unmatched"]}
    assert ids[-1] in reasons
    # One neutral reason for everyone left out: an org admin is not told why, person by person.
    assert set(reasons.values()) == {"not assignable in this launch"}
    assert not any(a["engagement_id"] for a in result["assignments"])

    everyone = tenant.admin.call("POST", "/cohorts/match", body | {"mode": "everyone_matched"}).json()
    assert everyone["matched"] == 6
    assert everyone["objective"] <= result["objective"]

    assert local_stack.drain_streams(timeout=30)["drained"]
    before = max((d["seq"] for d in local_stack.deliveries()), default=0)
    committed = tenant.admin.call("POST", "/cohorts/match", body | {"commit": True}).json()
    assert committed["committed"] is True
    assert all(a["engagement_id"] for a in committed["assignments"])
    assert committed["refused"] == []
    # Each engagement the launch committed is announced as a 1:1 match's is: its EngagementStarted rode in the
    # engagement's transaction (the outbox), the stream relay published it and the rule delivered it to rollups.
    for assignment in committed["assignments"]:
        [started] = outbox_events("EngagementStarted", engagement_id=assignment["engagement_id"])
        assert started["event_id"] == stable_event_id("EngagementStarted", assignment["engagement_id"])
        assert (started["person_id"], started["coach_id"], started["match_id"]) == (
            assignment["person_id"],
            assignment["coach_id"],
            None,
        )
    assert local_stack.drain_streams(timeout=30)["drained"]
    # Delivery is at least once (a relayed batch may be retried in a new envelope): the distinct domain events count.
    expected = {stable_event_id("EngagementStarted", a["engagement_id"]) for a in committed["assignments"]}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        relayed = [
            d
            for d in local_stack.deliveries()
            if d["seq"] > before and d.get("detail_type") == "EngagementStarted" and d.get("status") == "succeeded"
        ]
        if expected <= {d["detail_event_id"] for d in relayed}:
            break
        time.sleep(0.2)
    assert len(expected) == len(committed["assignments"]) == 6
    assert expected <= {d["detail_event_id"] for d in relayed}, local_stack.deliveries()[-5:]
    assert {d["function"] for d in relayed if d["detail_event_id"] in expected} == {"RollupsFunction"}
    # The network is now full: a second launch finds every coach at capacity.
    again = tenant.admin.call("POST", "/cohorts/match", body).json()
    assert again["matched"] == 0

    foreign = tenant_b.admin.call("POST", "/cohorts/match", body)
    assert foreign.status_code == 422
    assert foreign.json()["error"]["fields"][0]["field"] == "participant_ids[0]"
    too_many = tenant.admin.call("POST", "/cohorts/match", body | {"participant_ids": ids * 600})
    assert too_many.status_code == 422


def test_a_cohort_above_300_runs_as_a_background_job_whose_progress_can_be_watched(local_stack, operator):
    """301 participants: 202 with a job, the worker invoked asynchronously by the local stack, progress
    on GET, then the plan as the synchronous path would give it, committed."""
    lang = "ky"  # nobody else in the suite's network speaks Kyrgyz
    org = make_tenant(local_stack, operator, "Cohort job org")
    network = [coach(operator, lang, capacity=100, programs=["GROW"]) for _ in range(3)]
    refresh(local_stack)
    rows = [person_row(f"JOB{i:04d}", languages=[lang], time_zone="Europe/London") for i in range(301)]
    imported = org.admin.call("POST", "/people/import", {"people": rows})
    assert imported.status_code == 200, imported.text
    ids = [person_id_for(org.org_id, row["external_hr_id"]) for row in rows]
    body = {"program": "GROW", "participant_ids": ids, "focus_competencies": ["delegation"], "commit": True}

    bad = org.admin.call("POST", "/cohorts/match", body | {"participant_ids": [*ids, "not-a-member"]})
    assert bad.status_code == 422, bad.text  # checked before any job exists
    assert bad.json()["error"]["fields"][0]["field"] == "participant_ids[301]"

    started = org.admin.call("POST", "/cohorts/match", body)
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["status"], job["participants"], job["commit"]) == ("queued", 301, True)
    seen = []
    for _ in range(600):
        current = org.admin.call("GET", f"/cohorts/jobs/{job['job_id']}")
        assert current.status_code == 200, current.text
        seen.append((current.json()["status"], current.json()["phase_done"]))
        if current.json()["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    final = current.json()
    assert final["status"] == "succeeded", final
    assert {status for status, _ in seen} <= {"queued", "planning", "committing", "succeeded"}
    plan = final["result"]
    assert (plan["participants"], plan["matched"], plan["committed"]) == (301, 300, True)
    assert sum(plan["load"].values()) == 300
    assert set(plan["load"]) == {c["coach_id"] for c in network}
    assert all(a["engagement_id"] for a in plan["assignments"])
    assert [u["reason"] for u in plan["unmatched"]] == ["not assignable in this launch"]
    invoked = [d for d in local_stack.deliveries() if (d["kind"], d["function"]) == ("invoke", "CohortJobFunction")]
    [delivery] = invoked[-1:]
    assert delivery["status"] == "succeeded"

    # Another org's admin cannot see it; an unknown job is a 404.
    other = make_tenant(local_stack, operator, "Other cohort org")
    assert other.admin.call("GET", f"/cohorts/jobs/{job['job_id']}").status_code == 404
    assert org.admin.call("GET", f"/cohorts/jobs/{ids[0]}").status_code == 404


def test_org_settings_tune_the_availability_bar_and_the_weights(local_stack, operator):
    lang = "gl"
    org = make_tenant(local_stack, operator, "Settings org")
    weekend = coach(operator, lang, weekly_availability=[{"weekday": 5, "start": "10:00", "end": "16:00"}])
    weekday = coach(operator, lang, industries=["retail"], roles_held=[])
    refresh(local_stack)
    employee = person(local_stack, org, lang)
    first = ask(employee).json()["proposals"]
    assert [p["coach_id"] for p in first] == [weekday["coach_id"]]  # 0 weekday hours: below the default bar of 2

    tuned = operator.call(
        "PATCH",
        f"/orgs/{org.org_id}",
        {"matching": {"min_bookable_hours": 0, "weights": {"time_zone_overlap": 0, "has_done_the_job": 90}}},
    )
    assert tuned.status_code == 200, tuned.text
    second = ask(employee).json()["proposals"]
    # With no availability bar the weekend coach qualifies, and with the job weighted up
    # and overlap weighted out, their management record puts them first.
    assert [p["coach_id"] for p in second] == [weekend["coach_id"], weekday["coach_id"]]
    assert second[0]["factors"]["time_zone_overlap"] == 0
    refused = operator.call("PATCH", f"/orgs/{org.org_id}", {"matching": {"min_bookable_hours": -1}})
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "matching.min_bookable_hours"
