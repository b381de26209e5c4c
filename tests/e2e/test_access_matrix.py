"""Every route, every role, two tenants: forbidden calls get 403 or 404 and return no data.

The table below is the authorisation spec. A test fails when the template gains a route
that the table does not cover, so a new route cannot ship without its row.
"""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from coaching.ids import person_id_for
from coaching_local.template import function_specs, load_template

from .helpers import Api, coach_profile, make_tenant, person_row

pytestmark = pytest.mark.e2e

ROLES = ["employee", "coach", "org_admin", "leader", "finance", "operator"]
ORG_ROLES = ["employee", "org_admin", "leader", "finance"]

# (method, route) -> (roles allowed on the victim org's objects, request body)
RULES: dict[tuple[str, str], tuple[set[str], object]] = {
    ("POST", "/orgs"): ({"operator"}, {"name": "X", "time_zone": "UTC", "currency": "EUR", "industry": "media"}),
    ("GET", "/orgs"): ({"operator"}, None),
    ("GET", "/orgs/{org_id}"): ({"operator", *ORG_ROLES}, None),
    ("PATCH", "/orgs/{org_id}"): ({"operator"}, {"name": "Renamed by matrix"}),
    ("GET", "/orgs/{org_id}/framework"): ({"operator", *ORG_ROLES}, None),
    ("POST", "/orgs/{org_id}/hr-webhook-secret/rotate"): ({"operator", "org_admin"}, {"grace_hours": 24}),
    ("PUT", "/orgs/{org_id}/framework"): (
        {"operator", "org_admin"},
        {
            "name": "Matrix",
            "competencies": [
                {"id": "delegation", "name": "D"},
                {"id": "hiring", "name": "H"},
                {"id": "resilience", "name": "R"},
            ],
        },
    ),
    ("POST", "/people"): ({"org_admin"}, "person"),
    ("GET", "/people"): ({"org_admin"}, None),
    ("POST", "/people/import"): ({"org_admin"}, "import"),
    ("GET", "/people/{person_id}"): ({"org_admin"}, None),
    ("PATCH", "/people/{person_id}"): ({"org_admin"}, {"department": "Changed by matrix"}),
    ("POST", "/coaches"): ({"operator"}, "coach"),
    ("GET", "/coaches"): ({"operator"}, None),
    ("GET", "/coaches/{coach_id}"): ({"operator"}, None),
    ("PATCH", "/coaches/{coach_id}"): ({"operator"}, {"bio": "Changed by matrix"}),
    ("PUT", "/coaches/{coach_id}/vetting"): ({"operator"}, {"status": "suspended", "reason": "matrix"}),
    ("POST", "/matches"): (
        {"employee"},
        {
            "program": "SCALE",
            "focus_competencies": ["delegation"],
            "situation": "A hard conversation with my team next week.",
        },
    ),
    ("GET", "/matches"): ({"employee"}, None),
    ("GET", "/matches/{match_id}"): ({"employee"}, None),
    ("POST", "/matches/{match_id}/decline"): ({"employee"}, None),
    ("POST", "/matches/{match_id}/choose"): ({"employee"}, "choice"),
    ("GET", "/engagements"): ({"employee"}, None),
    ("POST", "/engagements/{engagement_id}/change-coach"): ({"employee"}, {"reason": "matrix test"}),
    ("GET", "/engagements/{engagement_id}/context"): ({"coach"}, None),
    ("GET", "/matching/gaps"): ({"operator"}, None),
    ("POST", "/cohorts/match"): ({"org_admin"}, "cohort"),
    ("GET", "/cohorts/jobs/{job_id}"): ({"org_admin"}, None),
    ("GET", "/engagements/{engagement_id}/slots"): ({"employee"}, None),
    ("POST", "/bookings"): ({"employee"}, "booking"),
    ("GET", "/bookings"): ({"employee"}, None),
    ("GET", "/bookings/{booking_id}"): ({"employee"}, None),
    ("GET", "/bookings/{booking_id}/calendar.ics"): ({"employee"}, None),
    ("POST", "/bookings/{booking_id}/cancel"): ({"employee"}, {"reason": "matrix"}),
    ("POST", "/bookings/{booking_id}/reschedule"): ({"employee"}, "reschedule"),
    ("GET", "/coach/sessions"): ({"coach"}, None),
    ("POST", "/coach/sessions/{booking_id}/cancel"): ({"coach"}, {"reason": "matrix"}),
    ("POST", "/coach/sessions/{booking_id}/complete"): ({"coach"}, {"actual_minutes": 30}),
    ("POST", "/coach/sessions/{booking_id}/no-show"): ({"coach"}, None),
    ("POST", "/bookings/{booking_id}/confirm"): ({"employee"}, None),
    ("POST", "/bookings/{booking_id}/dispute"): ({"employee"}, {"reason": "The matrix disputes this."}),
    ("POST", "/orgs/{org_id}/sessions/{booking_id}/resolve-dispute"): (
        {"operator"},
        {"upheld": False, "reason": "matrix"},
    ),
    ("POST", "/orgs/{org_id}/sessions/{booking_id}/credit"): ({"operator"}, {"reason": "matrix"}),
    ("GET", "/orgs/{org_id}/price-book"): ({"operator", "finance", "org_admin"}, None),
    ("POST", "/orgs/{org_id}/price-book/versions"): ({"operator"}, "price_version"),
    ("GET", "/orgs/{org_id}/invoices"): ({"operator", "finance", "org_admin"}, None),
    ("GET", "/orgs/{org_id}/invoices/{period}"): ({"operator", "finance", "org_admin"}, None),
    ("GET", "/orgs/{org_id}/invoices/{period}/invoice.csv"): ({"operator", "finance", "org_admin"}, None),
    ("POST", "/orgs/{org_id}/invoices/{period}/finalise"): ({"operator", "finance"}, None),
    ("POST", "/orgs/{org_id}/invoices/{period}/run"): ({"operator"}, None),
    ("GET", "/orgs/{org_id}/usage/month-to-date"): ({"operator", "finance", "org_admin"}, None),
    ("POST", "/orgs/{org_id}/billing/reconcile"): ({"operator", "finance"}, None),
    ("GET", "/orgs/{org_id}/waitlists/{transition}"): ({"operator", "org_admin"}, None),
    ("POST", "/people/roster-sync"): ({"org_admin"}, "roster"),
    ("GET", "/engagements/{engagement_id}/handoff"): ({"coach"}, None),
    ("GET", "/me/context-sharing"): ({"employee"}, None),
    ("PUT", "/me/context-consent"): ({"employee"}, {"share_all_situations": False}),
    ("DELETE", "/me/context-consent"): ({"employee"}, None),
    ("POST", "/orgs/{org_id}/people/{person_id}/erasure"): ({"operator", "org_admin"}, None),
    # Programmes. Cohort, session and workshop ids in the matrix name no object: an allowed caller gets past
    # authorisation to the lookup (404); the programme flows themselves are tested in test_programmes_api.py.
    ("GET", "/orgs/{org_id}/programmes"): ({"operator", "org_admin", "finance", "leader"}, None),
    ("PUT", "/orgs/{org_id}/programmes"): ({"operator", "org_admin"}, {}),
    ("POST", "/orgs/{org_id}/cohorts"): ({"operator", "org_admin"}, "grow_cohort"),
    ("GET", "/orgs/{org_id}/cohorts"): ({"operator", "org_admin"}, None),
    ("GET", "/orgs/{org_id}/cohorts/{cohort_id}"): ({"operator", "org_admin"}, None),
    ("POST", "/orgs/{org_id}/cohorts/{cohort_id}/enrolments"): ({"operator", "org_admin"}, "enrol"),
    ("POST", "/orgs/{org_id}/cohorts/{cohort_id}/match"): ({"operator", "org_admin"}, None),
    ("POST", "/orgs/{org_id}/grow/waitlist"): ({"operator", "org_admin"}, "enrol"),
    ("POST", "/orgs/{org_id}/grow/waitlist/open"): ({"operator", "org_admin"}, None),
    ("GET", "/orgs/{org_id}/cohorts/{cohort_id}/sessions"): ({"operator", "org_admin", "employee", "coach"}, None),
    ("GET", "/orgs/{org_id}/cohorts/{cohort_id}/sessions/{session_id}/calendar.ics"): (
        {"operator", "org_admin", "employee", "coach"},
        None,
    ),
    ("POST", "/orgs/{org_id}/cohorts/{cohort_id}/sessions/{session_id}/attendance"): ({"coach"}, "attendance"),
    ("POST", "/workshops"): ({"leader", "org_admin"}, "workshop"),
    ("GET", "/workshops/{workshop_id}"): ({"leader", "org_admin", "employee"}, None),
    ("POST", "/workshops/{workshop_id}/cancel"): ({"leader", "org_admin"}, {}),
    ("GET", "/workshops/{workshop_id}/calendar.ics"): ({"leader", "org_admin", "employee"}, None),
    ("POST", "/orgs/{org_id}/workshops/{workshop_id}/complete"): ({"coach"}, {"actual_minutes": 60}),
    ("GET", "/timeline"): ({"employee"}, None),
    ("GET", "/coach/engagements/{engagement_id}/timeline"): ({"coach"}, None),
    # Development: a person's own feedback, goals and 360s; what only the person and their coach read.
    ("POST", "/bookings/{booking_id}/feedback"): (
        {"employee"},
        {"satisfaction": 4, "would_recommend": 9, "goal_progress": 3},
    ),
    ("GET", "/bookings/{booking_id}/feedback"): ({"employee"}, None),
    ("POST", "/goals"): ({"employee"}, {"title": "Matrix goal", "competencies": ["delegation"]}),
    ("GET", "/goals"): ({"employee"}, None),
    ("POST", "/goals/{goal_id}/check-ins"): ({"employee"}, {"progress": 20}),
    ("POST", "/goals/{goal_id}/close"): ({"employee"}, {"status": "achieved"}),
    ("PUT", "/orgs/{org_id}/role-profiles/{level}"): (
        {"org_admin"},
        {"name": "Manager", "competencies": [{"competency": "delegation", "behaviours": ["Hands over outcomes"]}]},
    ),
    ("GET", "/orgs/{org_id}/role-profiles"): ({"org_admin", "employee"}, None),
    ("PUT", "/orgs/{org_id}/development-policy"): ({"org_admin"}, {"show_manager_alone": False}),
    ("GET", "/orgs/{org_id}/development-policy"): ({"org_admin", "employee"}, None),
    ("POST", "/assessments"): ({"employee"}, {"competencies": ["delegation"], "raters": [{"group": "peer"}]}),
    ("POST", "/assessments/{assessment_id}/self"): ({"employee"}, {"ratings": {"delegation": 4}}),
    ("GET", "/orgs/{org_id}/people/{person_id}/assessments/{assessment_id}"): ({"employee", "coach"}, None),
    ("GET", "/orgs/{org_id}/people/{person_id}/assessments/{assessment_id}/result"): ({"employee", "coach"}, None),
    ("GET", "/orgs/{org_id}/people/{person_id}/growth"): ({"employee", "coach"}, None),
    # Reports: aggregates for leader, org_admin and finance of the org; the operator's run and cross-org topics
    # (the operator is not allowed on an org's report: it gets the cross-org topics instead).
    ("GET", "/orgs/{org_id}/reports/{period}"): ({"leader", "org_admin", "finance"}, None),
    ("GET", "/orgs/{org_id}/reports/{period}/trends"): ({"leader", "org_admin", "finance"}, None),
    ("GET", "/orgs/{org_id}/reports/{period}/download"): ({"leader", "org_admin", "finance"}, None),
    ("GET", "/orgs/{org_id}/report-settings"): ({"leader", "org_admin", "finance"}, None),
    ("PUT", "/orgs/{org_id}/report-settings"): ({"org_admin"}, {"priorities": ["delegation"]}),
    ("POST", "/orgs/{org_id}/reports/{period}/run"): ({"operator"}, None),
    ("GET", "/reports/coach-topics/{period}"): ({"operator"}, None),
}
# What an allowed caller may get besides success: declining the last coaches is a refusal.
ALLOWED_REFUSALS = {
    # The victim org has a rollup and an artefact for the month only once its monthly run has been done.
    ("GET", "/orgs/{org_id}/reports/{period}"): {404},
    ("GET", "/orgs/{org_id}/reports/{period}/download"): {404},
    ("POST", "/matches/{match_id}/decline"): {422},
    ("POST", "/bookings"): {409},  # the world's booking already holds that slot
    # The matrix's one booking is in the future (and cancelled by the cancel rows): an allowed
    # caller gets past authorisation to the state rule, which refuses.
    ("POST", "/bookings/{booking_id}/reschedule"): {409, 422},
    ("POST", "/coach/sessions/{booking_id}/cancel"): {409},
    ("POST", "/coach/sessions/{booking_id}/complete"): {409},
    ("POST", "/coach/sessions/{booking_id}/no-show"): {409},
    ("POST", "/bookings/{booking_id}/confirm"): {409},
    ("POST", "/bookings/{booking_id}/dispute"): {409},
    ("POST", "/orgs/{org_id}/sessions/{booking_id}/resolve-dispute"): {409},
    ("POST", "/orgs/{org_id}/sessions/{booking_id}/credit"): {409},
    ("POST", "/orgs/{org_id}/invoices/{period}/finalise"): {409},  # the first allowed caller finalised it
    ("GET", "/orgs/{org_id}/cohorts/{cohort_id}"): {404},
    ("POST", "/orgs/{org_id}/cohorts/{cohort_id}/enrolments"): {404},
    ("POST", "/orgs/{org_id}/cohorts/{cohort_id}/match"): {404},
    ("GET", "/orgs/{org_id}/cohorts/{cohort_id}/sessions"): {404},
    ("GET", "/orgs/{org_id}/cohorts/{cohort_id}/sessions/{session_id}/calendar.ics"): {404},
    ("POST", "/orgs/{org_id}/cohorts/{cohort_id}/sessions/{session_id}/attendance"): {404},
    ("POST", "/workshops"): {409, 422},  # the matrix's team is too small or nobody facilitates in its language
    ("GET", "/workshops/{workshop_id}"): {404},
    ("POST", "/workshops/{workshop_id}/cancel"): {404},
    ("GET", "/workshops/{workshop_id}/calendar.ics"): {404},
    ("POST", "/orgs/{org_id}/workshops/{workshop_id}/complete"): {404},
    ("POST", "/bookings/{booking_id}/feedback"): {422},  # the matrix's session is not completed
    ("GET", "/bookings/{booking_id}/feedback"): {404},  # so there is no feedback to read
    ("POST", "/goals/{goal_id}/close"): {409},
    # One invited peer has not answered: the round is not released.
    ("GET", "/orgs/{org_id}/people/{person_id}/assessments/{assessment_id}/result"): {404},
}
TENANT_IDS = ("org_id", "person_id", "match_id", "engagement_id", "booking_id", "period", "goal_id", "assessment_id")
# Tenant-owned objects addressed by id. Routes without an id act on the caller's own tenant
# (taken from the token), and coaches are one global network, so neither can be probed across.
ID_ROUTES = [key for key in RULES if any(f"{{{name}}}" in key[1] for name in TENANT_IDS)]


