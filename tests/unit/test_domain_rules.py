import uuid
from datetime import UTC, datetime

import pytest
from coaching.adapters import keys
from coaching.domain.coaches import Coach, CoachCreate, VettingThresholds, check_vetting_thresholds
from coaching.domain.competencies import Competency, Framework, check_calibration, default_framework
from coaching.domain.errors import InvalidInput
from coaching.domain.orgs import OrgCreate
from coaching.domain.people import ImportRow, rows_from_csv
from coaching.domain.taxonomy import Level
from coaching.ids import decode_cursor, encode_cursor, person_id_for
from pydantic import ValidationError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def coach(years: int, hours: int) -> Coach:
    profile = CoachCreate(
        name="Ada Coach",
        email="ada@example.com",
        languages=["en"],
        time_zone="Europe/London",
        operating_experience_years=years,
        paid_coaching_hours=hours,
        programs=["SCALE"],
        capacity=5,
    )
    return Coach(coach_id="c1", created_at=NOW, updated_at=NOW, **profile.model_dump())


@pytest.mark.parametrize(
    ("years", "hours", "field"),
    [(9, 250, "operating_experience_years"), (10, 249, "paid_coaching_hours"), (0, 0, "operating_experience_years")],
)
def test_vetting_refuses_below_thresholds_naming_the_field(years, hours, field):
    with pytest.raises(InvalidInput) as refused:
        check_vetting_thresholds(coach(years, hours), min_years=10, min_hours=250)
    assert refused.value.field == field


def test_vetting_thresholds_are_configurable():
    check_vetting_thresholds(coach(10, 250), min_years=10, min_hours=250)
    check_vetting_thresholds(coach(3, 40), min_years=2, min_hours=40)


def test_reporting_group_size_never_below_three():
    base = {"name": "Acme", "time_zone": "Europe/Berlin", "currency": "EUR", "industry": "retail"}
    assert OrgCreate(**base).min_reporting_group_size == 5
    with pytest.raises(ValidationError) as refused:
        OrgCreate(**base, min_reporting_group_size=2)
    assert refused.value.errors()[0]["loc"] == ("min_reporting_group_size",)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "/etc/passwd", "../UTC"])
def test_time_zones_must_be_iana(zone):
    with pytest.raises(ValidationError):
        OrgCreate(name="Acme", time_zone=zone, currency="EUR", industry="retail")


def test_default_framework_ships_and_calibration_keeps_the_shared_vocabulary():
    framework = default_framework()
    assert len(framework.competencies) >= 15
    calibrated = Framework(
        name="Acme leadership",
        competencies=[
            Competency(id="giving-feedback", name="Feedback the Acme way"),
            Competency(id="acme-ownership", name="Ownership", maps_to="delegation"),
            Competency(id="acme-craft", name="Craft"),
        ],
    )
    assert check_calibration(calibrated) == [
        ("competencies[2].maps_to", "'acme-craft' must map to a default competency ('acme-craft' is not one)")
    ]


def test_framework_refuses_duplicate_ids():
    with pytest.raises(ValidationError, match="repeated: a-b"):
        Framework(
            name="x",
            competencies=[Competency(id="a-b", name="A"), Competency(id="a-b", name="B"), Competency(id="c", name="C")],
        )


def test_csv_rows_parse_lists_and_flags():
    rows = rows_from_csv(
        "external_hr_id,name,email,level,function,languages,time_zone,active\n"
        "E1,Ana,ana@x.io,manager,sales,es;en,Europe/Madrid,no\n"
    )
    assert rows == [
        {
            "external_hr_id": "E1",
            "name": "Ana",
            "email": "ana@x.io",
            "level": "manager",
            "function": "sales",
            "languages": ["es", "en"],
            "time_zone": "Europe/Madrid",
            "active": False,
        }
    ]
    assert ImportRow.model_validate(rows[0]).languages == ["es", "en"]


