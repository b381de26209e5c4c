"""Capture over HTTP: session feedback, goals, role profiles, 360 rounds with link-only raters, the daily run.

Feedback needs a completed session and a 360 releases by time, so these tests move stored times into
the past (`time_travel`, `age_round`), which stands in for the clock moving on. Everything else is the
real path: the gateway, the development function, DynamoDB Local (both tables) and the outbox.
"""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from coaching.adapters import keys
from coaching.domain.events import stable_event_id

from .helpers import Api, Tenant, make_tenant
from .test_booking_api import ALL_WEEK, booking_body, engaged, open_starts
from .test_matching_api import coach, employee_person_id, person, refresh
from .test_sessions_api import as_coach, time_travel

pytestmark = pytest.mark.e2e

RATINGS = {"delegation": 4, "giving-feedback": 3, "communication": 5}


@pytest.fixture(scope="module")
def tenant(local_stack, operator) -> Tenant:
    return make_tenant(local_stack, operator, "Development org")


def main_table():
    return boto3.resource("dynamodb").Table("test-MainTable")


def partition(pk: str) -> list[dict]:
    return main_table().query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": pk})["Items"]


def outbox(event_id: str) -> dict | None:
    """The outbox item of an event with a stable id (one partition per event), as its detail."""
    item = main_table().get_item(Key={"pk": keys.outbox_pk(event_id), "sk": keys.OUTBOX_SK}, ConsistentRead=True)
    return json.loads(item["Item"]["detail"]) if "Item" in item else None


def completed_session(local_stack, operator, tenant: Tenant, lang: str) -> tuple[Api, dict, str]:
    coach(operator, lang, capacity=5, weekly_availability=ALL_WEEK, horizon_days=60)
    refresh(local_stack)
    employee, engagement = engaged(local_stack, tenant, operator, lang)
    person_id = employee_person_id(employee)
    start = open_starts(employee, engagement["engagement_id"], days=10)[-1]
    booking = employee.call("POST", "/bookings", booking_body(engagement["engagement_id"], start)).json()
    time_travel(tenant.org_id, person_id, booking["booking_id"], hours_ago=2)
    done = as_coach(local_stack, engagement["coach_id"]).call(
        "POST", f"/coach/sessions/{booking['booking_id']}/complete", {"actual_minutes": 30}
    )
    assert done.status_code == 200, done.text
    return employee, engagement, booking["booking_id"]


def test_feedback_is_given_once_on_ones_own_completed_session_and_reaches_only_a_tally(local_stack, operator, tenant):
    employee, engagement, booking_id = completed_session(local_stack, operator, tenant, "yo")
    person_id = employee_person_id(employee)
    answers = {"satisfaction": 5, "would_recommend": 9, "goal_progress": 4, "comment": "Felt heard."}

    bad = employee.call("POST", f"/bookings/{booking_id}/feedback", answers | {"satisfaction": 6})
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "satisfaction"
    stranger = person(local_stack, tenant, "yo")
    assert stranger.call("POST", f"/bookings/{booking_id}/feedback", answers).status_code == 404
    the_coach = as_coach(local_stack, engagement["coach_id"])
    assert the_coach.call("POST", f"/bookings/{booking_id}/feedback", answers).status_code == 403

    given = employee.call("POST", f"/bookings/{booking_id}/feedback", answers)
    assert given.status_code == 201, given.text
    assert given.json()["satisfaction"] == 5
    again = employee.call("POST", f"/bookings/{booking_id}/feedback", answers)
    assert again.status_code == 201  # an idempotent retry
    assert again.json() == given.json()
    changed = employee.call("POST", f"/bookings/{booking_id}/feedback", answers | {"satisfaction": 1})
    assert changed.status_code == 409
    assert changed.json()["error"]["fields"][0]["field"] == "booking_id"
    assert employee.call("GET", f"/bookings/{booking_id}/feedback").json()["comment"] == "Felt heard."
    assert stranger.call("GET", f"/bookings/{booking_id}/feedback").status_code == 404

    # The record is in the confidential table only; the main table has a tally cell that names nobody.
    confidential = boto3.resource("dynamodb").Table("test-ConfidentialTable")
    key = {"pk": keys.person_pk(tenant.org_id, person_id), "sk": keys.feedback_sk(booking_id)}
    assert json.loads(confidential.get_item(Key=key)["Item"]["body"])["would_recommend"] == 9
    period = datetime.now(UTC).strftime("%Y-%m")
    cells = [c for c in partition(keys.tally_pk(tenant.org_id, period)) if c.get("feedback_responses")]
    assert sum(int(c["feedback_responses"]) for c in cells) == 1
    (cell,) = cells
    assert (int(cell["satisfaction_sum"]), int(cell["promoters"]), int(cell["feedback_respondents"])) == (5, 1, 1)
    assert person_id not in json.dumps(cell, default=str)
    assert "Felt heard" not in json.dumps(cell, default=str)
    # On the bus: that feedback was given, never the scores.
    event = outbox(stable_event_id("feedback", tenant.org_id, booking_id))
    assert event is not None
    assert event["booking_id"] == booking_id
    assert not {"satisfaction", "would_recommend", "goal_progress", "comment"} & set(event)


