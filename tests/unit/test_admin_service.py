"""Every rule the admin service enforces, on in-memory ports (tests/unit/fakes/admin.py)."""

from __future__ import annotations

import pytest
from coaching.auth import Principal, Role
from coaching.domain.coaches import CoachUpdate, VettingDecision, VettingStatus, VettingThresholds
from coaching.domain.competencies import Competency, Framework
from coaching.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from coaching.domain.events import CoachProfileUpdated, CoachVettingChanged
from coaching.domain.orgs import OrgUpdate
from coaching.domain.people import PersonCreate, PersonUpdate
from coaching.ids import person_id_for
from coaching.services import admin

from .fakes.admin import OPERATOR, AdminWorld, coach_input, org_admin, org_input, person_row


@pytest.fixture
def world() -> AdminWorld:
    return AdminWorld()


def approve(world: AdminWorld, coach_id: str) -> None:
    admin.set_vetting(OPERATOR, coach_id, VettingDecision(status=VettingStatus.APPROVED), world.ctx)


# ---------------------------------------------------------------------------- orgs


def test_operators_create_and_list_orgs_members_read_only_their_own(world):
    first = admin.create_org(OPERATOR, org_input(name="First"), world.ctx)
    second = admin.create_org(OPERATOR, org_input(name="Second"), world.ctx)
    assert (first.min_reporting_group_size, first.framework, first.created_at) == (5, None, first.updated_at)
    page = admin.list_orgs(OPERATOR, 1, None, world.ctx)
    assert len(page.items) == 1
    assert page.next_cursor is not None
    assert admin.list_orgs(OPERATOR, 1, page.next_cursor, world.ctx).items != page.items
    member = Principal(person_id="e", org_id=first.org_id, roles=frozenset({Role.EMPLOYEE}))
    assert admin.get_org(member, first.org_id, world.ctx) == first
    with pytest.raises(Forbidden):
        admin.get_org(member, second.org_id, world.ctx)
    with pytest.raises(Forbidden):
        admin.create_org(org_admin(first.org_id), org_input(), world.ctx)
    with pytest.raises(NotFound):
        admin.get_org(OPERATOR, "missing", world.ctx)


def test_an_org_update_merges_what_was_sent_and_validates_the_result(world):
    org = admin.create_org(OPERATOR, org_input(), world.ctx)
    renamed = admin.update_org(OPERATOR, org.org_id, OrgUpdate(name="Acme Group"), world.ctx)
    assert (renamed.name, renamed.currency, renamed.time_zone) == ("Acme Group", "EUR", "Europe/Berlin")
    assert renamed.updated_at > org.updated_at
    tuned = admin.update_org(
        OPERATOR, org.org_id, OrgUpdate.model_validate({"matching": {"min_bookable_hours": 0}}), world.ctx
    )
    assert tuned.matching is not None
    assert tuned.matching.min_bookable_hours == 0
    reset = admin.update_org(OPERATOR, org.org_id, OrgUpdate.model_validate({"matching": None}), world.ctx)
    assert reset.matching is None  # null on an optional setting: back to the platform's default


@pytest.mark.parametrize("field", ["name", "time_zone", "currency", "industry", "min_reporting_group_size"])
def test_an_org_update_with_null_for_a_required_field_is_invalid_input_naming_it(world, field):
    org = admin.create_org(OPERATOR, org_input(), world.ctx)
    with pytest.raises(InvalidInput) as refused:
        admin.update_org(OPERATOR, org.org_id, OrgUpdate.model_validate({field: None}), world.ctx)
    assert refused.value.field == field
    assert refused.value.details["problems"] == [{"field": field, "message": "cannot be null"}]
    assert world.orgs.get(org.org_id) == org  # nothing was stored


