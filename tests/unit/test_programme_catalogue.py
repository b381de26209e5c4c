"""The programme catalogue: shipped defaults, validation, who reads and changes it, eligibility, and the
policy snapshot rule (a change never reaches what was made before it)."""

from datetime import timedelta

import pytest
from coaching.auth import Principal, Role
from coaching.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from coaching.domain.grow import AttendanceMark, AttendanceRequest, GrowCohortRequest
from coaching.domain.programmes import (
    CatalogueInput,
    GrowSettings,
    ProgrammeCatalogue,
    ProgrammePolicy,
    ProgrammeSettings,
    TogetherSettings,
)
from coaching.domain.taxonomy import Level, Program
from coaching.services import grow, programmes
from pydantic import ValidationError

from .fakes.programmes import ADMIN, FINANCE, GROW_COACH, LEADER, ORG, ProgrammesWorld, coach_principal

OTHER_ADMIN = Principal(person_id="admin-2", org_id="org-2", roles=frozenset({Role.ORG_ADMIN}))


def test_the_platform_ships_the_four_programmes_defaults():
    catalogue = ProgrammeCatalogue.defaults(ORG)
    assert catalogue.SCALE.eligible_levels == list(Level)
    assert (catalogue.SCALE.session_minutes, catalogue.SCALE.monthly_allowance) == (30, 2)
    assert catalogue.GROW.eligible_levels == [Level.FIRST_TIME_MANAGER]
    assert (catalogue.GROW.weeks, catalogue.GROW.transition) == (8, "new_manager")
    assert (catalogue.GROW.min_size, catalogue.GROW.max_size, catalogue.GROW.opens_when_waiting) == (6, 20, 8)
    assert catalogue.EXEC.eligible_levels == [Level.SENIOR_LEADER, Level.EXECUTIVE]
    assert catalogue.EXEC.session_minutes == 60
    assert (catalogue.TOGETHER.min_participants, catalogue.TOGETHER.max_participants) == (4, 20)
    assert (catalogue.TOGETHER.min_minutes, catalogue.TOGETHER.max_minutes) == (60, 240)
    assert all(catalogue.settings(p).enabled for p in Program)
    # A GET's body is a valid PUT.
    assert CatalogueInput.model_validate(catalogue.model_dump(exclude={"org_id", "updated_at", "updated_by"}))


@pytest.mark.parametrize(
    ("model", "values", "field"),
    [
        (GrowSettings, {"min_size": 5}, "min_size"),
        (GrowSettings, {"max_size": 21}, "max_size"),
        (GrowSettings, {"min_size": 12, "max_size": 10, "opens_when_waiting": 10}, None),
        (GrowSettings, {"opens_when_waiting": 21}, "opens_when_waiting"),
        (GrowSettings, {"min_size": 10, "opens_when_waiting": 8}, None),
        (GrowSettings, {"transition": "New Managers"}, "transition"),
        (TogetherSettings, {"min_participants": 3}, "min_participants"),
        (TogetherSettings, {"max_participants": 21}, "max_participants"),
        (TogetherSettings, {"min_minutes": 45}, "min_minutes"),
        (TogetherSettings, {"max_minutes": 300}, "max_minutes"),
        (TogetherSettings, {"min_participants": 10, "max_participants": 8}, None),
        (TogetherSettings, {"min_minutes": 180, "max_minutes": 120}, None),
        (ProgrammeSettings, {"eligible_levels": []}, "eligible_levels"),
        (ProgrammeSettings, {"eligible_levels": ["intern"]}, "eligible_levels"),
        (ProgrammeSettings, {"session_minutes": 10}, "session_minutes"),
    ],
)
def test_settings_outside_the_platforms_bounds_are_refused(model, values, field):
    base = {"eligible_levels": ["manager"], "session_minutes": 60}
    with pytest.raises(ValidationError) as refused:
        model.model_validate(base | values)
    locations = {str(error["loc"][0]) for error in refused.value.errors() if error["loc"]}
    if field is not None:
        assert field in locations


