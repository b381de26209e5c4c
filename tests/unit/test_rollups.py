"""Rollups: built from events or rebuilt from source, the cells are identical; consumers are idempotent."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from coaching.domain.events import EngagementStarted, Event, PersonTerminated, SessionCancelled, SessionCompleted
from coaching.domain.reporting import Contribution, Rollup, Tally
from coaching.domain.rollups import contribution_of, rollup_from_counters, sum_counters
from coaching.services.rollups import RollupContext, on_person_event, rebuild, run_monthly_reports
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.fakes.rollups import (
    ORG,
    FakeRollupStore,
    FakeSource,
    make_booking,
    make_engagement,
    make_org,
    make_person,
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
    return source, events


def from_source(source: FakeSource, period: str) -> list[Contribution]:
    found = []
    for s in source.people(ORG):
        if s.person is not None:
            c = contribution_of(s.person, s.bookings, s.engagements, period, ["delegation"])
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
        on_person_event(event, ctx(source, by_events))
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
        on_person_event(event, ctx(source, store))
    writes, cells = store.writes, store.cells(ORG, "2026-05")
    for event in events:
        on_person_event(event, ctx(source, store))
    assert store.writes == writes
    assert store.cells(ORG, "2026-05") == cells


def test_a_drifted_cell_is_repaired_by_the_rebuild() -> None:
    source, events = world(3, 25)
    store = FakeRollupStore()
    rebuild(ORG, "2026-05", ctx(source, store))
    for event in events:
        on_person_event(event, ctx(source, store))
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