def test_goals_hold_at_most_three_active_even_under_a_race_and_check_ins_are_nudged_once(local_stack, tenant):
    employee = person(local_stack, tenant, "zu")
    goal = {"title": "Delegate the release process", "competencies": ["delegation"],
            "actions": [{"text": "List what only I do"}], "checkin_every_days": 7}  # fmt: skip
    unknown = employee.call("POST", "/goals", goal | {"competencies": ["delegation", "juggling"]})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"][0]["field"] == "competencies[1]"
    aim = employee.call("POST", "/goals", goal | {"aim": "target_role"})
    assert aim.status_code == 422
    assert "target_level" in aim.text

    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(lambda _: employee.call("POST", "/goals", goal), range(6)))
    assert sorted(r.status_code for r in replies) == [201, 201, 201, 422, 422, 422]
    refused = next(r for r in replies if r.status_code == 422).json()["error"]
    assert refused["code"] == "policy_refused"
    assert refused["details"]["rule"] == "max_active_goals"
    goals = employee.call("GET", "/goals").json()["items"]
    assert len(goals) == 3
    # Three goals, one person: the tally counts the goals 3 times and the person once.
    period = datetime.now(UTC).strftime("%Y-%m")
    person_id = employee_person_id(employee)
    counted = [i for i in partition(keys.person_pk(tenant.org_id, person_id)) if i["sk"].startswith("MEASURED#")]
    assert sorted(i["sk"] for i in counted) == [f"MEASURED#{period}#focus_people:delegation",
                                                f"MEASURED#{period}#goal_people"]  # fmt: skip
    (cell,) = [c for c in partition(keys.tally_pk(tenant.org_id, period)) if c["sk"] == counted[0]["sk"] or
               json.loads(c.get("dims", "{}")) == json.loads(counted[0]["body"])]  # fmt: skip
    assert (int(cell["goals_set"]), int(cell["goal_people"]), int(cell["focus_people:delegation"])) == (3, 1, 1)

    first = goals[0]["goal_id"]
    checked = employee.call("POST", f"/goals/{first}/check-ins", {"progress": 40, "actions_done": [0]})
    assert checked.status_code == 200, checked.text
    assert checked.json()["checkins"][0]["progress"] == 40
    assert checked.json()["actions"][0]["done"] is True
    assert employee.call("POST", f"/goals/{first}/check-ins", {"progress": 140}).status_code == 422
    closed = employee.call("POST", f"/goals/{first}/close", {"status": "achieved"})
    assert closed.status_code == 200
    assert closed.json()["status"] == "achieved"
    assert employee.call("POST", f"/goals/{first}/check-ins", {"progress": 50}).status_code == 409
    today = datetime.now(UTC).date().isoformat()
    due = employee.call("POST", "/goals", goal | {"first_checkin_on": today, "aim": "target_role",
                                                  "target_level": "manager"})  # fmt: skip
    assert due.status_code == 201, due.text  # the place the achieved goal gave back

    for _ in range(2):  # the daily run, twice: one nudge per goal and day
        fired = local_stack.fire("DevelopmentDaily")
        assert fired["status"] == "succeeded", fired
    nudge = outbox(stable_event_id("checkin-due", tenant.org_id, due.json()["goal_id"], today))
    assert nudge is not None  # one outbox item per goal and day: a stable id, written once whatever the runs
    assert nudge["due_on"] == today