def test_an_org_admin_changes_the_catalogue_and_readers_see_it():
    world = ProgrammesWorld.create()
    ctx = world.programmes
    body = CatalogueInput.model_validate(
        ProgrammeCatalogue.defaults(ORG).model_dump(include={"SCALE", "GROW", "EXEC", "TOGETHER"})
        | {"TOGETHER": TogetherSettings(eligible_levels=["manager"], session_minutes=90, enabled=False)}
    )
    saved = programmes.put_catalogue(ADMIN, ORG, body, ctx)
    assert (saved.updated_by, saved.updated_at, saved.TOGETHER.enabled) == ("admin-1", world.clock.now, False)
    for reader in (ADMIN, FINANCE, LEADER):
        assert programmes.get_catalogue(reader, ORG, ctx) == saved
    with pytest.raises(Forbidden):
        programmes.put_catalogue(LEADER, ORG, body, ctx)
    with pytest.raises(Forbidden):
        programmes.put_catalogue(OTHER_ADMIN, ORG, body, ctx)
    with pytest.raises(Forbidden):
        programmes.get_catalogue(coach_principal(GROW_COACH), ORG, ctx)
    unknown = Principal(person_id="admin-9", org_id="org-9", roles=frozenset({Role.ORG_ADMIN}))
    with pytest.raises(NotFound):
        programmes.get_catalogue(unknown, "org-9", ctx)


def test_a_concurrent_change_of_the_catalogue_is_a_conflict(monkeypatch):
    world = ProgrammesWorld.create()
    world.set_catalogue()  # stored at version 1
    read_before = world.store.org_and_catalogue(ORG)
    programmes.put_catalogue(ADMIN, ORG, CatalogueInput(), world.programmes)  # someone else saves first
    # This request read the catalogue before that save: its save is conditional on the old version.
    monkeypatch.setattr(world.store, "org_and_catalogue", lambda org_id: read_before)
    with pytest.raises(Conflict) as refused:
        programmes.put_catalogue(ADMIN, ORG, CatalogueInput(), world.programmes)
    assert refused.value.field == "catalogue"
    assert world.store.catalogues[ORG][1] == 2


def test_a_concurrent_change_of_the_org_is_a_conflict_and_nothing_is_saved(monkeypatch):
    world = ProgrammesWorld.create()
    read_before = world.store.org_and_catalogue(ORG)
    assert read_before is not None
    # The org changes after this request read it (its version moves): the save is conditional on the old one.
    world.store.org_versions[ORG] = read_before[1] + 1
    monkeypatch.setattr(world.store, "org_and_catalogue", lambda org_id: read_before)
    with pytest.raises(Conflict) as refused:
        programmes.put_catalogue(ADMIN, ORG, CatalogueInput(), world.programmes)
    assert refused.value.field == "catalogue"
    assert ORG not in world.store.catalogues


def test_eligibility_by_level_names_the_rule():
    catalogue = ProgrammeCatalogue.defaults(ORG)
    assert catalogue.require_open_to(Program.EXEC, Level.EXECUTIVE).session_minutes == 60
    with pytest.raises(InvalidInput) as refused:
        catalogue.require_open_to(Program.EXEC, Level.MANAGER)
    assert refused.value.field == "person_id"
    assert "EXEC is for senior_leader, executive" in refused.value.message
    disabled = ProgrammeCatalogue.model_validate(
        catalogue.model_dump() | {"EXEC": catalogue.EXEC.model_dump() | {"enabled": False}}
    )
    with pytest.raises(Forbidden) as off:
        disabled.require_open_to(Program.EXEC, Level.EXECUTIVE)
    assert off.value.field == "program"


def test_a_policy_snapshots_what_the_catalogue_said():
    settings = ProgrammeCatalogue.defaults(ORG).TOGETHER
    policy = ProgrammePolicy.of(Program.TOGETHER, settings, 180)
    assert (policy.session_minutes, policy.late_cancel_hours, policy.bill_late_cancels) == (180, 72, True)
    assert ProgrammePolicy.of(Program.GROW, ProgrammeCatalogue.defaults(ORG).GROW).session_minutes == 60


def test_changing_the_catalogue_never_changes_a_cohort_already_made():
    world = ProgrammesWorld.create()
    people = world.add_people(6)
    start_date = (world.clock.now + timedelta(days=14)).date()
    cohort = grow.open_cohort(ADMIN, ORG, GrowCohortRequest(size=6, language="en", start_date=start_date), world.grow)
    assert cohort.policy.bill_no_shows is True
    for person in people:
        grow.enrol(ADMIN, ORG, cohort.cohort_id, person, world.grow)
    view = grow.match_coaches(ADMIN, ORG, cohort.cohort_id, world.grow)
    # The org stops billing GROW no-shows afterwards: the cohort keeps the policy it was made with.
    world.set_catalogue(GROW={"bill_no_shows": False})
    session = view.sessions[0]
    world.at(session.start + timedelta(hours=1))
    marks = dict.fromkeys(people, AttendanceMark.ATTENDED) | {people[0]: AttendanceMark.NO_SHOW}
    done = grow.record_attendance(
        coach_principal(GROW_COACH),
        ORG,
        cohort.cohort_id,
        session.session_id,
        AttendanceRequest(attendance=marks),
        world.grow,
    )
    no_show = world.store.entries_for(done.unit_id(people[0]))
    assert [(e.outcome.value, e.amount_minor) for e in no_show] == [("no_show", 9_000)]
    # A cohort opened after the change follows the new catalogue.
    next_start = (world.clock.now + timedelta(days=14)).date()
    later = grow.open_cohort(ADMIN, ORG, GrowCohortRequest(size=6, language="en", start_date=next_start), world.grow)
    assert later.policy.bill_no_shows is False


