"""The four programmes end to end over HTTP on the local stack: a GROW cohort from the wait-list, a
TOGETHER workshop, a SCALE coachee promoted into EXEC, and the month's invoice across all four.

Sessions can only be completed (and attendance recorded) after they start, and bookings need
notice; so once booked, each session is moved into last month by rewriting its stored times
(`into_last_month`), which stands in for the clock moving on, exactly as test_sessions_api.py
does. A 1:1's locator is moved with it (the month it is indexed under follows its start, as it
would have had it been booked for that time). Everything else is the real path: HTTP, the
stack's functions, the outbox and the bus, the MonthlyInvoicing schedule.
"""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import boto3
import pytest
from coaching.adapters import keys
from coaching.domain.grow import participant_unit_id

from .helpers import Api, Tenant, make_tenant, person_row
from .test_booking_api import ALL_WEEK, booking_body, open_starts
from .test_hr_webhooks_api import _add_secrets, deliver, promotion
from .test_matching_api import ask, coach, employee_person_id, refresh

pytestmark = pytest.mark.e2e

BERLIN = ZoneInfo("Europe/Berlin")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Languages no other test's coaches speak, so each programme's matching sees exactly this test's coaches.
GROW_LANG, TOGETHER_LANG, EXEC_LANG = "gd", "br", "oc"
# The demo price book: per minute, in cents (EUR).
CENTS_PER_MINUTE = {"SCALE": 300, "GROW": 300, "EXEC": 600, "TOGETHER": 800}


def table():
    return boto3.resource("dynamodb").Table("test-MainTable")


def last_month_at(days_before_first: int, hour: int) -> datetime:
    """`hour`:00 Berlin, `days_before_first` days before the first of this month (Berlin): last month."""
    now = datetime.now(BERLIN)
    first = now.replace(day=1, hour=hour, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=days_before_first)).astimezone(UTC)


def last_month() -> str:
    return last_month_at(1, 12).astimezone(BERLIN).strftime("%Y-%m")


def _move(key: dict, start: datetime) -> None:
    item = table().get_item(Key=key, ConsistentRead=True)["Item"]
    body = json.loads(item["body"])
    length = datetime.fromisoformat(body["end"]) - datetime.fromisoformat(body["start"])
    body["start"], body["end"] = start.isoformat(), (start + length).isoformat()
    table().put_item(Item=item | {"body": json.dumps(body), "version": item["version"] + 1})


def into_last_month_booking(org_id: str, person_id: str, booking_id: str, start: datetime) -> None:
    _move({"pk": keys.person_pk(org_id, person_id), "sk": keys.booking_sk(booking_id)}, start)
    pk, sk = keys.locator_key(booking_id)
    table().update_item(
        Key={"pk": pk, "sk": sk},
        UpdateExpression="SET gsi1pk = :month",
        ExpressionAttributeValues={
            ":month": keys.sessions_index_pk(org_id, start.astimezone(BERLIN).strftime("%Y-%m"))
        },
    )


def ledger(org_id: str, period: str) -> list[dict]:
    items = table().query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": keys.ledger_pk(org_id, period)}
    )["Items"]
    return [json.loads(item["body"]) for item in items if item.get("kind") == "ledger_entry"]


def as_coach(local_stack, coach_id: str) -> Api:
    return Api(local_stack.url, local_stack.token(["coach"], person_id=coach_id))


def new_person(local_stack, tenant: Tenant, language: str, level: str, hr_id: str | None = None) -> tuple[str, Api]:
    row = person_row(hr_id or f"P-{uuid.uuid4().hex[:8]}", level=level, languages=[language])
    created = tenant.admin.call("POST", "/people", row)
    assert created.status_code == 201, created.text
    person_id = created.json()["person_id"]
    return person_id, Api(local_stack.url, local_stack.token(["employee"], org_id=tenant.org_id, person_id=person_id))