def template_routes() -> set[tuple[str, str]]:
    template = load_template(Path(__file__).parents[2] / "template.yaml")
    return {
        (route.method.upper(), route.path)
        for spec in function_specs(template)
        for route in spec.routes
        if not route.auth_none
    }


def test_matrix_covers_every_authorised_route():
    assert template_routes() == set(RULES)


@pytest.fixture(scope="module")
def world(local_stack, operator):
    victim = make_tenant(local_stack, operator, "Matrix victim")
    attacker = make_tenant(local_stack, operator, "Matrix attacker")
    person = victim.admin.call("POST", "/people", person_row(f"MX-{uuid.uuid4().hex[:6]}")).json()
    # The victim org's employee is a real person, with a network in a language only they speak.
    employee = victim.admin.call("POST", "/people", person_row(f"MXE-{uuid.uuid4().hex[:6]}", languages=["lb"])).json()
    # Enough coaches that the matrix's own decline and change of coach never run out.
    network = [coach_profile(languages=["lb"], programs=["SCALE", "GROW", "TOGETHER"]) for _ in range(8)]
    coaches = [operator.call("POST", "/coaches", profile).json() for profile in network]
    for coach in coaches:
        operator.call("PUT", f"/coaches/{coach['coach_id']}/vetting", {"status": "approved"})
    assert local_stack.fire("RosterRefresh")["status"] == "succeeded"
    as_employee = Api(
        local_stack.url, local_stack.token(["employee"], org_id=victim.org_id, person_id=employee["person_id"])
    )
    ask = RULES[("POST", "/matches")][1]
    matches = {}
    purposes = [("get", "SCALE"), ("decline", "SCALE"), ("choose", "SCALE"), ("engage", "GROW"), ("change", "TOGETHER")]
    for purpose, program in purposes:
        created = as_employee.call("POST", "/matches", ask | {"program": program})
        assert created.status_code == 201, created.text
        matches[purpose] = created.json()
    engagement, changing = (
        as_employee.call(
            "POST",
            f"/matches/{matches[purpose]['match_id']}/choose",
            {"coach_id": matches[purpose]["proposals"][0]["coach_id"]},
        ).json()
        for purpose in ("engage", "change")
    )
    window = {"from": datetime.now(UTC).isoformat(), "to": (datetime.now(UTC) + timedelta(days=14)).isoformat()}
    slots = as_employee.call("GET", f"/engagements/{engagement['engagement_id']}/slots", params=window).json()
    booking = as_employee.call(
        "POST",
        "/bookings",
        {
            "engagement_id": engagement["engagement_id"],
            "start": slots["items"][0]["start"],
            "focus_competencies": ["delegation"],
            "situation": "Matrix booking for access checks.",
        },
    )
    assert booking.status_code == 201, booking.text
    booking = booking.json()
    # A drawn invoice for last month, so the invoice routes have an object to guard.
    last_month = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    drawn = operator.call("POST", f"/orgs/{victim.org_id}/invoices/{last_month}/run")
    assert drawn.status_code == 200, drawn.text
    # A cohort job of the victim org (more than 300 participants make a background job).
    wave = [person_row(f"MXW-{uuid.uuid4().hex[:8]}") for _ in range(301)]
    imported = victim.admin.call("POST", "/people/import", {"people": wave})
    assert imported.status_code == 200, imported.text
    wave_ids = [person_id_for(victim.org_id, row["external_hr_id"]) for row in wave]
    job = victim.admin.call("POST", "/cohorts/match", {"program": "GROW", "participant_ids": wave_ids})
    assert job.status_code == 202, job.text
    ids = {
        "org_id": victim.org_id,
        "job_id": job.json()["job_id"],
        "booking_id": booking["booking_id"],
        "booking_start": booking["start"],
        "slots_query": urlencode(window),
        "person_id": person["person_id"],
        # The coach routes act on a coach outside the employee's network, so suspending it
        # (an allowed call in the matrix) cannot change what the employee is proposed.
        "coach_id": operator.call("POST", "/coaches", coach_profile()).json()["coach_id"],
        "engagement_id": engagement["engagement_id"],
        # The change-of-coach route ends its engagement; the context route needs one still active.
        "changing_engagement_id": changing["engagement_id"],
        "employee_id": employee["person_id"],
        "engaged_coach_id": engagement["coach_id"],
        "matches": matches,
        "period": last_month,
        "transition": "new_manager",
        # The erasure route anonymises its person for good: one of its own.
        "erasable_person_id": victim.admin.call("POST", "/people", person_row(f"MXX-{uuid.uuid4().hex[:6]}")).json()[
            "person_id"
        ],
        "cohort_id": "c0h0r700-0000-4000-8000-000000000000",
        "session_id": "5e55100n-0000-4000-8000-000000000000",
        "workshop_id": "w0rk5h0p-0000-4000-8000-000000000000",
        # The employee's own goal and 360 round, for the development routes.
        "goal_id": as_employee.call("POST", "/goals", RULES[("POST", "/goals")][1]).json()["goal_id"],
        "assessment_id": as_employee.call("POST", "/assessments", RULES[("POST", "/assessments")][1]).json()[
            "assessment"
        ]["assessment_id"],
        "level": "manager",
    }
    return victim, attacker, ids


