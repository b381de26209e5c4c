"""HR webhooks: what HR systems push, how a delivery is verified, and how its events apply to a person.

Deliveries follow the Standard Webhooks specification (verified with the `standardwebhooks` package):
HMAC-SHA256 over ``id.timestamp.raw_body`` with the org's ``whsec_`` secret, any of several
space-separated ``v1,`` signatures, ±5 minutes of clock tolerance, constant-time comparison.

Events arrive late, twice and out of order, so a person's HR state is a set of registers, each
last-writer-wins on the event's **stamp** (effective time, then sequence, then event kind): the
role (level, function, title), the manager, each profile field, and the employment status. Applying
the same events in any order gives the same person. Termination and rehire are the only events
that set the status, so a termination is a tombstone that a promotion, however late, cannot undo;
only a rehire stamped after it can. Every role change is kept in the person's history, in stamp
order, whatever order it arrived in.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from secrets import token_bytes
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from coaching.domain.common import Email, Entity, Languages, ShortText, StrictModel, TimeZoneName
from coaching.domain.errors import DomainError, InvalidInput, Unauthorized
from coaching.domain.events import Event, PersonPromoted, PersonTerminated, stable_event_id
from coaching.domain.people import ExternalHrId, HrStamp, LevelChange, OptionalText, Person, field_errors
from coaching.domain.taxonomy import JobFunction, Level
from coaching.domain.updates import evolved
from coaching.ids import person_id_for

MAX_EVENTS = 100
# The Standard Webhooks reference libraries all use five minutes, both ways.
TOLERANCE_SECONDS = 5 * 60
# A webhook id becomes part of a key: letters, digits and `_-:` only (never the `.` the signature joins on).
WEBHOOK_ID_PATTERN = re.compile(r"^[A-Za-z0-9_:\-]{1,128}$")
_TIMESTAMP_PATTERN = re.compile(r"^[0-9]{1,12}$")

# ------------------------------------------------------------------------------ verification


class WebhookHeaders(BaseModel):
    """The verified delivery: its id (the idempotency key) and the attempt's timestamp."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    webhook_id: str
    timestamp: int


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise Unauthorized(f"the {name} header is missing", field=name)


