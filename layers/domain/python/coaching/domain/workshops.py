"""TOGETHER team workshops: a facilitated session for a team, booked by its manager or an org admin.

The facilitator is a TOGETHER-certified coach matched from the network, at a time the facilitator
offers; the workshop claims the facilitator's calendar with the same lock items as a 1:1, so it can
never overlap anything else they run. It bills once per workshop (the price book's TOGETHER hourly
price, pro rata to its length) plus, when the price book sets one, a fee per participant; each is a
billable unit with its own deterministic id, locator and ledger guard.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field

from coaching.domain.booking import buckets
from coaching.domain.common import DeferredModel, LanguageCode, StrictModel
from coaching.domain.errors import Conflict, InvalidInput
from coaching.domain.programmes import (
    TEAM_MAX_SIZE,
    TEAM_MIN_SIZE,
    WORKSHOP_MAX_MINUTES,
    WORKSHOP_MIN_MINUTES,
    ProgrammePolicy,
)
from coaching.domain.taxonomy import Program

PersonId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


class WorkshopGoal(StrEnum):
    ALIGNMENT = "alignment"
    REORG = "reorg"
    DECISION = "decision"


class WorkshopStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    LATE_CANCELLED = "late_cancelled"
    COMPLETED = "completed"


class WorkshopRequest(StrictModel):
    team_name: Annotated[str, Field(min_length=1, max_length=120)]
    participant_ids: Annotated[list[PersonId], Field(min_length=TEAM_MIN_SIZE, max_length=TEAM_MAX_SIZE)]
    goal: WorkshopGoal
    length_minutes: Annotated[int, Field(ge=WORKSHOP_MIN_MINUTES, le=WORKSHOP_MAX_MINUTES, multiple_of=15)]
    start: AwareDatetime
    language: LanguageCode


class WorkshopCompletion(StrictModel):
    actual_minutes: Annotated[int, Field(ge=1, le=WORKSHOP_MAX_MINUTES * 2)]


class WorkshopCancel(StrictModel):
    reason: Annotated[str, Field(max_length=500)] = ""


def unit_ids(workshop_id: str, participants: list[str]) -> tuple[str, dict[str, str]]:
    """The workshop's own billable unit and one per participant (for a per-participant fee)."""
    base = str(uuid.uuid5(uuid.NAMESPACE_URL, f"together-unit:{workshop_id}"))
    return base, {p: str(uuid.uuid5(uuid.NAMESPACE_URL, f"together-unit:{workshop_id}:{p}")) for p in participants}


class Workshop(DeferredModel):
    workshop_id: str
    org_id: str
    program: Program = Program.TOGETHER
    team_name: str
    goal: WorkshopGoal
    booked_by: str
    facilitator_id: str
    participants: list[str]
    start: datetime  # UTC
    end: datetime  # UTC
    time_zone: str  # the org's: the invite's zone
    buffer_minutes: int
    language: str
    policy: ProgrammePolicy
    status: WorkshopStatus = WorkshopStatus.BOOKED
    sequence: int = 0
    actual_minutes: int | None = None
    cancel_reason: str = ""
    created_at: datetime
    updated_at: datetime

    @property
    def length_minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    def coach_buckets(self) -> list[str]:
        return buckets(self.start, self.end + timedelta(minutes=self.buffer_minutes))

    def units(self) -> tuple[str, dict[str, str]]:
        return unit_ids(self.workshop_id, self.participants)

    def _changed(self, **changes: object) -> Workshop:
        return Workshop.model_validate(self.model_dump() | changes)

    def complete(self, actual_minutes: int, now: datetime) -> Workshop:
        """Delivered, recorded by its facilitator once it has started; a repeat is a no-op."""
        if self.status is WorkshopStatus.COMPLETED:
            return self
        if self.status is not WorkshopStatus.BOOKED:
            raise Conflict(f"this workshop is {self.status.value.replace('_', ' ')}", field="workshop_id")
        if now < self.start:
            raise Conflict("a workshop cannot be completed before it starts", field="workshop_id")
        if actual_minutes > self.length_minutes * 2:
            raise InvalidInput(
                f"a {self.length_minutes}-minute workshop cannot have lasted {actual_minutes} minutes",
                field="actual_minutes",
            )
        return self._changed(status=WorkshopStatus.COMPLETED, actual_minutes=actual_minutes, updated_at=now)

    def cancel(self, reason: str, now: datetime) -> Workshop:
        """Free until the late-cancel window snapshotted at booking; inside it, billed if the policy says so."""
        if self.status is not WorkshopStatus.BOOKED:
            raise Conflict(f"this workshop is already {self.status.value.replace('_', ' ')}", field="workshop_id")
        if self.start <= now:
            raise Conflict("a workshop that has started cannot be cancelled", field="workshop_id")
        late = self.start - now < timedelta(hours=self.policy.late_cancel_hours)
        status = WorkshopStatus.LATE_CANCELLED if late and self.policy.bill_late_cancels else WorkshopStatus.CANCELLED
        return self._changed(status=status, cancel_reason=reason, sequence=self.sequence + 1, updated_at=now)
