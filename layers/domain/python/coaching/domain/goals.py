"""Development goals (employee-led) and role profiles (set by org_admin).

A person keeps at most `MAX_ACTIVE_GOALS` active goals; the store enforces it atomically with a
conditional counter, like booking allowances. Each goal ties to competencies of the org's framework,
aims at the person's current role or a target role, and carries actions and dated progress check-ins.
The next check-in date is indexed so a daily schedule can nudge the person (`CheckInDue`).

A role profile lists, for one role (level) of the org, the competencies that matter and the
observable behaviours of each.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from coaching.domain.common import DeferredModel, ShortText, Slug, StrictModel
from coaching.domain.competencies import Framework
from coaching.domain.errors import Conflict, InvalidInput
from coaching.domain.taxonomy import Level
from coaching.domain.updates import evolved

MAX_ACTIVE_GOALS = 3
MAX_ACTIONS = 20
MAX_CHECKINS = 200
DEFAULT_CHECKIN_EVERY_DAYS = 14


class GoalStatus(StrEnum):
    ACTIVE = "active"
    ACHIEVED = "achieved"
    ABANDONED = "abandoned"


class GoalAim(StrEnum):
    CURRENT_ROLE = "current_role"
    TARGET_ROLE = "target_role"


Competencies = Annotated[list[Slug], Field(min_length=1, max_length=5)]
LongText = Annotated[str, Field(max_length=2000)]


class GoalAction(StrictModel):
    text: ShortText
    due: date | None = None
    done: bool = False


class GoalCreate(StrictModel):
    title: ShortText
    competencies: Competencies = Field(description="Competency ids of the org's framework (1 to 5).")
    aim: GoalAim = GoalAim.CURRENT_ROLE
    target_level: Level | None = Field(default=None, description="Required when aim is target_role.")
    actions: Annotated[list[GoalAction], Field(max_length=MAX_ACTIONS)] = []
    checkin_every_days: Annotated[int, Field(ge=1, le=90)] = DEFAULT_CHECKIN_EVERY_DAYS
    first_checkin_on: date | None = Field(default=None, description="Default: today + checkin_every_days.")

    @model_validator(mode="after")
    def _aim(self) -> GoalCreate:
        if self.aim is GoalAim.TARGET_ROLE and self.target_level is None:
            raise ValueError("target_level is required when aim is target_role")
        if self.aim is GoalAim.CURRENT_ROLE and self.target_level is not None:
            raise ValueError("target_level is only for aim target_role")
        return self


class CheckInRequest(StrictModel):
    progress: Annotated[int, Field(ge=0, le=100, description="How far the goal is, in percent.")]
    note: LongText = ""
    actions_done: Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=MAX_ACTIONS)] = Field(
        default=[], description="Indexes of actions completed since the last check-in."
    )
    next_checkin_on: date | None = Field(default=None, description="Default: today + the goal's interval.")


class GoalClose(StrictModel):
    status: GoalStatus = Field(description="achieved or abandoned.")

    @model_validator(mode="after")
    def _closing(self) -> GoalClose:
        if self.status is GoalStatus.ACTIVE:
            raise ValueError("a goal is closed as achieved or abandoned")
        return self


class CheckIn(DeferredModel):
    on: date
    progress: int
    note: str = ""
    at: datetime


class Goal(DeferredModel):
    goal_id: str
    org_id: str
    person_id: str
    title: str
    competencies: list[str]
    aim: GoalAim
    target_level: Level | None = None
    actions: list[GoalAction] = []
    checkin_every_days: int
    next_checkin_on: date | None
    checkins: list[CheckIn] = []
    status: GoalStatus = GoalStatus.ACTIVE
    created_at: datetime
    updated_at: datetime

    @classmethod
    def set(cls, org_id: str, person_id: str, data: GoalCreate, framework: Framework, now: datetime) -> Goal:
        check_competencies(data.competencies, framework, "competencies")
        first = data.first_checkin_on or now.date() + timedelta(days=data.checkin_every_days)
        if first < now.date():
            raise InvalidInput("the first check-in cannot be in the past", field="first_checkin_on")
        return cls(
            goal_id=str(uuid.uuid4()),
            org_id=org_id,
            person_id=person_id,
            title=data.title,
            competencies=list(dict.fromkeys(data.competencies)),
            aim=data.aim,
            target_level=data.target_level,
            actions=data.actions,
            checkin_every_days=data.checkin_every_days,
            next_checkin_on=first,
            created_at=now,
            updated_at=now,
        )

    @property
    def progress(self) -> int:
        return self.checkins[-1].progress if self.checkins else 0

    def _require_active(self) -> None:
        if self.status is not GoalStatus.ACTIVE:
            raise Conflict(f"this goal is {self.status.value}", field="goal_id")

    def check_in(self, data: CheckInRequest, now: datetime) -> Goal:
        self._require_active()
        if len(self.checkins) >= MAX_CHECKINS:
            raise InvalidInput(f"a goal keeps at most {MAX_CHECKINS} check-ins", field="goal_id")
        actions = list(self.actions)
        for index in data.actions_done:
            if index >= len(actions):
                raise InvalidInput(f"the goal has no action {index}", field="actions_done")
            actions[index] = actions[index].model_copy(update={"done": True})
        following = data.next_checkin_on or now.date() + timedelta(days=self.checkin_every_days)
        if following <= now.date():
            raise InvalidInput("the next check-in must be after today", field="next_checkin_on")
        entry = CheckIn(on=now.date(), progress=data.progress, note=data.note, at=now)
        return evolved(
            self, "goal", actions=actions, checkins=[*self.checkins, entry], next_checkin_on=following, updated_at=now
        )

    def close(self, status: GoalStatus, now: datetime) -> Goal:
        self._require_active()
        return evolved(self, "goal", status=status, next_checkin_on=None, updated_at=now)


def check_competencies(ids: Iterable[str], framework: Framework, field: str) -> None:
    known = framework.ids()
    for index, competency in enumerate(ids):
        if competency not in known:
            raise InvalidInput(
                f"{competency!r} is not a competency of the organisation's framework", field=f"{field}[{index}]"
            )


class ProfileCompetency(StrictModel):
    competency: Slug
    behaviours: Annotated[list[ShortText], Field(min_length=1, max_length=10)] = Field(
        description="What someone strong in this competency visibly does in this role."
    )


class RoleProfileRequest(StrictModel):
    name: ShortText
    competencies: Annotated[list[ProfileCompetency], Field(min_length=1, max_length=20)]

    @model_validator(mode="after")
    def _unique(self) -> RoleProfileRequest:
        ids = [c.competency for c in self.competencies]
        if len(set(ids)) != len(ids):
            raise ValueError("each competency appears once in a role profile")
        return self


class RoleProfile(DeferredModel):
    org_id: str
    level: Level
    name: str
    competencies: list[ProfileCompetency]
    updated_at: datetime

    @classmethod
    def define(
        cls, org_id: str, level: Level, data: RoleProfileRequest, framework: Framework, now: datetime
    ) -> RoleProfile:
        check_competencies([c.competency for c in data.competencies], framework, "competencies")
        return cls(org_id=org_id, level=level, name=data.name, competencies=data.competencies, updated_at=now)
