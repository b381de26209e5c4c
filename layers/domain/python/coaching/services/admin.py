"""Admin use cases: orgs, people, coaches and competency frameworks.

Every function takes the caller first and checks authorisation on the object itself, not
only on the route: a tenant's id always comes from the token, never from the request.
"""

from __future__ import annotations

import csv
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from coaching.auth import Principal, Role
from coaching.domain.coaches import Coach, CoachCreate, CoachUpdate, VettingDecision, VettingStatus, VettingThresholds
from coaching.domain.common import Clock, DeferredModel
from coaching.domain.competencies import Framework, check_calibration, default_framework
from coaching.domain.errors import Conflict, InvalidInput, NotFound
from coaching.domain.events import CoachProfileUpdated, CoachVettingChanged, Event
from coaching.domain.hr import OrgSecrets, RotatedSecret, RotateSecret, new_webhook_secret
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
from coaching.ids import new_id, person_id_for

_IMPORT_WORKERS = 4
_IMPORT_ATTEMPTS = 6
_IMPORT_CHUNK = 100  # rows per People.write_batch: one transaction of at most 100 items
_BACKOFF_SECONDS = 0.01
# The largest import body accepted, in characters of the body as received. On AWS nothing larger
# arrives: a synchronous Lambda invocation's payload (the whole event) is at most 6 MB, so this bound
# only makes that limit explicit, and holds wherever else the handler runs (the local stack has none).
# 10,000 typical rows take about 1.5 MB.
MAX_IMPORT_BODY_CHARS = 6 * 1024 * 1024


# ------------------------------------------------------------------ ports


class Listing[ItemT](Protocol):
    """One page of a listing and the cursor of the next (None on the last page)."""

    @property
    def items(self) -> list[ItemT]: ...

    @property
    def next_cursor(self) -> str | None: ...


class Orgs(Protocol):
    def add(self, org: Org) -> None: ...

    def get(self, org_id: str) -> Org | None: ...

    def modify(self, org_id: str, change: Callable[[Org], Org]) -> Org | None: ...

    def list(self, *, limit: int, cursor: str | None) -> Listing[Org]: ...


class People(Protocol):
    def add(self, person: Person) -> None: ...

    def get(self, org_id: str, person_id: str) -> Person | None: ...

    def modify(self, org_id: str, person_id: str, change: Callable[[Person], Person]) -> Person | None: ...

    def list(self, org_id: str, *, limit: int, cursor: str | None) -> Listing[Person]: ...

    def get_many(self, org_id: str, person_ids: Iterable[str]) -> Mapping[str, tuple[Person, int]]:
        """Current people and their versions, by id."""
        ...

    def write_batch(self, changes: Sequence[tuple[Person, int | None]]) -> None:
        """All or none, each conditional on its version (None: must not exist); Conflict if one moved."""
        ...


class Coaches(Protocol):
    def add(self, coach: Coach) -> None: ...

    def get(self, coach_id: str) -> Coach | None: ...

    def list(self, *, status: str | None, limit: int, cursor: str | None) -> Listing[Coach]: ...

    def modify_with_events(
        self, coach_id: str, change: Callable[[Coach], tuple[Coach, Sequence[Event]]]
    ) -> Coach | None:
        """Apply `change` to the current coach and commit the coach and its events together."""
        ...


class HrSecretVault(Protocol):
    """Where an org's HR webhook secrets live: Secrets Manager deployed, the local secrets file locally."""

    def read(self, org_id: str) -> OrgSecrets: ...

    def write(self, org_id: str, secrets: OrgSecrets) -> None: ...


@dataclass(slots=True)
class AdminContext:
    orgs: Orgs
    people: People
    coaches: Coaches
    clock: Clock
    vetting: VettingThresholds
    hr_secrets: HrSecretVault | None = None


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, _BACKOFF_SECONDS * 2**attempt))


# ------------------------------------------------------------------ orgs


def create_org(caller: Principal, data: OrgCreate, ctx: AdminContext) -> Org:
    caller.require(Role.OPERATOR)
    org = Org.create(new_id(), data, ctx.clock())
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


def list_orgs(caller: Principal, limit: int, cursor: str | None, ctx: AdminContext) -> Listing[Org]:
    caller.require(Role.OPERATOR)
    return ctx.orgs.list(limit=limit, cursor=cursor)


