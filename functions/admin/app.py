"""Admin API: orgs, people, coaches and competency frameworks."""

import io
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.dynamo import admin_ports
from coaching.adapters.hr_store import secret_vault_from_environment
from coaching.api import Caller, PageCursor, PageLimit, PathId, add_health_route, created, http_entry, rest_resolver
from coaching.domain.coaches import Coach, CoachCreate, CoachUpdate, VettingDecision, VettingStatus
from coaching.domain.competencies import Framework
from coaching.domain.errors import InvalidInput
from coaching.domain.hr import RotatedSecret, RotateSecret
from coaching.domain.orgs import Org, OrgCreate, OrgUpdate
from coaching.domain.people import MAX_IMPORT_ROWS, Person, PersonCreate, PersonUpdate, rows_from_csv
from coaching.services import admin
from coaching.services.admin import AdminContext, ImportReport
from pydantic import BaseModel, Field, ValidationError

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
# The composition root: the admin service's ports on the real tables.
ctx = AdminContext(**admin_ports(), hr_secrets=secret_vault_from_environment())


class OrgPage(BaseModel):
    items: list[Org]
    next_cursor: str | None = None


class PersonPage(BaseModel):
    items: list[Person]
    next_cursor: str | None = None


class CoachPage(BaseModel):
    items: list[Coach]
    next_cursor: str | None = None


class PeopleImport(BaseModel):
    people: Annotated[list[dict[str, Any]], Field(max_length=MAX_IMPORT_ROWS)]


add_health_route(app, "/admin/health", service="admin")


# ------------------------------------------------------------------ orgs


@app.post("/orgs", summary="Create an organisation (operator)", tags=["orgs"])
def create_org(caller: Caller, body: Annotated[OrgCreate, Body()]) -> Response[Org]:
    return created(admin.create_org(caller, body, ctx))


@app.get("/orgs", summary="List organisations (operator)", tags=["orgs"])
def list_orgs(caller: Caller, limit: PageLimit = 50, cursor: PageCursor = None) -> OrgPage:
    page = admin.list_orgs(caller, limit, cursor, ctx)
    return OrgPage(items=page.items, next_cursor=page.next_cursor)


@app.get("/orgs/<org_id>", summary="Get an organisation", tags=["orgs"])
def get_org(caller: Caller, org_id: PathId) -> Org:
    return admin.get_org(caller, org_id, ctx)


@app.patch("/orgs/<org_id>", summary="Update an organisation (operator)", tags=["orgs"])
def update_org(caller: Caller, org_id: PathId, body: Annotated[OrgUpdate, Body()]) -> Org:
    return admin.update_org(caller, org_id, body, ctx)


@app.post(
    "/orgs/<org_id>/hr-webhook-secret/rotate",
    summary="Rotate the org's HR webhook secret (org_admin); the new secret is shown once",
    tags=["orgs"],
)
def rotate_hr_webhook_secret(caller: Caller, org_id: PathId, body: Annotated[RotateSecret, Body()]) -> RotatedSecret:
    return created(admin.rotate_hr_webhook_secret(caller, org_id, body, ctx))


@app.get("/orgs/<org_id>/framework", summary="The org's competency framework", tags=["orgs"])
def get_framework(caller: Caller, org_id: PathId) -> Framework:
    return admin.get_framework(caller, org_id, ctx)


@app.put("/orgs/<org_id>/framework", summary="Calibrate the org's competency framework", tags=["orgs"])
def put_framework(caller: Caller, org_id: PathId, body: Annotated[Framework, Body()]) -> Framework:
    return admin.put_framework(caller, org_id, body, ctx)


# ------------------------------------------------------------------ people


@app.post("/people", summary="Create a person in the caller's org (org_admin)", tags=["people"])
def create_person(caller: Caller, body: Annotated[PersonCreate, Body()]) -> Response[Person]:
    return created(admin.create_person(caller, body, ctx))


@app.get("/people", summary="List people in the caller's org (org_admin)", tags=["people"])
def list_people(caller: Caller, limit: PageLimit = 50, cursor: PageCursor = None) -> PersonPage:
    page = admin.list_people(caller, limit, cursor, ctx)
    return PersonPage(items=page.items, next_cursor=page.next_cursor)


