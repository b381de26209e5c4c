"""Reporting: per-person monthly contributions, rollup cells, and the figures leaders may see.

A month's rollup is built in three steps, each a pure function:

1. `Contribution`: what one person contributed to one org month (sessions and their outcomes, ratings,
   goal progress, 360 growth, a termination), with the dimensions the person fell in that month. It is
   keyed by a pseudonymous id and derived from source records by one function, so the event consumer and
   the daily rebuild cannot disagree.
2. `Rollup`: cells per combination of at most two dimensions (`()` is the org), each holding distinct
   contributor counts and sums per measure. Distinct counts stay exact because every person is in exactly
   one cell of each dimension per month (the dimensions partition the month's people).
3. `publish`: the figures for a view, after `coaching.domain.suppression` decided which cells of the whole
   linked system (every dimension, every pair, every distribution bucket, every measure) may be shown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from coaching.domain.common import StrictModel
from coaching.domain.errors import GroupTooSmall, InvalidInput
from coaching.domain.suppression import COMPLEMENTARY_RULE, PRIMARY_RULE, Equation, Protection, protect


class Dimension(StrEnum):
    PROGRAMME = "programme"
    LEVEL = "level"
    DEPARTMENT = "department"
    LOCATION = "location"
    GROW_COHORT = "grow_cohort"
    NEWLY_PROMOTED = "newly_promoted"
    COACHED = "coached"


DIMENSIONS: tuple[Dimension, ...] = tuple(Dimension)
# A cell: the (dimension, value) pairs that select its people, sorted; () is the whole org.
type CellKey = tuple[tuple[str, str], ...]
ORG_CELL: CellKey = ()

UTILISATION_BUCKETS = ("0", "1", "2-3", "4+")
ATTRITION_BUCKETS = ("regrettable", "non_regrettable")


def pseudonym(org_id: str, person_id: str) -> str:
    """A stable id for a person in rollups: no name, no platform id."""
    return hashlib.sha256(f"rollup:{org_id}:{person_id}".encode()).hexdigest()[:24]


def utilisation_bucket(completed: int) -> str:
    if completed <= 1:
        return str(completed)
    return "2-3" if completed <= 3 else "4+"


class Contribution(StrictModel):
    """One person's sessions and employment in one org month (ratings, goals and 360s come as tallies)."""

    pid: str
    dims: dict[str, str]
    engaged: bool = False  # had an active engagement in the month (the utilisation population)
    completed: int = 0
    no_shows: int = 0
    late_cancels: int = 0
    focus: list[str] = []  # competencies the person's sessions and goals aimed at
    sessions_on_priorities: int = 0
    terminated: bool = False
    regrettable: bool = False


class Measure(StrictModel):
    """An additive measure of a cell: distinct contributors, items, and their sum."""

    people: int = 0
    count: int = 0
    total: float = 0.0

    def plus(self, people: int, count: int, total: float) -> Measure:
        return Measure(people=self.people + people, count=self.count + count, total=self.total + total)


MEASURES = (
    "sessions",
    "attendance",
    "satisfaction",
    "nps",
    "goal_progress",
    "competency_growth",
    "competency_baseline",
    "manager_effectiveness",
    "north_star_sessions",
    "north_star_goals",
)


def _measures(c: Contribution) -> dict[str, tuple[int, int, float]]:
    scheduled = c.completed + c.no_shows + c.late_cancels
    found: dict[str, tuple[int, int, float]] = {}
    if c.completed:
        found["sessions"] = (1, c.completed, c.completed)
        found["north_star_sessions"] = (1, c.completed, c.sessions_on_priorities)
    if scheduled:
        found["attendance"] = (1, scheduled, c.completed)
    return found


