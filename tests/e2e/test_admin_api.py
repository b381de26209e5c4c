"""The admin API over HTTP, through the local API Gateway, on DynamoDB Local."""

import csv
import io
import time

import pytest
import requests
from coaching.adapters import keys

from .helpers import Api, coach_profile, person_row

pytestmark = pytest.mark.e2e


def field_names(response) -> set[str]:
    return {f["field"] for f in response.json()["error"]["fields"]}


def test_health_routes_need_no_token(local_stack):
    for path in [
        "/admin/health",
        "/matching/health",
        "/booking/health",
        "/sessions/health",
        "/metering/health",
        "/reports/health",
        "/webhooks/hr/health",
    ]:
        response = Api(local_stack.url, None).call("GET", path)
        assert response.status_code == 200, path
        assert response.json()["status"] == "ok"


def test_routes_without_a_valid_token_get_401(local_stack):
    assert Api(local_stack.url, None).call("GET", "/orgs").status_code == 401
    assert Api(local_stack.url, "not.a.jwt").call("GET", "/orgs").status_code == 401


def test_operator_creates_and_approves_a_coach_and_the_roster_follows(local_stack, operator):
    created = operator.call("POST", "/coaches", coach_profile())
    assert created.status_code == 201, created.text
    coach = created.json()
    assert coach["vetting_status"] == "pending"

    approved = operator.call(
        "PUT", f"/coaches/{coach['coach_id']}/vetting", {"status": "approved", "reason": "interviewed"}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["vetting_status"] == "approved"
    assert approved.json()["vetting_history"][-1]["actor"] == "operator-e2e"

    listed = operator.call("GET", "/coaches", params={"status": "approved", "limit": 100})
    assert coach["coach_id"] in {c["coach_id"] for c in listed.json()["items"]}

    # The approval went on the bus; the rule delivered it to matching, which rebuilt the roster.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        delivered = [
            d
            for d in local_stack.deliveries()
            if d.get("detail_type") == "CoachVettingChanged" and d.get("status") == "succeeded"
        ]
        if delivered:
            break
        time.sleep(0.2)
    assert delivered, local_stack.deliveries()[-5:]


def test_approval_below_thresholds_is_refused_naming_the_field(operator):
    junior = operator.call("POST", "/coaches", coach_profile(paid_coaching_hours=120)).json()
    refused = operator.call("PUT", f"/coaches/{junior['coach_id']}/vetting", {"status": "approved"})
    assert refused.status_code == 422
    assert field_names(refused) == {"paid_coaching_hours"}
    assert operator.call("GET", f"/coaches/{junior['coach_id']}").json()["vetting_status"] == "pending"


def test_schedule_can_be_fired_now(local_stack):
    fired = local_stack.fire("RosterRefresh")
    assert fired["status"] == "succeeded", fired
    assert fired["result"]["roster_version"] >= 1
    approved = Api(local_stack.url, local_stack.token(["operator"], person_id="op")).call(
        "GET", "/coaches", params={"status": "approved", "limit": 100}
    )
    assert fired["result"]["coach_count"] == len(approved.json()["items"])


def test_org_admin_imports_1000_people_idempotently(tenant_a):
    rows = [person_row(f"IMP{i:04d}", manager_external_hr_id="IMP0000" if i else None) for i in range(1000)]
    for row in rows:
        if row["manager_external_hr_id"] is None:
            del row["manager_external_hr_id"]
    first = tenant_a.admin.call("POST", "/people/import", {"people": rows})
    assert first.status_code == 200, first.text
    assert first.json() | {"errors": []} == {
        "received": 1000,
        "created": 1000,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "errors": [],
    }

    again = tenant_a.admin.call("POST", "/people/import", {"people": rows})
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 1000)

    seen, cursor = set(), None
    while True:
        page = tenant_a.admin.call("GET", "/people", params={"limit": 100, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        seen.update(p["external_hr_id"] for p in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert {f"IMP{i:04d}" for i in range(1000)} <= seen


def test_csv_import_reports_each_bad_row_and_keeps_the_good_ones(tenant_a):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["external_hr_id", "name", "email", "level", "function", "languages", "time_zone", "manager_external_hr_id"]
    )
    writer.writerow(["CSV1", "Ana", "ana@example.com", "manager", "sales", "es;en", "Europe/Madrid", ""])
    writer.writerow(["CSV2", "Ben", "not-an-email", "manager", "sales", "en", "Europe/London", ""])
    writer.writerow(["CSV3", "Cy", "cy@example.com", "wizard", "sales", "en", "Nowhere/Land", ""])
    writer.writerow(["CSV4", "Di", "di@example.com", "manager", "sales", "en", "Europe/London", "NOBODY"])
    writer.writerow(["CSV1", "Ana again", "ana@example.com", "manager", "sales", "es", "Europe/Madrid", ""])
    response = tenant_a.admin.call("POST", "/people/import", raw=buffer.getvalue(), content_type="text/csv")
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["created"] + report["updated"] + report["unchanged"], report["failed"]) == (1, 4)
    by_row = {e["row"]: {f["field"] for f in e["errors"]} for e in report["errors"]}
    assert by_row == {2: {"email"}, 3: {"level", "time_zone"}, 4: {"manager_external_hr_id"}, 5: {"external_hr_id"}}


def test_import_over_the_row_limit_is_refused_whole(tenant_a):
    response = tenant_a.admin.call("POST", "/people/import", {"people": [{}] * 10_001})
    assert response.status_code == 422
    assert "people" in field_names(response)


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ("{not json", {"body"}),
        ('{"name": 42, "time_zone": "Europe/Berlin", "currency": "EUR", "industry": "retail"}', {"name"}),
        (
            '{"name": "Acme", "time_zone": "Europe/Berlin", "currency": "EUR", "industry": "retail", "color": "red"}',
            {"color"},
        ),
        (
            '{"name": "Acme", "time_zone": "Europe/Berlin", "currency": "XXX", "industry": "retail",'
            ' "min_reporting_group_size": 2}',
            {"currency", "min_reporting_group_size"},
        ),
        ("[1, 2]", {"body"}),
    ],
)
def test_malformed_bodies_get_422_naming_the_fields(operator, raw, fields):
    response = operator.call("POST", "/orgs", raw=raw)
    assert response.status_code == 422, response.text
    assert fields <= field_names(response) or field_names(response) == fields