def test_role_profiles_and_the_policy_are_set_by_org_admin_only(local_stack, tenant):
    profile = {"name": "Manager", "competencies": [
        {"competency": "delegation", "behaviours": ["Hands over outcomes, not tasks"]},
        {"competency": "giving-feedback", "behaviours": ["Gives specific feedback within a week"]},
        {"competency": "communication", "behaviours": ["Explains the why"]}]}  # fmt: skip
    employee = person(local_stack, tenant, "zu")
    path = f"/orgs/{tenant.org_id}/role-profiles/first_time_manager"
    assert employee.call("PUT", path, profile).status_code == 403
    assert tenant.admin.call("PUT", f"/orgs/{tenant.org_id}/role-profiles/boss", profile).status_code == 422
    bad = tenant.admin.call("PUT", path, profile | {"competencies": [{"competency": "juggling", "behaviours": ["x"]}]})
    assert bad.status_code == 422
    put = tenant.admin.call("PUT", path, profile)
    assert put.status_code == 200, put.text
    listed = employee.call("GET", f"/orgs/{tenant.org_id}/role-profiles").json()["items"]
    assert [p["level"] for p in listed] == ["first_time_manager"]
    other = make_tenant(local_stack, Api(local_stack.url, local_stack.token(["operator"], person_id="op")), "Other")
    assert other.admin.call("PUT", path, profile).status_code == 403
    policy = tenant.admin.call("PUT", f"/orgs/{tenant.org_id}/development-policy", {"show_manager_alone": True})
    assert policy.status_code == 200
    assert policy.json()["follow_up_weeks"] == 16


def rater_link(local_stack) -> Api:
    return Api(local_stack.url, None)  # no account, no token: the link is the credential


def test_a_360_round_releases_by_rule_shows_only_safe_groups_and_only_to_the_person_and_coach(
    local_stack, operator, tenant
):
    assert tenant.admin.call("PUT", f"/orgs/{tenant.org_id}/development-policy",
                             {"show_manager_alone": True}).status_code == 200  # fmt: skip
    coach(operator, "xh", capacity=5)
    refresh(local_stack)
    employee, engagement = engaged(local_stack, tenant, operator, "xh")
    person_id = employee_person_id(employee)
    raters = [{"group": "manager"}] + [{"group": "peer"}] * 3 + [{"group": "direct_report"}] * 2
    opened = employee.call("POST", "/assessments", {"competencies": list(RATINGS), "raters": raters})
    assert opened.status_code == 201, opened.text
    body = opened.json()
    assessment_id = body["assessment"]["assessment_id"]
    links = body["invites"]
    assert len(links) == 6
    assert all(len(link["token"]) >= 40 for link in links)
    assert [link["shown_alone_notice"] for link in links if link["group"] == "manager"] == [True]
    # The token is stored only hashed: the round's item holds no token.
    stored = json.dumps(partition(keys.person_pk(tenant.org_id, person_id)), default=str)
    assert not any(link["token"] in stored for link in links)

    anonymous = rater_link(local_stack)
    seen = anonymous.call("POST", "/360/invite", {"token": links[1]["token"]})
    assert seen.status_code == 200
    assert seen.json()["competencies"] == list(RATINGS)
    assert anonymous.call("POST", "/360/answers", {"token": "x" * 43, "ratings": RATINGS}).status_code == 404
    missing = anonymous.call("POST", "/360/answers", {"token": links[1]["token"], "ratings": {"delegation": 4}})
    assert missing.status_code == 422
    assert missing.json()["error"]["fields"][0]["field"] == "ratings.giving-feedback"
    for index, link in enumerate(links):
        scores = dict.fromkeys(RATINGS, index % 5 + 1)
        answered = anonymous.call("POST", "/360/answers", {"token": link["token"], "ratings": scores})
        assert answered.status_code == 200, answered.text
    again = anonymous.call("POST", "/360/answers", {"token": links[0]["token"], "ratings": RATINGS})
    assert again.status_code == 409  # single use

    path = f"/orgs/{tenant.org_id}/people/{person_id}/assessments/{assessment_id}"
    assert employee.call("GET", path + "/result").status_code == 404  # not released: self not done
    progress = employee.call("GET", path).json()
    assert (progress["raters_answered"], progress["status"]) == (6, "open")
    done = employee.call("POST", f"/assessments/{assessment_id}/self", {"ratings": RATINGS})
    assert done.status_code == 200
    assert done.json()["status"] == "released"
    assert done.json()["release_reason"] == "complete"

    result = employee.call("GET", path + "/result").json()
    groups = {g["group"]: g for g in result["groups"]}
    assert groups["peer"]["shown"]
    assert groups["peer"]["responses"] == 3
    assert not groups["direct_report"]["shown"]
    assert groups["direct_report"]["scores"] == {}
    assert groups["manager"]["shown"]  # policy allowed it and the manager was told at the invite
    # The overall of others is the shown groups only: the 2 direct reports are not folded in.
    peers_and_manager = [1, 2, 3, 4]  # manager answered with 1s, peers with 2, 3, 4
    assert result["others_overall"] == round(sum(peers_and_manager) / 4, 2)
    assert as_coach(local_stack, engagement["coach_id"]).call("GET", path + "/result").status_code == 200
    for outsider in (
        tenant.admin,
        person(local_stack, tenant, "xh"),
        Api(local_stack.url, local_stack.token(["leader"], org_id=tenant.org_id, person_id="boss")),
    ):
        assert outsider.call("GET", path + "/result").status_code in {403, 404}  # fmt: skip
    assert as_coach(local_stack, "some-other-coach").call("GET", path + "/result").status_code == 404

    # A follow-up: released at 21 days by the daily run, whatever the answers; growth for person and coach.
    follow = employee.call("POST", "/assessments", {"kind": "follow_up", "baseline_id": assessment_id,
                                                    "raters": [{"group": "peer"}] * 3})  # fmt: skip
    assert follow.status_code == 201, follow.text
    follow_id = follow.json()["assessment"]["assessment_id"]
    for link in follow.json()["invites"]:
        top = {"token": link["token"], "ratings": dict.fromkeys(RATINGS, 5)}
        assert anonymous.call("POST", "/360/answers", top).status_code == 200
    age_round(tenant.org_id, person_id, follow_id, days=21)
    assert local_stack.fire("DevelopmentDaily")["status"] == "succeeded"
    released = employee.call("GET", f"/orgs/{tenant.org_id}/people/{person_id}/assessments/{follow_id}").json()
    assert (released["status"], released["release_reason"]) == ("released", "deadline_21_days")
    growth = employee.call("GET", f"/orgs/{tenant.org_id}/people/{person_id}/growth").json()["items"]
    assert growth[0]["change_overall"] == round(5 - 2.5, 2)
    assert as_coach(local_stack, engagement["coach_id"]).call(
        "GET", f"/orgs/{tenant.org_id}/people/{person_id}/growth").status_code == 200  # fmt: skip
    # An expired link is refused.
    late = anonymous.call("POST", "/360/invite", {"token": follow.json()["invites"][0]["token"]})
    assert late.status_code == 403


