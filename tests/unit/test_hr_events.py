"""HR events applied to a person: ordering by effective time and sequence, tombstones, history, catalogue events."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from coaching.domain.errors import DomainError
from coaching.domain.events import PersonPromoted, PersonTerminated
from coaching.domain.hr import HrEvent, HrPayload, HrRecord, apply_hr_event, parse_payload
from coaching.domain.people import Person
from coaching.domain.taxonomy import Level
from hypothesis import given, settings
from hypothesis import strategies as st

ORG = "0f8fad5b-d9cb-469f-a165-70867728950e"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
EMPLOYEE = {"name": "Ada Lovelace", "email": "ada@example.com", "languages": ["en"], "time_zone": "Europe/London"}


def _event(kind: str, at: datetime, sequence: int = 0, **extra: Any) -> HrEvent:
    data: dict[str, Any] = {
        "type": kind,
        "external_hr_id": "E-1",
        "effective_at": at.isoformat(),
        "sequence": sequence,
        "employee": EMPLOYEE,
        **extra,
    }
    if kind in {"employee.hired", "employee.promoted", "employee.rehired"}:
        data.setdefault("level", "individual_contributor")
        data.setdefault("function", "engineering")
    if kind == "employee.terminated":
        data.setdefault("regrettable", True)
    if kind == "employee.manager_changed":
        data.setdefault("manager_external_hr_id", "M-1")
    return HrPayload.model_validate({"events": [data]}).events[0]


def _run(events: list[HrEvent]) -> tuple[HrRecord | None, Person | None, list[Any]]:
    record: HrRecord | None = None
    person: Person | None = None
    caused: list[Any] = []
    for index, event in enumerate(events):
        applied = apply_hr_event(record, person, ORG, event, event_id=f"w:{index}", now=NOW)
        record, person = applied.record, applied.person
        caused.extend(applied.events)
    return record, person, caused


def _state(person: Person | None) -> dict[str, Any] | None:
    return None if person is None else person.model_dump(exclude={"created_at", "updated_at"})


# ---------------------------------------------------------------------------- the property


_LIFECYCLE = (
    "employee.hired",
    "employee.promoted",
    "employee.manager_changed",
    "employee.terminated",
    "employee.rehired",
)


@settings(max_examples=40, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=3), min_size=5, max_size=5),
    sequences=st.lists(st.integers(min_value=0, max_value=2), min_size=5, max_size=5),
)
def test_every_order_of_one_persons_lifecycle_converges_to_the_same_person(
    offsets: list[int], sequences: list[int]
) -> None:
    """Hire, promotion, manager change, termination and rehire, effective on days drawn (ties included),
    applied in all 120 orders of arrival: one final person."""
    events = [
        _event(kind, T0 + timedelta(days=offset), sequence, **({"level": "first_time_manager"} if i == 1 else {}))
        for i, (kind, offset, sequence) in enumerate(zip(_LIFECYCLE, offsets, sequences, strict=True))
    ]
    finals = {repr(_state(_run(list(order))[1])) for order in itertools.permutations(events)}
    assert len(finals) == 1
    (final,) = finals
    assert final != "None"


# ---------------------------------------------------------------------------- the rules


def test_an_older_event_never_overwrites_newer_state() -> None:
    newer = _event("employee.promoted", T0 + timedelta(days=10), level="manager")
    older = _event("employee.promoted", T0 + timedelta(days=1), level="first_time_manager")
    _, person, _ = _run([_event("employee.hired", T0), newer, older])
    assert person is not None
    assert person.level == Level.MANAGER
    assert [change.level for change in person.level_history] == [
        "individual_contributor",
        "first_time_manager",
        "manager",
    ]


def test_sequence_orders_events_of_the_same_instant() -> None:
    at = T0 + timedelta(days=3)
    second = _event("employee.promoted", at, 2, level="manager")
    first = _event("employee.promoted", at, 1, level="first_time_manager")
    _, person, _ = _run([_event("employee.hired", T0), second, first])
    assert person is not None
    assert person.level == Level.MANAGER


def test_a_termination_is_a_tombstone_a_late_promotion_cannot_undo() -> None:
    hire = _event("employee.hired", T0)
    termination = _event("employee.terminated", T0 + timedelta(days=5), regrettable=True)
    late_promotion = _event("employee.promoted", T0 + timedelta(days=9), level="manager")
    _, person, caused = _run([hire, termination, late_promotion])
    assert person is not None
    assert person.active is False
    assert str(person.terminated_on) == "2026-03-06"
    assert person.regrettable is True
    assert [type(e) for e in caused] == [PersonTerminated, PersonPromoted]


def test_only_a_rehire_after_the_termination_reactivates() -> None:
    events = [
        _event("employee.hired", T0),
        _event("employee.terminated", T0 + timedelta(days=5)),
        _event("employee.hired", T0 + timedelta(days=7)),  # a second hire is no rehire
    ]
    _, person, _ = _run(events)
    assert person is not None
    assert person.active is False
    _, person, _ = _run([*events, _event("employee.rehired", T0 + timedelta(days=8), level="manager")])
    assert person is not None
    assert person.active is True
    assert person.terminated_on is None
    assert person.level == Level.MANAGER
    _, person, _ = _run([*events, _event("employee.rehired", T0 + timedelta(days=4))])
    assert person is not None
    assert person.active is False  # a rehire effective before the termination does not undo it


def test_a_promotion_for_an_unknown_person_creates_them() -> None:
    _, person, caused = _run([_event("employee.promoted", T0, level="first_time_manager")])
    assert person is not None
    assert person.level == Level.FIRST_TIME_MANAGER
    assert person.active is True
    assert caused == []  # no previous level to move from


def test_an_event_about_someone_unknown_is_kept_until_they_can_be_created() -> None:
    change = _event("employee.manager_changed", T0 + timedelta(days=2), employee={})
    applied = apply_hr_event(None, None, ORG, change, event_id="w:0", now=NOW)
    assert applied.outcome == "pending"
    assert applied.person is None
    assert "level" in applied.message
    record, person, _ = _run([change, _event("employee.hired", T0)])
    assert person is not None
    assert person.manager_id is not None
    assert record is not None


def test_a_promotion_emits_person_promoted_with_a_stable_id_and_a_repeat_is_stale() -> None:
    hire = _event("employee.hired", T0)
    promotion = _event("employee.promoted", T0 + timedelta(days=1), level="first_time_manager", title="Team lead")
    record, person, _ = _run([hire])
    applied = apply_hr_event(record, person, ORG, promotion, event_id="d:1", now=NOW)
    (event,) = applied.events
    assert isinstance(event, PersonPromoted)
    assert (event.previous_level, event.new_level, event.effective_date) == (
        Level.INDIVIDUAL_CONTRIBUTOR,
        Level.FIRST_TIME_MANAGER,
        "2026-03-02",
    )
    again = apply_hr_event(record, person, ORG, promotion, event_id="d:1", now=NOW)
    assert again.events[0].event_id == event.event_id
    assert applied.person is not None
    assert applied.person.title == "Team lead"
    repeat = apply_hr_event(applied.record, applied.person, ORG, promotion, event_id="d:2", now=NOW)
    assert repeat.outcome == "stale"
    assert repeat.events == []


def test_hr_fields_override_an_admin_created_person_and_keep_the_rest() -> None:
    admin_made = Person.model_validate(
        {
            "person_id": HrRecord.new(ORG, "E-1").person_id,
            "org_id": ORG,
            "external_hr_id": "E-1",
            "name": "Ada",
            "email": "ada@old.example.com",
            "level": "individual_contributor",
            "function": "engineering",
            "department": "R&D",
            "languages": ["en"],
            "time_zone": "UTC",
            "created_at": T0,
            "updated_at": T0,
        }
    )
    promotion = _event("employee.promoted", T0, level="manager", employee={"email": "ada@example.com"})
    applied = apply_hr_event(None, admin_made, ORG, promotion, event_id="w:0", now=NOW)
    assert applied.person is not None
    assert (applied.person.email, applied.person.department, applied.person.level) == (
        "ada@example.com",
        "R&D",
        Level.MANAGER,
    )
    assert [type(e) for e in applied.events] == [PersonPromoted]


# ---------------------------------------------------------------------------- the payload


def _error_fields(body: bytes) -> list[str]:
    with pytest.raises(DomainError) as refused:
        parse_payload(body)
    assert refused.value.status == 400
    return [f["field"] for f in refused.value.details["fields"]]  # type: ignore[union-attr,index]


def test_an_unknown_event_type_names_its_field() -> None:
    assert _error_fields(b'{"events": [{"type": "employee.vanished", "external_hr_id": "E"}]}') == ["events[0].type"]


def test_a_missing_field_names_the_event_and_the_field() -> None:
    body = b'{"events": [{"type": "employee.promoted", "external_hr_id": "E", "effective_at": "2026-01-01T00:00:00Z",'
    body += b' "level": "first_time_manager"}]}'
    assert _error_fields(body) == ["events[0].function"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"not json", "body"),
        (b"[]", "body"),
        (b'{"events": []}', "events"),
        (b'{"events": "x"}', "events"),
        (b'{"events": [{"external_hr_id": "E"}]}', "events[0].type"),
        (
            b'{"events": [{"type": "employee.terminated", "external_hr_id": "E", "effective_at": "2026-01-01T00:00:00"'
            b', "regrettable": false}]}',
            "events[0].effective_at",
        ),
    ],
)
def test_malformed_payloads_are_400_naming_the_field(body: bytes, field: str) -> None:
    assert _error_fields(body)[0] == field


def test_a_batch_holds_at_most_100_events() -> None:
    event = (
        '{"type": "employee.updated", "external_hr_id": "E", "effective_at": "2026-01-01T00:00:00Z", '
        '"employee": {"name": "A"}}'
    )
    assert len(parse_payload(('{"events": [' + ",".join([event] * 100) + "]}").encode()).events) == 100
    assert _error_fields(('{"events": [' + ",".join([event] * 101) + "]}").encode()) == ["events"]
