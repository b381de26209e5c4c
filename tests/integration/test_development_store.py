"""The capture store on DynamoDB Local: goals and their tallies through the real transactions, and the
reports' read port (`TallyReader`), which returns cells that name nobody and equal what the captures added."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from coaching.adapters import keys
from coaching.adapters.development_store import DevelopmentStore, TallyReader
from coaching.adapters.dynamo import admin_ports
from coaching.adapters.outbox import OutboxItem
from coaching.auth import Principal, Role
from coaching.domain.assessments import AssessmentRequest
from coaching.domain.common import utc_now
from coaching.domain.errors import PolicyRefused
from coaching.domain.goals import CheckInRequest, GoalCreate
from coaching.domain.orgs import OrgCreate
from coaching.ids import person_id_for
from coaching.services import admin, assessments, goals
from coaching.services.assessments import AssessmentContext
from coaching.services.goals import GoalContext
from coaching_local.seed import OPERATOR, people_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def people(dynamodb_local) -> tuple[str, list[Principal]]:
    ctx = admin.AdminContext(**admin_ports())
    org = admin.create_org(
        OPERATOR,
        OrgCreate(name=f"Dev {uuid.uuid4().hex[:6]}", time_zone="UTC", currency="EUR", industry="technology"),
        ctx,
    )
    org_admin = Principal(person_id="admin-dev", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
    rows = people_rows(org.org_id, 6, seed=3, home_zone="UTC")
    assert admin.import_people(org_admin, rows, ctx).created == 6
    ids = [person_id_for(org.org_id, row["external_hr_id"]) for row in rows]
    return org.org_id, [Principal(person_id=pid, org_id=org.org_id, roles=frozenset({Role.EMPLOYEE})) for pid in ids]


def test_goals_race_to_three_and_the_tallies_read_back_exactly_without_a_person(people):
    org_id, employees = people
    ctx = GoalContext(store=DevelopmentStore(), clock=utc_now)
    body = GoalCreate(title="Coach my team", competencies=["coaching-others", "delegation"])

    def attempt(_: int) -> str:
        try:
            goals.set_goal(employees[0], body, ctx)
        except PolicyRefused:
            return "refused"
        return "set"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(attempt, range(6)))
    assert outcomes == ["refused"] * 3 + ["set"] * 3
    for employee in employees[1:4]:
        goal = goals.set_goal(employee, body, ctx)
        goals.check_in(employee, goal.goal_id, CheckInRequest(progress=50), ctx)

    period = datetime.now(UTC).strftime("%Y-%m")
    cells = TallyReader().cells(org_id, period)
    assert cells
    names = ("goals_set", "goal_people", "goal_checkins", "checkin_people", "goal_progress_sum")
    total = {name: sum(cell.get(name) for cell in cells) for name in names}
    assert total == {"goals_set": 6, "goal_people": 4, "goal_checkins": 3, "checkin_people": 3,
                     "goal_progress_sum": 150}  # fmt: skip
    assert sum(cell.get("focus_people:delegation") for cell in cells) == 4
    assert sum(cell.get("focus:coaching-others") for cell in cells) == 6
    dumped = json.dumps([cell.model_dump(mode="json") for cell in cells])
    assert not any(e.person_id in dumped for e in employees)
    assert all(cell.org_id == org_id and cell.period == period for cell in cells)
    # Another org's month is another partition: nothing leaks across.
    assert TallyReader().cells(str(uuid.uuid4()), period) == []


def test_a_released_baseline_is_listed_by_its_follow_up_date_and_nudged_once_through_the_real_store(people):
    org_id, employees = people
    person = employees[0]
    opened_at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    now = {"at": opened_at}
    ctx = AssessmentContext(store=DevelopmentStore(), clock=lambda: now["at"])
    raters = [{"group": "peer"}] * 3
    body = AssessmentRequest.model_validate({"competencies": ["delegation"], "raters": raters})
    opened = assessments.open_round(person, body, ctx)
    for invite in opened.invites:
        assessments.answer_by_link(invite.token, {"delegation": 3}, ctx)
    assessments.answer_self(person, opened.assessment.assessment_id, {"delegation": 3}, ctx)  # released
    due_on = opened_at.date() + timedelta(weeks=16)
    assert (org_id, person.person_id) in DevelopmentStore().baselines_due(due_on, due_on)
    assert (org_id, person.person_id) not in DevelopmentStore().baselines_due(due_on + timedelta(days=1), due_on)
    now["at"] = datetime.combine(due_on, opened_at.timetz())
    mine = [e for e in assessments.nudge_follow_ups(due_on, ctx) if e.person_id == person.person_id]
    assert [e.baseline_id for e in mine] == [opened.assessment.assessment_id]
    assessments.nudge_follow_ups(due_on, ctx)  # the same day again: the outbox keeps one
    outbox = OutboxItem.get(keys.outbox_pk(mine[0].event_id), keys.OUTBOX_SK, consistent_read=True)
    assert json.loads(outbox.detail)["reason"] == "scheduled"