def verify_delivery(secrets: Sequence[str], headers: Mapping[str, str], body: bytes) -> WebhookHeaders:
    """The delivery's headers once one of its signatures verifies with one of `secrets`; else Unauthorized.

    Several secrets verify during a rotation's grace period. No secrets (an unknown org) is refused
    the same way as a wrong signature, so the endpoint does not reveal which orgs exist.
    """
    webhook_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signature = _header(headers, "webhook-signature")
    if not WEBHOOK_ID_PATTERN.match(webhook_id):
        raise Unauthorized("webhook-id must be 1-128 letters, digits, '_', '-' or ':'", field="webhook-id")
    if not _TIMESTAMP_PATTERN.match(timestamp):
        raise Unauthorized("webhook-timestamp must be whole seconds since the epoch", field="webhook-timestamp")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unauthorized("no signature matches the body", field="webhook-signature") from exc
    lowered = {"webhook-id": webhook_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
    stale = False
    for secret in secrets:
        try:
            Webhook(secret).verify(text, lowered, json_parse=False)
        except WebhookVerificationError as exc:
            stale = stale or "timestamp" in str(exc)
            continue
        except (ValueError, EmptyWebhookSecretError):
            # A signature entry without its comma, or not base64: the library raises these as they are.
            continue
        return WebhookHeaders(webhook_id=webhook_id, timestamp=int(timestamp))
    if stale:
        raise Unauthorized(
            f"webhook-timestamp is more than {TOLERANCE_SECONDS} seconds from now", field="webhook-timestamp"
        )
    raise Unauthorized("no signature matches the body", field="webhook-signature")


# ------------------------------------------------------------------------------ the payload


class _Tolerant(BaseModel):
    # An HR system may send fields the platform does not use; they are ignored, not refused.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, defer_build=True)


class Employee(_Tolerant):
    """The employee's profile as the HR system knows it; every field is optional on a known person."""

    name: ShortText | None = None
    email: Email | None = None
    department: OptionalText | None = None
    location: OptionalText | None = None
    languages: Annotated[Languages, Field(min_length=1, max_length=10)] | None = None
    time_zone: TimeZoneName | None = None


Title = Annotated[str, Field(max_length=200)]


class _HrEvent(_Tolerant):
    external_hr_id: ExternalHrId
    effective_at: AwareDatetime = Field(description="When the change takes effect (ISO 8601 with an offset).")
    sequence: int = Field(
        default=0, ge=0, le=2**53, description="The HR system's order among events with the same effective time."
    )
    employee: Employee = Field(default_factory=Employee)


class _Role(_HrEvent):
    level: Level
    function: JobFunction
    title: Title = ""


class EmployeeHired(_Role):
    type: Literal["employee.hired"]
    manager_external_hr_id: ExternalHrId | None = None


class EmployeeUpdated(_HrEvent):
    type: Literal["employee.updated"]


class EmployeePromoted(_Role):
    type: Literal["employee.promoted"]


class EmployeeManagerChanged(_HrEvent):
    type: Literal["employee.manager_changed"]
    manager_external_hr_id: ExternalHrId | None = Field(description="The new manager; null for none.")


class EmployeeTerminated(_HrEvent):
    type: Literal["employee.terminated"]
    regrettable: bool = Field(description="Whether the organisation regrets the departure (attrition measure).")


class EmployeeRehired(_Role):
    type: Literal["employee.rehired"]
    manager_external_hr_id: ExternalHrId | None = None


HrEvent = Annotated[
    EmployeeHired | EmployeeUpdated | EmployeePromoted | EmployeeManagerChanged | EmployeeTerminated | EmployeeRehired,
    Field(discriminator="type"),
]
EVENT_TYPES = (
    "employee.hired",
    "employee.updated",
    "employee.promoted",
    "employee.manager_changed",
    "employee.terminated",
    "employee.rehired",
)
# Breaks a tie between events of one person with the same effective time and sequence, deterministically.
_KIND_RANK = {kind: rank for rank, kind in enumerate(EVENT_TYPES)}


class HrPayload(_Tolerant):
    events: list[HrEvent] = Field(min_length=1, max_length=MAX_EVENTS)


def parse_payload(body: bytes) -> HrPayload:
    """The payload, or a 400 naming every field at fault (an unknown event type names `events[i].type`)."""
    try:
        return HrPayload.model_validate_json(body)
    except ValidationError as exc:
        fields = payload_errors(exc)
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        message = f"the payload is invalid: {summary}"
        raise DomainError(message, field=fields[0]["field"], details={"fields": fields}) from exc


def payload_errors(exc: ValidationError) -> list[dict[str, str]]:
    """{field, message} per error, as `events[3].employee.email` (the union member's name left out)."""
    flat: list[dict[str, str]] = []
    for error in exc.errors(include_url=False):
        name = ""
        for part in error["loc"]:
            if isinstance(part, int):
                name += f"[{part}]"
            elif part not in EVENT_TYPES:
                name += f".{part}" if name else str(part)
        if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            name += ".type"
        if error["type"] == "json_invalid":
            name = "body"
        flat.append({"field": name or "body", "message": error["msg"]})
    return flat


# ------------------------------------------------------------------------------ applying an event


def stamp_of(event: _HrEvent, kind: str) -> HrStamp:
    return HrStamp(effective_at=event.effective_at, sequence=event.sequence, rank=_KIND_RANK[kind])


_PROFILE = ("name", "email", "department", "location", "languages", "time_zone")
_REQUIRED_TO_CREATE = ("level", "function", "name", "email", "languages", "time_zone")


class HrRecord(Entity):
    """What the HR system has said about one person: each register's value and the stamp that set it.

    Kept apart from the person, so that events about someone not known yet (a manager change before
    the hire arrives) are not lost: the person is created once the record holds enough to create them.
    """

    org_id: str
    person_id: str
    external_hr_id: str
    fields: dict[str, Any] = {}  # JSON values of the Person fields the registers set
    stamps: dict[str, HrStamp] = {}
    history: list[LevelChange] = []
    # Set by a right-to-erasure request (coaching.domain.context.erased_record): HR events about them are refused.
    erased: bool = False

    @classmethod
    def new(cls, org_id: str, external_hr_id: str) -> HrRecord:
        return cls(org_id=org_id, person_id=person_id_for(org_id, external_hr_id), external_hr_id=external_hr_id)

    def applied(self, event: HrEvent) -> HrRecord:
        """The record after `event`: each register it sets takes its value only if its stamp is newer."""
        stamp = stamp_of(event, event.type)
        fields = dict(self.fields)
        stamps = dict(self.stamps)

        def win(register: str, values: Mapping[str, Any]) -> None:
            current = stamps.get(register)
            if current is None or stamp.key() > current.key():
                fields.update(values)
                stamps[register] = stamp

        for name in _PROFILE:
            value = getattr(event.employee, name)
            if value is not None:
                win(name, {name: value})
        if isinstance(event, _Role):
            win("role", {"level": event.level.value, "function": event.function.value, "title": event.title})
        if isinstance(event, EmployeeHired | EmployeeManagerChanged | EmployeeRehired):
            manager = event.manager_external_hr_id
            win("manager", {"manager_id": person_id_for(self.org_id, manager) if manager else None})
        if isinstance(event, EmployeeTerminated):
            terminated_on = event.effective_at.date().isoformat()
            win("status", {"active": False, "terminated_on": terminated_on, "regrettable": event.regrettable})
        if isinstance(event, EmployeeRehired):
            win("status", {"active": True, "terminated_on": None, "regrettable": None})
        history = list(self.history)
        if isinstance(event, _Role) and all(change.stamp.key() != stamp.key() for change in history):
            history.append(
                LevelChange(stamp=stamp, kind=event.type, level=event.level, function=event.function, title=event.title)
            )
            history.sort(key=lambda change: change.stamp.key())
        return evolved(self, "HR record", fields=fields, stamps=stamps, history=history)

    def missing_to_create(self) -> list[str]:
        return [name for name in _REQUIRED_TO_CREATE if name not in self.fields]

    def person(self, current: Person | None, now: datetime) -> Person | None:
        """The person as the record says they are: `current` with every field the HR system set, or a new
        person once the record holds what creating one takes (None until then)."""
        if current is None:
            if self.missing_to_create():
                return None
            return Person.model_validate(
                {
                    "person_id": self.person_id,
                    "org_id": self.org_id,
                    "external_hr_id": self.external_hr_id,
                    "created_at": now,
                    "updated_at": now,
                    **self.fields,
                    "level_history": self.history,
                }
            )
        projected = evolved(current, "person", **self.fields, level_history=self.history)
        return projected if projected.same_fields(current) else evolved(projected, "person", updated_at=now)


@dataclass(slots=True)
class HrState:
    """A person's HR record and person item as stored, with the versions a write is conditional on."""

    record: HrRecord | None = None
    person: Person | None = None
    record_version: int | None = None
    person_version: int | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event did: the record and person after it, and the catalogue events to commit with them."""

    record: HrRecord | None
    person: Person | None
    outcome: Literal["applied", "pending", "stale", "rejected"]
    events: list[Event] = field(default_factory=list)
    message: str = ""


def apply_hr_event(
    record: HrRecord | None, person: Person | None, org_id: str, event: HrEvent, *, event_id: str, now: datetime
) -> Applied:
    """The record and person after `event`, and the catalogue events it causes.

    `event_id` is stable per delivery and event (the webhook id and the event's index), so the
    catalogue events of a retried delivery have the ids the first one committed.
    """
    if record is not None and record.erased:
        return Applied(record, person, "rejected", message="this person was erased (right to erasure)")
    before = record or HrRecord.new(org_id, event.external_hr_id)
    after = before.applied(event)
    if record is not None and after == record:
        return Applied(after, person, "stale", message="newer state is already recorded")
    try:
        projected = after.person(person, now)
    except DomainError as error:
        return Applied(record, person, "rejected", message=error.message)
    except ValidationError as error:
        problems = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(error)[:3])
        return Applied(record, person, "rejected", message=problems)
    if projected is None:
        missing = ", ".join(after.missing_to_create())
        return Applied(after, None, "pending", message=f"kept; the person is created once HR sends {missing}")
    return Applied(after, projected, "applied", events=_caused(person, projected, event, event_id))


def _caused(before: Person | None, after: Person, event: HrEvent, event_id: str) -> list[Event]:
    caused: list[Event] = []
    if isinstance(event, EmployeePromoted) and before is not None and before.level != after.level:
        caused.append(
            PersonPromoted(
                event_id=stable_event_id("PersonPromoted", event_id),
                org_id=after.org_id,
                person_id=after.person_id,
                previous_level=before.level,
                new_level=after.level,
                effective_date=event.effective_at.date().isoformat(),
            )
        )
    if isinstance(event, EmployeeTerminated) and before is not None and before.active and not after.active:
        caused.append(
            PersonTerminated(
                event_id=stable_event_id("PersonTerminated", event_id),
                org_id=after.org_id,
                person_id=after.person_id,
                terminated_on=after.terminated_on.isoformat() if after.terminated_on else "",
                regrettable=bool(after.regrettable),
            )
        )
    return caused


# ------------------------------------------------------------------------------ the answer


class EventOutcome(BaseModel):
    """What became of one event of the delivery."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    index: int = Field(description="The event's position in `events`, from 0.")
    type: str
    external_hr_id: str
    person_id: str | None = Field(description="The platform's id of the person (null when none was created).")
    outcome: Literal["applied", "pending", "stale", "rejected"] = Field(
        description="`applied`: the person reflects it; `pending`: kept, the person is created once HR has sent "
        "what that takes (`message` names it); `stale`: newer state was already recorded, nothing changed; "
        "`rejected`: it cannot apply (`message` says why)."
    )
    message: str = ""
    duplicate: bool = Field(
        default=False, description="An earlier delivery of this webhook-id already processed it; nothing changed now."
    )


class WebhookResult(BaseModel):
    # Built on first use: every function that imports this module uses a few of its models.
    model_config = ConfigDict(defer_build=True)

    webhook_id: str
    outcomes: list[EventOutcome]


# ------------------------------------------------------------------------------ the org's secrets

DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=7)
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes


class OrgSecret(BaseModel):
    # Built on first use: every function that imports this module uses a few of its models.
    model_config = ConfigDict(defer_build=True)

    secret: str
    created_at: datetime | None = None
    expires_at: datetime | None = Field(default=None, description="After this, the secret no longer verifies.")


class OrgSecrets(BaseModel):
    """An org's webhook secrets, the current one first; during a rotation's grace period the previous ones too.

    Stored as JSON (Secrets Manager deployed, the local secrets file locally). A bare list of `whsec_`
    strings or a single string is read as secrets without expiry.
    """

    model_config = ConfigDict(defer_build=True)

    secrets: list[OrgSecret] = []

    @classmethod
    def parse(cls, value: object) -> OrgSecrets:
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith(("{", "[")):
                return cls(secrets=[OrgSecret(secret=text)] if text else [])
            return cls.parse(json.loads(text))
        if isinstance(value, list):
            return cls(secrets=[OrgSecret(secret=str(item)) for item in value])
        if isinstance(value, dict):
            raw = value.get("secrets")
            items = raw if isinstance(raw, list) else []
            return cls(
                secrets=[OrgSecret(secret=i) if isinstance(i, str) else OrgSecret.model_validate(i) for i in items]
            )
        return cls()

    def usable(self, now: datetime) -> list[str]:
        return [s.secret for s in self.secrets if s.expires_at is None or s.expires_at > now]

    def rotated(self, new_secret: str, now: datetime, grace: timedelta) -> OrgSecrets:
        """`new_secret` first; every secret still usable keeps verifying until `now + grace` (or its own expiry)."""
        if not timedelta(0) <= grace <= MAX_GRACE:
            raise InvalidInput(f"the grace period is 0 to {MAX_GRACE.days * 24} hours", field="grace_hours")
        until = now + grace
        kept = [
            OrgSecret(secret=s.secret, created_at=s.created_at, expires_at=min(until, s.expires_at or until))
            for s in self.secrets
            if (s.expires_at is None or s.expires_at > now) and grace > timedelta(0)
        ]
        return OrgSecrets(secrets=[OrgSecret(secret=new_secret, created_at=now), *kept])


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(token_bytes(SECRET_BYTES)).decode()


class RotateSecret(StrictModel):
    grace_hours: int = Field(
        default=24, ge=0, le=168, description="How long the previous secret keeps verifying (0: not at all)."
    )


class RotatedSecret(BaseModel):
    # Built on first use: every function that imports this module uses a few of its models.
    model_config = ConfigDict(defer_build=True)

    org_id: str
    secret: str = Field(description="The new `whsec_` secret. Shown once: it cannot be read back.")
    previous_valid_until: datetime | None = Field(
        description="Until when the previous secret keeps verifying (null: there was none, or no grace period)."
    )