@app.post(
    "/people/import",
    summary="Bulk import up to 10,000 people (org_admin)",
    description="Idempotent on external_hr_id. Send JSON {people: [...]} or text/csv with a header row; "
    "list cells (languages) separate values with ';'. The report lists each rejected row and why.",
    tags=["people"],
)
def import_people(caller: Caller) -> ImportReport:
    # Two media types share this route, so the body is parsed here rather than by the resolver.
    # Bounds, checked before any row is validated: the body is at most 6 MB (Lambda's payload limit,
    # admin.MAX_IMPORT_BODY_CHARS), and both paths refuse row 10,001 whole (422) without reading on:
    # a streaming csv.reader counts the CSV's rows first, and pydantic stops validating the JSON list
    # at the item past its max_length.
    event = app.current_event
    admin.check_import_body(event.body or "")
    content_type = (event.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    if content_type == "text/csv":
        text = event.decoded_body or ""
        admin.check_csv_rows(io.StringIO(text.removeprefix("\ufeff")))
        rows = rows_from_csv(text)
    elif content_type == "application/json":
        try:
            rows = PeopleImport.model_validate_json(event.decoded_body or "").people
        except ValueError as exc:
            if isinstance(exc, ValidationError) and any(
                error["type"] == "too_long" and error["loc"] == ("people",) for error in exc.errors()
            ):
                raise admin.too_many_rows("people") from exc
            raise InvalidInput(f'the body must be JSON {{"people": [...]}}: {exc}', field="people") from exc
    else:
        raise InvalidInput("send application/json or text/csv", field="content-type")
    report = admin.import_people(caller, rows, ctx)
    metrics.add_metric(name="PeopleImported", unit=MetricUnit.Count, value=report.created + report.updated)
    return report


@app.get("/people/<person_id>", summary="Get a person", tags=["people"])
def get_person(caller: Caller, person_id: PathId) -> Person:
    return admin.get_person(caller, person_id, ctx)


@app.patch("/people/<person_id>", summary="Update a person (org_admin)", tags=["people"])
def update_person(caller: Caller, person_id: PathId, body: Annotated[PersonUpdate, Body()]) -> Person:
    return admin.update_person(caller, person_id, body, ctx)


# ------------------------------------------------------------------ coaches


@app.post("/coaches", summary="Add a coach to the network, pending vetting (operator)", tags=["coaches"])
def create_coach(caller: Caller, body: Annotated[CoachCreate, Body()]) -> Response[Coach]:
    return created(admin.create_coach(caller, body, ctx))


@app.get("/coaches", summary="List coaches (operator)", tags=["coaches"])
def list_coaches(
    caller: Caller,
    status: Annotated[VettingStatus | None, Query(description="Only coaches with this vetting status.")] = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> CoachPage:
    page = admin.list_coaches(caller, status, limit, cursor, ctx)
    return CoachPage(items=page.items, next_cursor=page.next_cursor)


@app.get("/coaches/<coach_id>", summary="Get a coach (operator, or the coach)", tags=["coaches"])
def get_coach(caller: Caller, coach_id: PathId) -> Coach:
    return admin.get_coach(caller, coach_id, ctx)


@app.patch("/coaches/<coach_id>", summary="Update a coach's profile (operator)", tags=["coaches"])
def update_coach(caller: Caller, coach_id: PathId, body: Annotated[CoachUpdate, Body()]) -> Coach:
    return admin.update_coach(caller, coach_id, body, ctx)


@app.put(
    "/coaches/<coach_id>/vetting",
    summary="Approve, suspend or return a coach to pending (operator)",
    description="Approval needs the configured operating years and paid coaching hours.",
    tags=["coaches"],
)
def set_vetting(caller: Caller, coach_id: PathId, body: Annotated[VettingDecision, Body()]) -> Coach:
    coach = admin.set_vetting(caller, coach_id, body, ctx)
    if coach.last_decision_changed_status:
        metrics.add_metric(name=f"Coach{coach.vetting_status.value.title()}", unit=MetricUnit.Count, value=1)
    return coach


lambda_handler = http_entry(app, logger=logger, tracer=tracer, metrics=metrics)