# Capture tallies (coaching.domain.measures.TallyCell) -> measure: (distinct people, items, sum). A tally
# counts each person once a month in the cell of their first item, so people add up like items do.
def tally_measures(t: Mapping[str, int], priorities: Sequence[str]) -> dict[str, tuple[int, int, float]]:
    def get(name: str) -> int:
        return int(t.get(name, 0))

    found = {
        "satisfaction": (get("feedback_respondents"), get("feedback_responses"), float(get("satisfaction_sum"))),
        "nps": (get("feedback_respondents"), get("feedback_responses"), float(get("promoters") - get("detractors"))),
        # Without a distinct count of the people who checked in, goal progress counts nobody: always hidden.
        "goal_progress": (get("checkin_people"), get("goal_checkins"), float(get("goal_progress_sum"))),
        "competency_growth": (
            get("growth_people"),
            get("growth_people"),
            (get("growth_follow_up_x100") - get("growth_baseline_x100")) / 100,
        ),
        "competency_baseline": (get("growth_people"), get("growth_people"), get("growth_baseline_x100") / 100),
        "manager_effectiveness": (get("managers_rated"), get("managers_rated"), get("manager_score_x100") / 100),
    }
    links = sum(v for n, v in t.items() if n.startswith(FOCUS_PREFIX))
    on_priorities = sum(get(f"{FOCUS_PREFIX}{c}") for c in priorities)
    found["north_star_goals"] = (get("goal_people"), links, float(on_priorities))
    return {name: value for name, value in found.items() if value[1] or value[0]}


FOCUS_PREFIX = "focus:"
FOCUS_PEOPLE_PREFIX = "focus_people:"
# The dimensions capture tallies carry; their measures break down by these only.
TALLY_DIMENSIONS = ("department", "level", "location", "newly_promoted", "programme")
TALLY_MEASURES = frozenset(
    {"satisfaction", "nps", "goal_progress", "competency_growth", "competency_baseline", "manager_effectiveness",
     "north_star_goals"}
)  # fmt: skip
# A released 360's tally also carries the GROW cohort it counts in (`coaching.domain.rollups.growth_attribution`),
# so competency growth (and its baseline, the % denominator) breaks down by cohort too; nothing else does.
GROWTH_MEASURES = frozenset({"competency_growth", "competency_baseline"})
GROWTH_DIMENSIONS = tuple(sorted((*TALLY_DIMENSIONS, "grow_cohort")))
NO_COHORT = "none"


def measure_dimensions(name: str) -> tuple[str, ...]:
    """The dimensions a tally measure is broken down by (every dimension for the per-person measures)."""
    if name in GROWTH_MEASURES:
        return GROWTH_DIMENSIONS
    if name in TALLY_MEASURES:
        return TALLY_DIMENSIONS
    return tuple(d.value for d in DIMENSIONS)


def tally_cells(dims: Mapping[str, str], counters: Mapping[str, int],
                priorities: Sequence[str]) -> list[tuple[CellKey, dict[str, tuple[int, int, float]]]]:  # fmt: skip
    """Each cell a capture tally adds to, with the measures it adds there: a measure goes to the cells of its own
    dimensions only (a 360 tally from before cohorts were tallied counts under the cohort "none", so the org's
    growth stays the sum of its cohorts' and no remainder is left to subtract)."""
    by_shape: dict[tuple[str, ...], dict[str, tuple[int, int, float]]] = {}
    for name, value in tally_measures(counters, priorities).items():
        by_shape.setdefault(measure_dimensions(name), {})[name] = value
    found: list[tuple[CellKey, dict[str, tuple[int, int, float]]]] = []
    for shape, measures in sorted(by_shape.items()):
        scoped = {d: v for d, v in dims.items() if d in shape}
        if "grow_cohort" in shape:
            scoped.setdefault("grow_cohort", NO_COHORT)
        found.extend((key, measures) for key in cell_keys(scoped))
    return found


class Tally(StrictModel):
    """A capture tally cell as the reports use it: its dimensions (by reporting name) and counters."""

    dims: dict[str, str]
    counters: dict[str, int]


class Cell(StrictModel):
    people: int = 0
    measures: dict[str, Measure] = {}
    utilisation: dict[str, int] = {}
    attrition: dict[str, int] = {}
    focus: dict[str, int] = {}


_EMPTY_CELL = Cell()


