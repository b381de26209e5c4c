"""Competency growth by GROW cohort and programme on DynamoDB Local.

The real paths: the rollups consume the programme events and rebuild from source (`RollupSourceStore`,
`RollupStore`); the 360 service releases rounds through `DevelopmentStore`, whose `participation` reads the
person's engagements and cohorts, into the capture tallies; the reports read cells and tallies through
`ReportReader`. The report's growth cells per cohort and per programme are the ones computed from source, and
stay identical when the month is rebuilt from source.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from coaching.adapters import keys
from coaching.adapters.development_store import DevelopmentStore
from coaching.adapters.dynamo import MainItem, MarkerItem, admin_ports
from coaching.adapters.rollup_store import ReportReader, RollupSourceStore, RollupStore
from coaching.auth import Principal, Role
from coaching.domain.assessments import AssessmentRequest
from coaching.domain.events import CohortEnrolled, EngagementStarted
from coaching.domain.orgs import OrgCreate
from coaching.domain.reporting import Rollup
from coaching.domain.rollups import rollup_from_counters, tally_of
from coaching.services import admin, assessments, rollups
from coaching.services.assessments import AssessmentContext
from coaching.services.rollups import RollupContext
from coaching_local.seed import OPERATOR, people_rows

from tests.unit.fakes.rollups import make_cohort, make_engagement

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
PERIOD = NOW.strftime("%Y-%m")
COMPETENCIES = ["delegation", "giving-feedback", "decision-making"]


def _round(context: AssessmentContext, caller: Principal, rating: int, baseline_id: str | None = None) -> str:
    raters = [{"group": "peer"}] * 3
    request: dict[str, object] = {"competencies": COMPETENCIES, "raters": raters}
    if baseline_id:
        request |= {"kind": "follow_up", "baseline_id": baseline_id}
    opened = assessments.open_round(caller, AssessmentRequest.model_validate(request), context)
    for invite in opened.invites:
        assessments.answer_by_link(invite.token, dict.fromkeys(COMPETENCIES, rating), context)
    view = assessments.answer_self(caller, opened.assessment.assessment_id, dict.fromkeys(COMPETENCIES, 3), context)
    assert view.status.value == "released"
    return opened.assessment.assessment_id


def _report_rollup(org_id: str) -> Rollup:
    reader = ReportReader()
    meta, cells = reader.month(org_id, PERIOD)
    assert meta is not None
    tallies = [tally_of(t) for t in reader.tallies(org_id, PERIOD)]
    return rollup_from_counters(org_id, PERIOD, cells, tallies, meta.priorities)


def test_growth_by_cohort_and_programme_from_the_release_path_equals_the_source_and_survives_a_rebuild(
    dynamodb_local,
) -> None:
    ctx = admin.AdminContext(**admin_ports())
    org = admin.create_org(OPERATOR, OrgCreate(name=f"Growth {uuid.uuid4().hex[:6]}", time_zone="UTC", currency="EUR",
                                               industry="technology"), ctx)  # fmt: skip
    caller = Principal(person_id="admin", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
    assert admin.import_people(caller, people_rows(org.org_id, 10, seed=12, home_zone="UTC"), ctx).created == 10
    rollup_ctx = RollupContext(source=RollupSourceStore(), store=RollupStore(), clock=lambda: NOW)
    rollups.rebuild(org.org_id, PERIOD, rollup_ctx)
    ids = sorted(s.person.person_id for s in rollup_ctx.source.people(org.org_id) if s.person)
    cohort_members, scale = ids[:6], ids[6]
    first = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    cohort = make_cohort("k-growth", first.date().isoformat()).model_copy(update={"org_id": org.org_id})
    MainItem(keys.cohort_pk(org.org_id, cohort.cohort_id), keys.COHORT_SK, kind="cohort",
             body=cohort.model_dump_json()).save()  # fmt: skip
    for person_id in cohort_members:
        MarkerItem(keys.person_pk(org.org_id, person_id), keys.participation_sk("COHORT", cohort.cohort_id),
                   kind="participation", ref=cohort.cohort_id).save()  # fmt: skip
        rollups.on_person_event(CohortEnrolled(org_id=org.org_id, cohort_id=cohort.cohort_id, person_id=person_id,
                                               source_of="admin", occurred_at=first), rollup_ctx)  # fmt: skip
    people = {s.person.person_id: s.person for s in rollup_ctx.source.people(org.org_id) if s.person}
    engagement = make_engagement(people[scale], "SCALE", first.date().isoformat()).model_copy(
        update={"org_id": org.org_id}
    )
    MainItem(keys.person_pk(org.org_id, scale), keys.engagement_sk(engagement.engagement_id), kind="engagement",
             body=engagement.model_dump_json()).save()  # fmt: skip
    rollups.on_person_event(EngagementStarted(org_id=org.org_id, person_id=scale, coach_id="c1", program="SCALE",
                                              engagement_id=engagement.engagement_id, occurred_at=first),
                            rollup_ctx)  # fmt: skip

    # Each of them takes a baseline (others rate 2) and a follow-up (others rate 3 in the cohort, 4 in SCALE).
    development = AssessmentContext(store=DevelopmentStore(), clock=lambda: NOW)
    for person_id in [*cohort_members, scale]:
        employee = Principal(person_id=person_id, org_id=org.org_id, roles=frozenset({Role.EMPLOYEE}))
        baseline = _round(development, employee, 2)
        _round(development, employee, 4 if person_id == scale else 3, baseline)

    from_events = _report_rollup(org.org_id)
    growth = from_events.cell((("grow_cohort", PERIOD),)).measures["competency_growth"]
    assert (growth.people, growth.total) == (6, 6.0)  # six people, one point each
    assert from_events.cell((("grow_cohort", PERIOD),)).measures["competency_baseline"].total == 12.0
    assert from_events.cell((("programme", "GROW"),)).measures["competency_growth"].people == 6
    scale_growth = from_events.cell((("programme", "SCALE"),)).measures["competency_growth"]
    assert (scale_growth.people, scale_growth.total) == (1, 2.0)
    none = from_events.cell((("grow_cohort", "none"),)).measures["competency_growth"]
    assert (none.people, none.total) == (1, 2.0)  # the SCALE coachee is in no GROW cohort
    assert from_events.cell(()).measures["competency_growth"].people == 7
    # The rollups' own cohort cell has the same six people the growth cell counts.
    assert from_events.cell((("grow_cohort", PERIOD),)).people == 6

    result = rollups.rebuild(org.org_id, PERIOD, rollup_ctx)
    assert (result.contributions_changed, result.cells_rewritten) == (0, 0)
    assert _report_rollup(org.org_id) == from_events
