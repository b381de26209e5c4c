"""Capture tallies: how individual answers reach aggregates without any individual item being readable.

Every capture (feedback, goal set, check-in, goal closed, 360 released) adds to one *tally cell* in the
same transaction as the confidential record: a cell is an org x month x dimension vector (programme,
level, department, location, newly promoted; a released 360 also its GROW cohort), and holds only integer
sums and counts. Reports read cells and sum the ones a filter selects; they never read the records the cells
were built from, and a cell names nobody (it is keyed by a digest of its dimensions). Cells can hold one
person's answer: the reports' minimum group and complementary suppression (docs/privacy.md) decide what may be
published.

Distinct people: a person is counted once per month and programme in the `respondents` of the cell of
their first feedback that month (a marker in their own partition remembers it), so summing cells never
counts anyone twice within a programme.

Scores that are not integers are added in hundredths (`*_x100`), so every sum is exact and a rebuild
gives identical figures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta

from pydantic import Field

from coaching.domain.common import DeferredModel
from coaching.domain.feedback import NpsCategory, SessionFeedback, nps_category
from coaching.domain.people import Person

NEWLY_PROMOTED_WITHIN = timedelta(days=183)  # "newly promoted in the last 6 months"
NO_PROGRAM = "none"  # goals and assessments belong to no programme


class Dimensions(DeferredModel):
    """The dimension vector of a tally cell (a person's attributes when the capture happened)."""

    program: str
    level: str
    department: str = ""
    location: str = ""
    newly_promoted: bool = False
    # The GROW cohort (its start month `yyyy-mm`, or "none") a released 360 counts in; empty on every other
    # capture (feedback and goals are not broken down by cohort). `coaching.domain.rollups.growth_attribution`.
    grow_cohort: str = ""

    def cell_id(self) -> str:
        body = self.model_dump(mode="json")
        if not body["grow_cohort"]:
            del body["grow_cohort"]  # the cells captured before cohorts were tallied keep their digest
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def newly_promoted(person: Person, at: datetime) -> bool:
    return any(
        change.kind == "promotion" and at - NEWLY_PROMOTED_WITHIN <= change.stamp.effective_at <= at
        for change in person.level_history
    )


def dimensions_of(person: Person, program: str, at: datetime, grow_cohort: str = "") -> Dimensions:
    return Dimensions(
        program=program,
        level=person.level.value,
        department=person.department,
        location=person.location,
        newly_promoted=newly_promoted(person, at),
        grow_cohort=grow_cohort,
    )


def period_of(at: datetime) -> str:
    return at.strftime("%Y-%m")


class TallyDelta(DeferredModel):
    """What one capture adds to one cell: counter name -> integer increment.

    `first_counts` names the distinct-people counters this capture counts the person in for the first time
    this month; the store writes a marker per name in the person's partition (conditional on not existing)
    in the same transaction, so a person is counted once per month whatever the races.
    """

    org_id: str
    period: str
    dimensions: Dimensions
    add: dict[str, int] = Field(default_factory=dict)
    person_id: str | None = None
    first_counts: list[str] = Field(default_factory=list)


# Counter names (the cell's attributes). `focus:<competency>` counts goals set on that competency.
FEEDBACK_COUNTERS = (
    "feedback_responses",
    "feedback_respondents",
    "satisfaction_sum",
    "recommend_sum",
    "promoters",
    "passives",
    "detractors",
    "session_goal_progress_sum",
)
# Distinct people, once per person and month, in the cell of their first such capture that month.
GOAL_PEOPLE = "goal_people"
CHECKIN_PEOPLE = "checkin_people"
FOCUS_PEOPLE_PREFIX = "focus_people:"
GOAL_COUNTERS = (
    "goal_people",
    "checkin_people",
    "goals_set",
    "goals_aimed_at_target_role",
    "goal_checkins",
    "goal_progress_sum",
    "goals_achieved",
    "goals_abandoned",
)
ASSESSMENT_COUNTERS = (
    "assessments_released",
    "growth_people",
    "growth_baseline_x100",
    "growth_follow_up_x100",
    "managers_rated",
    "manager_score_x100",
)
FOCUS_PREFIX = "focus:"


def feedback_delta(feedback: SessionFeedback, dims: Dimensions, first_this_month: bool) -> TallyDelta:
    category = nps_category(feedback.would_recommend)
    add = {
        "feedback_responses": 1,
        "feedback_respondents": 1 if first_this_month else 0,
        "satisfaction_sum": feedback.satisfaction,
        "recommend_sum": feedback.would_recommend,
        "promoters": int(category is NpsCategory.PROMOTER),
        "passives": int(category is NpsCategory.PASSIVE),
        "detractors": int(category is NpsCategory.DETRACTOR),
        "session_goal_progress_sum": feedback.goal_progress,
    }
    return TallyDelta(org_id=feedback.org_id, period=feedback.period, dimensions=dims, add=add)


def goal_people_counters(competencies: list[str]) -> list[str]:
    """The distinct-people counters setting a goal on `competencies` counts a person in."""
    return [GOAL_PEOPLE, *(f"{FOCUS_PEOPLE_PREFIX}{c}" for c in competencies)]


def _people(add: dict[str, int], person_id: str, first: list[str]) -> dict[str, object]:
    add.update(dict.fromkeys(first, 1))
    return {"person_id": person_id, "first_counts": sorted(first)}


def goal_set_delta(
    org_id: str,
    person_id: str,
    competencies: list[str],
    target_role: bool,
    dims: Dimensions,
    at: datetime,
    first: list[str],
) -> TallyDelta:
    """`first`: the counters of `goal_people_counters` the person is not yet counted in this month."""
    add = {"goals_set": 1, "goals_aimed_at_target_role": int(target_role)}
    add.update({f"{FOCUS_PREFIX}{c}": 1 for c in competencies})
    people = _people(add, person_id, first)
    return TallyDelta.model_validate(
        {"org_id": org_id, "period": period_of(at), "dimensions": dims, "add": add, **people}
    )


def checkin_delta(
    org_id: str, person_id: str, progress: int, dims: Dimensions, at: datetime, first: bool
) -> TallyDelta:
    add = {"goal_checkins": 1, "goal_progress_sum": progress}
    people = _people(add, person_id, [CHECKIN_PEOPLE] if first else [])
    return TallyDelta.model_validate(
        {"org_id": org_id, "period": period_of(at), "dimensions": dims, "add": add, **people}
    )


def goal_closed_delta(org_id: str, achieved: bool, dims: Dimensions, at: datetime) -> TallyDelta:
    add = {"goals_achieved": int(achieved), "goals_abandoned": int(not achieved)}
    return TallyDelta(org_id=org_id, period=period_of(at), dimensions=dims, add=add)


def assessment_delta(
    org_id: str,
    dims: Dimensions,
    at: datetime,
    *,
    growth: tuple[float, float] | None,
    manager_score: float | None,
) -> TallyDelta:
    """A released 360: growth (baseline and follow-up overall, others' mean) when it is a follow-up with
    both sides shown; the direct reports' mean when the person manages a shown group of them."""
    add = {"assessments_released": 1}
    if growth is not None:
        add |= {"growth_people": 1, "growth_baseline_x100": round(growth[0] * 100),
                "growth_follow_up_x100": round(growth[1] * 100)}  # fmt: skip
    if manager_score is not None:
        add |= {"managers_rated": 1, "manager_score_x100": round(manager_score * 100)}
    return TallyDelta(org_id=org_id, period=period_of(at), dimensions=dims, add=add)


class TallyCell(DeferredModel):
    """One stored cell, as the read port returns it: no person, only the dimensions and the sums."""

    org_id: str
    period: str
    cell_id: str
    dimensions: Dimensions
    counters: dict[str, int]

    def get(self, name: str) -> int:
        return self.counters.get(name, 0)


def merge_counters(cells: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for counters in cells.values():
        for name, value in counters.items():
            total[name] = total.get(name, 0) + value
    return total
