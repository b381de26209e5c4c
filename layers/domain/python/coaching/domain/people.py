"""People: employees of an org who may be coached, and the rules for importing them."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field, ValidationError

from coaching.domain.common import Email, Entity, EntityId, Languages, ShortText, StrictModel, TimeZoneName
from coaching.domain.errors import Conflict, InvalidInput
from coaching.domain.taxonomy import JobFunction, Level
from coaching.domain.updates import evolved, merged

MAX_IMPORT_ROWS = 10_000

ExternalHrId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
OptionalText = Annotated[str, Field(max_length=200)]


class PersonFields(StrictModel):
    external_hr_id: ExternalHrId
    name: ShortText
    email: Email
    level: Level
    function: JobFunction
    department: OptionalText = ""
    location: OptionalText = ""
    manager_id: EntityId | None = None
    languages: Annotated[Languages, Field(min_length=1, max_length=10)]
    time_zone: TimeZoneName
    active: bool = True


class PersonCreate(PersonFields):
    pass


class PersonUpdate(StrictModel):
    # The HR id is the identity the import is idempotent on; it never changes.
    name: ShortText | None = None
    email: Email | None = None
    level: Level | None = None
    function: JobFunction | None = None
    department: OptionalText | None = None
    location: OptionalText | None = None
    manager_id: EntityId | None = None
    languages: Annotated[Languages, Field(min_length=1, max_length=10)] | None = None
    time_zone: TimeZoneName | None = None
    active: bool | None = None


class ImportRow(PersonFields):
    """An import row may name the manager by HR id instead of the platform id."""

    manager_external_hr_id: ExternalHrId | None = None


class HrStamp(StrictModel):
    """When an HR event takes effect, and its place among the HR system's events of that instant.

    A person's HR registers (role, manager, each profile field, status) keep the stamp of the event
    that last set them; an event with an older stamp changes nothing (`coaching.domain.hr.HrRecord`).
    """

    effective_at: datetime
    sequence: int = Field(ge=0)
    rank: int = Field(ge=0, description="The event kind's place, breaking a tie of time and sequence.")

    def key(self) -> tuple[datetime, int, int]:
        return self.effective_at, self.sequence, self.rank


class LevelChange(StrictModel):
    """One role the HR system recorded for the person (hire, promotion, rehire), in the history."""

    stamp: HrStamp
    kind: str
    level: Level
    function: JobFunction
    title: str = ""


class Person(Entity):
    person_id: str
    org_id: str
    external_hr_id: str
    name: str
    email: str
    level: Level
    function: JobFunction
    department: str = ""
    location: str = ""
    manager_id: EntityId | None = None
    languages: list[str]
    time_zone: str
    active: bool = True
    created_at: datetime
    updated_at: datetime
    # Set by HR webhooks (coaching.domain.hr); people created by the admin API or an import have none.
    title: str = ""
    terminated_on: date | None = None
    regrettable: bool | None = None
    level_history: list[LevelChange] = []
    # Set by the org's transition policy on a promotion to senior leader or executive (coaching.domain.transitions).
    exec_eligible_since: date | None = None
    # Set once a right-to-erasure request anonymised the person (coaching.domain.context.anonymised).
    erased_at: datetime | None = None

    @classmethod
    def create(cls, person_id: str, org_id: str, data: PersonCreate, now: datetime) -> Person:
        return cls(person_id=person_id, org_id=org_id, created_at=now, updated_at=now, **data.model_dump())

    @classmethod
    def from_import(
        cls, person_id: str, org_id: str, row: ImportRow, manager_id: str | None, created_at: datetime, now: datetime
    ) -> Person:
        """The person an import row describes; `manager_id` is resolved from either manager column."""
        fields = row.model_dump(exclude={"manager_external_hr_id", "manager_id"})
        return cls(
            person_id=person_id, org_id=org_id, manager_id=manager_id, created_at=created_at, updated_at=now, **fields
        )

    def updated(self, changes: PersonUpdate, now: datetime) -> Person:
        """The person with the fields sent, validated whole (a null name is refused, not stored)."""
        if changes.active:
            self.require_reactivatable()
        if changes.manager_id is not None and changes.manager_id == self.person_id:
            raise InvalidInput("a person cannot be their own manager", field="manager_id")
        return merged(self, changes, "person", updated_at=now)

    def require_reactivatable(self) -> None:
        """Only an HR rehire reactivates a person HR terminated, or anyone erased; the admin API cannot."""
        if self.erased_at is not None:
            raise Conflict(
                f"person {self.person_id} was erased (right to erasure): they cannot be reactivated", field="active"
            )
        if self.terminated_on is not None and not self.active:
            raise Conflict(
                f"person {self.person_id} was terminated by HR on {self.terminated_on.isoformat()}: only an HR rehire "
                "(employee.rehired) reactivates them, not the admin API or an import",
                field="active",
            )

    def reimported(self, row: ImportRow, manager_id: str | None, now: datetime) -> Person:
        """The person an import row describes, keeping what HR set (title, history, termination, eligibility).

        A row that would reactivate a person HR terminated is refused (Conflict on `active`).
        """
        if row.active and not self.active:
            self.require_reactivatable()
        fields = row.model_dump(exclude={"manager_external_hr_id", "manager_id"})
        return evolved(self, "person", manager_id=manager_id, updated_at=now, **fields)

    def at_level(self, level: Level) -> Person:
        """The person as matching sees them after a promotion HR has not recorded yet."""
        return evolved(self, "person", level=level)

    def same_fields(self, other: Person) -> bool:
        skip = {"created_at", "updated_at"}
        return self.model_dump(exclude=skip) == other.model_dump(exclude=skip)


class RowError(StrictModel):
    row: int
    external_hr_id: str | None = None
    errors: list[dict[str, str]]


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Flatten pydantic errors into {field, message} pairs a person can act on."""
    flat: list[dict[str, str]] = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "row"
        flat.append({"field": location, "message": error["msg"]})
    return flat


_CSV_LIST_SEPARATORS = (";", "|")
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


def _csv_value(name: str, value: str | None) -> Any:
    text = (value or "").strip()
    if name == "languages":
        for separator in _CSV_LIST_SEPARATORS:
            text = text.replace(separator, ",")
        return [part.strip() for part in text.split(",") if part.strip()]
    if name == "active":
        lowered = text.lower()
        if lowered in _TRUE or lowered == "":
            return True
        if lowered in _FALSE:
            return False
        return text  # let validation name the bad value
    if name in {"manager_id", "manager_external_hr_id"}:
        return text or None
    return text


def rows_from_csv(text: str) -> list[dict[str, Any]]:
    """Parse CSV with a header row; a list cell (languages) separates values with ; or |."""
    # Spreadsheet exports often start with a byte-order mark; it is not part of the header.
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    try:
        if not reader.fieldnames:
            return []
        raws = list(reader)
    except csv.Error as exc:
        raise InvalidInput(f"the CSV cannot be read: {exc}", field="body") from exc
    rows: list[dict[str, Any]] = []
    for raw in raws:
        row: dict[str, Any] = {}
        for name, value in raw.items():
            if name is None:
                # More cells than headers: keep them so validation reports the row.
                row["unexpected_cells"] = value
                continue
            key = name.strip()
            if key:
                row[key] = _csv_value(key, value)
        rows.append(row)
    return rows