def test_org_updates_are_for_operators_and_need_the_org(world):
    org = admin.create_org(OPERATOR, org_input(), world.ctx)
    with pytest.raises(Forbidden):
        admin.update_org(org_admin(org.org_id), org.org_id, OrgUpdate(name="Mine now"), world.ctx)
    with pytest.raises(NotFound):
        admin.update_org(OPERATOR, "missing", OrgUpdate(name="Nobody"), world.ctx)


def test_a_calibrated_framework_keeps_the_shared_vocabulary_and_versions_up(world):
    org = admin.create_org(OPERATOR, org_input(), world.ctx)
    assert admin.get_framework(OPERATOR, org.org_id, world.ctx).framework_id == "default"
    framework = Framework(
        name="Acme leadership",
        competencies=[
            Competency(id="giving-feedback", name="Feedback"),
            Competency(id="acme-ownership", name="Ownership", maps_to="delegation"),
            Competency(id="decision-making", name="Decisions"),
        ],
    )
    saved = admin.put_framework(org_admin(org.org_id), org.org_id, framework, world.ctx)
    assert (saved.framework_id, saved.version) == (f"org-{org.org_id}", 1)
    assert admin.put_framework(OPERATOR, org.org_id, framework, world.ctx).version == 2
    assert admin.get_framework(org_admin(org.org_id), org.org_id, world.ctx).name == "Acme leadership"
    unanchored = Framework(name="x", competencies=[*framework.competencies, Competency(id="acme-craft", name="Craft")])
    with pytest.raises(InvalidInput) as refused:
        admin.put_framework(OPERATOR, org.org_id, unanchored, world.ctx)
    assert refused.value.field == "competencies[3].maps_to"
    other = admin.create_org(OPERATOR, org_input(name="Other"), world.ctx)
    with pytest.raises(Forbidden):
        admin.put_framework(org_admin(org.org_id), other.org_id, framework, world.ctx)


# ---------------------------------------------------------------------------- people


@pytest.fixture
def org_id(world) -> str:
    return admin.create_org(OPERATOR, org_input(), world.ctx).org_id


def test_people_are_created_once_per_hr_id_with_a_manager_from_the_org(world, org_id):
    caller = org_admin(org_id)
    boss = admin.create_person(caller, PersonCreate.model_validate(person_row("BOSS", level="manager")), world.ctx)
    assert boss.person_id == person_id_for(org_id, "BOSS")
    report = admin.create_person(
        caller, PersonCreate.model_validate(person_row("R1", manager_id=boss.person_id)), world.ctx
    )
    assert report.manager_id == boss.person_id
    with pytest.raises(Conflict, match="already exists"):
        admin.create_person(caller, PersonCreate.model_validate(person_row("R1")), world.ctx)
    with pytest.raises(InvalidInput, match="is not a person in this organisation") as unknown:
        admin.create_person(caller, PersonCreate.model_validate(person_row("R2", manager_id="nobody")), world.ctx)
    assert unknown.value.field == "manager_id"
    with pytest.raises(InvalidInput, match="cannot be their own manager"):
        admin.create_person(
            caller,
            PersonCreate.model_validate(person_row("SELF", manager_id=person_id_for(org_id, "SELF"))),
            world.ctx,
        )
    with pytest.raises(NotFound):
        admin.create_person(org_admin("no-such-org"), PersonCreate.model_validate(person_row("X")), world.ctx)


def test_people_are_read_by_themselves_or_their_org_admin_never_by_a_leader(world, org_id):
    person = admin.create_person(org_admin(org_id), PersonCreate.model_validate(person_row("P1")), world.ctx)
    me = Principal(person_id=person.person_id, org_id=org_id, roles=frozenset({Role.EMPLOYEE}))
    assert admin.get_person(me, person.person_id, world.ctx) == person
    leader = Principal(person_id="leader", org_id=org_id, roles=frozenset({Role.LEADER}))
    with pytest.raises(Forbidden):
        admin.get_person(leader, person.person_id, world.ctx)
    with pytest.raises(Forbidden):
        admin.list_people(leader, 10, None, world.ctx)
    with pytest.raises(NotFound):
        admin.get_person(org_admin(org_id), "missing", world.ctx)
    assert [p.person_id for p in admin.list_people(org_admin(org_id), 10, None, world.ctx).items] == [person.person_id]