def test_matching_follows_the_orgs_catalogue_for_who_each_programme_is_for():
    from coaching.domain.matching import MatchRequestIn
    from coaching.services import matching

    from .fakes.matching import MatchingWorld, make_coach

    world = MatchingWorld()
    (exec_coach,) = world.coaches(make_coach("exec", programs=["SCALE", "EXEC"]))
    manager = world.person(level="manager")
    body = MatchRequestIn.model_validate(
        {"program": "EXEC", "focus_competencies": ["delegation"], "situation": "Leading a merger of two teams."}
    )
    # The shipped catalogue: EXEC is for senior leaders and executives.
    with pytest.raises(InvalidInput) as refused:
        matching.request_match(manager, body, world.ctx)
    assert refused.value.field == "program"
    assert refused.value.message == (
        "EXEC coaching is for senior leaders and executives in your organisation; you are manager"
    )
    assert refused.value.details == {"eligible_levels": ["senior_leader", "executive"], "level": "manager"}
    # An org that opens EXEC to its managers: the same request is matched.
    opened = ProgrammeCatalogue.defaults(world.org.org_id)
    opened = ProgrammeCatalogue.model_validate(
        opened.model_dump() | {"EXEC": opened.EXEC.model_dump() | {"eligible_levels": ["manager", "executive"]}}
    )
    world.store.catalogues[world.org.org_id] = opened
    assert [p.coach_id for p in matching.request_match(manager, body, world.ctx).proposals] == [exec_coach.coach_id]
    # An org that has not enabled EXEC: refused, naming the programme.
    closed = ProgrammeCatalogue.model_validate(
        opened.model_dump() | {"EXEC": opened.EXEC.model_dump() | {"enabled": False}}
    )
    world.store.catalogues[world.org.org_id] = closed
    with pytest.raises(Forbidden) as off:
        matching.request_match(manager, body, world.ctx)
    assert off.value.field == "program"


def test_the_catalogues_monthly_allowances_become_the_allowances_1_to_1_booking_enforces():
    from coaching.domain.booking import Allowance, BookingPolicy

    world = ProgrammesWorld.create()
    ctx = world.programmes
    # A per-level override the org set on its booking policy survives a catalogue change.
    senior = {Level.SENIOR_LEADER: 6}
    policy = BookingPolicy(allowances={Program.EXEC: Allowance(sessions=4, by_level=senior)}, max_upcoming=5)
    world.store.orgs[ORG] = world.store.orgs[ORG].with_booking_policy(policy, world.clock.now)
    defaults = ProgrammeCatalogue.defaults(ORG).model_dump(include={"SCALE", "GROW", "EXEC", "TOGETHER"})
    body = CatalogueInput.model_validate(
        defaults
        | {"SCALE": defaults["SCALE"] | {"monthly_allowance": 1}, "EXEC": defaults["EXEC"] | {"monthly_allowance": 3}}
    )
    programmes.put_catalogue(ADMIN, ORG, body, ctx)
    booking = world.store.orgs[ORG].booking
    assert booking is not None
    assert booking.allowances[Program.SCALE].sessions == 1
    assert (booking.allowances[Program.EXEC].sessions, booking.allowances[Program.EXEC].by_level) == (3, senior)
    assert booking.max_upcoming == 5  # the rest of the policy is the org's own
    assert booking.allowances[Program.EXEC].for_level(Level.MANAGER) == 3


def test_a_1_to_1_programmes_session_length_is_the_platforms_and_a_change_is_refused_naming_it():
    world = ProgrammesWorld.create()
    defaults = ProgrammeCatalogue.defaults(ORG).model_dump(include={"SCALE", "GROW", "EXEC", "TOGETHER"})
    body = CatalogueInput.model_validate(defaults | {"SCALE": defaults["SCALE"] | {"session_minutes": 45}})
    with pytest.raises(InvalidInput) as refused:
        programmes.put_catalogue(ADMIN, ORG, body, world.programmes)
    assert refused.value.field == "SCALE.session_minutes"
    assert programmes.get_catalogue(ADMIN, ORG, world.programmes).SCALE.session_minutes == 30