def cell_keys(dims: Mapping[str, str]) -> list[CellKey]:
    """The org, each dimension, and each pair of dimensions a person with `dims` falls in."""
    items = sorted(dims.items())
    keys: list[CellKey] = [ORG_CELL, *(((d, v),) for d, v in items)]
    keys.extend((items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items)))
    return keys


class _Acc:
    """A cell while it is being summed."""

    def __init__(self) -> None:
        self.people = 0
        self.measures: dict[str, Measure] = {}
        self.utilisation: dict[str, int] = {}
        self.attrition: dict[str, int] = {}
        self.focus: dict[str, int] = {}

    def add_measures(self, found: Mapping[str, tuple[int, int, float]]) -> None:
        for name, (people, count, total) in found.items():
            self.measures[name] = self.measures.get(name, Measure()).plus(people, count, total)

    def cell(self) -> Cell:
        return Cell(
            people=self.people,
            measures=dict(sorted(self.measures.items())),
            utilisation=dict(sorted(self.utilisation.items())),
            attrition=dict(sorted(self.attrition.items())),
            focus=dict(sorted(self.focus.items())),
        )


def _bump(counts: dict[str, int], name: str, by: int = 1) -> None:
    counts[name] = counts.get(name, 0) + by


class Rollup(StrictModel):
    """One org month: every cell, keyed by `encode_cell`. Identical for the same inputs in any order."""

    org_id: str
    period: str
    priorities: list[str] = []
    cells: dict[str, Cell]

    @classmethod
    def build(
        cls,
        org_id: str,
        period: str,
        contributions: Iterable[Contribution],
        tallies: Iterable[Tally] = (),
        priorities: Sequence[str] = (),
    ) -> Rollup:
        acc: dict[CellKey, _Acc] = {}
        for c in sorted(contributions, key=lambda c: c.pid):
            found = _measures(c)
            for key in cell_keys(c.dims):
                cell = acc.setdefault(key, _Acc())
                cell.people += 1
                cell.add_measures(found)
                if c.engaged:
                    _bump(cell.utilisation, utilisation_bucket(c.completed))
                if c.terminated:
                    _bump(cell.attrition, ATTRITION_BUCKETS[0] if c.regrettable else ATTRITION_BUCKETS[1])
                for competency in sorted(set(c.focus)):
                    _bump(cell.focus, competency)
        for t in sorted(tallies, key=lambda t: sorted(t.dims.items())):
            for key, found in tally_cells(t.dims, t.counters, priorities):
                cell = acc.setdefault(key, _Acc())
                cell.add_measures(found)
        cells = {encode_cell(key): a.cell() for key, a in sorted(acc.items())}
        return cls(org_id=org_id, period=period, priorities=sorted(priorities), cells=cells)

    def cell(self, key: CellKey) -> Cell:
        # A group nobody is in reads as one shared empty cell (read only): building one per miss cost half of
        # a large org's suppression.
        return self.cells.get(encode_cell(key), _EMPTY_CELL)

    def values(self, dimension: str) -> list[str]:
        return sorted({v for key in map(decode_cell, self.cells) if len(key) == 1 for d, v in key if d == dimension})


def encode_cell(key: CellKey) -> str:
    return "|".join(f"{d}={v}" for d, v in key) or "*"


def decode_cell(text: str) -> CellKey:
    if text == "*":
        return ORG_CELL
    return tuple((d, v) for d, _, v in (part.partition("=") for part in text.split("|")))


# ---------------------------------------------------------------------------------- the linked system


def _structure(rollup: Rollup, dimensions: Iterable[str]) -> list[Equation[CellKey]]:
    """org = Σ cells of each dimension; a dimension's cell = Σ its cells crossed with each other dimension."""
    values = {d: rollup.values(d) for d in dimensions}
    equations: list[Equation[CellKey]] = []
    for d, vs in values.items():
        if vs:
            equations.append(Equation(ORG_CELL, tuple(((d, v),) for v in vs)))
        for e, ws in values.items():
            if e == d or not ws:
                continue
            for v in vs:
                children = tuple(tuple(sorted([(d, v), (e, w)])) for w in ws)
                equations.append(Equation(((d, v),), children))
    return equations


