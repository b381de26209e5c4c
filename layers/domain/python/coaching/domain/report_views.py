"""The reports leaders, org admins and finance read: every figure from one suppressed linked system.

`org_report` assembles a month's report for the group a view selects (the org, one filter, or a pair) from
a `Rollup` and its `Suppression` (coaching.domain.reporting): every number is a `Figure` that is either a
value with its group size or the rule that hides it. Nothing here sees a person: only cells.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import Field

from coaching.domain import reporting as reporting_rules
from coaching.domain import rollups, suppression
from coaching.domain.common import Slug, StrictModel
from coaching.domain.reporting import (
    ATTRITION_BUCKETS,
    GROWTH_DIMENSIONS,
    HIDDEN_FIGURE,
    ORG_CELL,
    CellFigures,
    CellKey,
    Dimension,
    Figure,
    Filter,
    Rollup,
    Suppression,
    Tally,
    breakdown,
    encode_cell,
    figures,
    selected,
)
from coaching.domain.taxonomy import Level

Competency = Slug  # a framework competency id, hyphens included (giving-feedback)


class ReplacementCost(StrictModel):
    """What losing one person of a level costs: `factor` x their average salary (1-2x by convention)."""

    factor: Annotated[float, Field(ge=1.0, le=2.0)]
    average_salary_minor: Annotated[int, Field(ge=0, le=10**11)]


class ReportSettings(StrictModel):
    """Set by org_admin: North Star priorities and the replacement cost per level the ROI estimate uses."""

    priorities: Annotated[list[Competency], Field(max_length=10)] = []
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"
    replacement_cost: dict[Level, ReplacementCost] = {}


class Attrition(StrictModel):
    group: str  # "coached" or "not_yet_coached"
    people: Figure
    regrettable: Figure
    rate_percent: Figure


class Roi(StrictModel):
    value_minor: int | None
    departures_avoided: float | None
    spend_minor: int
    currency: str
    suppressed: str | None = None
    assumptions: list[str]


class Leading(StrictModel):
    active_people: Figure
    sessions: Figure
    attendance_percent: Figure
    satisfaction: Figure
    nps: Figure
    goal_progress_percent: Figure
    utilisation: dict[str, Figure]


class Breakdown(StrictModel):
    dimension: str
    rows: list[dict[str, Figure | str]]


# The breakdowns of competency growth in the lagging section, in this order.
GROWTH_BREAKDOWNS = ("grow_cohort", "programme", "level", "newly_promoted")


class Lagging(StrictModel):
    competency_growth_points: Figure
    competency_growth_percent: Figure
    growth_by_cohort: list[Breakdown]
    manager_effectiveness: Figure
    manager_effectiveness_by_department: Breakdown


class Business(StrictModel):
    attrition: list[Attrition]
    roi: Roi


class NorthStar(StrictModel):
    priorities: list[str]
    sessions_on_priorities_percent: Figure
    goals_on_priorities_percent: Figure


class Segment(StrictModel):
    dimension: str
    value: str
    people: Figure
    focus: dict[str, Figure]


class Headline(StrictModel):
    """The three figures the scale vendors publish, for this org, with their group sizes."""

    attendance_percent: Figure
    nps: Figure
    competency_growth_percent: Figure


class Report(StrictModel):
    org_id: str
    period: str
    min_group_size: int
    filters: dict[str, str]
    headline: Headline
    leading: Leading
    lagging: Lagging
    business: Business
    north_star: NorthStar
    topics: list[Segment]
    # The four programmes as cohorts (people, sessions, attendance), each row through the same suppression.
    programmes: Breakdown


def _m(cell: CellFigures, name: str) -> Figure:
    return cell.measures.get(name, HIDDEN_FIGURE)


def _rows(rollup: Rollup, protection: Suppression, within: CellKey, dimension: Dimension,
          names: Sequence[str]) -> Breakdown:  # fmt: skip
    if any(d == dimension.value for d, _ in within) or len(within) > 1:
        return Breakdown(dimension=dimension.value, rows=[])
    rows: list[dict[str, Figure | str]] = []
    for cell in breakdown(rollup, protection, within, dimension):
        row: dict[str, Figure | str] = {"value": cell.cell[dimension.value]}
        for name in names:
            row[name] = cell.competency_growth_percent if name == "competency_growth_percent" else _m(cell, name)
        rows.append(row)
    return Breakdown(dimension=dimension.value, rows=rows)


def _attrition(rollup: Rollup, protection: Suppression, within: CellKey) -> list[Attrition]:
    found = []
    fixed = dict(within).get(Dimension.COACHED.value)
    for value, group in (("yes", "coached"), ("not_yet", "not_yet_coached")):
        if fixed is not None and fixed != value:
            continue
        key: CellKey = tuple(sorted({*within, (Dimension.COACHED.value, value)}))
        if len(key) > 2:
            continue
        cell = figures(rollup, protection, key)
        regrettable = cell.attrition.get(ATTRITION_BUCKETS[0], HIDDEN_FIGURE)
        rate = HIDDEN_FIGURE
        if regrettable.value is not None and cell.people.value:
            rate = Figure(
                value=round(100 * regrettable.value / cell.people.value, 2), group_size=cell.people.group_size
            )
        elif regrettable.suppressed or cell.people.suppressed:
            rate = Figure(suppressed=regrettable.suppressed or cell.people.suppressed)
        found.append(Attrition(group=group, people=cell.people, regrettable=regrettable, rate_percent=rate))
    return found


def _money(minor: int, currency: str) -> str:
    return f"{minor / 100:,.2f} {currency}"


def _roi(rollup: Rollup, protection: Suppression, settings: ReportSettings, spend_minor: int,
         currency: str) -> Roi:  # fmt: skip
    """Departures avoided per level x replacement cost, against the month's spend; every assumption printed."""
    currency = currency or settings.currency
    assumptions = [
        "Departures avoided in a level = (regrettable attrition rate of not-yet-coached people - that of coached "
        "people) x coached people, counted only where both groups are published (at least the minimum group).",
        "Replacement cost of one departure = the org's factor x the level's average salary (set by org_admin).",
        f"Spend = the ledger's entries billed in {rollup.period}: {_money(spend_minor, currency)}.",
        "A negative difference (coached people left more) counts as zero avoided, never as a gain.",
    ]
    avoided_total, value = 0.0, 0
    counted = 0
    for level in sorted(settings.replacement_cost, key=lambda lv: lv.value):
        cost = settings.replacement_cost[level]
        coached = _attrition(rollup, protection, ((Dimension.LEVEL.value, level.value),))
        rates = {a.group: a for a in coached}
        yes, no = rates.get("coached"), rates.get("not_yet_coached")
        if not yes or not no or yes.rate_percent.value is None or no.rate_percent.value is None:
            assumptions.append(f"{level.value}: not counted (a group is below the minimum or suppressed).")
            continue
        people = yes.people.value or 0.0
        avoided = max(0.0, (no.rate_percent.value - yes.rate_percent.value) / 100 * people)
        per_departure = round(cost.factor * cost.average_salary_minor)
        avoided_total += avoided
        value += round(avoided * per_departure)
        counted += 1
        assumptions.append(
            f"{level.value}: {avoided:.2f} departures avoided x {cost.factor:g} x "
            f"{_money(cost.average_salary_minor, currency)} = {_money(round(avoided * per_departure), currency)}."
        )
    if not counted:
        return Roi(
            value_minor=None,
            departures_avoided=None,
            spend_minor=spend_minor,
            currency=currency,
            suppressed="no_level_with_both_groups_published",
            assumptions=assumptions,
        )
    return Roi(
        value_minor=value,
        departures_avoided=round(avoided_total, 2),
        spend_minor=spend_minor,
        currency=currency,
        assumptions=assumptions,
    )