def path_for(method: str, route: str, ids: dict) -> str:
    purpose = {"/matches/{match_id}/decline": "decline", "/matches/{match_id}/choose": "choose"}.get(route, "get")
    values = {**ids, "match_id": ids["matches"][purpose]["match_id"]}
    if route.endswith("/change-coach"):
        values["engagement_id"] = ids["changing_engagement_id"]
    if "/people/{person_id}/" in route:  # a person's own 360s: the employee is that person
        values["person_id"] = ids["employee_id"]
    # Last: the erasure route is also under /people/{person_id}/, and must never erase the matrix's employee.
    if route.endswith("/erasure"):
        values["person_id"] = ids["erasable_person_id"]
    path = route.format(**values)
    if route.endswith("/billing/reconcile"):
        return f"{path}?period={ids['period']}"
    return f"{path}?{ids['slots_query']}" if route.endswith(("/slots", "/coach/sessions")) else path


def body_for(kind: object, ids: dict) -> object:
    if kind == "booking":
        return {
            "engagement_id": ids["engagement_id"],
            "start": ids["booking_start"],
            "focus_competencies": ["delegation"],
            "situation": "Trying to take a slot that is taken.",
        }
    if kind == "price_version":
        next_year = datetime.now(UTC).year + 1
        return {"effective_from": f"{next_year}-01-01", "currency": "EUR", "session_prices": {"SCALE": {"30": 9000}}}
    if kind == "reschedule":
        return {"start": ids["booking_start"]}
    if kind == "cohort":
        return {"program": "GROW", "participant_ids": [ids["person_id"]]}
    if kind == "grow_cohort":
        start = (datetime.now(UTC) + timedelta(days=21)).date().isoformat()
        return {"size": 6, "language": "lb", "start_date": start}
    if kind == "enrol":
        return {"person_id": ids["person_id"]}
    if kind == "attendance":
        return {"attendance": {ids["person_id"]: "attended"}}
    if kind == "workshop":
        start = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0).isoformat()
        return {
            "team_name": "Matrix",
            "participant_ids": [ids["person_id"], ids["employee_id"], "a", "b"],
            "goal": "alignment",
            "length_minutes": 60,
            "start": start,
            "language": "lb",
        }
    if kind == "choice":
        return {"coach_id": ids["matches"]["choose"]["proposals"][0]["coach_id"]}
    if kind == "person":
        return person_row(f"MXN-{uuid.uuid4().hex[:6]}")
    if kind == "import":
        return {"people": [person_row(f"MXI-{uuid.uuid4().hex[:6]}")]}
    if kind == "coach":
        return coach_profile()
    if kind == "roster":
        return {"people": [person_row(f"MXR-{uuid.uuid4().hex[:6]}")]}  # a dry run: nothing is applied
    return kind


