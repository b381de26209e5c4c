"""Rollups: one person's contribution to an org month, derived from source records by ONE function.

The rollups function recomputes a person's `Contribution` for a month from their person record, bookings
and engagements whenever an event touches them, and the daily rebuild recomputes every person's the same
way: both paths call `contribution_of`, so they cannot disagree. A contribution becomes integer counters per
cell (`counters_of`); the store adds the difference between a person's old and new counters to each cell
(`delta`), so the cells are always the sum of the stored contributions and `Rollup.from_counters` turns
them back into the `coaching.domain.reporting.Rollup` the reports suppress and publish.

The programmes' participation counts too: a GROW group session the person was recorded at (attended, or a
no-show; excused is neither) and a TOGETHER workshop they were a participant of (completed, or late-cancelled;
a cancelled one is neither) are sessions of the month they started in, beside their 1:1s (completed, no-show,
late-cancelled).

Dimensions of a person in a month: programme (see `programme_of`: the programme of most of their sessions that
month, so TOGETHER when a workshop was their only session; with no session, the programme of their latest
engagement active that month; "none"), level, department and location (the person record when the rollup is
built; "unknown" when empty), GROW cohort (the start month `yyyy-mm` of the first GROW cohort they are enrolled
in that began for them by the month's end: at its start date, or at the first of its group sessions they were
recorded at if earlier; without one, the month their GROW engagement started; "none": one value
per month at most, so bounded like the months themselves), newly promoted in the 6 months before the month's
end, and coached (an engagement started by the month's end: "yes", otherwise "not_yet"). Engaged (for the
utilisation buckets): an engagement active that month, or a programme session that month.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from coaching.domain.booking import Booking, BookingStatus
from coaching.domain.engagements import Engagement
from coaching.domain.grow import AttendanceMark, Cohort, GroupSession, GroupSessionStatus
from coaching.domain.measures import TallyCell, newly_promoted
from coaching.domain.people import Person
from coaching.domain.reporting import (
    ATTRITION_BUCKETS,
    MEASURES,
    UTILISATION_BUCKETS,
    Cell,
    CellKey,
    Contribution,
    Measure,
    Rollup,
    Tally,
    cell_keys,
    encode_cell,
    pseudonym,
    tally_cells,
    utilisation_bucket,
)
from coaching.domain.taxonomy import Program
from coaching.domain.workshops import Workshop, WorkshopStatus

UNKNOWN = "unknown"
NONE = "none"


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a `yyyy-mm` month in UTC."""
    start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def period_of(moment: datetime | date) -> str:
    return moment.strftime("%Y-%m")


def _started(e: Engagement) -> datetime:
    return datetime.fromisoformat(e.start_date).replace(tzinfo=UTC) if len(e.start_date) == 10 else e.created_at


def _active_in(e: Engagement, start: datetime, end: datetime) -> bool:
    return _started(e) < end and (e.ended_at is None or e.ended_at >= start)


def employed_in(person: Person, period: str) -> bool:
    start, end = month_bounds(period)
    if person.created_at >= end:
        return False
    return person.terminated_on is None or person.terminated_on >= start.date()


def programme_of(sessions: Mapping[str, int], active: Sequence[Engagement]) -> str:
    """The programme of a person's month: the one of most of their sessions (1:1s, group sessions, workshops);
    a tie goes to the programme of their latest active engagement, then to the catalogue's order; with no
    session at all, the programme of their latest engagement active that month; otherwise "none"."""
    latest = active[-1].program.value if active else NONE
    if not any(sessions.values()):
        return latest
    order = [p.value for p in Program]
    return min(
        (name for name, count in sessions.items() if count),
        key=lambda name: (-sessions[name], name != latest, order.index(name) if name in order else len(order)),
    )


def _grow_cohort(
    person_id: str,
    cohorts: Iterable[Cohort],
    sessions: Sequence[GroupSession],
    grow: Sequence[Engagement],
    end: datetime,
) -> str:
    """The start month of the person's first GROW cohort begun by `end`: a cohort begins for them at its start
    date, or at the first of its group sessions they were recorded at when that came earlier."""
    recorded: dict[str, date] = {}
    for g in sessions:
        if person_id in g.attendance:
            day = g.start.astimezone(UTC).date()
            recorded[g.cohort_id] = min(day, recorded.get(g.cohort_id, day))
    begun = sorted(
        (c.start_date, c.cohort_id)
        for c in cohorts
        if c.program is Program.GROW and min(c.start_date, recorded.get(c.cohort_id, c.start_date)) < end.date()
    )
    if begun:
        return begun[0][0].strftime("%Y-%m")
    return period_of(_started(grow[0])) if grow else NONE