def _programmes(rollup: Rollup, protection: Suppression, within: CellKey) -> Breakdown:
    """Who took part in which programme this month (`coaching.domain.rollups.programme_of`), row by row."""
    dimension = Dimension.PROGRAMME
    if any(d == dimension.value for d, _ in within) or len(within) > 1:
        return Breakdown(dimension=dimension.value, rows=[])
    rows: list[dict[str, Figure | str]] = [
        {"value": cell.cell[dimension.value], "people": cell.people, "sessions": _m(cell, "sessions"),
         "attendance_percent": _m(cell, "attendance")}
        for cell in breakdown(rollup, protection, within, dimension)
    ]  # fmt: skip
    return Breakdown(dimension=dimension.value, rows=rows)


def _segments(rollup: Rollup, protection: Suppression, within: CellKey) -> list[Segment]:
    found = []
    for dimension in (Dimension.NEWLY_PROMOTED, Dimension.LEVEL):
        if any(d == dimension.value for d, _ in within) or len(within) > 1:
            continue
        for cell in breakdown(rollup, protection, within, dimension):
            found.append(
                Segment(
                    dimension=dimension.value, value=cell.cell[dimension.value], people=cell.people, focus=cell.focus
                )
            )
    return found


def org_report(
    rollup: Rollup,
    protection: Suppression,
    filters: Sequence[Filter],
    settings: ReportSettings,
    spend_minor: int = 0,
    currency: str = "",
) -> Report:
    """The month's report for the group `filters` select; 422 `group_too_small` when that group is hidden."""
    # No filter is the whole org: shown even when the org itself is below the minimum, every figure suppressed.
    key = selected(rollup, protection, filters) if filters else ORG_CELL
    cell = figures(rollup, protection, key)
    leading = Leading(
        active_people=cell.people,
        sessions=_m(cell, "sessions"),
        attendance_percent=_m(cell, "attendance"),
        satisfaction=_m(cell, "satisfaction"),
        nps=_m(cell, "nps"),
        goal_progress_percent=_m(cell, "goal_progress"),
        utilisation=cell.utilisation,
    )
    growth_names = ["competency_growth", "competency_growth_percent"]
    lagging = Lagging(
        competency_growth_points=_m(cell, "competency_growth"),  # mean change per person, 1-5 scale
        competency_growth_percent=cell.competency_growth_percent,
        # By GROW cohort and programme (where the person was when their follow-up was released), level and
        # newly promoted: every row a cell of the one suppressed system, its group size the people measured.
        growth_by_cohort=[
            _rows(rollup, protection, key, Dimension(d), growth_names)
            for d in GROWTH_BREAKDOWNS
            if d in GROWTH_DIMENSIONS
        ],
        manager_effectiveness=_m(cell, "manager_effectiveness"),
        manager_effectiveness_by_department=_rows(
            rollup, protection, key, Dimension.DEPARTMENT, ["manager_effectiveness"]
        ),
    )
    business = Business(
        attrition=_attrition(rollup, protection, key),
        roi=_roi(rollup, protection, settings, spend_minor, currency),
    )
    north = NorthStar(
        priorities=sorted(rollup.priorities),
        sessions_on_priorities_percent=_m(cell, "north_star_sessions"),
        goals_on_priorities_percent=_m(cell, "north_star_goals"),
    )
    return Report(
        org_id=rollup.org_id,
        period=rollup.period,
        min_group_size=protection.k,
        filters=dict(key),
        headline=Headline(
            attendance_percent=leading.attendance_percent,
            nps=leading.nps,
            competency_growth_percent=lagging.competency_growth_percent,
        ),
        leading=leading,
        lagging=lagging,
        business=business,
        north_star=north,
        topics=_segments(rollup, protection, key),
        programmes=_programmes(rollup, protection, key),
    )


