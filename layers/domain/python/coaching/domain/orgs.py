"""Organisations: the tenants."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from coaching.domain.booking import BookingPolicy
from coaching.domain.common import CurrencyCode, Entity, ShortText, StrictModel, TimeZoneName
from coaching.domain.competencies import Framework
from coaching.domain.matching import MatchingSettings
from coaching.domain.taxonomy import Industry
from coaching.domain.transitions import TransitionPolicy
from coaching.domain.updates import evolved, merged, validated

# Below three, an aggregate can single a person out; the platform never allows it.
MIN_REPORTING_GROUP_FLOOR = 3
DEFAULT_REPORTING_GROUP_SIZE = 5


class OrgCreate(StrictModel):
    name: ShortText
    time_zone: TimeZoneName
    currency: CurrencyCode
    industry: Industry
    min_reporting_group_size: Annotated[int, Field(ge=MIN_REPORTING_GROUP_FLOOR, le=100)] = DEFAULT_REPORTING_GROUP_SIZE


class OrgUpdate(StrictModel):
    name: ShortText | None = None
    time_zone: TimeZoneName | None = None
    currency: CurrencyCode | None = None
    industry: Industry | None = None
    min_reporting_group_size: Annotated[int, Field(ge=MIN_REPORTING_GROUP_FLOOR, le=100)] | None = None
    matching: MatchingSettings | None = None
    booking: BookingPolicy | None = None
    transitions: TransitionPolicy | None = None


class Org(Entity):
    org_id: str
    name: str
    time_zone: str
    currency: str
    industry: Industry
    min_reporting_group_size: int
    # None means the org uses the platform's default framework.
    framework: Framework | None = None
    # None means the platform's default matching settings.
    matching: MatchingSettings | None = None
    # None means the platform's default booking policy (allowances, caps, late-cancel window).
    booking: BookingPolicy | None = None
    # None means the platform's default transition policy (coaching.domain.transitions).
    transitions: TransitionPolicy | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def create(cls, org_id: str, data: OrgCreate, now: datetime) -> Org:
        return cls(org_id=org_id, created_at=now, updated_at=now, **data.model_dump())

    def updated(self, changes: OrgUpdate, now: datetime) -> Org:
        """The org with the fields sent, validated whole (a null name is refused, not stored)."""
        return merged(self, changes, "organisation", updated_at=now)

    def with_booking_policy(self, policy: BookingPolicy, now: datetime) -> Org:
        """The org whose 1:1 bookings follow `policy` from now on (bookings made keep their snapshot)."""
        return evolved(self, "organisation", booking=policy, updated_at=now)

    def calibrated(self, framework: Framework, now: datetime) -> Org:
        """The org with its own framework: the next version, under the org's framework id."""
        previous = self.framework.version if self.framework else 0
        data = framework.model_dump() | {"framework_id": f"org-{self.org_id}", "version": previous + 1}
        return evolved(self, "organisation", framework=validated(Framework, data, "framework"), updated_at=now)