def _supports(key: CellKey, dimensions: Iterable[str]) -> bool:
    allowed = set(dimensions)
    return all(d in allowed for d, _ in key)


type Slot = tuple[CellKey, str]  # a cell and one of its parts (a measure, a bucket, "people")


def _lifted(equations: Sequence[Equation[CellKey]], part: str) -> list[Equation[Slot]]:
    return [Equation((e.parent, part), tuple((c, part) for c in e.children)) for e in equations]


class Suppression(StrictModel):
    """Which (cell, part) slots are hidden, and by which rule; computed once per rollup and k."""

    k: int
    hidden: dict[str, str]  # "<cell>/<part>" -> rule

    def reason(self, key: CellKey, part: str) -> str | None:
        return self.hidden.get(f"{encode_cell(key)}/{part}")


NOT_AVAILABLE = "not_available"
# Shares of a yes/no per item: 0 % or 100 % would tell every member's answer (the distribution tails).
SHARE_MEASURES = frozenset({"attendance", "north_star_sessions", "north_star_goals"})


def _tail(cell: Cell, name: str) -> bool:
    m = cell.measures.get(name)
    return m is not None and m.count > 0 and (m.total == 0 or m.total == m.count)


def suppress(rollup: Rollup, k: int) -> Suppression:
    """The suppression of every slot of the month's linked system, deterministic for (rollup, k)."""
    every = [d.value for d in DIMENSIONS]
    structure = _structure(rollup, every)
    shapes = {shape: _structure(rollup, shape) for shape in (TALLY_DIMENSIONS, GROWTH_DIMENSIONS)}
    keys = sorted({e.parent for e in structure} | {c for e in structure for c in e.children} | {ORG_CELL})
    hidden: dict[str, str] = {}

    def record(result: Protection[Slot]) -> None:
        for slot in result.suppressed:
            hidden[f"{encode_cell(slot[0])}/{slot[1]}"] = result.reasons.get(slot, PRIMARY_RULE)

    people = protect({(key, "people"): rollup.cell(key).people for key in keys}, _lifted(structure, "people"), k)
    record(people)
    base = {key for key, _ in people.suppressed}
    for name in MEASURES:
        part = f"m:{name}"
        if name in TALLY_MEASURES:
            # Captured while the person was in a tally cell: published by the tally's dimensions only (growth
            # also by GROW cohort), and linked by the equations of those dimensions.
            shape = measure_dimensions(name)
            for key in keys:
                if not _supports(key, shape):
                    hidden[f"{encode_cell(key)}/{part}"] = NOT_AVAILABLE
            scope = [key for key in keys if _supports(key, shape)]
            counts = {(key, part): rollup.cell(key).measures.get(name, Measure()).people for key in scope}
            tails = [(key, part) for key in scope if name in SHARE_MEASURES and _tail(rollup.cell(key), name)]
            record(protect(counts, _lifted(shapes[shape], part), k, already=tails))
            continue
        counts = {(key, part): rollup.cell(key).measures.get(name, Measure()).people for key in keys}
        tails = [(key, part) for key in keys if name in SHARE_MEASURES and _tail(rollup.cell(key), name)]
        record(protect(counts, _lifted(structure, part), k, already=[*((key, part) for key in base), *tails]))
    competencies = sorted({name for key in keys for name in rollup.cell(key).focus})
    for name in competencies:
        part = f"f:{name}"
        counts = {(key, part): rollup.cell(key).focus.get(name, 0) for key in keys}
        record(protect(counts, _lifted(structure, part), k, already=[(key, part) for key in base]))
    # Distributions: the group's population = Σ buckets, and each bucket is additive over the structure.
    for prefix, buckets, population in (("u", UTILISATION_BUCKETS, "engaged"), ("a", ATTRITION_BUCKETS, "leavers")):
        slots: dict[Slot, int] = {}
        equations: list[Equation[Slot]] = []
        for key in keys:
            cell = rollup.cell(key)
            source = cell.utilisation if prefix == "u" else cell.attrition
            slots[(key, f"{prefix}:{population}")] = sum(source.values())
            for bucket in buckets:
                slots[(key, f"{prefix}:{bucket}")] = source.get(bucket, 0)
            equations.append(Equation((key, f"{prefix}:{population}"), tuple((key, f"{prefix}:{b}") for b in buckets)))
        for bucket in (population, *buckets):
            equations.extend(_lifted(structure, f"{prefix}:{bucket}"))
        record(protect(slots, equations, k, already=[(key, f"{prefix}:{population}") for key in base]))
    return Suppression(k=k, hidden=dict(sorted(hidden.items())))


