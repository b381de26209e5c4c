"""Matching's consumer of PersonTerminated: every active engagement ends, once; the coach's place is freed."""

from __future__ import annotations

import pytest
from coaching.domain.events import EngagementEnded, PersonTerminated
from coaching.services import matching, rematches
from coaching.services.rematches import PERSON_TERMINATED

from .fakes.matching import MatchingWorld, make_coach
from .test_lifecycle_service import engage


@pytest.fixture
def mworld() -> MatchingWorld:
    return MatchingWorld()


def _terminated(org_id: str, person_id: str) -> PersonTerminated:
    return PersonTerminated(
        event_id="term-1", org_id=org_id, person_id=person_id, terminated_on="2026-05-01", regrettable=True
    )


def test_a_termination_ends_every_active_engagement_once_and_touches_nobody_else(mworld: MatchingWorld) -> None:
    ada, bo = mworld.coaches(make_coach("ada"), make_coach("bo"))
    leaver, stayer = mworld.person(), mworld.person()
    scale = engage(mworld, leaver, ada.coach_id)
    grow = engage(mworld, leaver, bo.coach_id, program="GROW")
    kept = engage(mworld, stayer, ada.coach_id)
    assert leaver.org_id is not None
    event = _terminated(leaver.org_id, leaver.person_id)

    outcome = rematches.on_person_terminated(event, mworld.ctx)

    assert sorted(outcome.ended) == sorted([scale.engagement_id, grow.engagement_id])
    ended = [e for e in mworld.events_of(EngagementEnded) if e.end_reason == PERSON_TERMINATED]
    assert sorted(e.engagement_id for e in ended) == sorted(outcome.ended)
    statuses = {e.engagement_id: e.status for e in matching.list_engagements(stayer, mworld.ctx)}
    assert statuses[kept.engagement_id] == "active"
    # Redelivered: nothing more ends and no event is written twice.
    again = rematches.on_person_terminated(event, mworld.ctx)
    assert again.ended == []
    assert len([e for e in mworld.events_of(EngagementEnded) if e.end_reason == PERSON_TERMINATED]) == 2


def test_the_freed_place_lets_the_coach_take_someone_else(mworld: MatchingWorld) -> None:
    (solo,) = mworld.coaches(make_coach("solo", capacity=1))
    leaver, next_person = mworld.person(), mworld.person()
    engage(mworld, leaver, solo.coach_id)
    assert leaver.org_id is not None
    rematches.on_person_terminated(_terminated(leaver.org_id, leaver.person_id), mworld.ctx)
    assert engage(mworld, next_person, solo.coach_id).is_active
