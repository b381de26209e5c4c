"""Admin use cases: orgs, people, coaches and competency frameworks.

Every function takes the caller first and checks authorisation on the object itself, not
only on the route: a tenant's id always comes from the token, never from the request.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from coaching.adapters.dynamo import (
    TRANSACTION_LIMIT,
    CoachRepository,
    OrgRepository,
    Page,
    PersonRepository,
    TransactWriteError,
    backoff,
    is_transaction_conflict,
)
from coaching.auth import Principal, Role
from coaching.config import settings
from coaching.domain.coaches import (
    Coach,
    CoachCreate,
    CoachUpdate,
    VettingDecision,
    VettingEntry,
    VettingStatus,
    check_vetting_thresholds,
)
from coaching.domain.common import DeferredModel, utc_now
from coaching.domain.competencies import Framework, check_calibration, default_framework
from coaching.domain.errors import Conflict, InvalidInput, NotFound
from coaching.domain.orgs import Org, OrgCreate, OrgUpdate
from coaching.domain.people import (
    MAX_IMPORT_ROWS,
    ImportRow,
    Person,
    PersonCreate,
    PersonUpdate,
    RowError,
    field_errors,
)
from coaching.events import DomainEvent
from coaching.ids import new_id, person_id_for

EVENT_SOURCE = "coaching.admin"
_IMPORT_WORKERS = 4
_IMPORT_ATTEMPTS = 6


@dataclass(slots=True)
class AdminContext:
    orgs: OrgRepository = field(default_factory=OrgRepository)
    people: PersonRepository = field(default_factory=PersonRepository)
    coaches: CoachRepository = field(default_factory=CoachRepository)


def _apply[ModelT: BaseModel](current: ModelT, changes: BaseModel, **extra: Any) -> ModelT:
    """Apply a partial update: only the fields the caller sent, then re-validate."""
    data = current.model_dump() | changes.model_dump(exclude_unset=True) | extra
    return type(current).model_validate(data)


# ------------------------------------------------------------------ orgs


def create_org(caller: Principal, data: OrgCreate, ctx: AdminContext) -> Org:
    caller.require(Role.OPERATOR)
    now = utc_now()
    org = Org(org_id=new_id(), created_at=now, updated_at=now, **data.model_dump())
    ctx.orgs.add(org)
    return org


def _visible_org(caller: Principal, org_id: str, ctx: AdminContext) -> Org:
    if not caller.has(Role.OPERATOR):
        # Any member may read their own org (time zone, framework); nobody reads another's.
        caller.require_same_org(org_id, *Role)
    org = ctx.orgs.get(org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    return org


def get_org(caller: Principal, org_id: str, ctx: AdminContext) -> Org:
    return _visible_org(caller, org_id, ctx)


def list_orgs(caller: Principal, limit: int, cursor: str | None, ctx: AdminContext) -> Page[Org]:
    caller.require(Role.OPERATOR)
    return ctx.orgs.list(limit=limit, cursor=cursor)


def update_org(caller: Principal, org_id: str, changes: OrgUpdate, ctx: AdminContext) -> Org:
    caller.require(Role.OPERATOR)
    org = ctx.orgs.modify(org_id, lambda current: _apply(current, changes, updated_at=utc_now()))
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    return org


def get_framework(caller: Principal, org_id: str, ctx: AdminContext) -> Framework:
    return _visible_org(caller, org_id, ctx).framework or default_framework()


def put_framework(caller: Principal, org_id: str, framework: Framework, ctx: AdminContext) -> Framework:
    if not caller.has(Role.OPERATOR):
        caller.require_same_org(org_id, Role.ORG_ADMIN)
    problems = check_calibration(framework)
    if problems:
        field_name, message = problems[0]
        raise InvalidInput(
            message,
            field=field_name,
            details={"problems": [dict(zip(("field", "message"), p, strict=True)) for p in problems]},
        )

    def calibrate(current: Org) -> Org:
        previous = current.framework.version if current.framework else 0
        calibrated = framework.model_copy(update={"framework_id": f"org-{org_id}", "version": previous + 1})
        return current.model_copy(update={"framework": calibrated, "updated_at": utc_now()})

    org = ctx.orgs.modify(org_id, calibrate)
    if org is None or org.framework is None:
        raise NotFound(f"organisation {org_id} not found")
    return org.framework


# ------------------------------------------------------------------ people


def _require_org_exists(org_id: str, ctx: AdminContext) -> None:
    if ctx.orgs.get(org_id) is None:
        raise NotFound(f"organisation {org_id} not found")


def _check_manager(org_id: str, person_id: str, manager_id: str | None, ctx: AdminContext) -> None:
    if manager_id is None:
        return
    if manager_id == person_id:
        raise InvalidInput("a person cannot be their own manager", field="manager_id")
    if ctx.people.get(org_id, manager_id) is None:
        raise InvalidInput(f"manager {manager_id} is not a person in this organisation", field="manager_id")


def create_person(caller: Principal, data: PersonCreate, ctx: AdminContext) -> Person:
    org_id = caller.require_org(Role.ORG_ADMIN)
    _require_org_exists(org_id, ctx)
    person_id = person_id_for(org_id, data.external_hr_id)
    _check_manager(org_id, person_id, data.manager_id, ctx)
    now = utc_now()
    person = Person(person_id=person_id, org_id=org_id, created_at=now, updated_at=now, **data.model_dump())
    ctx.people.add(person)
    return person


def get_person(caller: Principal, person_id: str, ctx: AdminContext) -> Person:
    # People read their own record; org admins read their org's. Leaders never see individuals.
    org_id = caller.require_org(*Role)
    if person_id != caller.person_id:
        caller.require(Role.ORG_ADMIN)
    person = ctx.people.get(org_id, person_id)
    if person is None:
        raise NotFound(f"person {person_id} not found")
    return person


def list_people(caller: Principal, limit: int, cursor: str | None, ctx: AdminContext) -> Page[Person]:
    org_id = caller.require_org(Role.ORG_ADMIN)
    return ctx.people.list(org_id, limit=limit, cursor=cursor)


def update_person(caller: Principal, person_id: str, changes: PersonUpdate, ctx: AdminContext) -> Person:
    org_id = caller.require_org(Role.ORG_ADMIN)
    if "manager_id" in changes.model_fields_set:
        _check_manager(org_id, person_id, changes.manager_id, ctx)
    person = ctx.people.modify(org_id, person_id, lambda current: _apply(current, changes, updated_at=utc_now()))
    if person is None:
        raise NotFound(f"person {person_id} not found")
    return person


class ImportReport(DeferredModel):
    received: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = []


def import_people(caller: Principal, rows: list[dict[str, Any]], ctx: AdminContext) -> ImportReport:
    """Create or update people by external HR id. Re-running the same file changes nothing.

    Invalid rows are reported one by one; valid rows are written in conditional
    transactions of up to 100, so no row is half-written and no concurrent edit is lost.
    """
    org_id = caller.require_org(Role.ORG_ADMIN)
    if len(rows) > MAX_IMPORT_ROWS:
        raise InvalidInput(f"an import takes at most {MAX_IMPORT_ROWS} rows, got {len(rows)}", field="people")
    _require_org_exists(org_id, ctx)
    report = ImportReport(received=len(rows))
    valid: dict[str, tuple[int, ImportRow]] = {}  # person id -> (row number, row)
    for number, raw in enumerate(rows, start=1):
        problems, parsed = _parse_row(raw, org_id)
        if parsed is not None and person_id_for(org_id, parsed.external_hr_id) in valid:
            problems.append({"field": "external_hr_id", "message": "appears more than once in this import"})
        if problems or parsed is None:
            report.errors.append(RowError(row=number, external_hr_id=_hr_id_of(raw), errors=problems))
            continue
        valid[person_id_for(org_id, parsed.external_hr_id)] = (number, parsed)

    _check_import_managers(org_id, valid, report, ctx)
    chunks = [list(valid.items())[i : i + TRANSACTION_LIMIT] for i in range(0, len(valid), TRANSACTION_LIMIT)]
    with ThreadPoolExecutor(max_workers=_IMPORT_WORKERS) as pool:
        for created, updated, unchanged in pool.map(lambda chunk: _write_chunk(org_id, chunk, ctx), chunks):
            report.created += created
            report.updated += updated
            report.unchanged += unchanged
    report.errors.sort(key=lambda error: error.row)
    report.failed = len(report.errors)
    return report


def _hr_id_of(raw: Any) -> str | None:
    value = raw.get("external_hr_id") if isinstance(raw, dict) else None
    return str(value)[:128] if value is not None else None


def _parse_row(raw: Any, org_id: str) -> tuple[list[dict[str, str]], ImportRow | None]:
    if not isinstance(raw, dict):
        return [{"field": "row", "message": "each row must be an object"}], None
    try:
        row = ImportRow.model_validate(raw)
    except ValidationError as exc:
        return field_errors(exc), None
    if row.manager_id and row.manager_external_hr_id:
        return [{"field": "manager_id", "message": "give manager_id or manager_external_hr_id, not both"}], None
    return [], row


def _manager_of(org_id: str, row: ImportRow) -> str | None:
    if row.manager_external_hr_id:
        return person_id_for(org_id, row.manager_external_hr_id)
    return row.manager_id


def _check_import_managers(
    org_id: str, valid: dict[str, tuple[int, ImportRow]], report: ImportReport, ctx: AdminContext
) -> None:
    """A manager must be in the same import or already in the org."""
    outside = {m for pid, (_, row) in valid.items() if (m := _manager_of(org_id, row)) and m not in valid}
    existing = set(ctx.people.get_many(org_id, outside)) if outside else set()
    for person_id, (number, row) in list(valid.items()):
        manager = _manager_of(org_id, row)
        problem = None
        if manager == person_id:
            problem = "a person cannot be their own manager"
        elif manager and manager not in valid and manager not in existing:
            problem = "names a manager who is neither in this import nor in the organisation"
        if problem:
            field_name = "manager_external_hr_id" if row.manager_external_hr_id else "manager_id"
            report.errors.append(
                RowError(
                    row=number, external_hr_id=row.external_hr_id, errors=[{"field": field_name, "message": problem}]
                )
            )
            del valid[person_id]


def _write_chunk(
    org_id: str, chunk: list[tuple[str, tuple[int, ImportRow]]], ctx: AdminContext
) -> tuple[int, int, int]:
    for attempt in range(_IMPORT_ATTEMPTS):
        current = ctx.people.get_many(org_id, [person_id for person_id, _ in chunk])
        now = utc_now()
        changes: list[tuple[Person, int | None]] = []
        created = updated = unchanged = 0
        for person_id, (_, row) in chunk:
            fields = row.model_dump(exclude={"manager_external_hr_id", "manager_id"})
            existing = current.get(person_id)
            person = Person(
                person_id=person_id,
                org_id=org_id,
                manager_id=_manager_of(org_id, row),
                created_at=existing[0].created_at if existing else now,
                updated_at=now,
                **fields,
            )
            if existing is None:
                changes.append((person, None))
                created += 1
            elif existing[0].same_fields(person):
                unchanged += 1
            else:
                changes.append((person, existing[1]))
                updated += 1
        if not changes:
            return created, updated, unchanged
        try:
            ctx.people.write_batch(changes)
        except TransactWriteError as exc:
            if is_transaction_conflict(exc):
                backoff(attempt)
                continue  # a row changed since we read it: read again and recompute
            raise
        return created, updated, unchanged
    raise Conflict("people in this import are being changed concurrently; run the import again")


# ------------------------------------------------------------------ coaches


def _coach_event(kind: str, coach: Coach, **extra: Any) -> DomainEvent:
    detail = {"coach_id": coach.coach_id, "vetting_status": coach.vetting_status.value, **extra}
    return DomainEvent(source=EVENT_SOURCE, detail_type=kind, detail=detail)


def create_coach(caller: Principal, data: CoachCreate, ctx: AdminContext) -> Coach:
    caller.require(Role.OPERATOR)
    now = utc_now()
    coach = Coach(coach_id=new_id(), created_at=now, updated_at=now, **data.model_dump())
    ctx.coaches.add(coach)
    return coach


def get_coach(caller: Principal, coach_id: str, ctx: AdminContext) -> Coach:
    if not (caller.has(Role.COACH) and caller.person_id == coach_id):
        caller.require(Role.OPERATOR)
    coach = ctx.coaches.get(coach_id)
    if coach is None:
        raise NotFound(f"coach {coach_id} not found")
    return coach


def list_coaches(
    caller: Principal, status: VettingStatus | None, limit: int, cursor: str | None, ctx: AdminContext
) -> Page[Coach]:
    caller.require(Role.OPERATOR)
    return ctx.coaches.list(status=status.value if status else None, limit=limit, cursor=cursor)


def update_coach(
    caller: Principal, coach_id: str, changes: CoachUpdate, ctx: AdminContext
) -> tuple[Coach, list[DomainEvent]]:
    caller.require(Role.OPERATOR)
    config = settings()

    def change(current: Coach) -> Coach:
        updated = _apply(current, changes, updated_at=utc_now())
        if updated.vetting_status is VettingStatus.APPROVED:
            # The approval rule is an invariant, not a one-off gate.
            check_vetting_thresholds(
                updated,
                min_years=config.vetting_min_operating_years,
                min_hours=config.vetting_min_paid_coaching_hours,
            )
        return updated

    coach = ctx.coaches.modify(coach_id, change)
    if coach is None:
        raise NotFound(f"coach {coach_id} not found")
    events = [_coach_event("CoachProfileUpdated", coach)] if coach.vetting_status is VettingStatus.APPROVED else []
    return coach, events


def set_vetting(
    caller: Principal, coach_id: str, decision: VettingDecision, ctx: AdminContext
) -> tuple[Coach, list[DomainEvent]]:
    caller.require(Role.OPERATOR)
    config = settings()
    previous: list[VettingStatus] = []

    def change(current: Coach) -> Coach:
        previous[:] = [current.vetting_status]
        if decision.status is VettingStatus.APPROVED:
            check_vetting_thresholds(
                current,
                min_years=config.vetting_min_operating_years,
                min_hours=config.vetting_min_paid_coaching_hours,
            )
        now = utc_now()
        entry = VettingEntry(status=decision.status, reason=decision.reason, actor=caller.person_id, at=now)
        return current.model_copy(
            update={
                "vetting_status": decision.status,
                "vetting_history": [*current.vetting_history, entry],
                "updated_at": now,
            }
        )

    coach = ctx.coaches.modify(coach_id, change)
    if coach is None:
        raise NotFound(f"coach {coach_id} not found")
    changed = previous and previous[0] is not coach.vetting_status
    event = _coach_event("CoachVettingChanged", coach, previous_status=previous[0].value if previous else None)
    return coach, [event] if changed else []
