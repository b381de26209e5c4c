"""Bulk roster reconciliation: the HR system's full list against the platform's people.

The list becomes HR events stamped with the sync's `as_of` time (sequence 0), so it obeys the webhooks'
rules (coaching.domain.hr): an older list never overwrites newer state, a termination is a tombstone only a
rehire undoes (a terminated person on the list stays terminated, reported as `kept_terminated`), and the
same event applied twice changes nothing. Everyone active who is missing from the list is terminated.

A dry run reports the plan and its checksum; applying sends the same list and `as_of` with that checksum,
and is refused (409) when the plan it would apply is not the plan that was reviewed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from coaching.domain.common import DeferredModel, Email, Languages, ShortText, StrictModel, TimeZoneName
from coaching.domain.errors import InvalidInput
from coaching.domain.hr import EventOutcome, HrEvent, HrRecord, apply_hr_event
from coaching.domain.people import MAX_IMPORT_ROWS, ExternalHrId, OptionalText, Person
from coaching.domain.taxonomy import JobFunction, Level
from coaching.ids import person_id_for

_EVENTS: TypeAdapter[HrEvent] = TypeAdapter(HrEvent)


class RosterEntry(StrictModel):
    """One employee as the HR system lists them."""

    external_hr_id: ExternalHrId
    name: ShortText
    email: Email
    level: Level
    function: JobFunction
    title: Annotated[str, Field(max_length=200)] = ""
    department: OptionalText = ""
    location: OptionalText = ""
    manager_external_hr_id: ExternalHrId | None = None
    languages: Annotated[Languages, Field(min_length=1, max_length=10)]
    time_zone: TimeZoneName


class PlannedChange(DeferredModel):
    external_hr_id: str
    person_id: str
    changes: dict[str, list[Any]] = Field(default={}, description="field: [now, after the sync]")


class SyncReport(DeferredModel):
    as_of: datetime
    checksum: str = Field(description="Pass it back with the same list and `as_of` to apply exactly this plan.")
    applied: bool
    creates: list[PlannedChange]
    updates: list[PlannedChange]
    terminations: list[PlannedChange]
    kept_terminated: list[PlannedChange] = Field(description="On the list but terminated: only a rehire reactivates.")
    unchanged: int
    outcomes: list[EventOutcome] = []


def parse_entries(rows: list[Any]) -> list[RosterEntry]:
    """Every row valid, or a 422 naming the first bad row and field (`people[3].email`), all in `details`."""
    if len(rows) > MAX_IMPORT_ROWS:
        raise InvalidInput(f"a roster sync takes at most {MAX_IMPORT_ROWS:,} people", field="people")
    entries: list[RosterEntry] = []
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    for index, raw in enumerate(rows):
        try:
            entry = RosterEntry.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                where = ".".join(str(part) for part in error["loc"])
                problems.append(
                    {"field": f"people[{index}].{where}" if where else f"people[{index}]", "message": error["msg"]}
                )
            continue
        if entry.external_hr_id in seen:
            problems.append({"field": f"people[{index}].external_hr_id", "message": "appears more than once"})
        seen.add(entry.external_hr_id)
        entries.append(entry)
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        raise InvalidInput(
            f"the roster is invalid, nothing was applied: {summary}",
            field=problems[0]["field"],
            details={"fields": problems},
        )
    return entries


def _event(kind: str, entry_id: str, as_of: datetime, **fields: Any) -> HrEvent:
    return _EVENTS.validate_python(
        {"type": kind, "external_hr_id": entry_id, "effective_at": as_of, "sequence": 0, **fields}
    )


def _profile(entry: RosterEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", include={"name", "email", "department", "location", "languages", "time_zone"})


def plan_sync(
    org_id: str, entries: list[RosterEntry], current: list[tuple[Person, HrRecord | None]], as_of: datetime
) -> tuple[list[HrEvent], SyncReport]:
    """The events that reconcile the org with `entries` at `as_of`, and the report of what they change."""
    by_id = {person.person_id: (person, record) for person, record in current}
    listed = {person_id_for(org_id, e.external_hr_id) for e in entries}
    events: list[HrEvent] = []
    report = SyncReport(
        as_of=as_of,
        checksum="",
        applied=False,
        creates=[],
        updates=[],
        terminations=[],
        kept_terminated=[],
        unchanged=0,
    )
    for entry in entries:
        person_id = person_id_for(org_id, entry.external_hr_id)
        person, record = by_id.get(person_id, (None, None))
        role = {"level": entry.level.value, "function": entry.function.value, "title": entry.title}
        manager = entry.manager_external_hr_id
        if person is None:
            candidate = [
                _event(
                    "employee.hired",
                    entry.external_hr_id,
                    as_of,
                    employee=_profile(entry),
                    manager_external_hr_id=manager,
                    **role,
                )
            ]
        elif not person.active and person.terminated_on is not None:
            report.kept_terminated.append(PlannedChange(external_hr_id=entry.external_hr_id, person_id=person_id))
            continue
        else:
            # Only the registers that differ: re-sending a role would add a step to the level history.
            candidate = [_event("employee.updated", entry.external_hr_id, as_of, employee=_profile(entry))]
            if (person.level.value, person.function.value, person.title) != (entry.level, entry.function, entry.title):
                candidate.append(_event("employee.promoted", entry.external_hr_id, as_of, **role))
            manager_id = person_id_for(org_id, manager) if manager else None
            if person.manager_id != manager_id:
                candidate.append(
                    _event("employee.manager_changed", entry.external_hr_id, as_of, manager_external_hr_id=manager)
                )
        kept, after = _effective(org_id, candidate, record, person, as_of)
        if after is None or not kept:
            report.unchanged += 1
            continue
        events.extend(kept)
        change = PlannedChange(external_hr_id=entry.external_hr_id, person_id=person_id, changes=_diff(person, after))
        (report.creates if person is None else report.updates).append(change)
    for person, record in current:
        if person.person_id in listed or not person.active or person.erased_at is not None:
            continue
        leaving = _event("employee.terminated", person.external_hr_id, as_of, regrettable=False)
        kept, after = _effective(org_id, [leaving], record, person, as_of)
        if kept and after is not None:
            events.extend(kept)
            report.terminations.append(
                PlannedChange(
                    external_hr_id=person.external_hr_id, person_id=person.person_id, changes=_diff(person, after)
                )
            )
        else:
            report.unchanged += 1
    report.checksum = _checksum(org_id, as_of, events)
    return events, report


def _effective(
    org_id: str, candidate: list[HrEvent], record: HrRecord | None, person: Person | None, as_of: datetime
) -> tuple[list[HrEvent], Person | None]:
    """The candidate events that change something (applied in order, as they will be), and the person after."""
    kept: list[HrEvent] = []
    for index, event in enumerate(candidate):
        applied = apply_hr_event(record, person, org_id, event, event_id=f"plan:{index}", now=as_of)
        # Only what changes the person counts (a register re-stamped with the value it holds does not).
        changes = applied.person != person if person is not None else applied.record != record
        if applied.outcome in {"applied", "pending"} and changes:
            kept.append(event)
            record, person = applied.record, applied.person
    return kept, person


def _diff(before: Person | None, after: Person) -> dict[str, list[Any]]:
    fields = (
        "name",
        "email",
        "level",
        "function",
        "title",
        "department",
        "location",
        "manager_id",
        "languages",
        "time_zone",
        "active",
        "terminated_on",
    )
    old = before.model_dump(mode="json") if before else {}
    new = after.model_dump(mode="json")
    return {f: [old.get(f), new.get(f)] for f in fields if old.get(f) != new.get(f)}


def _checksum(org_id: str, as_of: datetime, events: list[HrEvent]) -> str:
    plan = [event.model_dump(mode="json") for event in events]
    text = json.dumps({"org": org_id, "as_of": as_of.isoformat(), "events": plan}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
