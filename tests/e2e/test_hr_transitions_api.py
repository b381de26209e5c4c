"""Promotion transitions, context handoff with consent, termination rules, erasure and roster sync over HTTP."""

import time
import uuid

import pytest

from .helpers import Api, Tenant, coach_profile, make_tenant, person_row
from .test_hr_webhooks_api import SECRET, _add_secrets, deliver, promotion

pytestmark = pytest.mark.e2e

WEEKDAYS_9_TO_17 = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]
SITUATION = "My new team ships late and I keep doing the work myself."


@pytest.fixture(scope="module")
def tenant(local_stack, operator) -> Tenant:
    org = make_tenant(local_stack, operator, "HR transitions org")
    _add_secrets(org.org_id, [SECRET])
    return org


def _coach(operator: Api, lang: str, level: str) -> dict:
    roles = [{"level": level, "function": "engineering", "industry": "technology", "years": 6}]
    profile = coach_profile(
        languages=[lang], time_zone="Europe/London", weekly_availability=WEEKDAYS_9_TO_17, roles_held=roles
    )
    created = operator.call("POST", "/coaches", profile).json()
    assert operator.call("PUT", f"/coaches/{created['coach_id']}/vetting", {"status": "approved"}).status_code == 200
    return created


def _until(probe, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_a_promoted_ic_joins_the_grow_waitlist_keeps_their_coach_and_their_history_travels_to_the_next_coach(
    local_stack, operator, tenant
):
    lang = "yo"
    manager_coach = _coach(operator, lang, "manager")
    senior_coach = _coach(operator, lang, "senior_leader")
    assert local_stack.fire("RosterRefresh")["status"] == "succeeded"
    hr_id = f"HR-{uuid.uuid4().hex[:8]}"
    row = person_row(hr_id, level="individual_contributor", languages=[lang], time_zone="Europe/London")
    person_id = tenant.admin.call("POST", "/people", row).json()["person_id"]
    employee = Api(local_stack.url, local_stack.token(["employee"], org_id=tenant.org_id, person_id=person_id))
    match = employee.call(
        "POST", "/matches", {"program": "SCALE", "focus_competencies": ["delegation"], "situation": SITUATION}
    )
    assert match.status_code == 201, match.text
    first = employee.call(
        "POST", f"/matches/{match.json()['match_id']}/choose", {"coach_id": manager_coach["coach_id"]}
    )
    assert first.status_code == 201, first.text

    # A signed promotion: individual contributor → first-time manager.
    answer = deliver(local_stack, tenant.org_id, [promotion(hr_id, at="2026-04-01T09:00:00Z")])
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcomes"][0]["outcome"] == "applied"
    assert tenant.admin.call("GET", f"/people/{person_id}").json()["level"] == "first_time_manager"
    # On the wait-list for the next GROW cohort for new managers, readable by the org admin only.
    waitlist = tenant.admin.call("GET", f"/orgs/{tenant.org_id}/waitlists/new_manager")
    assert waitlist.status_code == 200, waitlist.text
    assert waitlist.json()["program"] == "GROW"
    assert [e["person_id"] for e in waitlist.json()["items"]] == [person_id]
    assert employee.call("GET", f"/orgs/{tenant.org_id}/waitlists/new_manager").status_code == 403
    # The manager coach is still eligible for a first-time manager: kept, no re-match.
    delivered = local_stack.wait_for_delivery(
        lambda d: d.get("detail_type") == "PersonPromoted" and d.get("status") == "succeeded", timeout=30
    )
    assert delivered["status"] == "succeeded"
    assert [e["status"] for e in employee.call("GET", "/engagements").json()["items"]] == ["active"]

    # Manager → senior leader: EXEC eligibility, and the manager coach is no longer eligible: a re-match.
    senior = promotion(hr_id, level="senior_leader", at="2027-04-01T09:00:00Z")
    assert deliver(local_stack, tenant.org_id, [senior]).json()["outcomes"][0]["outcome"] == "applied"
    assert tenant.admin.call("GET", f"/people/{person_id}").json()["exec_eligible_since"] == "2027-04-01"
    rematch = _until(
        lambda: [m for m in employee.call("GET", "/matches").json()["items"] if m["trigger"] == "promotion"]
    )
    assert rematch, local_stack.deliveries()[-5:]
    proposed = [p["coach_id"] for p in rematch[0]["proposals"]]
    assert senior_coach["coach_id"] in proposed
    assert manager_coach["coach_id"] not in proposed
    chosen = employee.call("POST", f"/matches/{rematch[0]['match_id']}/choose", {"coach_id": senior_coach["coach_id"]})
    assert chosen.status_code == 201, chosen.text
    engagement_id = chosen.json()["engagement_id"]

    # A development goal of the person's, one kept and one dropped: the kept one travels to the next coach.
    goal = {"title": "Lead through other leaders", "competencies": ["delegation"], "checkin_every_days": 14}
    kept = employee.call("POST", "/goals", goal)
    assert kept.status_code == 201, kept.text
    dropped = employee.call("POST", "/goals", goal | {"title": "Dropped goal"})
    assert dropped.status_code == 201, dropped.text
    closed = employee.call("POST", f"/goals/{dropped.json()['goal_id']}/close", {"status": "abandoned"})
    assert closed.status_code == 200, closed.text

    # The next coach sees the history and the goals, never the situation.
    next_coach = Api(local_stack.url, local_stack.token(["coach"], person_id=senior_coach["coach_id"]))
    handoff = next_coach.call("GET", f"/engagements/{engagement_id}/handoff")
    assert handoff.status_code == 200, handoff.text
    body = handoff.json()
    assert [c["level"] for c in body["level_history"]] == ["first_time_manager", "senior_leader"]
    assert body["focus_history"][0]["focus_competencies"] == ["delegation"]
    assert [e["coach_id"] for e in body["past_engagements"]] == [manager_coach["coach_id"]]
    assert [(g["goal_id"], g["title"], g["competencies"]) for g in body["goals"]] == [
        (kept.json()["goal_id"], "Lead through other leaders", ["delegation"])
    ]
    assert body["released_360_results"] == []  # none released yet: a round in progress is nobody's to see
    assert (body["situations_shared"], body["situations"]) == ("none", [])
    assert SITUATION not in handoff.text
    # The previous coach sees nothing any more.
    previous = Api(local_stack.url, local_stack.token(["coach"], person_id=manager_coach["coach_id"]))
    assert previous.call("GET", f"/engagements/{first.json()['engagement_id']}/handoff").status_code == 404

    # The person sees exactly what is shared, and with whom.
    sharing = employee.call("GET", "/me/context-sharing").json()
    assert [r["coach_id"] for r in sharing["recipients"]] == [senior_coach["coach_id"]]
    assert sharing["situations_shared"] == []
    ref = sharing["situations_not_shared"][0]
    assert ref == {"kind": "match", "id": match.json()["match_id"]}

    # Consent to that one situation: the coach sees it on the next read.
    granted = employee.call("PUT", "/me/context-consent", {"situations": [ref]})
    assert granted.status_code == 200, granted.text
    assert [s["text"] for s in granted.json()["situations_shared"]] == [SITUATION]
    shown = next_coach.call("GET", f"/engagements/{engagement_id}/handoff").json()
    assert (shown["situations_shared"], [s["text"] for s in shown["situations"]]) == ("some", [SITUATION])
    # A situation that is not theirs is refused, naming it.
    foreign = employee.call("PUT", "/me/context-consent", {"situations": [{"kind": "booking", "id": "nope"}]})
    assert foreign.status_code == 422
    assert foreign.json()["error"]["fields"][0]["field"] == "situations[0]"

    # Revoked: gone at once.
    assert employee.call("DELETE", "/me/context-consent").status_code == 200
    hidden = next_coach.call("GET", f"/engagements/{engagement_id}/handoff")
    assert SITUATION not in hidden.text
    assert hidden.json()["situations"] == []
    # Shared as a whole, then revoked again.
    assert employee.call("PUT", "/me/context-consent", {"share_all_situations": True}).status_code == 200
    assert SITUATION in next_coach.call("GET", f"/engagements/{engagement_id}/handoff").text
    assert employee.call("DELETE", "/me/context-consent").status_code == 200
    assert SITUATION not in next_coach.call("GET", f"/engagements/{engagement_id}/handoff").text


def test_a_terminated_person_is_not_reactivated_by_patch_or_import_only_by_a_rehire(local_stack, tenant):
    hr_id = f"HR-{uuid.uuid4().hex[:8]}"
    person_id = tenant.admin.call("POST", "/people", person_row(hr_id)).json()["person_id"]
    leaving = {"type": "employee.terminated", "external_hr_id": hr_id, "effective_at": "2026-05-31T17:00:00Z",
               "regrettable": True}  # fmt: skip
    assert deliver(local_stack, tenant.org_id, [leaving]).json()["outcomes"][0]["outcome"] == "applied"
    patched = tenant.admin.call("PATCH", f"/people/{person_id}", {"active": True})
    assert patched.status_code == 409, patched.text
    assert patched.json()["error"]["fields"][0]["field"] == "active"
    assert "rehire" in patched.json()["error"]["message"]
    imported = tenant.admin.call("POST", "/people/import", {"people": [person_row(hr_id)]})
    assert imported.status_code == 200, imported.text
    assert (imported.json()["failed"], imported.json()["errors"][0]["errors"][0]["field"]) == (1, "active")
    person = tenant.admin.call("GET", f"/people/{person_id}").json()
    assert (person["active"], person["terminated_on"], person["regrettable"]) == (False, "2026-05-31", True)
    rehire = {"type": "employee.rehired", "external_hr_id": hr_id, "effective_at": "2026-09-01T09:00:00Z",
              "level": "manager", "function": "engineering"}  # fmt: skip
    assert deliver(local_stack, tenant.org_id, [rehire]).json()["outcomes"][0]["outcome"] == "applied"
    assert tenant.admin.call("GET", f"/people/{person_id}").json()["active"] is True


def test_erasure_anonymises_the_person_and_a_later_hr_event_cannot_bring_them_back(local_stack, operator, tenant):
    hr_id = f"HR-{uuid.uuid4().hex[:8]}"
    row = person_row(hr_id, name="Ada Erasable", email=f"ada-{hr_id.lower()}@example.com")
    person_id = tenant.admin.call("POST", "/people", row).json()["person_id"]
    other_org_admin = Api(local_stack.url, local_stack.token(["org_admin"], org_id=str(uuid.uuid4())))
    assert other_org_admin.call("POST", f"/orgs/{tenant.org_id}/people/{person_id}/erasure").status_code == 403
    erased = tenant.admin.call("POST", f"/orgs/{tenant.org_id}/people/{person_id}/erasure")
    assert erased.status_code == 200, erased.text
    again = operator.call("POST", f"/orgs/{tenant.org_id}/people/{person_id}/erasure")
    assert again.status_code == 200
    assert again.json()["erased_at"] == erased.json()["erased_at"]
    person = tenant.admin.call("GET", f"/people/{person_id}").json()
    assert "Ada" not in str(person)
    assert hr_id not in str(person)
    assert person["active"] is False
    late = deliver(local_stack, tenant.org_id, [promotion(hr_id, level="manager")])
    assert late.json()["outcomes"][0]["outcome"] == "rejected"
    assert tenant.admin.call("PATCH", f"/people/{person_id}", {"active": True}).status_code == 409


def test_a_roster_sync_dry_run_reports_and_the_reviewed_plan_applies(local_stack, operator):
    org = make_tenant(local_stack, operator, "Roster sync org")
    stays, leaves = person_row("RS-1"), person_row("RS-2")
    assert org.admin.call("POST", "/people/import", {"people": [stays, leaves]}).json()["created"] == 2
    listed = [stays | {"level": "manager", "title": "Lead"}, person_row("RS-3")]
    as_of = "2026-06-01T00:00:00+00:00"
    dry = org.admin.call("POST", "/people/roster-sync", {"people": listed}, params={"as_of": as_of})
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    assert plan["applied"] is False
    assert [c["external_hr_id"] for c in plan["creates"]] == ["RS-3"]
    assert [(c["external_hr_id"], c["changes"]["level"]) for c in plan["updates"]] == [
        ("RS-1", ["first_time_manager", "manager"])
    ]
    assert [c["external_hr_id"] for c in plan["terminations"]] == ["RS-2"]
    assert org.admin.call("GET", "/people").json()["items"][0]["level"] == "first_time_manager"  # nothing applied
    # A bad row: 422 naming row and field, nothing applied.
    bad = org.admin.call("POST", "/people/roster-sync", {"people": [stays, person_row("RS-4", email="nope")]})
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "people[1].email"
    # Another list than the reviewed one is refused.
    other = org.admin.call(
        "POST", "/people/roster-sync", {"people": listed[:1]}, params={"as_of": as_of, "checksum": plan["checksum"]}
    )
    assert other.status_code == 409, other.text
    applied = org.admin.call(
        "POST", "/people/roster-sync", {"people": listed}, params={"as_of": as_of, "checksum": plan["checksum"]}
    )
    assert applied.status_code == 200, applied.text
    assert applied.json()["applied"] is True
    assert {o["outcome"] for o in applied.json()["outcomes"]} == {"applied"}
    people = {p["external_hr_id"]: p for p in org.admin.call("GET", "/people").json()["items"]}
    assert (people["RS-1"]["level"], people["RS-2"]["active"], people["RS-3"]["active"]) == ("manager", False, True)
    # The same sync again changes nothing; CSV is read the same way.
    header = "external_hr_id,name,email,level,function,department,location,languages,time_zone\n"
    csv = (
        header
        + "RS-3,Person RS-3,rs-3@example.com,first_time_manager,engineering,Platform,Berlin,de;en,Europe/Berlin\n"
    )
    again = org.admin.call("POST", "/people/roster-sync", raw=csv, content_type="text/csv", params={"as_of": as_of})
    assert again.status_code == 200, again.text
    assert [c["external_hr_id"] for c in again.json()["terminations"]] == ["RS-1"]
    assert again.json()["creates"] == []
    assert again.json()["updates"] == []