def tokens(local_stack, org_id: str, role: str, ids: dict | None = None) -> Api:
    """A token for `role`; with the victim's ids, the employee and coach are real subjects."""
    org = None if role in {"operator", "coach"} else org_id
    person_id = f"matrix-{role}"
    if ids and role == "employee":
        person_id = ids["employee_id"]
    elif ids and role == "coach":
        person_id = ids["engaged_coach_id"]
    return Api(local_stack.url, local_stack.token([role], org_id=org, person_id=person_id))


def assert_denied(response, what: str) -> None:
    assert response.status_code in {403, 404}, f"{what}: {response.status_code} {response.text[:300]}"
    body = response.json()
    assert set(body) == {"error"}, f"{what} leaked data: {body}"


@pytest.mark.parametrize(("method", "route"), list(RULES))
def test_roles_that_should_not_reach_a_route_are_denied(local_stack, world, method, route):
    victim, _, ids = world
    allowed, body = RULES[(method, route)]
    path = path_for(method, route, ids)
    for role in ROLES:
        response = tokens(local_stack, victim.org_id, role, ids).call(method, path, body_for(body, ids))
        if role in allowed:
            ok = response.status_code < 400 or response.status_code in ALLOWED_REFUSALS.get((method, route), set())
            assert ok, f"{role} {method} {path}: {response.status_code} {response.text[:300]}"
        else:
            assert_denied(response, f"{role} {method} {path}")


@pytest.mark.parametrize(("method", "route"), ID_ROUTES)
def test_another_tenant_never_reaches_the_victims_objects(local_stack, world, method, route):
    _victim, attacker, ids = world
    path = path_for(method, route, ids)
    for role in ORG_ROLES:
        body = body_for(RULES[(method, route)][1], ids)
        response = tokens(local_stack, attacker.org_id, role).call(method, path, body)
        assert_denied(response, f"org B {role} {method} {path}")


def test_denied_writes_changed_nothing(local_stack, world, operator):
    victim, attacker, ids = world
    before = victim.admin.call("GET", f"/people/{ids['person_id']}").json()
    for role in ["employee", "leader", "finance"]:
        tokens(local_stack, victim.org_id, role).call("PATCH", f"/people/{ids['person_id']}", {"department": "X"})
    tokens(local_stack, attacker.org_id, "org_admin").call("PATCH", f"/people/{ids['person_id']}", {"department": "Y"})
    after = victim.admin.call("GET", f"/people/{ids['person_id']}").json()
    assert after == before