def test_a_person_update_merges_and_validates_the_whole_person(world, org_id):
    caller = org_admin(org_id)
    person = admin.create_person(caller, PersonCreate.model_validate(person_row("P1")), world.ctx)
    promoted = admin.update_person(caller, person.person_id, PersonUpdate(level="manager"), world.ctx)
    assert (promoted.level, promoted.external_hr_id, promoted.name) == ("manager", "P1", person.name)
    with pytest.raises(InvalidInput) as refused:
        admin.update_person(caller, person.person_id, PersonUpdate.model_validate({"name": None}), world.ctx)
    assert refused.value.field == "name"
    with pytest.raises(InvalidInput, match="cannot be their own manager") as self_managed:
        admin.update_person(caller, person.person_id, PersonUpdate(manager_id=person.person_id), world.ctx)
    assert self_managed.value.field == "manager_id"
    with pytest.raises(InvalidInput, match="is not a person in this organisation"):
        admin.update_person(caller, person.person_id, PersonUpdate(manager_id="nobody"), world.ctx)
    assert admin.get_person(caller, person.person_id, world.ctx) == promoted
    with pytest.raises(NotFound):
        admin.update_person(caller, "missing", PersonUpdate(level="manager"), world.ctx)


def test_an_import_reports_each_bad_row_and_keeps_the_good_ones(world, org_id):
    rows: list = [
        person_row("OK1"),
        person_row("BAD-EMAIL", email="not-an-email"),
        person_row("BAD-2", level="wizard", time_zone="Nowhere/Land"),
        person_row("ORPHAN", manager_external_hr_id="NOBODY"),
        person_row("OK1", name="Twice"),
        "not a row",
        person_row("BOTH", manager_id="x", manager_external_hr_id="OK1"),
        person_row("LOOP", manager_external_hr_id="LOOP"),
        person_row("REPORT", manager_external_hr_id="OK1"),
    ]
    report = admin.import_people(org_admin(org_id), rows, world.ctx)
    assert (report.received, report.created, report.failed) == (9, 2, 7)
    by_row = {e.row: {f["field"] for f in e.errors} for e in report.errors}
    assert by_row == {
        2: {"email"},
        3: {"level", "time_zone"},
        4: {"manager_external_hr_id"},
        5: {"external_hr_id"},
        6: {"row"},
        7: {"manager_id"},
        8: {"manager_external_hr_id"},
    }
    assert [e.row for e in report.errors] == sorted(by_row)
    reported = world.people.get(org_id, person_id_for(org_id, "REPORT"))
    assert reported is not None
    assert reported.manager_id == person_id_for(org_id, "OK1")


def test_an_import_is_idempotent_and_updates_only_what_changed(world, org_id):
    rows = [person_row(f"E{i:03d}") for i in range(250)]
    first = admin.import_people(org_admin(org_id), rows, world.ctx)
    assert (first.created, first.updated, first.unchanged, first.failed) == (250, 0, 0, 0)
    assert world.people.batches == 3  # transactions of at most 100 rows
    rows[7]["department"] = "Reorganised"
    second = admin.import_people(org_admin(org_id), rows, world.ctx)
    assert (second.created, second.updated, second.unchanged) == (0, 1, 249)
    person = world.people.get(org_id, person_id_for(org_id, "E007"))
    assert person is not None
    assert person.department == "Reorganised"
    assert person.created_at < person.updated_at