def test_wrong_query_types_and_bad_cursors_name_the_parameter(tenant_a, tenant_b):
    assert field_names(tenant_a.admin.call("GET", "/people", params={"limit": "many"})) == {"limit"}
    assert field_names(tenant_a.admin.call("GET", "/people", params={"limit": 0})) == {"limit"}
    assert field_names(tenant_a.admin.call("GET", "/people", params={"cursor": "%%%"})) == {"cursor"}
    tenant_a.admin.call("POST", "/people/import", {"people": [person_row("CUR1"), person_row("CUR2")]})
    cursor = tenant_a.admin.call("GET", "/people", params={"limit": 1}).json()["next_cursor"]
    # A cursor from org A's listing does not page through org B's partition.
    foreign = tenant_b.admin.call("GET", "/people", params={"cursor": cursor})
    assert foreign.status_code == 422
    assert field_names(foreign) == {"cursor"}


def test_unknown_ids_give_404(operator, tenant_a):
    assert operator.call("GET", "/coaches/00000000-0000-0000-0000-000000000000").status_code == 404
    assert operator.call("GET", "/orgs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert tenant_a.admin.call("GET", "/people/00000000-0000-0000-0000-000000000000").status_code == 404
    assert (
        operator.call(
            "PUT", "/coaches/00000000-0000-0000-0000-000000000000/vetting", {"status": "approved"}
        ).status_code
        == 404
    )


def test_people_crud_and_manager_rules(tenant_a):
    boss = tenant_a.admin.call("POST", "/people", person_row("CRUD-BOSS", level="manager"))
    assert boss.status_code == 201, boss.text
    boss_id = boss.json()["person_id"]
    report = tenant_a.admin.call("POST", "/people", person_row("CRUD-1", manager_id=boss_id))
    assert report.status_code == 201, report.text
    duplicate = tenant_a.admin.call("POST", "/people", person_row("CRUD-1"))
    assert duplicate.status_code == 409
    person_id = report.json()["person_id"]
    promoted = tenant_a.admin.call("PATCH", f"/people/{person_id}", {"level": "manager"})
    assert promoted.status_code == 200
    assert promoted.json()["level"] == "manager"
    assert promoted.json()["external_hr_id"] == "CRUD-1"
    self_managed = tenant_a.admin.call("PATCH", f"/people/{person_id}", {"manager_id": person_id})
    assert self_managed.status_code == 422
    assert field_names(self_managed) == {"manager_id"}
    immutable = tenant_a.admin.call("PATCH", f"/people/{person_id}", {"external_hr_id": "NEW"})
    assert immutable.status_code == 422
    assert field_names(immutable) == {"external_hr_id"}


def test_framework_default_and_calibration(local_stack, tenant_a):
    default = tenant_a.admin.call("GET", f"/orgs/{tenant_a.org_id}/framework").json()
    assert default["framework_id"] == "default"
    calibrated = {
        "name": "Org A leadership",
        "competencies": [
            {"id": "giving-feedback", "name": "Feedback"},
            {"id": "org-a-ownership", "name": "Ownership", "maps_to": "delegation"},
            {"id": "decision-making", "name": "Decisions"},
        ],
    }
    saved = tenant_a.admin.call("PUT", f"/orgs/{tenant_a.org_id}/framework", calibrated)
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1
    unanchored = calibrated | {"competencies": [*calibrated["competencies"], {"id": "org-a-craft", "name": "Craft"}]}
    refused = tenant_a.admin.call("PUT", f"/orgs/{tenant_a.org_id}/framework", unanchored)
    assert refused.status_code == 422
    assert field_names(refused) == {"competencies[3].maps_to"}
    employee = Api(local_stack.url, local_stack.token(["employee"], org_id=tenant_a.org_id, person_id="p-e2e"))
    assert employee.call("GET", f"/orgs/{tenant_a.org_id}/framework").json()["name"] == "Org A leadership"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"name": "Acme", "time_zone": "Europe", "currency": "EUR", "industry": "retail"}', "time_zone"),
        ('{"name": "Acme", "time_zone": "' + "A" * 300 + '", "currency": "EUR", "industry": "retail"}', "time_zone"),
        ("[" * 2000 + "]" * 2000, "body"),
    ],
)
def test_hostile_org_bodies_get_422_not_5xx(operator, raw, field):
    response = operator.call("POST", "/orgs", raw=raw)
    assert response.status_code == 422, response.text
    assert field in field_names(response)