class TrendPoint(StrictModel):
    period: str
    active_people: Figure
    sessions: Figure
    attendance_percent: Figure
    satisfaction: Figure
    nps: Figure
    competency_growth_percent: Figure


def trend_point(rollup: Rollup, protection: Suppression, filters: Sequence[Filter]) -> TrendPoint:
    """One month of a trend: a month whose group is hidden shows every figure as hidden, with the rule."""
    key: CellKey = tuple(sorted((f.dimension.value, f.value) for f in filters))
    reason = protection.reason(key, "people")
    if reason is not None:
        hidden = Figure(suppressed=reason)
        return TrendPoint(
            period=rollup.period,
            active_people=hidden,
            sessions=hidden,
            attendance_percent=hidden,
            satisfaction=hidden,
            nps=hidden,
            competency_growth_percent=hidden,
        )
    cell = figures(rollup, protection, key)
    return TrendPoint(
        period=rollup.period,
        active_people=cell.people,
        sessions=_m(cell, "sessions"),
        attendance_percent=_m(cell, "attendance"),
        satisfaction=_m(cell, "satisfaction"),
        nps=_m(cell, "nps"),
        competency_growth_percent=cell.competency_growth_percent,
    )


class CoachTopics(StrictModel):
    """The operator's view: what coaching is about across every org's coaches, in aggregate only."""

    period: str
    orgs: int
    focus: dict[str, int]
    by_level: dict[str, dict[str, int]]
    note: str = (
        "Sums of each org's published focus figures only (a figure an org's suppression hides is left out), "
        "so no org's small group reaches this view."
    )


def add_published_focus(into: dict[str, int], cell: CellFigures) -> None:
    for name, figure in cell.focus.items():
        if figure.value is not None:
            into[name] = into.get(name, 0) + int(figure.value)


def filters_from(params: Mapping[str, str | None]) -> list[Filter]:
    return [Filter(dimension=d, value=str(params[d.value])) for d in Dimension if params.get(d.value)]


# ----------------------------------------------------------------------------- a month's trend point, cached


def _code_version() -> str:
    """A digest of the code that turns a month's inputs into published figures: a deploy that changes the rules,
    the cells or the figures makes every cached figure a miss (read once per process)."""
    digest = hashlib.sha256()
    for module in (reporting_rules, rollups, suppression):
        digest.update(Path(str(module.__file__)).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


_CODE_VERSION: list[str] = []


def month_digest(k: int, priorities: Sequence[str], cells: Mapping[CellKey, Mapping[str, int]],
                 tallies: Sequence[Tally]) -> str:  # fmt: skip
    """A digest of everything a month's published figures depend on: the minimum group, the priorities, every
    rollup cell and every capture tally, and the code. Equal digests give equal figures (suppression is
    deterministic), so a figure computed once can be served again for as long as the digest holds."""
    if not _CODE_VERSION:
        _CODE_VERSION.append(_code_version())
    canonical = json.dumps(
        [_CODE_VERSION[0], k, sorted(priorities),
         [[encode_cell(key), sorted(counters.items())] for key, counters in sorted(cells.items())],
         sorted([sorted(t.dims.items()), sorted(t.counters.items())] for t in tallies)],
        separators=(",", ":"),
    )  # fmt: skip
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CachedTrendPoint(StrictModel):
    """A closed month's trend point for one view, with the digest of the inputs it was computed from."""

    digest: str
    point: TrendPoint
