"""GROW cohorts and TOGETHER workshops on DynamoDB Local, in-process with a clock: atomic cohort seats under
30 concurrent enrolments, group sessions and 1:1s that can never overlap on a coach's calendar (both directions
and racing), and group-session billing once per participant, reconciled like 1:1s."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from coaching.adapters import keys
from coaching.adapters.booking_store import BookingStore
from coaching.adapters.dynamo import CoachRepository, admin_ports
from coaching.adapters.matching_store import MatchingStore
from coaching.adapters.programme_store import ProgrammeStore
from coaching.adapters.roster_store import RosterStore
from coaching.auth import Principal, Role
from coaching.domain.booking import BookingRequest
from coaching.domain.coaches import CoachCreate, VettingDecision, VettingStatus
from coaching.domain.engagements import Engagement
from coaching.domain.errors import Conflict, SlotTaken
from coaching.domain.grow import AttendanceMark, AttendanceRequest, GrowCohortRequest, PlannedSession
from coaching.domain.orgs import OrgCreate
from coaching.domain.people import PersonCreate
from coaching.services import admin, booking, grow, grow_waitlist, reconciliation
from coaching.services.roster import RosterCache, rebuild_roster
from coaching_local.seed import OPERATOR, coach_profiles, give_price_book
from test_sessions_and_ledger import INVOICING, Clock, ledger_items

pytestmark = pytest.mark.integration

START = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
ALL_WEEK = [{"weekday": d, "start": "07:00", "end": "21:00"} for d in range(7)]


def _people(org_id: str, count: int, ctx_admin) -> list[str]:
    org_admin = Principal(person_id="a", org_id=org_id, roles=frozenset({Role.ORG_ADMIN}))
    ids = []
    for n in range(count):
        person = admin.create_person(
            org_admin,
            PersonCreate(external_hr_id=f"G-{uuid.uuid4().hex[:8]}", name=f"P{n}", email=f"p{n}@example.com",
                         level="first_time_manager", function="engineering", languages=["en"], time_zone="UTC"),
            ctx_admin,
        )  # fmt: skip
        ids.append(person.person_id)
    return ids


@pytest.fixture
def world(dynamodb_local):
    ctx_admin = admin.AdminContext(**admin_ports())
    org = admin.create_org(
        OPERATOR, OrgCreate(name="Grow org", time_zone="UTC", currency="EUR", industry="technology"), ctx_admin
    )
    give_price_book(org.org_id, "EUR")
    # A language no other coach speaks, so the solver's only GROW candidate is this world's coach.
    language = "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:3])
    profile = coach_profiles(1, seed=77)[0].model_dump() | {
        "time_zone": "UTC", "weekly_availability": ALL_WEEK, "min_notice_hours": 1, "horizon_days": 120,
        "programs": ["SCALE", "GROW"], "capacity": 50, "languages": [language], "buffer_minutes": 10,
    }  # fmt: skip
    coach = admin.create_coach(OPERATOR, CoachCreate.model_validate(profile), ctx_admin)
    admin.set_vetting(OPERATOR, coach.coach_id, VettingDecision(status=VettingStatus.APPROVED), ctx_admin)
    rebuild_roster(CoachRepository(), RosterStore())
    clock = Clock(START)
    store = ProgrammeStore()
    roster = RosterCache(RosterStore(), ttl_seconds=0)
    ctx = grow.GrowContext(store=store, waitlist=store, waitlist_writer=store, roster=roster, clock=clock)
    booking_ctx = booking.BookingContext(store=BookingStore(), roster=roster, coaches=CoachRepository(), clock=clock)
    org_admin = Principal(person_id="a", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
    return {"org": org, "coach": coach, "ctx": ctx, "booking_ctx": booking_ctx, "admin": org_admin, "clock": clock,
            "ctx_admin": ctx_admin, "language": language, "store": store}  # fmt: skip


def _cohort(world, size: int, starts: list[datetime]):
    request = GrowCohortRequest(
        size=size, language=world["language"], start_date=starts[0].date(),
        curriculum=[PlannedSession(start=s, competencies=["delegation"]) for s in starts],
    )  # fmt: skip
    return grow.open_cohort(world["admin"], world["org"].org_id, request, world["ctx"])


def _one_to_one(world, person_id: str, start: datetime):
    engagement = Engagement(engagement_id=str(uuid.uuid4()), org_id=world["org"].org_id, person_id=person_id,
                            coach_id=world["coach"].coach_id, program="SCALE", start_date="2027-02-01",
                            created_at=START)  # fmt: skip
    MatchingStore().start_engagement(engagement, capacity=50)
    employee = Principal(person_id=person_id, org_id=world["org"].org_id, roles=frozenset({Role.EMPLOYEE}))
    request = BookingRequest(engagement_id=engagement.engagement_id, start=start, focus_competencies=["delegation"],
                             situation="Preparing a first team meeting as a manager.")  # fmt: skip
    return lambda: booking.book(employee, request, world["booking_ctx"])


def test_thirty_concurrent_enrolments_never_overfill_a_cohort(world):
    people = _people(world["org"].org_id, 30, world["ctx_admin"])
    cohort = _cohort(world, 8, [START + timedelta(days=3, hours=2)])
    barrier = threading.Barrier(30)

    def enrol(person_id: str) -> str:
        barrier.wait()
        try:
            grow.enrol(world["admin"], world["org"].org_id, cohort.cohort_id, person_id, world["ctx"])
        except Conflict as refused:
            return refused.message
        return "enrolled"

    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(enrol, people))
    assert results.count("enrolled") == 8
    assert {r for r in results if r != "enrolled"} == {"this cohort is full (8 places)"}
    assert len(world["store"].members(world["org"].org_id, cohort.cohort_id)) == 8


def test_a_group_session_blocks_1to1s_and_a_1to1_blocks_a_group_session(world):
    org_id = world["org"].org_id
    people = _people(org_id, 8, world["ctx_admin"])
    group_start = START + timedelta(days=3, hours=2)
    cohort = _cohort(world, 8, [group_start, group_start + timedelta(days=7)])
    for person in people[:6]:
        grow.enrol(world["admin"], org_id, cohort.cohort_id, person, world["ctx"])
    matched = grow.match_coaches(world["admin"], org_id, cohort.cohort_id, world["ctx"])
    assert matched.cohort.coach_ids == [world["coach"].coach_id]
    # Group first: a 1:1 at the same time (or overlapping its buffer) is refused by the same locks.
    with pytest.raises(SlotTaken):
        _one_to_one(world, people[6], group_start + timedelta(minutes=30))()
    # 1:1 first: a cohort whose curriculum crosses it cannot schedule, and leaves nothing behind.
    later = START + timedelta(days=20, hours=4)
    _one_to_one(world, people[7], later)()
    other = _cohort(world, 6, [later - timedelta(days=7), later - timedelta(minutes=30)])
    for person in _people(org_id, 6, world["ctx_admin"]):
        grow.enrol(world["admin"], org_id, other.cohort_id, person, world["ctx"])
    with pytest.raises(SlotTaken) as refused:
        grow.match_coaches(world["admin"], org_id, other.cohort_id, world["ctx"])
    assert refused.value.field == "curriculum"
    assert world["store"].group_sessions(org_id, other.cohort_id) == []
    assert world["store"].cohort(org_id, other.cohort_id)[0].status.value == "forming"


def test_a_group_session_and_a_1to1_racing_for_the_same_time_one_wins(world):
    org_id = world["org"].org_id
    people = _people(org_id, 7, world["ctx_admin"])
    racing = START + timedelta(days=5, hours=3)
    cohort = _cohort(world, 6, [racing])
    for person in people[:6]:
        grow.enrol(world["admin"], org_id, cohort.cohort_id, person, world["ctx"])
    one_to_one = _one_to_one(world, people[6], racing + timedelta(minutes=15))
    barrier = threading.Barrier(2)

    def run(action):
        barrier.wait()
        try:
            action()
        except SlotTaken:
            return "refused"
        return "won"

    match = lambda: grow.match_coaches(world["admin"], org_id, cohort.cohort_id, world["ctx"])  # noqa: E731
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, [match, one_to_one]))
    assert sorted(results) == ["refused", "won"]


def test_attendance_bills_each_participant_once_and_reconciles(world):
    org_id = world["org"].org_id
    people = _people(org_id, 6, world["ctx_admin"])
    start = START + timedelta(days=2, hours=5)
    cohort = _cohort(world, 6, [start])
    for person in people:
        grow.enrol(world["admin"], org_id, cohort.cohort_id, person, world["ctx"])
    view = grow.match_coaches(world["admin"], org_id, cohort.cohort_id, world["ctx"])
    session = view.sessions[0]
    coach = Principal(person_id=world["coach"].coach_id, org_id=None, roles=frozenset({Role.COACH}))
    marks = dict.fromkeys(people[:4], AttendanceMark.ATTENDED)
    marks |= {people[4]: AttendanceMark.NO_SHOW, people[5]: AttendanceMark.EXCUSED}
    world["clock"].now = session.end + timedelta(minutes=5)
    body = AttendanceRequest(attendance=marks)
    for _ in range(3):  # replays change nothing
        grow.record_attendance(coach, org_id, cohort.cohort_id, session.session_id, body, world["ctx"])
    entries = [e for e in ledger_items(org_id) if e["sk"].startswith("ENTRY#")]
    assert len(entries) == 5  # four attended, one no-show (billed under the fee), the excused one not
    report = reconciliation.reconcile(org_id, "2027-03", INVOICING)
    assert report.differences == []
    assert keys.cohort_pk(org_id, cohort.cohort_id).startswith(keys.org_pk(org_id))


def test_ten_concurrent_wait_list_triggers_open_one_cohort_and_enrol_each_person_once(world):
    org_id = world["org"].org_id
    people = _people(org_id, 9, world["ctx_admin"])
    for n, person_id in enumerate(people):
        entry = grow.WaitEntry(org_id=org_id, person_id=person_id, transition="new_manager", language="en",
                               source="promotion", since=START + timedelta(minutes=n))  # fmt: skip
        assert world["store"].add(entry)
        assert not world["store"].add(entry)  # a person waits once: the second add writes nothing
    barrier = threading.Barrier(10)

    def trigger(_: int) -> list[str]:
        barrier.wait()
        return grow_waitlist.open_waiting(world["admin"], org_id, world["ctx"]).enrolled

    with ThreadPoolExecutor(max_workers=10) as pool:
        enrolled = [person for run in pool.map(trigger, range(10)) for person in run]
    cohorts = world["store"].cohorts(org_id)
    assert len(cohorts) == 1
    members = sorted(m.person_id for m in world["store"].members(org_id, cohorts[0].cohort_id))
    # Nine wait; the cohort opens for all nine (up to max_size), each enrolled exactly once across the runs.
    assert sorted(enrolled) == members == sorted(people)
    assert world["store"].waiting(org_id, "new_manager") == []


def test_a_catalogue_change_reads_the_org_once_and_is_conditional_on_both_versions(dynamodb_local):
    from coaching.domain.programmes import CatalogueInput, ProgrammeCatalogue

    ctx_admin = admin.AdminContext(**admin_ports())
    org = admin.create_org(
        OPERATOR, OrgCreate(name="Catalogue org", time_zone="UTC", currency="EUR", industry="technology"), ctx_admin
    )
    store = ProgrammeStore()
    assert store.org_and_catalogue("no-such-org") is None
    read = store.org_and_catalogue(org.org_id)
    assert read is not None
    found, org_version, catalogue, version = read
    assert (found, catalogue, version) == (org, ProgrammeCatalogue.defaults(org.org_id), None)
    now = datetime.now(UTC)
    fresh = catalogue.changed(CatalogueInput(), actor="a", now=now)
    renamed = found.model_copy(update={"name": "Renamed"})
    assert store.save_catalogue(fresh, version, renamed, org_version)
    # Both saved; the org keeps its index entry (only its body changed).
    assert store.catalogue(org.org_id) == (fresh, 1)
    assert ctx_admin.orgs.get(org.org_id).name == "Renamed"
    listed = ctx_admin.orgs.list(limit=1000, cursor=None)
    assert org.org_id in {o.org_id for o in listed.items}
    # A save from the same stale read loses on either version, and writes nothing.
    assert not store.save_catalogue(fresh, version, renamed, org_version)
    assert not store.save_catalogue(fresh, 1, found, org_version)
    assert ctx_admin.orgs.get(org.org_id).name == "Renamed"
