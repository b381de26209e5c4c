"""Hardening over HTTP: cursors checked against the listed key, the import's bounds, neutral cohort reasons."""

import base64
import json
import uuid

import pytest
from coaching.adapters import keys

from .helpers import Api, Tenant, coach_profile, make_tenant, person_row

pytestmark = pytest.mark.e2e

LANGUAGE = "kk"  # nobody else in the suite's coach network speaks Kazakh
NOT_ASSIGNABLE = "not assignable in this launch"
CSV_HEADER = "external_hr_id,name,email,level,function,languages,time_zone\n"


def cursor_of(key: dict[str, str]) -> str:
    item = {name: {"S": value} for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(item).encode()).decode().rstrip("=")


def refused_on(response, field: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert [f["field"] for f in error["fields"]] == [field]
    return error["message"]


def approved_coach(operator: Api, **overrides) -> dict:
    profile = coach_profile(
        languages=[LANGUAGE],
        time_zone="Europe/London",
        weekly_availability=[{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)],
        **overrides,
    )
    created = operator.call("POST", "/coaches", profile)
    assert created.status_code == 201, created.text
    coach_id = created.json()["coach_id"]
    approved = operator.call("PUT", f"/coaches/{coach_id}/vetting", {"status": "approved"})
    assert approved.status_code == 200, approved.text
    return approved.json()


# ---------------------------------------------------------------------------- cursors


def test_a_people_cursor_with_a_foreign_pk_is_refused_whatever_its_gsi1pk(tenant_a, tenant_b):
    forged = cursor_of(
        {
            "pk": keys.people_pk(tenant_b.org_id),
            "sk": keys.person_sk(str(uuid.uuid4())),
            "gsi1pk": keys.people_pk(tenant_a.org_id),
            "gsi1sk": keys.person_sk(str(uuid.uuid4())),
        }
    )
    refused_on(tenant_a.admin.call("GET", "/people", params={"cursor": forged}), "cursor")
    foreign = cursor_of({"pk": keys.people_pk(tenant_b.org_id), "sk": keys.person_sk(str(uuid.uuid4()))})
    assert "does not belong" in refused_on(tenant_a.admin.call("GET", "/people", params={"cursor": foreign}), "cursor")


def test_coach_cursors_resume_only_the_listing_they_came_from(operator):
    approved_coach(operator)
    approved_coach(operator)
    by_status = operator.call("GET", "/coaches", params={"status": "approved", "limit": 1}).json()["next_cursor"]
    whole = operator.call("GET", "/coaches", params={"limit": 1}).json()["next_cursor"]
    assert by_status
    assert whole
    # Each resumes its own listing: DynamoDB's own start keys have the shape each check expects.
    assert operator.call("GET", "/coaches", params={"status": "approved", "cursor": by_status}).status_code == 200
    assert operator.call("GET", "/coaches", params={"cursor": whole}).status_code == 200
    # An index cursor on the table listing, a table cursor on the index listing: both refused.
    refused_on(operator.call("GET", "/coaches", params={"cursor": by_status}), "cursor")
    refused_on(operator.call("GET", "/coaches", params={"status": "approved", "cursor": whole}), "cursor")
    # The approved listing's cursor does not page through the pending coaches.
    refused_on(operator.call("GET", "/coaches", params={"status": "pending", "cursor": by_status}), "cursor")


def test_org_cursors_page_the_org_index(operator, tenant_a, tenant_b):
    first = operator.call("GET", "/orgs", params={"limit": 1}).json()
    second = operator.call("GET", "/orgs", params={"limit": 1, "cursor": first["next_cursor"]})
    assert second.status_code == 200, second.text
    assert second.json()["items"] != first["items"]
    table_shaped = cursor_of({"pk": keys.ORGS_INDEX_PK, "sk": keys.org_index_sk(tenant_a.org_id)})
    refused_on(operator.call("GET", "/orgs", params={"cursor": table_shaped}), "cursor")


# ---------------------------------------------------------------------------- import bounds


def test_a_csv_import_of_10001_rows_is_refused_whole_naming_the_cap(tenant_a):
    rows = "".join(f"CAP{n},Person {n},cap{n}@example.com,manager,sales,en,Europe/London\n" for n in range(10_001))
    response = tenant_a.admin.call("POST", "/people/import", raw=CSV_HEADER + rows, content_type="text/csv")
    assert "10,000" in refused_on(response, "body")
    # Nothing was written: the first row is not a person of the org.
    assert tenant_a.admin.call("GET", f"/people/{_person_id(tenant_a, 'CAP0')}").status_code == 404


def test_a_json_import_of_10001_rows_is_refused_naming_the_cap(tenant_a):
    response = tenant_a.admin.call("POST", "/people/import", {"people": [person_row("CAPJ")] * 10_001})
    assert "10,000" in refused_on(response, "people")


def test_an_import_body_over_6_mb_is_refused_before_it_is_parsed(tenant_a):
    padding = "x" * (6 * 1024 * 1024)
    response = tenant_a.admin.call("POST", "/people/import", raw=CSV_HEADER + padding, content_type="text/csv")
    assert "6 MB" in refused_on(response, "body")


def _person_id(tenant: Tenant, hr_id: str) -> str:
    from coaching.ids import person_id_for

    return person_id_for(tenant.org_id, hr_id)


# ---------------------------------------------------------------------------- cohort reasons


@pytest.fixture(scope="module")
def tenant(local_stack, operator) -> Tenant:
    return make_tenant(local_stack, operator, "Hardening org")


def employee(local_stack, tenant: Tenant, languages: list[str]) -> tuple[str, Api]:
    row = person_row(f"H-{uuid.uuid4().hex[:8]}", languages=languages, time_zone="Europe/London")
    created = tenant.admin.call("POST", "/people", row)
    assert created.status_code == 201, created.text
    person_id = created.json()["person_id"]
    token = local_stack.token(["employee"], org_id=tenant.org_id, person_id=person_id)
    return person_id, Api(local_stack.url, token)


def test_an_org_admin_is_not_told_who_is_already_being_coached(local_stack, operator, tenant):
    for _ in range(3):
        approved_coach(operator, capacity=2, programs=["GROW"])
    fired = local_stack.fire("RosterRefresh")
    assert fired["status"] == "succeeded", fired
    coached_id, coached = employee(local_stack, tenant, [LANGUAGE])
    asked = coached.call(
        "POST",
        "/matches",
        {"program": "GROW", "focus_competencies": ["delegation"], "situation": "Leading a merged team next month."},
    )
    assert asked.status_code == 201, asked.text
    chosen = coached.call(
        "POST", f"/matches/{asked.json()['match_id']}/choose", {"coach_id": asked.json()["proposals"][0]["coach_id"]}
    )
    assert chosen.status_code == 201, chosen.text
    newcomers = [employee(local_stack, tenant, [LANGUAGE])[0] for _ in range(2)]
    stranded, _ = employee(local_stack, tenant, ["haw"])  # nobody in the network speaks Hawaiian
    body = {"program": "GROW", "participant_ids": [coached_id, *newcomers, stranded]}

    for commit in (False, True):
        response = tenant.admin.call("POST", "/cohorts/match", body | {"commit": commit})
        assert response.status_code == 200, response.text
        plan = response.json()
        assert sorted(a["person_id"] for a in plan["assignments"]) == sorted(newcomers)
        assert plan["unmatched"] == sorted(
            [{"person_id": coached_id, "reason": NOT_ASSIGNABLE}, {"person_id": stranded, "reason": NOT_ASSIGNABLE}],
            key=lambda u: u["person_id"],
        )
        assert plan["refused"] == []
        for detail in ("active engagement", "speaks", "Hawaiian", "unassigned_by_reason"):
            assert detail not in response.text