def test_person_ids_are_stable_per_org_and_hr_id():
    org_a, org_b = str(uuid.uuid4()), str(uuid.uuid4())
    assert person_id_for(org_a, "E1") == person_id_for(org_a, "E1")
    assert person_id_for(org_a, "E1") != person_id_for(org_b, "E1")


def test_cursor_round_trip_and_tenant_check():
    key = {"pk": {"S": keys.people_pk("a")}, "sk": {"S": keys.person_sk("1")}}
    cursor = encode_cursor(key)
    assert decode_cursor(cursor, expected_pk=keys.people_pk("a")) == key
    with pytest.raises(InvalidInput) as foreign:
        decode_cursor(cursor, expected_pk=keys.people_pk("b"))
    assert foreign.value.field == "cursor"
    with pytest.raises(InvalidInput):
        decode_cursor("not-a-cursor!!", expected_pk=keys.people_pk("a"))


# ---------------------------------------------------------------------------- partial updates


def test_a_partial_update_is_validated_merged_and_null_for_a_required_field_names_it():
    from coaching.domain.orgs import Org, OrgUpdate
    from coaching.domain.updates import validated

    org = Org.create("o1", OrgCreate(name="Acme", time_zone="UTC", currency="EUR", industry="retail"), NOW)
    with pytest.raises(InvalidInput) as refused:
        org.updated(OrgUpdate.model_validate({"name": None, "currency": None}), NOW)
    assert refused.value.field == "name"
    assert refused.value.details["problems"] == [
        {"field": "name", "message": "cannot be null"},
        {"field": "currency", "message": "cannot be null"},
    ]
    assert refused.value.status == 422
    assert org.updated(OrgUpdate(name="Acme Group"), NOW).currency == "EUR"

    with pytest.raises(InvalidInput) as nested:
        validated(Coach, coach(15, 800).model_dump() | {"weekly_availability": [None]}, "coach")
    assert nested.value.field == "weekly_availability[0]"


def test_vetting_decisions_are_recorded_and_approval_keeps_the_bar():
    from coaching.domain.coaches import CoachUpdate, VettingDecision, VettingStatus

    bar = VettingThresholds(min_operating_years=10, min_paid_coaching_hours=250)
    approved = coach(10, 250).vetted(VettingDecision(status=VettingStatus.APPROVED, reason="ok"), "op", NOW, bar)
    assert (approved.vetting_status, approved.vetting_history[-1].actor) == (VettingStatus.APPROVED, "op")
    assert approved.last_decision_changed_status
    with pytest.raises(InvalidInput) as below:
        approved.updated(CoachUpdate(operating_experience_years=3), NOW, bar)
    assert below.value.field == "operating_experience_years"
    suspended = approved.vetted(VettingDecision(status=VettingStatus.SUSPENDED), "op", NOW, bar)
    assert suspended.updated(CoachUpdate(operating_experience_years=3), NOW, bar).operating_experience_years == 3
    with pytest.raises(InvalidInput):
        coach(9, 250).vetted(VettingDecision(status=VettingStatus.APPROVED), "op", NOW, bar)


def test_a_person_update_refuses_self_management_and_null_names():
    from coaching.domain.people import Person, PersonCreate, PersonUpdate

    data = PersonCreate(
        external_hr_id="E1",
        name="Ana",
        email="ana@example.com",
        level="manager",
        function="sales",
        languages=["es"],
        time_zone="Europe/Madrid",
    )
    person = Person.create("p1", "o1", data, NOW)
    with pytest.raises(InvalidInput, match="own manager"):
        person.updated(PersonUpdate(manager_id="p1"), NOW)
    with pytest.raises(InvalidInput) as refused:
        person.updated(PersonUpdate.model_validate({"languages": None}), NOW)
    assert refused.value.field == "languages"
    assert person.at_level(Level.SENIOR_LEADER).level is Level.SENIOR_LEADER
    assert person.level is Level.MANAGER
