"""A person's timeline: one continuous history across SCALE, GROW, EXEC and TOGETHER, shown to the
person and to a coach only while their engagement with the person runs; never to anyone else."""

from datetime import UTC, datetime, timedelta

import pytest
from coaching.auth import Principal, Role
from coaching.domain.engagements import Engagement
from coaching.domain.errors import Forbidden, NotFound
from coaching.domain.grow import AttendanceMark, AttendanceRequest, GrowCohortRequest
from coaching.domain.taxonomy import Program
from coaching.domain.workshops import WorkshopRequest
from coaching.services import grow, programmes, workshops

from .fakes.booking import coach_profile
from .fakes.programmes import (
    ADMIN,
    FACILITATOR,
    FINANCE,
    GROW_COACH,
    LEADER,
    ORG,
    START,
    ProgrammesWorld,
    coach_principal,
    person_principal,
)

EXEC_COACH = "exec-coach"


def engaged(world: ProgrammesWorld, person: str, coach: str, program: Program, at: datetime, eid: str) -> Engagement:
    engagement = Engagement.start(
        engagement_id=eid, org_id=ORG, person_id=person, coach_id=coach, program=program, now=at
    )
    world.store.engagements[(ORG, person, eid)] = engagement
    world.store.coach_records[coach] = coach_profile(coach)
    return engagement


@pytest.fixture
def history() -> tuple[ProgrammesWorld, str, list[str]]:
    """One first-time manager in a matched GROW cohort (one session attended), in a TOGETHER workshop, who
    had a SCALE coach (ended) and now an EXEC one."""
    world = ProgrammesWorld.create()
    people = world.add_people(6)
    person = people[0]
    world.store.coach_records[GROW_COACH] = coach_profile(GROW_COACH)
    start_date = (START + timedelta(days=14)).date()
    cohort = grow.open_cohort(ADMIN, ORG, GrowCohortRequest(size=6, language="en", start_date=start_date), world.grow)
    for p in people:
        grow.enrol(ADMIN, ORG, cohort.cohort_id, p, world.grow)
    sessions = grow.match_coaches(ADMIN, ORG, cohort.cohort_id, world.grow).sessions
    request = WorkshopRequest(
        team_name="Team",
        participant_ids=people[:4],
        goal="decision",
        length_minutes=60,
        start=datetime(2027, 3, 4, 9, tzinfo=UTC),
        language="en",
    )
    workshops.book(ADMIN, request, world.workshops)
    scale = engaged(world, person, "scale-coach", Program.SCALE, START - timedelta(days=60), "e-scale")
    world.store.engagements[(ORG, person, "e-scale")] = scale.end("promoted", "platform", START - timedelta(days=1))
    engaged(world, person, EXEC_COACH, Program.EXEC, START, "e-exec")
    world.at(sessions[0].start + timedelta(hours=1))
    marks = dict.fromkeys(people, AttendanceMark.ATTENDED) | {person: AttendanceMark.EXCUSED}
    grow.record_attendance(
        coach_principal(GROW_COACH),
        ORG,
        cohort.cohort_id,
        sessions[0].session_id,
        AttendanceRequest(attendance=marks),
        world.grow,
    )
    return world, person, people


def test_the_person_sees_one_history_across_the_programmes_in_order(history):
    world, person, _ = history
    timeline = programmes.my_timeline(person_principal(person), world.programmes)
    assert timeline.person_id == person
    assert set(timeline.programs) == {"SCALE", "EXEC", "GROW", "TOGETHER"}
    kinds = [(e.program, e.kind) for e in timeline.entries]
    assert kinds[:2] == [("SCALE", "engagement_started"), ("SCALE", "engagement_ended")]
    assert kinds.count(("GROW", "group_session")) == 4
    assert ("TOGETHER", "workshop") in kinds
    assert ("EXEC", "engagement_started") in kinds
    assert [e.at for e in timeline.entries] == sorted(e.at for e in timeline.entries)
    # Their own attendance mark, not the session's status; competencies, never what anyone said.
    group = [e for e in timeline.entries if e.kind == "group_session"]
    assert [e.status for e in group] == ["excused", "scheduled", "scheduled", "scheduled"]
    assert all(e.competencies for e in group)


def test_a_coach_sees_it_only_while_their_engagement_with_the_person_runs(history):
    world, person, _ = history
    seen = programmes.coachee_timeline(coach_principal(EXEC_COACH), "e-exec", world.programmes)
    assert seen == programmes.my_timeline(person_principal(person), world.programmes)
    # The SCALE coach's engagement ended: nothing any more.
    with pytest.raises(NotFound):
        programmes.coachee_timeline(coach_principal("scale-coach"), "e-scale", world.programmes)
    # Another coach, even one with the same engagement id in hand: nothing.
    with pytest.raises(NotFound):
        programmes.coachee_timeline(coach_principal(GROW_COACH), "e-exec", world.programmes)
    # A suspended coach: refused.
    world.store.coach_records[EXEC_COACH] = coach_profile(EXEC_COACH, status="suspended")
    with pytest.raises(Forbidden):
        programmes.coachee_timeline(coach_principal(EXEC_COACH), "e-exec", world.programmes)


def test_nobody_else_sees_a_persons_timeline(history):
    world, _, _ = history
    for caller in (ADMIN, LEADER, FINANCE, coach_principal(FACILITATOR)):
        with pytest.raises((Forbidden, NotFound)):
            programmes.coachee_timeline(caller, "e-exec", world.programmes)
    operator = Principal(person_id="operator-1", org_id=None, roles=frozenset({Role.OPERATOR}))
    for caller in (ADMIN, FINANCE, operator, coach_principal(EXEC_COACH)):
        with pytest.raises(Forbidden):
            programmes.my_timeline(caller, world.programmes)
    # A leader calling /timeline gets their own (empty) history, not a report's.
    assert programmes.my_timeline(LEADER, world.programmes).entries == []