def update_org(caller: Principal, org_id: str, changes: OrgUpdate, ctx: AdminContext) -> Org:
    caller.require(Role.OPERATOR)
    org = ctx.orgs.modify(org_id, lambda current: current.updated(changes, ctx.clock()))
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    return org


def rotate_hr_webhook_secret(caller: Principal, org_id: str, body: RotateSecret, ctx: AdminContext) -> RotatedSecret:
    """A new HR webhook secret for the org, shown once; the previous one verifies for `grace_hours` more."""
    if not caller.has(Role.OPERATOR):
        caller.require_same_org(org_id, Role.ORG_ADMIN)
    _visible_org(caller, org_id, ctx)
    if ctx.hr_secrets is None:
        raise Conflict("HR webhook secrets are not configured for this deployment")
    now = ctx.clock()
    secret = new_webhook_secret()
    rotated = ctx.hr_secrets.read(org_id).rotated(secret, now, timedelta(hours=body.grace_hours))
    ctx.hr_secrets.write(org_id, rotated)
    previous = [s.expires_at for s in rotated.secrets[1:] if s.expires_at is not None]
    return RotatedSecret(org_id=org_id, secret=secret, previous_valid_until=max(previous, default=None))


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
    org = ctx.orgs.modify(org_id, lambda current: current.calibrated(framework, ctx.clock()))
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
    person = Person.create(person_id, org_id, data, ctx.clock())
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


def list_people(caller: Principal, limit: int, cursor: str | None, ctx: AdminContext) -> Listing[Person]:
    org_id = caller.require_org(Role.ORG_ADMIN)
    return ctx.people.list(org_id, limit=limit, cursor=cursor)


def update_person(caller: Principal, person_id: str, changes: PersonUpdate, ctx: AdminContext) -> Person:
    org_id = caller.require_org(Role.ORG_ADMIN)
    if "manager_id" in changes.model_fields_set:
        _check_manager(org_id, person_id, changes.manager_id, ctx)
    person = ctx.people.modify(org_id, person_id, lambda current: current.updated(changes, ctx.clock()))
    if person is None:
        raise NotFound(f"person {person_id} not found")
    return person


def too_many_rows(field: str) -> InvalidInput:
    return InvalidInput(f"an import takes at most {MAX_IMPORT_ROWS:,} rows; split the file", field=field)


def check_import_body(body: str) -> None:
    """Refuse a body over MAX_IMPORT_BODY_CHARS before anything parses it."""
    if len(body) > MAX_IMPORT_BODY_CHARS:
        raise InvalidInput(
            f"an import body takes at most {MAX_IMPORT_BODY_CHARS} characters (6 MB); split the file", field="body"
        )


def check_csv_rows(lines: Iterable[str]) -> int:
    """Count a CSV import's data rows, refusing it at row MAX_IMPORT_ROWS + 1 without reading further.

    `lines` is read lazily by `csv.reader`, one record at a time (a quoted cell may span lines), and
    nothing is kept: an oversized file is refused before any row is materialised. Rows are counted as
    `rows_from_csv` (`csv.DictReader`) yields them: the first record is the header (none if it is
    empty) and empty records are skipped, so the count is what the import reports as received. A
    CSV the reader cannot read is a 422 on `body`.
    """
    reader = csv.reader(lines)
    rows = 0
    try:
        if not next(reader, None):
            return 0  # no header (an empty body or an empty first line): the import has no rows
        for record in reader:
            if not record:
                continue
            rows += 1
            if rows > MAX_IMPORT_ROWS:
                raise too_many_rows("body")
    except csv.Error as exc:
        raise InvalidInput(f"the CSV cannot be read: {exc}", field="body") from exc
    return rows


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
        raise too_many_rows("people")
    _require_org_exists(org_id, ctx)
    report = ImportReport(received=len(rows))
    valid: dict[str, tuple[int, ImportRow]] = {}  # person id -> (row number, row)
    for number, raw in enumerate(rows, start=1):
        problems, parsed = _parse_row(raw)
        if parsed is not None and person_id_for(org_id, parsed.external_hr_id) in valid:
            problems.append({"field": "external_hr_id", "message": "appears more than once in this import"})
        if problems or parsed is None:
            report.errors.append(RowError(row=number, external_hr_id=_hr_id_of(raw), errors=problems))
            continue
        valid[person_id_for(org_id, parsed.external_hr_id)] = (number, parsed)

    _check_import_managers(org_id, valid, report, ctx)
    pending = list(valid.items())
    chunks = [pending[i : i + _IMPORT_CHUNK] for i in range(0, len(pending), _IMPORT_CHUNK)]
    with ThreadPoolExecutor(max_workers=_IMPORT_WORKERS) as pool:
        for created, updated, unchanged, refused in pool.map(lambda chunk: _write_chunk(org_id, chunk, ctx), chunks):
            report.created += created
            report.updated += updated
            report.unchanged += unchanged
            report.errors.extend(refused)
    report.errors.sort(key=lambda error: error.row)
    report.failed = len(report.errors)
    return report