def complete_one_to_one(
    local_stack, tenant, employee: Api, engagement_id: str, start: datetime, minutes: int, pick: int = -1
) -> str:
    """Book one of the engagement's open slots, move it to `start` (last month), the coach completes it."""
    slot = open_starts(employee, engagement_id, days=10)[pick]
    booked = employee.call("POST", "/bookings", booking_body(engagement_id, slot))
    assert booked.status_code == 201, booked.text
    booking = booked.json()
    into_last_month_booking(tenant.org_id, employee_person_id(employee), booking["booking_id"], start)
    done = as_coach(local_stack, booking["coach_id"]).call(
        "POST", f"/coach/sessions/{booking['booking_id']}/complete", {"actual_minutes": minutes}
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    return booking["booking_id"]


@pytest.fixture(scope="module")
def tenant(local_stack, operator) -> Tenant:
    org = make_tenant(local_stack, operator, "Programmes org")
    _add_secrets(org.org_id, [SECRET])
    return org


def test_four_programmes_share_one_system_and_one_invoice(local_stack, operator, tenant):
    org_id = tenant.org_id
    grow_coach = coach(
        operator,
        GROW_LANG,
        programs=["SCALE", "GROW"],
        capacity=12,
        time_zone="Europe/Berlin",
        weekly_availability=ALL_WEEK,
        horizon_days=90,
    )
    facilitator = coach(
        operator,
        TOGETHER_LANG,
        programs=["TOGETHER"],
        time_zone="Europe/Berlin",
        weekly_availability=ALL_WEEK,
        horizon_days=60,
    )
    manager_roles = [{"level": "manager", "function": "engineering", "industry": "technology", "years": 6}]
    exec_roles = [{"level": "executive", "function": "engineering", "industry": "technology", "years": 7}]
    scale_coach = coach(operator, EXEC_LANG, programs=["SCALE"], roles_held=manager_roles, weekly_availability=ALL_WEEK)
    exec_coach = coach(operator, EXEC_LANG, programs=["EXEC"], roles_held=exec_roles, weekly_availability=ALL_WEEK)
    refresh(local_stack)

    # ------------------------------------------------------------------ the catalogue
    catalogue = tenant.admin.call("GET", f"/orgs/{org_id}/programmes")
    assert catalogue.status_code == 200, catalogue.text
    shipped = catalogue.json()
    assert (shipped["SCALE"]["session_minutes"], shipped["SCALE"]["monthly_allowance"]) == (30, 2)
    assert shipped["GROW"]["eligible_levels"] == ["first_time_manager"]
    assert shipped["GROW"]["weeks"] == 8
    assert shipped["EXEC"]["eligible_levels"] == ["senior_leader", "executive"]
    assert (shipped["TOGETHER"]["min_participants"], shipped["TOGETHER"]["max_participants"]) == (4, 20)

    # ------------------------------------------------------------------ GROW: a cohort of 8 from the wait-list
    # Two individual contributors are promoted to first-time manager by signed HR webhooks: the transition
    # policy puts them on the new-manager wait-list, the one the GROW cohorts open from.
    promoted_hr_ids = [f"HR-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    promoted_people = [
        new_person(local_stack, tenant, GROW_LANG, "individual_contributor", hr_id=hr) for hr in promoted_hr_ids
    ]
    delivered = deliver(local_stack, org_id, [promotion(hr) for hr in promoted_hr_ids], secret=SECRET)
    assert delivered.status_code == 200, delivered.text
    assert [o["outcome"] for o in delivered.json()["outcomes"]] == ["applied", "applied"]
    waitlist = tenant.admin.call("GET", f"/orgs/{org_id}/waitlists/new_manager")
    assert waitlist.status_code == 200, waitlist.text
    assert {e["person_id"] for e in waitlist.json()["items"]} == {pid for pid, _ in promoted_people}
    # Six more first-time managers are put there by the org admin.
    added = [new_person(local_stack, tenant, GROW_LANG, "first_time_manager") for _ in range(6)]
    participants = promoted_people + added
    outcomes = [tenant.admin.call("POST", f"/orgs/{org_id}/grow/waitlist", {"person_id": pid}) for pid, _ in added]
    assert [o.status_code for o in outcomes] == [200] * 6, [o.text for o in outcomes]
    # Seven wait: nothing opens; the eighth opens the cohort and enrols everyone waiting, promoted or added.
    assert [o.json()["opened_cohort_id"] for o in outcomes[:5]] == [None] * 5
    opened = outcomes[5].json()
    cohort_id = opened["opened_cohort_id"]
    assert cohort_id
    assert sorted(opened["enrolled"]) == sorted(pid for pid, _ in participants)
    # The trigger again (as after a promotion wait-list entry): nobody is left waiting, nothing new opens.
    again = tenant.admin.call("POST", f"/orgs/{org_id}/grow/waitlist/open")
    assert again.status_code == 200, again.text
    assert (again.json()["waiting"], again.json()["opened_cohort_id"], again.json()["enrolled"]) == (0, None, [])
    # An individual contributor is not a first-time manager: refused, naming the rule.
    ic_id, _ = new_person(local_stack, tenant, GROW_LANG, "individual_contributor")
    refused = tenant.admin.call("POST", f"/orgs/{org_id}/grow/waitlist", {"person_id": ic_id})
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "person_id"
    assert "first_time_manager" in refused.json()["error"]["message"]

    matched = tenant.admin.call("POST", f"/orgs/{org_id}/cohorts/{cohort_id}/match")
    assert matched.status_code == 200, matched.text
    view = matched.json()
    assert view["cohort"]["status"] == "matched"
    assert view["cohort"]["coach_ids"] == [grow_coach["coach_id"]]
    assert view["cohort"]["opened_from_waitlist"] is True
    sessions = view["sessions"]
    assert len(sessions) == 4
    assert all(len(s["participants"]) == 8 for s in sessions)

    # Every participant gets the invite; a person outside the cohort does not.
    for _pid, employee in participants:
        invite = employee.call(
            "GET", f"/orgs/{org_id}/cohorts/{cohort_id}/sessions/{sessions[0]['session_id']}/calendar.ics"
        )
        assert invite.status_code == 200, invite.text
        assert f"UID:{sessions[0]['session_id']}@coaching-platform" in invite.text
    outsider = Api(local_stack.url, local_stack.token(["employee"], org_id=org_id, person_id=ic_id))
    assert outsider.call("GET", f"/orgs/{org_id}/cohorts/{cohort_id}/sessions").status_code == 404

    # 1:1s in between, with the cohort's coach, through the ordinary booking. The group session's time is
    # not offered as a 1:1 slot, and booking it anyway is refused: the calendar locks are shared.
    _first_pid, first_employee = participants[0]
    grow_engagement = next(
        e for e in first_employee.call("GET", "/engagements").json()["items"] if e["program"] == "GROW"
    )
    assert grow_engagement["coach_id"] == grow_coach["coach_id"]
    group_start = datetime.fromisoformat(sessions[0]["start"])
    group_end = datetime.fromisoformat(sessions[0]["end"])
    window = {
        "from": (group_start - timedelta(hours=2)).isoformat(),
        "to": (group_end + timedelta(hours=2)).isoformat(),
    }
    slots = first_employee.call("GET", f"/engagements/{grow_engagement['engagement_id']}/slots", params=window)
    assert slots.status_code == 200, slots.text
    offered = [
        (datetime.fromisoformat(s["start_utc"]), datetime.fromisoformat(s["end"])) for s in slots.json()["items"]
    ]
    assert offered, "the coach offers the hours around the group session"
    assert all(end <= group_start or start >= group_end for start, end in offered), offered
    clash = first_employee.call(
        "POST", "/bookings", booking_body(grow_engagement["engagement_id"], group_start.isoformat())
    )
    assert clash.status_code == 409, clash.text

    one_to_ones = []
    for n, (_pid, employee) in enumerate(participants[:2]):
        engagement = next(e for e in employee.call("GET", "/engagements").json()["items"] if e["program"] == "GROW")
        one_to_ones.append(
            complete_one_to_one(
                local_stack, tenant, employee, engagement["engagement_id"], last_month_at(3, 9 + 2 * n), 45
            )
        )

    # Four group sessions run (moved into last month); attendance is recorded per participant.
    the_grow_coach = as_coach(local_stack, grow_coach["coach_id"])
    ids = [pid for pid, _ in participants]
    marks = [
        dict.fromkeys(ids, "attended"),
        dict.fromkeys(ids, "attended") | {ids[1]: "no_show"},
        dict.fromkeys(ids, "attended") | {ids[2]: "no_show", ids[3]: "excused"},
        dict.fromkeys(ids, "attended"),
    ]
    for index, session in enumerate(sessions):
        _move(
            {"pk": keys.cohort_pk(org_id, cohort_id), "sk": keys.group_session_sk(index)},
            last_month_at(12 - 2 * index, 10),
        )
        path = f"/orgs/{org_id}/cohorts/{cohort_id}/sessions/{session['session_id']}/attendance"
        recorded = the_grow_coach.call("POST", path, {"attendance": marks[index]})
        assert recorded.status_code == 200, recorded.text
        assert recorded.json()["status"] == "completed"
        # The same record again (a retry) is a no-op; a different one is refused.
        assert the_grow_coach.call("POST", path, {"attendance": marks[index]}).status_code == 200
        changed = the_grow_coach.call("POST", path, {"attendance": dict.fromkeys(ids, "excused")})
        assert changed.status_code == 409
    # Not this cohort's coach: not found.
    stranger = as_coach(local_stack, facilitator["coach_id"])
    path = f"/orgs/{org_id}/cohorts/{cohort_id}/sessions/{sessions[0]['session_id']}/attendance"
    assert stranger.call("POST", path, {"attendance": marks[0]}).status_code == 404

    # A participant's timeline carries the group sessions with their own attendance.
    second_timeline = participants[1][1].call("GET", "/timeline").json()
    group_marks = [e["status"] for e in second_timeline["entries"] if e["kind"] == "group_session"]
    assert group_marks == ["attended", "no_show", "attended", "attended"]

    # ------------------------------------------------------------------ TOGETHER: book, complete, billed once
    team = [new_person(local_stack, tenant, TOGETHER_LANG, "manager")[0] for _ in range(5)]
    day = (datetime.now(BERLIN) + timedelta(days=5)).replace(hour=10, minute=0, second=0, microsecond=0)
    body = {
        "team_name": "Platform leads",
        "participant_ids": team,
        "goal": "reorg",
        "length_minutes": 120,
        "start": day.isoformat(),
        "language": TOGETHER_LANG,
    }
    too_long = tenant.admin.call("POST", "/workshops", body | {"length_minutes": 300})
    assert too_long.status_code == 422
    assert too_long.json()["error"]["fields"][0]["field"] == "length_minutes"
    too_small = tenant.admin.call("POST", "/workshops", body | {"participant_ids": team[:3]})
    assert too_small.status_code == 422
    assert too_small.json()["error"]["fields"][0]["field"] == "participant_ids"
    booked = tenant.admin.call("POST", "/workshops", body)
    assert booked.status_code == 201, booked.text
    workshop = booked.json()
    assert (workshop["facilitator_id"], workshop["status"]) == (facilitator["coach_id"], "booked")
    # The facilitator's time is held: the same time again finds no other facilitator.
    assert tenant.admin.call("POST", "/workshops", body).status_code == 409
    _move(
        {"pk": keys.workshop_pk(org_id, workshop["workshop_id"]), "sk": keys.WORKSHOP_SK},
        last_month_at(5, 13),
    )
    the_facilitator = as_coach(local_stack, facilitator["coach_id"])
    complete_path = f"/orgs/{org_id}/workshops/{workshop['workshop_id']}/complete"
    done = the_facilitator.call("POST", complete_path, {"actual_minutes": 115})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    retried = the_facilitator.call("POST", complete_path, {"actual_minutes": 115})
    assert retried.status_code == 200
    assert retried.json() == done.json()

    # ------------------------------------------------------------------ SCALE, then promoted into EXEC
    hr_id = f"HR-{uuid.uuid4().hex[:8]}"
    exec_person_id, exec_employee = new_person(local_stack, tenant, EXEC_LANG, "manager", hr_id=hr_id)
    early = ask(exec_employee, program="EXEC")
    assert early.status_code == 422
    assert early.json()["error"]["fields"][0]["field"] == "program"
    scale_match = ask(exec_employee, program="SCALE").json()
    scale_engagement = exec_employee.call(
        "POST", f"/matches/{scale_match['match_id']}/choose", {"coach_id": scale_coach["coach_id"]}
    )
    assert scale_engagement.status_code == 201, scale_engagement.text
    scale_booking = complete_one_to_one(
        local_stack, tenant, exec_employee, scale_engagement.json()["engagement_id"], last_month_at(4, 9), 30
    )
    promoted = deliver(
        local_stack, org_id, [promotion(hr_id, level="senior_leader")], webhook_id=f"msg_exec_{hr_id}", secret=SECRET
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["outcomes"][0]["outcome"] == "applied"
    assert tenant.admin.call("GET", f"/people/{exec_person_id}").json()["level"] == "senior_leader"

    exec_match = ask(exec_employee, program="EXEC")
    assert exec_match.status_code == 201, exec_match.text
    assert [p["coach_id"] for p in exec_match.json()["proposals"]] == [exec_coach["coach_id"]]
    exec_engagement = exec_employee.call(
        "POST", f"/matches/{exec_match.json()['match_id']}/choose", {"coach_id": exec_coach["coach_id"]}
    )
    assert exec_engagement.status_code == 201, exec_engagement.text
    exec_eid = exec_engagement.json()["engagement_id"]
    # The new EXEC coach starts from the shared history, never a blank page: matching's context view...
    the_exec_coach = as_coach(local_stack, exec_coach["coach_id"])
    context = the_exec_coach.call("GET", f"/engagements/{exec_eid}/context")
    assert context.status_code == 200, context.text
    assert context.json()["focus_history"][0]["focus_competencies"] == ["delegation"]
    assert "feedback conversation" not in context.text  # what the person wrote stays theirs
    # ...and the timeline across programmes: the SCALE engagement and its completed session.
    timeline = the_exec_coach.call("GET", f"/coach/engagements/{exec_eid}/timeline")
    assert timeline.status_code == 200, timeline.text
    assert set(timeline.json()["programs"]) == {
        "SCALE",
        "EXEC",
    }
    sessions_seen = [
        (e["program"], e["ref_id"], e["status"]) for e in timeline.json()["entries"] if e["kind"] == "session"
    ]
    assert ("SCALE", scale_booking, "completed") in sessions_seen
    # Nobody else's coach sees it.
    assert the_grow_coach.call("GET", f"/coach/engagements/{exec_eid}/timeline").status_code == 404
    exec_booking = complete_one_to_one(local_stack, tenant, exec_employee, exec_eid, last_month_at(2, 15), 60, pick=-4)

    # ------------------------------------------------------------------ the month's invoice
    period = last_month()
    fired = local_stack.fire("MonthlyInvoicing")
    assert fired["status"] == "succeeded", fired
    assert fired["result"]["period"] == period
    deadline = time.monotonic() + 60
    invoice = None
    while time.monotonic() < deadline:
        response = operator.call("GET", f"/orgs/{org_id}/invoices/{period}")
        if response.status_code == 200:
            invoice = response.json()
            break
        time.sleep(0.2)
    assert invoice is not None, "the MonthlyInvoicing run did not draw the invoice"

    group_units = sum(1 for m in marks for mark in m.values() if mark == "attended")
    no_shows = sum(1 for m in marks for mark in m.values() if mark == "no_show")
    grow_hour = 60 * CENTS_PER_MINUTE["GROW"]
    expected = {
        "GROW": group_units * grow_hour + no_shows * grow_hour // 2 + 2 * 45 * CENTS_PER_MINUTE["GROW"],
        "TOGETHER": 120 * CENTS_PER_MINUTE["TOGETHER"],
        "SCALE": 30 * CENTS_PER_MINUTE["SCALE"],
        "EXEC": 60 * CENTS_PER_MINUTE["EXEC"],
    }
    by_program: dict[str, int] = {}
    for line in invoice["lines"]:
        assert line["program"] is not None, line
        by_program[line["program"]] = by_program.get(line["program"], 0) + line["amount_minor"]
    # Four programmes, each on lines of its own, each to the cent.
    assert by_program == expected, invoice["lines"]
    entries = ledger(org_id, period)
    assert invoice["total_minor"] == invoice["ledger_total_minor"] == sum(e["amount_minor"] for e in entries)
    assert invoice["total_minor"] == sum(expected.values())
    # GROW billed per participant-session: one entry per billed participant of each group session.
    grow_unit_entries = [e for e in entries if e["program"] == "GROW" and e["booking_id"] not in one_to_ones]
    assert len(grow_unit_entries) == group_units + no_shows == len({e["booking_id"] for e in grow_unit_entries})
    billed_units = {
        participant_unit_id(session["session_id"], person)
        for session, marked in zip(sessions, marks, strict=True)
        for person, mark in marked.items()
        if mark != "excused"
    }
    assert {e["booking_id"] for e in grow_unit_entries} == billed_units
    # The workshop once, the two EXEC/SCALE sessions once each.
    assert [e["program"] for e in entries].count("TOGETHER") == 1
    assert [e["booking_id"] for e in entries if e["program"] in {"SCALE", "EXEC"}] in (
        [scale_booking, exec_booking],
        [exec_booking, scale_booking],
    )

    reconciled = operator.call("POST", f"/orgs/{org_id}/billing/reconcile", params={"period": period})
    assert reconciled.status_code == 200, reconciled.text
    assert reconciled.json()["differences"] == []
    assert reconciled.json()["ledger_entries"] == len(entries)


# Languages of the report test's own coaches (no other test's coaches speak them).
REPORT_GROW_LANG, REPORT_TOGETHER_LANG = "ha", "ig"


def test_the_report_shows_the_programmes_as_cohorts_with_suppression(local_stack, operator):
    """This month, over HTTP: a GROW cohort's group session, a TOGETHER workshop and one SCALE 1:1 reach the
    rollups by their events; the month's report shows GROW and TOGETHER as programme rows and hides the lone
    SCALE coachee (and the row that would give them away)."""
    tenant = make_tenant(local_stack, operator, "Programme report org")
    org_id = tenant.org_id
    floor = operator.call("PATCH", f"/orgs/{org_id}", {"min_reporting_group_size": 3})
    assert floor.status_code == 200, floor.text
    grow_coach = coach(operator, REPORT_GROW_LANG, programs=["SCALE", "GROW"], capacity=12,
                       time_zone="Europe/Berlin", weekly_availability=ALL_WEEK, horizon_days=90)  # fmt: skip
    facilitator = coach(operator, REPORT_TOGETHER_LANG, programs=["TOGETHER"], time_zone="Europe/Berlin",
                        weekly_availability=ALL_WEEK, horizon_days=60)  # fmt: skip
    refresh(local_stack)
    now = datetime.now(UTC)
    # Everything ran earlier this month (at least 20 minutes ago, so attendance can be recorded).
    ran = max(now - timedelta(hours=1), now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    period = ran.strftime("%Y-%m")

    # GROW: eight first-time managers from the wait-list; the first group session ran (one no-show).
    members = [new_person(local_stack, tenant, REPORT_GROW_LANG, "first_time_manager")[0] for _ in range(8)]
    waited = [tenant.admin.call("POST", f"/orgs/{org_id}/grow/waitlist", {"person_id": pid}) for pid in members]
    assert [w.status_code for w in waited] == [200] * 8, [w.text for w in waited]
    cohort_id = waited[-1].json()["opened_cohort_id"]
    assert cohort_id
    matched = tenant.admin.call("POST", f"/orgs/{org_id}/cohorts/{cohort_id}/match")
    assert matched.status_code == 200, matched.text
    first_session = matched.json()["sessions"][0]
    _move({"pk": keys.cohort_pk(org_id, cohort_id), "sk": keys.group_session_sk(0)}, ran)
    marks = dict.fromkeys(members, "attended") | {members[0]: "no_show"}
    recorded = as_coach(local_stack, grow_coach["coach_id"]).call(
        "POST", f"/orgs/{org_id}/cohorts/{cohort_id}/sessions/{first_session['session_id']}/attendance",
        {"attendance": marks},
    )  # fmt: skip
    assert recorded.status_code == 200, recorded.text

    # TOGETHER: a team of four had their workshop.
    team = [new_person(local_stack, tenant, REPORT_TOGETHER_LANG, "manager")[0] for _ in range(4)]
    day = (datetime.now(BERLIN) + timedelta(days=5)).replace(hour=10, minute=0, second=0, microsecond=0)
    booked = tenant.admin.call("POST", "/workshops", {"team_name": "Ops leads", "participant_ids": team,
                                                      "goal": "alignment", "length_minutes": 90,
                                                      "start": day.isoformat(),
                                                      "language": REPORT_TOGETHER_LANG})  # fmt: skip
    assert booked.status_code == 201, booked.text
    workshop_id = booked.json()["workshop_id"]
    _move({"pk": keys.workshop_pk(org_id, workshop_id), "sk": keys.WORKSHOP_SK}, ran)
    done = as_coach(local_stack, facilitator["coach_id"]).call(
        "POST", f"/orgs/{org_id}/workshops/{workshop_id}/complete", {"actual_minutes": 90}
    )
    assert done.status_code == 200, done.text

    # SCALE: one manager alone had a 1:1 with the same coach; three more people took part in nothing.
    scale_id, scale_employee = new_person(local_stack, tenant, REPORT_GROW_LANG, "manager")
    scale_match = ask(scale_employee, program="SCALE")
    assert scale_match.status_code == 201, scale_match.text
    chosen = scale_employee.call("POST", f"/matches/{scale_match.json()['match_id']}/choose",
                                 {"coach_id": grow_coach["coach_id"]})  # fmt: skip
    assert chosen.status_code == 201, chosen.text
    complete_one_to_one(local_stack, tenant, scale_employee, chosen.json()["engagement_id"], ran, 30)
    idle = [new_person(local_stack, tenant, REPORT_TOGETHER_LANG, "manager")[0] for _ in range(3)]

    # The month's run rebuilds from source: the events had built the same cells already.
    run = operator.call("POST", f"/orgs/{org_id}/reports/{period}/run")
    assert run.status_code == 200, run.text
    assert run.json()["rebuilt"]["people"] == len(members) + len(team) + 1 + len(idle)
    assert run.json()["rebuilt"]["cells_rewritten"] == 0

    leader = Api(local_stack.url, local_stack.token(["leader"], org_id=org_id, person_id=str(uuid.uuid4())))
    report = leader.call("GET", f"/orgs/{org_id}/reports/{period}")
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["min_group_size"] == 3
    rows = {row["value"]: row for row in body["programmes"]["rows"]}
    assert set(rows) == {"GROW", "TOGETHER", "SCALE", "none"}, rows
    grow, together = rows["GROW"], rows["TOGETHER"]
    assert (grow["people"]["value"], grow["sessions"]["value"]) == (8, 7)
    assert grow["attendance_percent"] == {"value": 87.5, "group_size": 8, "suppressed": None}
    assert together["people"] == {"value": 4, "group_size": 4, "suppressed": None}
    # Everyone came: 100 % attendance would tell each member's answer (a tail), so it is hidden; and the
    # sessions of the four would, with the org's total, give the lone SCALE coachee's away (complementary).
    assert together["attendance_percent"]["suppressed"] == "minimum_group"
    assert together["sessions"]["suppressed"] == "complementary_suppression"
    # One person alone is never shown, nor the row that, with the org total, would give them away.
    assert rows["SCALE"]["people"] == {"value": None, "group_size": None, "suppressed": "minimum_group"}
    assert rows["none"]["people"]["suppressed"] == "complementary_suppression"
    # The GROW cohort is a group of its own; the lone coachee cannot be singled out by a filter.
    # (The session ran before the cohort's start date: it began the cohort for its people; the label is its start.)
    label = matched.json()["cohort"]["start_date"][:7]
    cohort = leader.call("GET", f"/orgs/{org_id}/reports/{period}", params={"grow_cohort": label})
    by_programme = leader.call("GET", f"/orgs/{org_id}/reports/{period}", params={"programme": "GROW"})
    assert cohort.status_code == by_programme.status_code == 200, (cohort.text, by_programme.text)
    assert by_programme.json()["leading"]["active_people"]["value"] == 8
    assert cohort.json()["leading"]["active_people"]["value"] == 8
    lone = leader.call("GET", f"/orgs/{org_id}/reports/{period}", params={"programme": "SCALE"})
    assert lone.status_code == 422
    assert lone.json()["error"]["details"]["rule"] == "minimum_group"
    # Nobody's id is in any of it.
    for person_id in [*members, *team, scale_id, *idle]:
        assert person_id not in report.text


def test_the_catalogues_monthly_allowance_is_what_1_to_1_booking_enforces(local_stack, operator):
    from .test_booking_api import engaged

    lang = "rw"
    org = make_tenant(local_stack, operator, "Catalogue allowance org")
    coach(operator, lang, capacity=20, weekly_availability=ALL_WEEK, horizon_days=90)
    refresh(local_stack)
    catalogue = org.admin.call("GET", f"/orgs/{org.org_id}/programmes").json()
    scale = catalogue["SCALE"] | {"monthly_allowance": 1}
    exec_off = catalogue["EXEC"] | {"enabled": False}
    body = {name: catalogue[name] for name in ("SCALE", "GROW", "EXEC", "TOGETHER")}
    body |= {"SCALE": scale, "EXEC": exec_off}
    changed = org.admin.call("PUT", f"/orgs/{org.org_id}/programmes", body)
    assert changed.status_code == 200, changed.text
    assert changed.json()["SCALE"]["monthly_allowance"] == 1

    employee, engagement = engaged(local_stack, org, operator, lang)
    # A match request reads the stored catalogue (in the same BatchGetItem as the person): EXEC is off here.
    off = ask(employee, program="EXEC")
    assert off.status_code == 403, off.text
    assert off.json()["error"]["fields"][0]["field"] == "program"
    starts = open_starts(employee, engagement["engagement_id"], days=10)
    by_month: dict[str, list[str]] = {}
    for s in starts:  # the org's calendar month (org zone: Europe/Berlin)
        by_month.setdefault(datetime.fromisoformat(s).astimezone(BERLIN).strftime("%Y-%m"), []).append(s)
    same_month = next(items for _, items in sorted(by_month.items()) if len(items) >= 2)
    first = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], same_month[0]))
    assert first.status_code == 201, first.text
    second = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], same_month[1]))
    assert second.status_code == 422, second.text
    assert second.json()["error"]["details"]["rule"] == "allowance"