def linked_system(rollup: Rollup) -> tuple[dict[Slot, float], list[Equation[Slot]]]:
    """Every slot's value (contributor counts, sums, buckets) and every equation between them: the attacker's view."""
    every = [d.value for d in DIMENSIONS]
    structure = _structure(rollup, every)
    shapes = {shape: _structure(rollup, shape) for shape in (TALLY_DIMENSIONS, GROWTH_DIMENSIONS)}
    keys = sorted({e.parent for e in structure} | {c for e in structure for c in e.children} | {ORG_CELL})
    values: dict[Slot, float] = {}
    equations: list[Equation[Slot]] = list(_lifted(structure, "people"))
    competencies = sorted({n for key in keys for n in rollup.cell(key).focus})
    for key in keys:
        cell = rollup.cell(key)
        values[(key, "people")] = cell.people
        for name in MEASURES:
            m = cell.measures.get(name, Measure())
            values[(key, f"m:{name}")] = m.people
            values[(key, f"s:{name}")] = m.total
            values[(key, f"n:{name}")] = m.count
        for name in competencies:
            values[(key, f"f:{name}")] = cell.focus.get(name, 0)
        for prefix, source in (("u", cell.utilisation), ("a", cell.attrition)):
            buckets = UTILISATION_BUCKETS if prefix == "u" else ATTRITION_BUCKETS
            for bucket in buckets:
                values[(key, f"{prefix}:{bucket}")] = source.get(bucket, 0)
            population = "engaged" if prefix == "u" else "leavers"
            values[(key, f"{prefix}:{population}")] = sum(source.values())
            equations.append(Equation((key, f"{prefix}:{population}"), tuple((key, f"{prefix}:{b}") for b in buckets)))
    for name in MEASURES:
        shape = shapes[measure_dimensions(name)] if name in TALLY_MEASURES else structure
        for part in ("m", "s", "n"):
            equations.extend(_lifted(shape, f"{part}:{name}"))
    for name in sorted({n for key in keys for n in rollup.cell(key).focus}):
        equations.extend(_lifted(structure, f"f:{name}"))
    for prefix, buckets, population in (("u", UTILISATION_BUCKETS, "engaged"), ("a", ATTRITION_BUCKETS, "leavers")):
        for bucket in (population, *buckets):
            equations.extend(_lifted(structure, f"{prefix}:{bucket}"))
    return values, equations


def hidden_slots(rollup: Rollup, protection: Suppression) -> set[Slot]:
    """The slots a reader cannot see: a hidden measure hides its contributors, items and sum alike."""
    values, _ = linked_system(rollup)
    hidden: set[Slot] = set()
    for key, part in values:
        kind, _, name = part.partition(":")
        check = f"m:{name}" if kind in {"s", "n"} else part
        if protection.reason(key, check) is not None:
            hidden.add((key, part))
    return hidden


# ---------------------------------------------------------------------------------- published figures


class Figure(StrictModel):
    """One published figure: its value and the group size it counts, or why it is hidden."""

    value: float | None = None
    group_size: int | None = None
    suppressed: str | None = None


HIDDEN_FIGURE = Figure()


def _figure(value: float | None, size: int | None, reason: str | None) -> Figure:
    if reason is not None:
        return Figure(suppressed=reason)
    return Figure(value=value, group_size=size)


MEASURE_SCALE: dict[str, float] = {"nps": 100.0, "attendance": 100.0, "north_star_sessions": 100.0,
                                   "north_star_goals": 100.0}  # fmt: skip