def test_an_import_rereads_a_chunk_someone_changed_and_refuses_the_oversized(world, org_id):
    admin.import_people(org_admin(org_id), [person_row("E1")], world.ctx)
    someone = person_id_for(org_id, "E1")
    world.people.before_commit = lambda people: people.bump(org_id, someone)
    report = admin.import_people(org_admin(org_id), [person_row("E1", department="New")], world.ctx)
    assert (report.updated, world.people.refused) == (1, 1)
    person = world.people.get(org_id, someone)
    assert person is not None
    assert person.department == "New"
    with pytest.raises(InvalidInput, match="at most 10,000 rows") as refused:
        admin.import_people(org_admin(org_id), [{}] * 10_001, world.ctx)
    assert refused.value.field == "people"


def test_an_import_that_never_stops_conflicting_gives_up_with_a_conflict(world, org_id, monkeypatch):
    admin.import_people(org_admin(org_id), [person_row("E1")], world.ctx)
    someone = person_id_for(org_id, "E1")
    monkeypatch.setattr(admin, "_backoff", lambda attempt: None)

    def always(people):
        people.bump(org_id, someone)
        people.before_commit = always

    world.people.before_commit = always
    with pytest.raises(Conflict, match="changed concurrently"):
        admin.import_people(org_admin(org_id), [person_row("E1", department="New")], world.ctx)


# ---------------------------------------------------------------------------- coaches


def test_coaches_start_pending_and_only_operators_or_the_coach_read_them(world):
    coach = admin.create_coach(OPERATOR, coach_input(), world.ctx)
    assert (coach.vetting_status, coach.vetting_history) == (VettingStatus.PENDING, [])
    self_view = Principal(person_id=coach.coach_id, org_id=None, roles=frozenset({Role.COACH}))
    assert admin.get_coach(self_view, coach.coach_id, world.ctx) == coach
    other = Principal(person_id="other", org_id=None, roles=frozenset({Role.COACH}))
    with pytest.raises(Forbidden):
        admin.get_coach(other, coach.coach_id, world.ctx)
    with pytest.raises(Forbidden):
        admin.create_coach(self_view, coach_input(), world.ctx)
    with pytest.raises(NotFound):
        admin.get_coach(OPERATOR, "missing", world.ctx)
    approve(world, coach.coach_id)
    assert [c.coach_id for c in admin.list_coaches(OPERATOR, VettingStatus.APPROVED, 10, None, world.ctx).items] == [
        coach.coach_id
    ]
    assert admin.list_coaches(OPERATOR, VettingStatus.PENDING, 10, None, world.ctx).items == []


@pytest.mark.parametrize(
    ("years", "hours", "field"),
    [(9, 800, "operating_experience_years"), (15, 249, "paid_coaching_hours")],
)
def test_approval_below_the_thresholds_is_refused_naming_the_field(world, years, hours, field):
    coach = admin.create_coach(
        OPERATOR, coach_input(operating_experience_years=years, paid_coaching_hours=hours), world.ctx
    )
    with pytest.raises(InvalidInput) as refused:
        approve(world, coach.coach_id)
    assert refused.value.field == field
    assert world.coaches.get(coach.coach_id) == coach
    assert world.coaches.events == []


def test_the_thresholds_are_the_contexts(world):
    world.thresholds = VettingThresholds(min_operating_years=2, min_paid_coaching_hours=40)
    junior = admin.create_coach(OPERATOR, coach_input(operating_experience_years=3, paid_coaching_hours=40), world.ctx)
    approve(world, junior.coach_id)
    assert world.coaches.get(junior.coach_id).vetting_status is VettingStatus.APPROVED


