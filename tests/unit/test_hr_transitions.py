"""The org's transition policy, the context handoff's consent rules, erasure's anonymisation, roster planning."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from coaching.domain.booking import Allowance, BookingPolicy
from coaching.domain.context import (
    ERASED_NAME,
    ConsentChange,
    ContextConsent,
    Situation,
    SituationRef,
    anonymised,
    erased_record,
    handoff,
)
from coaching.domain.errors import Conflict, DomainError, InvalidInput
from coaching.domain.events import PersonPromoted
from coaching.domain.hr import EmployeePromoted, apply_hr_event
from coaching.domain.people import ImportRow, Person, PersonUpdate
from coaching.domain.reconciliation import parse_entries, plan_sync
from coaching.domain.taxonomy import JobFunction, Level, Program, Transition
from coaching.domain.transitions import TransitionPolicy, plan_transition, transition_of
from coaching.ids import person_id_for

ORG = "0f8fad5b-d9cb-469f-a165-70867728950e"
NOW = datetime(2026, 4, 1, 9, tzinfo=UTC)


def _person(hr_id: str = "E-1", level: Level = Level.FIRST_TIME_MANAGER, **extra: object) -> Person:
    return Person.model_validate(
        {
            "person_id": person_id_for(ORG, hr_id),
            "org_id": ORG,
            "external_hr_id": hr_id,
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "level": level,
            "function": JobFunction.ENGINEERING,
            "languages": ["en"],
            "time_zone": "Europe/London",
            "created_at": NOW,
            "updated_at": NOW,
            **extra,
        }
    )


def _promoted(previous: Level, new: Level) -> PersonPromoted:
    return PersonPromoted(
        event_id="ev-1",
        org_id=ORG,
        person_id=person_id_for(ORG, "E-1"),
        previous_level=previous,
        new_level=new,
        effective_date="2026-04-01",
    )


@pytest.mark.parametrize(
    ("previous", "new", "expected"),
    [
        (Level.INDIVIDUAL_CONTRIBUTOR, Level.FIRST_TIME_MANAGER, Transition.NEW_MANAGER),
        (Level.INDIVIDUAL_CONTRIBUTOR, Level.MANAGER, Transition.NEW_MANAGER),
        (Level.MANAGER, Level.SENIOR_LEADER, Transition.SENIOR_LEADER),
        (Level.FIRST_TIME_MANAGER, Level.EXECUTIVE, Transition.SENIOR_LEADER),
        (Level.FIRST_TIME_MANAGER, Level.MANAGER, None),
        (Level.SENIOR_LEADER, Level.EXECUTIVE, None),
    ],
)
def test_which_promotions_cross_a_threshold(previous: Level, new: Level, expected: Transition | None) -> None:
    assert transition_of(previous, new) == expected


def test_a_new_manager_joins_the_grow_waitlist_with_the_new_levels_allowance() -> None:
    booking = BookingPolicy(allowances={Program.SCALE: Allowance(sessions=2, by_level={Level.FIRST_TIME_MANAGER: 5})})
    plan = plan_transition(
        None, booking, _promoted(Level.INDIVIDUAL_CONTRIBUTOR, Level.FIRST_TIME_MANAGER), _person(), NOW
    )
    (entry,) = plan.waitlist
    assert (entry.transition, entry.program, entry.source_event_id) == (Transition.NEW_MANAGER, Program.GROW, "ev-1")
    assert plan.allowances == {"SCALE": 5}
    (event,) = plan.events
    assert (event.waitlisted_program, event.exec_eligible, event.allowances) == ("GROW", False, {"SCALE": 5})
    assert plan.person.exec_eligible_since is None


def test_a_senior_promotion_gives_exec_eligibility_once_and_an_org_can_turn_both_off() -> None:
    promoted = _promoted(Level.MANAGER, Level.SENIOR_LEADER)
    plan = plan_transition(None, None, promoted, _person(level=Level.SENIOR_LEADER), NOW)
    assert (plan.waitlist, str(plan.person.exec_eligible_since)) == ([], "2026-04-01")
    off = TransitionPolicy(new_manager_waitlist=False, exec_eligibility=False)
    assert (
        plan_transition(off, None, promoted, _person(level=Level.SENIOR_LEADER), NOW).person.exec_eligible_since is None
    )
    new_manager = _promoted(Level.INDIVIDUAL_CONTRIBUTOR, Level.FIRST_TIME_MANAGER)
    assert plan_transition(off, None, new_manager, _person(), NOW).waitlist == []
    assert plan_transition(None, None, _promoted(Level.FIRST_TIME_MANAGER, Level.MANAGER), _person(), NOW).events == []


def _situations() -> list[Situation]:
    return [
        Situation(kind="match", id="m-1", text="first situation text", created_at=NOW),
        Situation(kind="booking", id="b-1", text="second situation text", created_at=NOW),
    ]


def test_situations_are_shared_only_with_consent_per_item_or_whole_and_revocation_hides_them() -> None:
    person, situations = _person(), _situations()
    consent = ContextConsent.none(ORG, person.person_id)
    assert handoff(person, [], [], situations, consent).situations == []
    one = consent.changed(ConsentChange(situations=[SituationRef(kind="booking", id="b-1")]), situations, NOW)
    shown = handoff(person, [], [], situations, one)
    assert (shown.situations_shared, [s.id for s in shown.situations]) == ("some", ["b-1"])
    whole = one.changed(ConsentChange(share_all_situations=True), situations, NOW)
    assert [s.id for s in handoff(person, [], [], situations, whole).situations] == ["m-1", "b-1"]
    assert handoff(person, [], [], situations, whole.revoked(NOW)).situations == []
    with pytest.raises(InvalidInput) as refused:
        consent.changed(ConsentChange(situations=[SituationRef(kind="match", id="other")]), situations, NOW)
    assert refused.value.field == "situations[0]"


def test_erasure_removes_personal_data_keeps_the_id_and_blocks_hr_events() -> None:
    person = _person(department="Platform", location="Berlin", title="Lead")
    erased = anonymised(person, NOW)
    text = erased.model_dump_json()
    assert "Ada" not in text
    assert "ada@example.com" not in text
    assert "E-1" not in text
    assert "Berlin" not in text
    assert (erased.person_id, erased.name, erased.active) == (person.person_id, ERASED_NAME, False)
    assert anonymised(erased, datetime(2027, 1, 1, tzinfo=UTC)) == erased  # idempotent
    with pytest.raises(Conflict, match="erased"):
        erased.updated(PersonUpdate(active=True), NOW)
    promotion = EmployeePromoted.model_validate(
        {
            "type": "employee.promoted",
            "external_hr_id": "E-1",
            "effective_at": NOW,
            "level": "manager",
            "function": "engineering",
        }
    )
    applied = apply_hr_event(erased_record(ORG, person.person_id), erased, ORG, promotion, event_id="x", now=NOW)
    assert applied.outcome == "rejected"


def test_a_terminated_person_is_reactivated_by_neither_patch_nor_import() -> None:
    gone = _person(active=False, terminated_on=date(2026, 5, 31), regrettable=True, title="Lead")
    with pytest.raises(Conflict, match="rehire") as refused:
        gone.updated(PersonUpdate(active=True), NOW)
    assert refused.value.field == "active"
    row = ImportRow.model_validate(
        {
            "external_hr_id": "E-1",
            "name": "Ada",
            "email": "ada@example.com",
            "level": "manager",
            "function": "engineering",
            "languages": ["en"],
            "time_zone": "Europe/London",
        }
    )
    with pytest.raises(Conflict):
        gone.reimported(row, None, NOW)
    kept = gone.reimported(row.model_copy(update={"active": False}), None, NOW)
    assert (kept.title, str(kept.terminated_on), kept.regrettable) == ("Lead", "2026-05-31", True)


def test_a_roster_plan_creates_updates_terminates_and_keeps_tombstones() -> None:
    stays, leaves = _person("E-1"), _person("E-2")
    gone = _person("E-3", active=False, terminated_on=date(2026, 1, 1))
    rows = [
        {"external_hr_id": "E-1", "name": "Ada Lovelace", "email": "ada@example.com", "level": "manager",
         "function": "engineering", "languages": ["en"], "time_zone": "Europe/London"},
        {"external_hr_id": "E-3", "name": "Back Again", "email": "b@example.com", "level": "manager",
         "function": "engineering", "languages": ["en"], "time_zone": "Europe/London"},
        {"external_hr_id": "E-4", "name": "New Hire", "email": "n@example.com", "level": "individual_contributor",
         "function": "sales", "languages": ["en"], "time_zone": "Europe/London"},
    ]  # fmt: skip
    events, report = plan_sync(ORG, parse_entries(rows), [(stays, None), (leaves, None), (gone, None)], NOW)
    assert [c.external_hr_id for c in report.creates] == ["E-4"]
    assert [(c.external_hr_id, c.changes["level"]) for c in report.updates] == [
        ("E-1", ["first_time_manager", "manager"])
    ]
    assert [c.external_hr_id for c in report.terminations] == ["E-2"]
    assert [c.external_hr_id for c in report.kept_terminated] == ["E-3"]
    assert [e.type for e in events] == ["employee.promoted", "employee.hired", "employee.terminated"]
    assert plan_sync(ORG, parse_entries(rows), [(stays, None), (leaves, None), (gone, None)], NOW)[1].checksum == (
        report.checksum
    )
    with pytest.raises(DomainError) as bad:
        parse_entries([rows[0], rows[0] | {"email": "not an email"}])
    assert bad.value.field == "people[1].email"


def test_the_handoff_carries_goals_still_pursued_or_reached_and_released_360_results_in_order() -> None:
    from datetime import timedelta

    from coaching.domain.assessments import AssessmentResult
    from coaching.domain.goals import Goal

    person = _person()

    def goal(goal_id: str, status: str, days: int) -> Goal:
        at = NOW + timedelta(days=days)
        return Goal.model_validate({
            "goal_id": goal_id, "org_id": ORG, "person_id": person.person_id, "title": f"Goal {goal_id}",
            "competencies": ["delegation"], "aim": "current_role", "checkin_every_days": 14,
            "next_checkin_on": None, "status": status, "created_at": at, "updated_at": at,
        })  # fmt: skip

    def result(assessment_id: str, kind: str, days: int) -> AssessmentResult:
        return AssessmentResult.model_validate({
            "org_id": ORG, "person_id": person.person_id, "assessment_id": assessment_id, "kind": kind,
            "competencies": ["delegation"], "released_at": NOW + timedelta(days=days), "release_reason": "complete",
            "groups": [{"group": "peer", "responses": 3, "shown": True, "scores": {"delegation": 3.7}}],
        })  # fmt: skip

    goals = [goal("later", "achieved", 2), goal("dropped", "abandoned", 1), goal("first", "active", 0)]
    results = [result("follow-up", "follow_up", 120), result("baseline", "baseline", 0)]
    shown = handoff(person, [], [], [], ContextConsent.none(ORG, person.person_id), goals=goals, results=results)
    assert [g.goal_id for g in shown.goals] == ["first", "later"]
    assert [r.assessment_id for r in shown.released_360_results] == ["baseline", "follow-up"]
    assert shown.situations == []