class CellFigures(StrictModel):
    """Every figure of one group in one month."""

    cell: dict[str, str]
    people: Figure
    measures: dict[str, Figure]
    competency_growth_percent: Figure
    utilisation: dict[str, Figure]
    attrition: dict[str, Figure]
    focus: dict[str, Figure]


def _ratio(measure: Measure, scale: float) -> float:
    return round(scale * measure.total / measure.count, 2) if measure.count else 0.0


def figures(rollup: Rollup, protection: Suppression, key: CellKey) -> CellFigures:
    cell = rollup.cell(key)
    measures: dict[str, Figure] = {}
    for name in MEASURES:
        m = cell.measures.get(name, Measure())
        value = float(m.count) if name == "sessions" else _ratio(m, MEASURE_SCALE.get(name, 1.0))
        measures[name] = _figure(value, m.people, protection.reason(key, f"m:{name}"))
    growth, baseline = cell.measures.get("competency_growth", Measure()), cell.measures.get("competency_baseline")
    growth_reason = protection.reason(key, "m:competency_growth") or protection.reason(key, "m:competency_baseline")
    percent = round(100 * growth.total / baseline.total, 1) if baseline and baseline.total else None
    utilisation = {
        b: _figure(float(cell.utilisation.get(b, 0)), cell.utilisation.get(b, 0), protection.reason(key, f"u:{b}"))
        for b in UTILISATION_BUCKETS
    }
    attrition = {
        b: _figure(float(cell.attrition.get(b, 0)), cell.attrition.get(b, 0), protection.reason(key, f"a:{b}"))
        for b in ATTRITION_BUCKETS
    }
    focus = {
        name: _figure(float(n), n, protection.reason(key, f"f:{name}"))
        for name, n in sorted(cell.focus.items())
        if protection.reason(key, f"f:{name}") is None
    }
    return CellFigures(
        cell=dict(key),
        people=_figure(float(cell.people), cell.people, protection.reason(key, "people")),
        measures=measures,
        competency_growth_percent=_figure(percent, growth.people, growth_reason if percent is not None else "no_data"),
        utilisation=utilisation,
        attrition=attrition,
        focus=focus,
    )


class Filter(StrictModel):
    dimension: Dimension
    value: Annotated[str, Field(min_length=1, max_length=200)]


def selected(rollup: Rollup, protection: Suppression, filters: Sequence[Filter]) -> CellKey:
    """The cell a view selects; refused (422) when its people count is hidden by either rule."""
    if len(filters) > 2:
        raise InvalidInput("at most two filters", field="filter")
    if len({f.dimension for f in filters}) != len(filters):
        raise InvalidInput("each filter must name another dimension", field="filter")
    key: CellKey = tuple(sorted((f.dimension.value, f.value) for f in filters))
    reason = protection.reason(key, "people")
    if reason is not None:
        rule = "minimum group" if reason == PRIMARY_RULE else "complementary suppression"
        detail = (
            f"fewer than {protection.k} people"
            if reason == PRIMARY_RULE
            else f"the rest of a published group would be fewer than {protection.k} people"
        )
        raise GroupTooSmall(
            f"this filter selects a group hidden by the {rule} rule: {detail}",
            field="filter",
            details={"rule": reason if reason in (PRIMARY_RULE, COMPLEMENTARY_RULE) else PRIMARY_RULE,
                     "min_group_size": protection.k},
        )  # fmt: skip
    return key


def breakdown(rollup: Rollup, protection: Suppression, within: CellKey, dimension: Dimension) -> list[CellFigures]:
    """The figures of `within` split by `dimension` (a table, or a cross table under one filter)."""
    if any(d == dimension.value for d, _ in within):
        raise InvalidInput("the breakdown dimension is already a filter", field="dimension")
    if len(within) > 1:
        raise InvalidInput("a breakdown takes at most one filter", field="filter")
    rows = []
    for value in rollup.values(dimension.value):
        key: CellKey = tuple(sorted([*within, (dimension.value, value)]))
        rows.append(figures(rollup, protection, key))
    return rows
