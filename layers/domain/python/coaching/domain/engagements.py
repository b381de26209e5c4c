"""Match requests and engagements: who is matched to whom, in which programme, and since when."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from coaching.domain.common import DeferredModel
from coaching.domain.matching import Proposal
from coaching.domain.taxonomy import Level, Program


class MatchStatus(StrEnum):
    PROPOSED = "proposed"
    CHOSEN = "chosen"
    EXHAUSTED = "exhausted"


class EngagementStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class MatchRecord(DeferredModel):
    match_id: str
    org_id: str
    person_id: str
    program: Program
    focus_competencies: list[str]
    preferred_languages: list[str] = []
    trigger: str = "request"  # request | change | promotion
    level: Level | None = None  # set when made for a level the person record does not show yet
    replaces_engagement_id: str | None = None
    status: MatchStatus = MatchStatus.PROPOSED
    proposals: list[Proposal] = []
    shown: list[str] = []
    declined: list[str] = []
    engagement_id: str | None = None
    created_at: datetime
    updated_at: datetime


class Engagement(DeferredModel):
    engagement_id: str
    org_id: str
    person_id: str
    coach_id: str
    program: Program
    match_id: str | None = None
    start_date: str
    status: EngagementStatus = EngagementStatus.ACTIVE
    end_reason: str | None = None
    ended_by: str | None = None  # "person" when they asked to change: the coach is then excluded
    ended_at: datetime | None = None
    created_at: datetime
