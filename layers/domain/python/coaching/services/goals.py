"""Development goals (employee-led), role profiles and the development policy (org_admin), the daily nudge.

A person keeps at most 3 active goals: the store adds a goal with a conditional counter in the same
transaction (`active < 3`), and closing one gives the place back, so concurrent requests can never pass 3.
Every change adds to a capture tally cell and commits its event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from coaching.auth import Principal, Role
from coaching.domain.assessments import DevelopmentPolicy
from coaching.domain.common import Clock
from coaching.domain.competencies import Framework, default_framework
from coaching.domain.errors import Conflict, NotFound
from coaching.domain.events import (
    CheckInDue,
    DevelopmentPolicySet,
    Event,
    GoalCheckedIn,
    GoalClosed,
    GoalSet,
    RoleProfileSet,
    stable_event_id,
)
from coaching.domain.goals import (
    CheckInRequest,
    Goal,
    GoalAim,
    GoalClose,
    GoalCreate,
    GoalStatus,
    RoleProfile,
    RoleProfileRequest,
)
from coaching.domain.measures import (
    CHECKIN_PEOPLE,
    NO_PROGRAM,
    TallyDelta,
    checkin_delta,
    dimensions_of,
    goal_closed_delta,
    goal_people_counters,
    goal_set_delta,
    period_of,
)
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.taxonomy import Level


class OrgPersonReader(Protocol):
    def org_and_person(self, org_id: str, person_id: str) -> tuple[Org | None, Person | None]: ...


class GoalPort(OrgPersonReader, Protocol):
    def counted(self, org_id: str, person_id: str, period: str, names: Sequence[str]) -> set[str]:
        """Which of the distinct-people counters `names` already count the person in `period`."""
        ...

    def add_goal(self, goal: Goal, delta: TallyDelta, events: Sequence[Event]) -> None:
        """Raises PolicyRefused when the person already has 3 active goals."""
        ...

    def goal(self, org_id: str, person_id: str, goal_id: str) -> tuple[Goal, int] | None: ...

    def goals(self, org_id: str, person_id: str) -> list[Goal]: ...

    def update_goal(
        self, goal: Goal, version: int, delta: TallyDelta, events: Sequence[Event], *, closed: bool
    ) -> None: ...

    def due_checkins(self, due_on: date) -> list[Goal]: ...

    def commit_events(self, events: Sequence[Event]) -> None: ...


class ProfilePort(Protocol):
    def org(self, org_id: str) -> Org | None: ...

    def put_role_profile(self, profile: RoleProfile, events: Sequence[Event]) -> None: ...

    def role_profiles(self, org_id: str) -> list[RoleProfile]: ...

    def put_policy(self, org_id: str, policy: DevelopmentPolicy, events: Sequence[Event]) -> None: ...

    def policy(self, org_id: str) -> DevelopmentPolicy: ...


_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class GoalContext:
    store: GoalPort
    clock: Clock


@dataclass(frozen=True, slots=True)
class ProfileContext:
    store: ProfilePort
    clock: Clock


def framework_of(org: Org) -> Framework:
    return org.framework or default_framework()


def _org_person(caller: Principal, store: OrgPersonReader) -> tuple[Org, Person]:
    org_id = caller.require_org(Role.EMPLOYEE)
    org, person = store.org_and_person(org_id, caller.person_id)
    if org is None or person is None:
        raise NotFound("the caller is not a person of this organisation")
    return org, person


def set_goal(caller: Principal, data: GoalCreate, ctx: GoalContext) -> Goal:
    org, person = _org_person(caller, ctx.store)
    now = ctx.clock()
    goal = Goal.set(org.org_id, person.person_id, data, framework_of(org), now)
    dims = dimensions_of(person, NO_PROGRAM, now)
    event = GoalSet(
        occurred_at=now,
        org_id=org.org_id,
        person_id=person.person_id,
        goal_id=goal.goal_id,
        competencies=goal.competencies,
        aim=goal.aim.value,
        target_level=goal.target_level.value if goal.target_level else None,
        period=period_of(now),
        cell_id=dims.cell_id(),
    )
    wanted = goal_people_counters(goal.competencies)
    for _ in range(_ATTEMPTS):
        first = [n for n in wanted if n not in ctx.store.counted(org.org_id, person.person_id, period_of(now), wanted)]
        delta = goal_set_delta(org.org_id, person.person_id, goal.competencies, goal.aim is GoalAim.TARGET_ROLE,
                               dims, now, first)  # fmt: skip
        try:
            ctx.store.add_goal(goal, delta, [event])
        except Conflict:
            continue  # another goal of this person counted them first this month: count again
        return goal
    raise Conflict("your goals are being changed at the same time; try again")


def my_goals(caller: Principal, ctx: GoalContext) -> list[Goal]:
    org_id = caller.require_org(Role.EMPLOYEE)
    return ctx.store.goals(org_id, caller.person_id)


def _own_goal(caller: Principal, goal_id: str, ctx: GoalContext) -> tuple[Person, Goal, int]:
    org, person = _org_person(caller, ctx.store)
    found = ctx.store.goal(org.org_id, person.person_id, goal_id)
    if found is None:
        raise NotFound(f"goal {goal_id} not found", field="goal_id")
    return person, found[0], found[1]


def check_in(caller: Principal, goal_id: str, data: CheckInRequest, ctx: GoalContext) -> Goal:
    person, goal, version = _own_goal(caller, goal_id, ctx)
    now = ctx.clock()
    updated = goal.check_in(data, now)
    dims = dimensions_of(person, NO_PROGRAM, now)
    counted = ctx.store.counted(goal.org_id, goal.person_id, period_of(now), [CHECKIN_PEOPLE])
    delta = checkin_delta(goal.org_id, goal.person_id, data.progress, dims, now, first=CHECKIN_PEOPLE not in counted)
    event = GoalCheckedIn(
        occurred_at=now,
        org_id=goal.org_id,
        person_id=goal.person_id,
        goal_id=goal.goal_id,
        checked_in_on=now.date().isoformat(),
        next_checkin_on=(updated.next_checkin_on or now.date()).isoformat(),
        period=period_of(now),
        cell_id=dims.cell_id(),
    )
    ctx.store.update_goal(updated, version, delta, [event], closed=False)
    return updated


def close(caller: Principal, goal_id: str, data: GoalClose, ctx: GoalContext) -> Goal:
    person, goal, version = _own_goal(caller, goal_id, ctx)
    now = ctx.clock()
    updated = goal.close(data.status, now)
    dims = dimensions_of(person, NO_PROGRAM, now)
    delta = goal_closed_delta(goal.org_id, data.status is GoalStatus.ACHIEVED, dims, now)
    event = GoalClosed(occurred_at=now, org_id=goal.org_id, person_id=goal.person_id, goal_id=goal.goal_id,
                       status=data.status.value, period=period_of(now), cell_id=dims.cell_id())  # fmt: skip
    ctx.store.update_goal(updated, version, delta, [event], closed=True)
    return updated


def nudge(today: date, ctx: GoalContext) -> list[CheckInDue]:
    """One CheckInDue per active goal whose check-in is due today; a stable id, so re-runs add nothing."""
    events = [
        CheckInDue(
            event_id=stable_event_id("checkin-due", goal.org_id, goal.goal_id, today.isoformat()),
            occurred_at=ctx.clock(),
            org_id=goal.org_id,
            person_id=goal.person_id,
            goal_id=goal.goal_id,
            due_on=today.isoformat(),
        )
        for goal in ctx.store.due_checkins(today)
        if goal.status is GoalStatus.ACTIVE and goal.next_checkin_on == today
    ]
    ctx.store.commit_events(events)
    return events


# ------------------------------------------------------------------ role profiles and policy (org_admin)


def set_role_profile(
    caller: Principal, org_id: str, level: Level, data: RoleProfileRequest, ctx: ProfileContext
) -> RoleProfile:
    caller.require_same_org(org_id, Role.ORG_ADMIN)
    org = ctx.store.org(org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} not found", field="org_id")
    now = ctx.clock()
    profile = RoleProfile.define(org_id, level, data, framework_of(org), now)
    event = RoleProfileSet(occurred_at=now, org_id=org_id, level=level.value,
                           competencies=[c.competency for c in profile.competencies])  # fmt: skip
    ctx.store.put_role_profile(profile, [event])
    return profile


def role_profiles(caller: Principal, org_id: str, ctx: ProfileContext) -> list[RoleProfile]:
    """The org's role profiles: for its org_admin and its people (what the roles expect is no secret)."""
    caller.require_same_org(org_id, Role.ORG_ADMIN, Role.EMPLOYEE)
    return ctx.store.role_profiles(org_id)


def set_policy(caller: Principal, org_id: str, policy: DevelopmentPolicy, ctx: ProfileContext) -> DevelopmentPolicy:
    caller.require_same_org(org_id, Role.ORG_ADMIN)
    if ctx.store.org(org_id) is None:
        raise NotFound(f"organisation {org_id} not found", field="org_id")
    event = DevelopmentPolicySet(occurred_at=ctx.clock(), org_id=org_id, show_manager_alone=policy.show_manager_alone,
                                 follow_up_weeks=policy.follow_up_weeks)  # fmt: skip
    ctx.store.put_policy(org_id, policy, [event])
    return policy


def policy(caller: Principal, org_id: str, ctx: ProfileContext) -> DevelopmentPolicy:
    caller.require_same_org(org_id, Role.ORG_ADMIN, Role.EMPLOYEE)
    return ctx.store.policy(org_id)