def age_round(org_id: str, person_id: str, assessment_id: str, days: int) -> None:
    """Move a stored round's opening `days` into the past (the clock moving on)."""
    key = {"pk": keys.person_pk(org_id, person_id), "sk": keys.assessment_sk(assessment_id)}
    item = main_table().get_item(Key=key, ConsistentRead=True)["Item"]
    body = json.loads(item["body"])
    opened = datetime.now(UTC) - timedelta(days=days, minutes=1)
    body["opened_at"] = opened.isoformat()
    main_table().put_item(Item=item | {"body": json.dumps(body), "version": item["version"] + 1,
                                       "gsi1sk": keys.open_assessment_index_sk(opened, assessment_id)})  # fmt: skip


def test_a_rater_link_route_needs_no_token_but_every_other_route_does(local_stack):
    anonymous = rater_link(local_stack)
    assert anonymous.call("GET", "/goals").status_code == 401
    assert (
        anonymous.call("POST", "/360/answers", {"token": uuid.uuid4().hex * 2, "ratings": RATINGS}).status_code == 404
    )


def test_the_demo_months_capture_runs_through_http_and_fills_the_tallies(local_stack, operator):
    from coaching_local.demo_month import Participant, drive_capture

    demo = make_tenant(local_stack, operator, "Demo capture org")
    employee, _, booking_id = completed_session(local_stack, operator, demo, "wo")
    individual = person(local_stack, demo, "wo", level="individual_contributor")
    participants = [Participant(token=employee.token or "", level="first_time_manager",
                                completed_booking_ids=[booking_id]),
                    Participant(token=individual.token or "", level="individual_contributor")]  # fmt: skip
    summary = drive_capture(local_stack.url, demo.org_id, demo.admin.token or "", participants)
    assert summary.feedback_given == 1
    assert summary.assessments_released == 4  # a baseline and a follow-up each
    assert summary.rater_answers == 2 * 7 + 2 * 4
    period = datetime.now(UTC).strftime("%Y-%m")
    cells = partition(keys.tally_pk(demo.org_id, period))
    total = lambda name: sum(int(c.get(name, 0)) for c in cells)  # noqa: E731
    assert total("feedback_responses") == 1
    assert total("goals_set") == summary.goals_set
    assert total("goal_people") == 2
    assert total("growth_people") == 2  # both follow-ups compare with a released baseline
    assert total("managers_rated") == 2  # the manager's three direct reports, a shown group, in both rounds
    assert total("assessments_released") == 4