def growth_attribution(
    person_id: str,
    engagements: Iterable[Engagement],
    cohorts: Iterable[Cohort],
    group_sessions: Iterable[GroupSession],
    at: datetime,
) -> tuple[str, str]:
    """The programme and GROW cohort a 360 released at `at` counts in: where the person was being coached when
    their follow-up was released, i.e. "the growth of the people of cohort X (programme Y) between their
    baseline and their follow-up".

    GROW cohort: the start month of the first GROW cohort that had begun for them by the release day (the same
    rule as the rollups' `grow_cohort` dimension, at the release instead of the month's end), else "none".
    Programme: the programme of the latest engagement started by then, a GROW cohort counting as begun on the
    first of its start month (an engagement wins a tie); "none" without either. Both depend only on records dated
    up to the release day, so recomputing them later from source gives the same answer.
    """
    started = sorted((e for e in engagements if _started(e) <= at), key=lambda e: (_started(e), e.engagement_id))
    grow = [e for e in started if e.program is Program.GROW]
    cohort = _grow_cohort(person_id, cohorts, list(group_sessions), grow, at + timedelta(days=1))
    joined = [(_started(e), 1, e.program.value) for e in started]
    if cohort != NONE:
        joined.append((month_bounds(cohort)[0], 0, Program.GROW.value))
    programme = max(joined)[2] if joined else NONE
    return programme, cohort


def contribution_of(
    person: Person,
    bookings: Iterable[Booking],
    engagements: Iterable[Engagement],
    period: str,
    priorities: Sequence[str] = (),
    *,
    group_sessions: Iterable[GroupSession] = (),
    workshops: Iterable[Workshop] = (),
    cohorts: Iterable[Cohort] = (),
) -> Contribution | None:
    """What `person` contributed to `period` (None when they were not employed that month)."""
    if not employed_in(person, period):
        return None
    start, end = month_bounds(period)
    engagements = sorted(engagements, key=lambda e: (_started(e), e.engagement_id))
    active = [e for e in engagements if _active_in(e, start, end)]
    started = [e for e in engagements if _started(e) < end]
    grow = [e for e in started if e.program.value == "GROW"]
    group_sessions = list(group_sessions)
    completed = no_shows = late = on_priorities = 0
    focus: set[str] = set()
    wanted = set(priorities)
    sessions: dict[str, int] = {}
    took_part = False

    def count(program: str, outcome: str, competencies: Sequence[str]) -> None:
        nonlocal completed, no_shows, late, on_priorities
        sessions[program] = sessions.get(program, 0) + 1
        if outcome == "completed":
            completed += 1
            focus.update(competencies)
            on_priorities += 1 if wanted.intersection(competencies) else 0
        elif outcome == "no_show":
            no_shows += 1
        else:
            late += 1

    for b in sorted(bookings, key=lambda b: b.booking_id):
        if not start <= b.start < end:
            continue
        if b.status is BookingStatus.COMPLETED:
            count(b.program.value, "completed", b.focus_competencies)
        elif b.status is BookingStatus.NO_SHOW:
            count(b.program.value, "no_show", b.focus_competencies)
        elif b.status is BookingStatus.LATE_CANCELLED:
            count(b.program.value, "late", b.focus_competencies)
    for g in sorted({g.session_id: g for g in group_sessions}.values(), key=lambda g: g.session_id):
        mark = g.attendance.get(person.person_id)
        if g.status is not GroupSessionStatus.COMPLETED or not start <= g.start < end or mark is None:
            continue
        if mark is AttendanceMark.ATTENDED:
            count(g.program.value, "completed", g.competencies)
        elif mark is AttendanceMark.NO_SHOW:
            count(g.program.value, "no_show", g.competencies)
        took_part = took_part or mark is not AttendanceMark.EXCUSED
    for w in sorted({w.workshop_id: w for w in workshops}.values(), key=lambda w: w.workshop_id):
        if person.person_id not in w.participants or not start <= w.start < end:
            continue
        if w.status is WorkshopStatus.COMPLETED:
            count(w.program.value, "completed", ())
            took_part = True
        elif w.status is WorkshopStatus.LATE_CANCELLED:
            count(w.program.value, "late", ())
            took_part = True
    dims = {
        "programme": programme_of(sessions, active),
        "level": person.level.value,
        "department": person.department or UNKNOWN,
        "location": person.location or UNKNOWN,
        "grow_cohort": _grow_cohort(person.person_id, cohorts, group_sessions, grow, end),
        "newly_promoted": "yes" if newly_promoted(person, end - timedelta(microseconds=1)) else "no",
        "coached": "yes" if started else "not_yet",
    }
    terminated = person.terminated_on is not None and start.date() <= person.terminated_on < end.date()
    return Contribution(
        pid=pseudonym(person.org_id, person.person_id),
        dims=dims,
        engaged=bool(active) or took_part,
        completed=completed,
        no_shows=no_shows,
        late_cancels=late,
        focus=sorted(focus),
        sessions_on_priorities=on_priorities,
        terminated=terminated,
        regrettable=terminated and bool(person.regrettable),
    )