def test_a_vetting_change_is_recorded_and_announced_once_per_change_of_status(world):
    coach = admin.create_coach(OPERATOR, coach_input(), world.ctx)
    approved = admin.set_vetting(
        OPERATOR, coach.coach_id, VettingDecision(status=VettingStatus.APPROVED, reason="interviewed"), world.ctx
    )
    assert approved.last_decision_changed_status
    assert [(e.status, e.reason, e.actor) for e in approved.vetting_history] == [
        (VettingStatus.APPROVED, "interviewed", OPERATOR.person_id)
    ]
    again = admin.set_vetting(OPERATOR, coach.coach_id, VettingDecision(status=VettingStatus.APPROVED), world.ctx)
    assert len(again.vetting_history) == 2
    assert not again.last_decision_changed_status
    admin.set_vetting(OPERATOR, coach.coach_id, VettingDecision(status=VettingStatus.SUSPENDED), world.ctx)
    changes = [(e.coach_id, e.previous_status, e.vetting_status) for e in world.coaches.events]
    assert changes == [(coach.coach_id, "pending", "approved"), (coach.coach_id, "approved", "suspended")]
    assert all(isinstance(e, CoachVettingChanged) for e in world.coaches.events)
    with pytest.raises(NotFound):
        admin.set_vetting(OPERATOR, "missing", VettingDecision(status=VettingStatus.APPROVED), world.ctx)
    with pytest.raises(Forbidden):
        admin.set_vetting(org_admin("o"), coach.coach_id, VettingDecision(status=VettingStatus.APPROVED), world.ctx)


def test_a_vetting_change_that_races_is_applied_again_to_the_fresh_coach(world):
    coach = admin.create_coach(OPERATOR, coach_input(), world.ctx)

    def suspended_meanwhile(coaches):
        current, version = coaches.records[coach.coach_id]
        suspended = current.vetted(
            VettingDecision(status=VettingStatus.SUSPENDED), "other-operator", world.now, world.thresholds
        )
        coaches.records[coach.coach_id] = (suspended, version + 1)

    world.coaches.before_commit = suspended_meanwhile
    approved = admin.set_vetting(OPERATOR, coach.coach_id, VettingDecision(status=VettingStatus.APPROVED), world.ctx)
    assert world.coaches.attempts == 2
    assert [e.actor for e in approved.vetting_history] == ["other-operator", OPERATOR.person_id]
    # The event describes the change that committed: from suspended, not from pending.
    [event] = world.coaches.events
    assert (event.previous_status, event.vetting_status) == ("suspended", "approved")


def test_a_profile_update_of_an_approved_coach_reaches_the_roster_and_keeps_the_bar(world):
    coach = admin.create_coach(OPERATOR, coach_input(), world.ctx)
    pending = admin.update_coach(OPERATOR, coach.coach_id, CoachUpdate(bio="New bio"), world.ctx)
    assert pending.bio == "New bio"
    assert world.coaches.events == []  # not in the roster: nothing to announce
    approve(world, coach.coach_id)
    updated = admin.update_coach(OPERATOR, coach.coach_id, CoachUpdate(capacity=9), world.ctx)
    assert (updated.capacity, updated.bio, updated.vetting_status) == (9, "New bio", VettingStatus.APPROVED)
    assert [type(e) for e in world.coaches.events] == [CoachVettingChanged, CoachProfileUpdated]
    with pytest.raises(InvalidInput) as below:
        admin.update_coach(OPERATOR, coach.coach_id, CoachUpdate(paid_coaching_hours=10), world.ctx)
    assert below.value.field == "paid_coaching_hours"
    assert world.coaches.get(coach.coach_id) == updated
    with pytest.raises(NotFound):
        admin.update_coach(OPERATOR, "missing", CoachUpdate(bio="x"), world.ctx)


@pytest.mark.parametrize("field", ["name", "email", "languages", "capacity", "programs", "bio", "time_zone"])
def test_a_coach_update_with_null_for_a_required_field_is_invalid_input_naming_it(world, field):
    coach = admin.create_coach(OPERATOR, coach_input(), world.ctx)
    with pytest.raises(InvalidInput) as refused:
        admin.update_coach(OPERATOR, coach.coach_id, CoachUpdate.model_validate({field: None}), world.ctx)
    assert refused.value.field == field
    assert f"{field}: cannot be null" in refused.value.message
    assert world.coaches.get(coach.coach_id) == coach