def _hr_id_of(raw: Any) -> str | None:
    value = raw.get("external_hr_id") if isinstance(raw, dict) else None
    return str(value)[:128] if value is not None else None


def _parse_row(raw: Any) -> tuple[list[dict[str, str]], ImportRow | None]:
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
    outside = {m for _, (_, row) in valid.items() if (m := _manager_of(org_id, row)) and m not in valid}
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
) -> tuple[int, int, int, list[RowError]]:
    for attempt in range(_IMPORT_ATTEMPTS):
        current = ctx.people.get_many(org_id, [person_id for person_id, _ in chunk])
        now = ctx.clock()
        changes: list[tuple[Person, int | None]] = []
        created = updated = unchanged = 0
        refused: list[RowError] = []
        for person_id, (number, row) in chunk:
            existing = current.get(person_id)
            if existing is None:
                person = Person.from_import(person_id, org_id, row, _manager_of(org_id, row), now, now)
                changes.append((person, None))
                created += 1
                continue
            try:
                # What HR set (title, history, a termination) survives an import; a terminated person stays so.
                person = existing[0].reimported(row, _manager_of(org_id, row), now)
            except Conflict as rule:
                field = rule.field or "row"
                refused.append(
                    RowError(
                        row=number,
                        external_hr_id=row.external_hr_id,
                        errors=[{"field": field, "message": rule.message}],
                    )
                )
                continue
            if existing[0].same_fields(person):
                unchanged += 1
            else:
                changes.append((person, existing[1]))
                updated += 1
        if not changes:
            return created, updated, unchanged, refused
        try:
            ctx.people.write_batch(changes)
        except Conflict:
            _backoff(attempt)
            continue  # a row changed since we read it: read again and recompute
        return created, updated, unchanged, refused
    raise Conflict("people in this import are being changed concurrently; run the import again")


# ------------------------------------------------------------------ coaches


def create_coach(caller: Principal, data: CoachCreate, ctx: AdminContext) -> Coach:
    caller.require(Role.OPERATOR)
    coach = Coach.create(new_id(), data, ctx.clock())
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
) -> Listing[Coach]:
    caller.require(Role.OPERATOR)
    return ctx.coaches.list(status=status.value if status else None, limit=limit, cursor=cursor)


def update_coach(caller: Principal, coach_id: str, changes: CoachUpdate, ctx: AdminContext) -> Coach:
    """Change a coach's profile; an approved coach's change reaches the roster (CoachProfileUpdated)."""
    caller.require(Role.OPERATOR)

    def change(current: Coach) -> tuple[Coach, list[Event]]:
        updated = current.updated(changes, ctx.clock(), ctx.vetting)
        if not updated.is_approved:
            return updated, []
        return updated, [CoachProfileUpdated(coach_id=updated.coach_id, vetting_status=updated.vetting_status.value)]

    coach = ctx.coaches.modify_with_events(coach_id, change)
    if coach is None:
        raise NotFound(f"coach {coach_id} not found")
    return coach


def set_vetting(caller: Principal, coach_id: str, decision: VettingDecision, ctx: AdminContext) -> Coach:
    """Record an operator's vetting decision; a change of status is announced (CoachVettingChanged)."""
    caller.require(Role.OPERATOR)

    def change(current: Coach) -> tuple[Coach, list[Event]]:
        vetted = current.vetted(decision, caller.person_id, ctx.clock(), ctx.vetting)
        if vetted.vetting_status is current.vetting_status:
            return vetted, []
        changed = CoachVettingChanged(
            coach_id=vetted.coach_id,
            vetting_status=vetted.vetting_status.value,
            previous_status=current.vetting_status.value,
        )
        return vetted, [changed]

    coach = ctx.coaches.modify_with_events(coach_id, change)
    if coach is None:
        raise NotFound(f"coach {coach_id} not found")
    return coach