# ----------------------------------------------------------------------------- counters per cell

type Counters = dict[str, int]


def counters_of(c: Contribution) -> Counters:
    """The integer counters one contribution adds to each of its cells (absent = 0)."""
    scheduled = c.completed + c.no_shows + c.late_cancels
    found: Counters = {"people": 1}
    if c.completed:
        found |= {"m:sessions:p": 1, "m:sessions:n": c.completed, "m:sessions:s": c.completed}
        found |= {"m:north_star_sessions:p": 1, "m:north_star_sessions:n": c.completed,
                  "m:north_star_sessions:s": c.sessions_on_priorities}  # fmt: skip
    if scheduled:
        found |= {"m:attendance:p": 1, "m:attendance:n": scheduled, "m:attendance:s": c.completed}
    if c.engaged:
        found[f"u:{utilisation_bucket(c.completed)}"] = 1
    if c.terminated:
        found[f"a:{ATTRITION_BUCKETS[0] if c.regrettable else ATTRITION_BUCKETS[1]}"] = 1
    for competency in sorted(set(c.focus)):
        found[f"f:{competency}"] = 1
    return found


def delta(old: Contribution | None, new: Contribution | None) -> dict[CellKey, Counters]:
    """What to add to each cell when a person's contribution changes from `old` to `new` (zeros left out)."""
    changes: dict[CellKey, Counters] = {}
    for contribution, sign in ((old, -1), (new, 1)):
        if contribution is None:
            continue
        counters = counters_of(contribution)
        for key in cell_keys(contribution.dims):
            cell = changes.setdefault(key, {})
            for name, value in counters.items():
                cell[name] = cell.get(name, 0) + sign * value
    return {key: {n: v for n, v in sorted(c.items()) if v} for key, c in sorted(changes.items()) if any(c.values())}


def sum_counters(contributions: Iterable[Contribution]) -> dict[CellKey, Counters]:
    """The cells' counters from scratch (the rebuild's target): the sum of `delta(None, c)`."""
    cells: dict[CellKey, Counters] = {}
    for c in contributions:
        for key, add in delta(None, c).items():
            cell = cells.setdefault(key, {})
            for name, value in add.items():
                cell[name] = cell.get(name, 0) + value
    return {key: dict(sorted(c.items())) for key, c in sorted(cells.items())}


def tally_of(cell: TallyCell) -> Tally:
    """A capture tally cell under the reports' dimension names and values."""
    d = cell.dimensions
    dims = {
        "programme": d.program,
        "level": d.level,
        "department": d.department or UNKNOWN,
        "location": d.location or UNKNOWN,
        "newly_promoted": "yes" if d.newly_promoted else "no",
    }
    if d.grow_cohort:
        dims["grow_cohort"] = d.grow_cohort
    return Tally(dims=dims, counters=dict(cell.counters))


def rollup_from_counters(
    org_id: str,
    period: str,
    cells: Mapping[CellKey, Mapping[str, int]],
    tallies: Iterable[Tally] = (),
    priorities: Sequence[str] = (),
) -> Rollup:
    """The `Rollup` of stored cell counters (cells with nobody in them left out) and capture tallies."""
    built: dict[CellKey, Cell] = {}
    for key, counters in sorted(cells.items()):
        if counters.get("people", 0) <= 0:
            continue
        measures = {}
        for name in MEASURES:
            people = counters.get(f"m:{name}:p", 0)
            count = counters.get(f"m:{name}:n", 0)
            if people or count:
                measures[name] = Measure(people=people, count=count, total=float(counters.get(f"m:{name}:s", 0)))
        built[key] = Cell(
            people=counters["people"],
            measures=measures,
            utilisation={b: counters[f"u:{b}"] for b in UTILISATION_BUCKETS if counters.get(f"u:{b}", 0)},
            attrition={b: counters[f"a:{b}"] for b in ATTRITION_BUCKETS if counters.get(f"a:{b}", 0)},
            focus={n[2:]: v for n, v in sorted(counters.items()) if n.startswith("f:") and v},
        )
    for t in sorted(tallies, key=lambda t: sorted(t.dims.items())):
        for key, found in tally_cells(t.dims, t.counters, priorities):
            cell = built.setdefault(key, Cell())
            merged = dict(cell.measures)
            for name, (people, count, total) in found.items():
                merged[name] = merged.get(name, Measure()).plus(people, count, total)
            built[key] = cell.model_copy(update={"measures": dict(sorted(merged.items()))})
    return Rollup(
        org_id=org_id,
        period=period,
        priorities=sorted(priorities),
        cells={encode_cell(key): built[key] for key in sorted(built)},
    )
