"""Rollups: built from events or rebuilt from source, the cells are identical; consumers are idempotent."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from coaching.auth import Principal, Role
from coaching.domain.events import (
    CohortEnrolled,
    EngagementStarted,
    Event,
    GroupSessionCompleted,
    PersonTerminated,
    SessionCancelled,
    SessionCompleted,
    WorkshopEnded,
)
from coaching.domain.reporting import Contribution, Rollup, Tally
from coaching.domain.rollups import contribution_of, rollup_from_counters, sum_counters
from coaching.services.rollups import (
    RollupContext,
    on_person_event,
    on_programme_event,
    rebuild,
    run_month_now,
    run_monthly_reports,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.fakes.rollups import (
    ORG,
    FakeRollupStore,
    FakeSource,
    make_booking,
    make_cohort,
    make_engagement,
    make_group_session,
    make_org,
    make_person,
    make_workshop,
)

NOW = datetime(2026, 5, 28, 12, tzinfo=UTC)
DEPARTMENTS = ("sales", "eng", "ops", "legal")
STATUSES = ("completed", "completed", "no_show", "late_cancelled", "cancelled", "booked")


def world(seed: int, size: int) -> tuple[FakeSource, list[Event]]:
    """A random org: people, engagements, sessions in April and May, a few leavers; and the events of it all."""
    rng = random.Random(seed)
    source = FakeSource(orgs={ORG: make_org()}, priority_list=["delegation"])
    events: list[Event] = []
    for i in range(size):
        extra: dict[str, object] = {}
        if rng.random() < 0.15:
            extra = {"terminated_on": date(2026, 5, rng.randint(1, 27)), "regrettable": rng.random() < 0.5}
        person = make_person(i, department=rng.choice(DEPARTMENTS), level=rng.choice(("manager", "senior_leader")),
                             **extra)  # fmt: skip
        key = (ORG, person.person_id)
        source.people_by_id[key] = person
        if person.terminated_on:
            events.append(PersonTerminated(org_id=ORG, person_id=person.person_id,
                                           terminated_on=person.terminated_on.isoformat(),
                                           regrettable=bool(person.regrettable)))  # fmt: skip
        if rng.random() < 0.2:
            continue  # not yet coached
        engagement = make_engagement(person, rng.choice(("SCALE", "GROW")), f"2026-0{rng.randint(3, 5)}-01")
        source.engagements[key] = [engagement]
        began = datetime.fromisoformat(engagement.start_date).replace(tzinfo=UTC)
        events.append(EngagementStarted(org_id=ORG, person_id=person.person_id, engagement_id=engagement.engagement_id,
                                        coach_id="c1", program=engagement.program.value,
                                        occurred_at=began))  # fmt: skip
        bookings = []
        for n in range(rng.randint(0, 5)):
            start = datetime(2026, rng.choice((4, 5)), rng.randint(1, 27), 9, tzinfo=UTC)
            focus = rng.sample(["delegation", "feedback", "strategy"], rng.randint(1, 2))
            booking = make_booking(person, n, start, rng.choice(STATUSES), focus)
            bookings.append(booking)
            if booking.status.value in {"late_cancelled", "cancelled"}:
                events.append(SessionCancelled(org_id=ORG, person_id=person.person_id, booking_id=booking.booking_id,
                                               coach_id="c1", program="SCALE", start=start, cancelled_by="person",
                                               late=booking.status.value == "late_cancelled"))  # fmt: skip
            if booking.status.value in {"completed", "no_show"}:
                events.append(SessionCompleted(org_id=ORG, person_id=person.person_id, booking_id=booking.booking_id,
                                               coach_id="c1", program="SCALE", start=start, status=booking.status.value,
                                               outcome=booking.status.value))  # fmt: skip
        source.bookings[key] = bookings
    events.extend(_programmes(source, rng))
    return source, events


MARKS = ("attended", "attended", "no_show", "excused")
WORKSHOP_ENDS = ("completed", "completed", "late_cancelled", "cancelled")


def _programmes(source: FakeSource, rng: random.Random) -> list[Event]:
    """A GROW cohort with group sessions in April and May, and a few TOGETHER workshops."""
    people = sorted(p for _, p in source.people_by_id)
    events: list[Event] = []
    # Its start may come after group sessions were recorded (then those begin the cohort for their people).
    cohort = make_cohort("k1", rng.choice(("2026-04-06", "2026-05-11", "2026-06-01")))
    source.cohorts[cohort.cohort_id] = cohort
    members = [p for p in people if rng.random() < 0.4]
    for person_id in members:
        source.enrolled[(ORG, person_id)] = [cohort.cohort_id]
        events.append(CohortEnrolled(org_id=ORG, cohort_id=cohort.cohort_id, person_id=person_id, source_of="admin",
                                     occurred_at=datetime(2026, 3, 20, tzinfo=UTC)))  # fmt: skip
    sessions = []
    for index, month in enumerate((4, 4, 5) if members else ()):
        marks = {p: rng.choice(MARKS) for p in members}
        start = datetime(2026, month, 7 + index * 7, 10, tzinfo=UTC)
        session = make_group_session(cohort.cohort_id, index, start, marks, [rng.choice(("feedback", "delegation"))])
        sessions.append(session)
        counts = [sum(1 for m in marks.values() if m == mark) for mark in ("attended", "no_show", "excused")]
        events.append(GroupSessionCompleted(org_id=ORG, cohort_id=cohort.cohort_id, session_id=session.session_id,
                                            attended=counts[0], no_shows=counts[1], excused=counts[2],
                                            billed_units=counts[0] + counts[1]))  # fmt: skip
    source.sessions[cohort.cohort_id] = sessions
    for n in range(rng.randint(0, 3)):
        team = rng.sample(people, min(len(people), rng.randint(1, 6)))
        start = datetime(2026, rng.choice((4, 5)), rng.randint(1, 27), 14, tzinfo=UTC)
        workshop = make_workshop(f"w{n}", start, team, rng.choice(WORKSHOP_ENDS))
        source.workshops[workshop.workshop_id] = workshop
        events.append(WorkshopEnded(org_id=ORG, workshop_id=workshop.workshop_id, facilitator_id="c9",
                                    status=workshop.status.value, billed_units=1))  # fmt: skip
    return events


def consume(event: Event, context: RollupContext) -> None:
    """What the rollups function does with each consumed event."""
    if isinstance(event, GroupSessionCompleted | WorkshopEnded):
        on_programme_event(event, context)
    else:
        on_person_event(event, context)


def from_source(source: FakeSource, period: str) -> list[Contribution]:
    found = []
    for s in source.people(ORG):
        if s.person is not None:
            c = contribution_of(s.person, s.bookings, s.engagements, period, ["delegation"],
                                group_sessions=s.group_sessions, workshops=s.workshops, cohorts=s.cohorts)  # fmt: skip
            found.extend([c] if c else [])
    return found


def ctx(source: FakeSource, store: FakeRollupStore) -> RollupContext:
    return RollupContext(source=source, store=store, clock=lambda: NOW)


def _replayed(events: list[Event], rng: random.Random) -> list[Event]:
    replayed = events + rng.sample(events, len(events) // 3)  # at-least-once delivery: duplicates
    rng.shuffle(replayed)  # and any order
    return replayed


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 40))
def test_event_built_rollups_equal_the_rebuild_from_source(seed: int, size: int) -> None:
    source, events = world(seed, size)
    by_events, by_rebuild = FakeRollupStore(), FakeRollupStore()
    # Yesterday's rebuild saw the people before any of today's changes (no engagement, session or leaver yet);
    # every change since came with its event, delivered at least once and in any order.
    before = FakeSource(orgs=source.orgs, priority_list=source.priority_list, people_by_id={
        key: p.model_copy(update={"terminated_on": None, "regrettable": None})
        for key, p in source.people_by_id.items()})  # fmt: skip
    for period in ("2026-04", "2026-05"):
        rebuild(ORG, period, ctx(before, by_events))
    for event in _replayed(events, random.Random(seed)):
        consume(event, ctx(source, by_events))
    for period in ("2026-04", "2026-05"):
        rebuild(ORG, period, ctx(source, by_rebuild))
        assert by_events.cells(ORG, period) == by_rebuild.cells(ORG, period), period
        # Rebuilding what events built finds nothing to repair.
        result = rebuild(ORG, period, ctx(source, by_events))
        assert result.cells_rewritten == 0
        # ...and both are the rollup of the contributions computed straight from source.
        assert by_rebuild.cells(ORG, period) == sum_counters(from_source(source, period))


def test_a_replayed_event_writes_nothing() -> None:
    source, events = world(7, 20)
    store = FakeRollupStore()
    rebuild(ORG, "2026-05", ctx(source, store))
    for event in events:
        consume(event, ctx(source, store))
    writes, cells = store.writes, store.cells(ORG, "2026-05")
    for event in events:
        consume(event, ctx(source, store))
    assert store.writes == writes
    assert store.cells(ORG, "2026-05") == cells


def test_a_drifted_cell_is_repaired_by_the_rebuild() -> None:
    source, events = world(3, 25)
    store = FakeRollupStore()
    rebuild(ORG, "2026-05", ctx(source, store))
    for event in events:
        consume(event, ctx(source, store))
    good = store.cells(ORG, "2026-05")
    key = next(iter(good))
    store.cell_counters[(ORG, "2026-05")][key]["people"] += 7  # a lost or doubled write
    result = rebuild(ORG, "2026-05", ctx(source, store))
    assert result.cells_rewritten == 1
    assert store.cells(ORG, "2026-05") == good


def test_a_person_who_left_before_the_month_is_not_in_it_and_a_leaver_counts_in_attrition() -> None:
    source = FakeSource(orgs={ORG: make_org()})
    gone = make_person(1, terminated_on=date(2026, 3, 31), regrettable=True)
    leaver = make_person(2, terminated_on=date(2026, 5, 10), regrettable=True)
    assert contribution_of(gone, [], [], "2026-05") is None
    found = contribution_of(leaver, [], [], "2026-05")
    assert found is not None
    assert found.terminated
    assert found.regrettable
    assert found.dims["coached"] == "not_yet"
    source.people_by_id[(ORG, leaver.person_id)] = leaver
    store = FakeRollupStore()
    rebuild(ORG, "2026-05", ctx(source, store))
    assert store.cells(ORG, "2026-05")[()]["a:regrettable"] == 1


def test_the_rollup_of_stored_counters_equals_the_rollup_built_from_contributions() -> None:
    source, _ = world(11, 30)
    contributions = from_source(source, "2026-05")
    tallies = [Tally(dims={"programme": "SCALE", "level": "manager", "department": "sales", "location": "Berlin",
                           "newly_promoted": "no"}, counters={"feedback_respondents": 2, "feedback_responses": 3,
                                                              "satisfaction_sum": 13})]  # fmt: skip
    built = Rollup.build(ORG, "2026-05", contributions, tallies, ["delegation"])
    stored = rollup_from_counters(ORG, "2026-05", sum_counters(contributions), tallies, ["delegation"])
    assert stored == built


def test_the_monthly_run_rebuilds_the_closed_month_and_publishes_one_report_due_per_org() -> None:
    source, _ = world(5, 12)
    store = FakeRollupStore()
    june = RollupContext(source=source, store=store, clock=lambda: NOW + timedelta(days=5))
    run = run_monthly_reports(june)
    again = run_monthly_reports(june)
    assert run.events == again.events == 1
    assert [(e.org_id, e.period) for e in store.published] == [(ORG, "2026-05")]  # type: ignore[attr-defined]
    meta = store.meta(ORG, "2026-05")
    assert meta is not None
    assert meta.rebuilt


def test_an_operators_run_of_a_month_renders_it_again_while_the_schedules_retries_render_once() -> None:
    source, _ = world(5, 12)
    store = FakeRollupStore()
    clock = {"now": NOW + timedelta(days=5)}
    june = RollupContext(source=source, store=store, clock=lambda: clock["now"])
    operator = Principal(person_id="op", org_id=None, roles=frozenset({Role.OPERATOR}))
    run_monthly_reports(june)
    run_month_now(operator, ORG, "2026-05", june)  # late data came in: the operator runs the month again
    clock["now"] += timedelta(minutes=1)
    run_month_now(operator, ORG, "2026-05", june)
    ids = [e.event_id for e in store.published]  # type: ignore[attr-defined]
    assert len(ids) == len(set(ids)) == 3  # the schedule's, then one per operator run: none skipped as seen
    run_monthly_reports(june)  # the schedule's retry
    assert len(store.published) == 3  # type: ignore[attr-defined]


def test_group_sessions_and_workshops_count_as_sessions_and_set_the_programme_and_the_grow_cohort() -> None:
    person = make_person(1)
    cohort = make_cohort("k1", "2026-04-06")
    april = datetime(2026, 4, 7, 10, tzinfo=UTC)
    sessions = [
        make_group_session("k1", 0, april, {person.person_id: "attended", "p999": "no_show"}, ["feedback"]),
        make_group_session("k1", 1, april + timedelta(days=7), {person.person_id: "no_show"}),
        make_group_session("k1", 2, april + timedelta(days=14), {person.person_id: "excused"}),
        make_group_session("k1", 3, april + timedelta(days=21), {}),  # not yet recorded
    ]
    together = make_workshop("w1", april + timedelta(days=2), [person.person_id], "completed")
    one_to_one = make_booking(person, 1, april + timedelta(days=3), "completed", ["strategy"])
    found = contribution_of(person, [one_to_one], [], "2026-04", ["feedback"], group_sessions=sessions,
                            workshops=[together], cohorts=[cohort])  # fmt: skip
    assert found is not None
    # Attended + no-show group sessions (GROW: 2), the workshop (TOGETHER: 1) and the 1:1 (SCALE: 1).
    assert (found.completed, found.no_shows, found.late_cancels) == (3, 1, 0)
    assert found.dims["programme"] == "GROW"
    assert found.dims["grow_cohort"] == "2026-04"
    assert found.focus == ["feedback", "strategy"]
    assert found.sessions_on_priorities == 1
    assert found.engaged  # took part, though no engagement of theirs is active
    # Before the cohort started: no cohort; in May, nothing happened but the cohort holds.
    march = contribution_of(person, [], [], "2026-03", cohorts=[cohort])
    may = contribution_of(person, [], [], "2026-05", group_sessions=sessions, cohorts=[cohort])
    assert march is not None
    assert may is not None
    assert (march.dims["grow_cohort"], may.dims["grow_cohort"]) == ("none", "2026-04")
    assert (may.completed, may.dims["programme"], may.engaged) == (0, "none", False)
    # A cohort starting in June whose group session they were recorded at in April is theirs from April on.
    later = make_cohort("k1", "2026-06-01")
    early = contribution_of(person, [], [], "2026-04", group_sessions=sessions, cohorts=[later])
    before = contribution_of(person, [], [], "2026-03", group_sessions=sessions, cohorts=[later])
    assert early is not None
    assert before is not None
    assert (before.dims["grow_cohort"], early.dims["grow_cohort"]) == ("none", "2026-06")


def test_a_workshop_as_the_only_participation_puts_the_person_under_together() -> None:
    person, other = make_person(1), make_person(2)
    may = datetime(2026, 5, 12, 14, tzinfo=UTC)
    late = make_workshop("w1", may, [person.person_id], "late_cancelled")
    cancelled = make_workshop("w2", may, [person.person_id], "cancelled")
    someone_elses = make_workshop("w3", may, [other.person_id], "completed")
    engaged = make_engagement(person, "SCALE", "2026-03-01")
    only = contribution_of(person, [], [], "2026-05", workshops=[late, cancelled, someone_elses])
    assert only is not None
    assert (only.dims["programme"], only.late_cancels, only.completed, only.engaged) == ("TOGETHER", 1, 0, True)
    # A tie (one SCALE 1:1, one workshop) goes to the programme of the active engagement.
    booking = make_booking(person, 1, may, "completed")
    tie = contribution_of(person, [booking], [engaged], "2026-05", workshops=[late])
    assert tie is not None
    assert tie.dims["programme"] == "SCALE"
    # Nothing that month: the programme of the engagement still active.
    idle = contribution_of(person, [], [engaged], "2026-05", workshops=[cancelled])
    assert idle is not None
    assert (idle.dims["programme"], idle.completed + idle.no_shows + idle.late_cancels) == ("SCALE", 0)


def test_a_group_session_event_recomputes_each_participant_and_a_replay_writes_nothing() -> None:
    source, _ = world(0, 0)
    people = [make_person(i) for i in range(4)]
    for p in people:
        source.people_by_id[(ORG, p.person_id)] = p
    store = FakeRollupStore()
    rebuild(ORG, "2026-05", ctx(source, store))
    start = datetime(2026, 5, 4, 10, tzinfo=UTC)
    session = make_group_session("k2", 0, start, {p.person_id: "attended" for p in people[:3]})
    source.sessions["k2"] = [session]
    for p in people[:3]:
        source.enrolled[(ORG, p.person_id)] = ["k2"]
    event = GroupSessionCompleted(org_id=ORG, cohort_id="k2", session_id=session.session_id, attended=3, no_shows=0,
                                  excused=0, billed_units=3)  # fmt: skip
    result = on_programme_event(event, ctx(source, store))
    assert result.period == "2026-05"
    assert result.people == {p.person_id: True for p in people[:3]}
    writes = store.writes
    assert set(on_programme_event(event, ctx(source, store)).people.values()) == {False}
    assert store.writes == writes
    grow = next(c for k, c in store.cells(ORG, "2026-05").items() if k == (("programme", "GROW"),))
    assert (grow["people"], grow["m:sessions:n"]) == (3, 3)
    assert rebuild(ORG, "2026-05", ctx(source, store)).cells_rewritten == 0