def test_invalid_utf8_and_odd_csv_get_422_and_a_bom_is_harmless(local_stack, tenant_a):
    headers = {"Authorization": f"Bearer {tenant_a.admin.token}", "Content-Type": "application/json"}
    broken = requests.post(f"{local_stack.url}/orgs", data=b'{"name": "\xff\xfe"}', headers=headers, timeout=30)
    assert broken.status_code in {403, 422}, broken.text  # org_admin may not create orgs; never a 5xx
    bom = (
        "\ufeffexternal_hr_id,name,email,level,function,languages,time_zone\n"
        "BOM1,Bo,bo@example.com,manager,sales,en,UTC\n"
    )
    imported = tenant_a.admin.call("POST", "/people/import", raw=bom, content_type="text/csv")
    assert imported.status_code == 200, imported.text
    assert imported.json()["failed"] == 0
    huge = "external_hr_id,name\nX1," + "a" * 200_000 + "\n"
    refused = tenant_a.admin.call("POST", "/people/import", raw=huge, content_type="text/csv")
    assert refused.status_code == 422, refused.text
    headers["Content-Type"] = "text/csv"
    binary = requests.post(
        f"{local_stack.url}/people/import", data=b"external_hr_id\n\xff\xfe\n", headers=headers, timeout=30
    )
    assert binary.status_code == 422, binary.text


def test_crafted_cursors_and_overlong_ids_are_refused(tenant_a, operator):
    import base64
    import json as jsonlib

    def cursor(key: object) -> str:
        return base64.urlsafe_b64encode(jsonlib.dumps(key).encode()).decode().rstrip("=")

    pk = {"S": keys.people_pk(tenant_a.org_id)}
    for key in [{"pk": pk}, {"pk": pk, "sk": {"N": "1"}}, {"pk": pk, "sk": {"S": "x"}, "extra": {"S": "y"}}]:
        response = tenant_a.admin.call("GET", "/people", params={"cursor": cursor(key)})
        assert response.status_code == 422, response.text
        assert field_names(response) == {"cursor"}
    deep = base64.urlsafe_b64encode(b"[" * 3000).decode()
    assert tenant_a.admin.call("GET", "/people", params={"cursor": deep}).status_code == 422
    long_manager = tenant_a.admin.call("POST", "/people", person_row("LONGMGR", manager_id="m" * 2000))
    assert long_manager.status_code == 422
    assert field_names(long_manager) == {"manager_id"}
    offset = coach_profile(weekly_availability=[{"weekday": 1, "start": "09:00", "end": "17:00+01:00"}])
    refused = operator.call("POST", "/coaches", offset)
    assert refused.status_code == 422, refused.text
    # The wall-time pattern names the exact field: an offset is not an HH:MM wall time.
    assert field_names(refused) == {"weekly_availability[0].end"}


@pytest.mark.parametrize("field", ["name", "languages", "capacity"])
def test_patching_a_coach_with_null_for_a_required_field_is_422_naming_it(operator, field):
    coach = operator.call("POST", "/coaches", coach_profile()).json()
    refused = operator.call("PATCH", f"/coaches/{coach['coach_id']}", {field: None})
    assert refused.status_code == 422, refused.text
    assert field_names(refused) == {field}
    assert operator.call("GET", f"/coaches/{coach['coach_id']}").json()[field] == coach[field]


@pytest.mark.parametrize("field", ["name", "currency", "min_reporting_group_size"])
def test_patching_an_org_with_null_for_a_required_field_is_422_naming_it(operator, field):
    created = operator.call(
        "POST", "/orgs", {"name": "Nulls", "time_zone": "Europe/Berlin", "currency": "EUR", "industry": "retail"}
    ).json()
    refused = operator.call("PATCH", f"/orgs/{created['org_id']}", {field: None})
    assert refused.status_code == 422, refused.text
    assert field_names(refused) == {field}
    assert operator.call("GET", f"/orgs/{created['org_id']}").json()[field] == created[field]
    # null where the setting is optional still means "the platform's default".
    reset = operator.call("PATCH", f"/orgs/{created['org_id']}", {"matching": None})
    assert reset.status_code == 200, reset.text
    assert reset.json()["matching"] is None


def test_patching_a_person_with_null_for_a_required_field_is_422_naming_it(tenant_a):
    person = tenant_a.admin.call("POST", "/people", person_row("NULL-1")).json()
    refused = tenant_a.admin.call("PATCH", f"/people/{person['person_id']}", {"email": None})
    assert refused.status_code == 422, refused.text
    assert field_names(refused) == {"email"}
