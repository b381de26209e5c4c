"""The platform's engagement ends (a person's termination, a coach's suspension) retry a write that meets a
Conflict: the engagement is read again and ended again, at most three times, then Conflict names the cause
and nothing is ended or announced (the bus retries the event)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from coaching.domain.engagements import Engagement
from coaching.domain.errors import Conflict
from coaching.domain.events import CoachVettingChanged, EngagementEnded, MatchProposed, PersonTerminated
from coaching.services import rematches

from .fakes.matching import MatchingWorld, make_coach
from .test_hr_termination import _terminated
from .test_lifecycle_service import engage, suspend


@pytest.fixture
def mworld() -> MatchingWorld:
    return MatchingWorld()


def _conflicts_first(mworld: MatchingWorld, write: str, times: int) -> dict[str, int]:
    """The store's `write` raises Conflict on its first `times` calls, then writes; counts calls and reads."""
    calls = {"writes": 0, "reads": 0}
    real_write: Callable[..., None] = getattr(mworld.store, write)
    real_read = mworld.store.engagement

    def conflicting(*args: Any, **kwargs: Any) -> None:
        calls["writes"] += 1
        if calls["writes"] <= times:
            raise Conflict("this engagement changed at the same time; load it again")
        real_write(*args, **kwargs)

    def counted(*args: Any) -> Any:
        calls["reads"] += 1
        return real_read(*args)

    setattr(mworld.store, write, conflicting)
    mworld.store.engagement = counted  # type: ignore[method-assign]
    return calls


def _terminated_leaver(mworld: MatchingWorld) -> tuple[str, PersonTerminated]:
    (ada,) = mworld.coaches(make_coach("ada"))
    leaver = mworld.person()
    engagement = engage(mworld, leaver, ada.coach_id)
    assert leaver.org_id is not None
    return engagement.engagement_id, _terminated(leaver.org_id, leaver.person_id)


def _suspended(mworld: MatchingWorld, *, rematch: bool) -> tuple[Engagement, CoachVettingChanged]:
    """An engagement with a coach just suspended; with `rematch`, others fit the person, else nobody does."""
    if rematch:
        coach, _, _ = mworld.coaches(make_coach("ada"), make_coach("bo"), make_coach("cy"))
        who = mworld.person()
    else:
        coach, _ = mworld.coaches(make_coach("only", languages=["is"]), make_coach("english"))
        who = mworld.person(languages=["is"])
    engagement = engage(mworld, who, coach.coach_id)
    return engagement, suspend(mworld, coach.coach_id)


def test_a_termination_reads_a_changed_engagement_again_and_ends_it(mworld: MatchingWorld) -> None:
    engagement_id, event = _terminated_leaver(mworld)
    calls = _conflicts_first(mworld, "end_engagement", times=2)
    outcome = rematches.on_person_terminated(event, mworld.ctx)
    assert outcome.ended == [engagement_id]
    assert calls == {"writes": 3, "reads": 3}
    assert [e.engagement_id for e in mworld.events_of(EngagementEnded)] == [engagement_id]


def test_a_termination_gives_up_after_three_conflicts_naming_the_cause(mworld: MatchingWorld) -> None:
    engagement_id, event = _terminated_leaver(mworld)
    calls = _conflicts_first(mworld, "end_engagement", times=3)
    with pytest.raises(Conflict) as raised:
        rematches.on_person_terminated(event, mworld.ctx)
    assert raised.value.message == (f"engagement {engagement_id} kept changing while its person's termination ended it")
    assert calls == {"writes": 3, "reads": 3}
    assert mworld.events_of(EngagementEnded) == []


@pytest.mark.parametrize(("rematch", "write"), [(True, "end_and_propose"), (False, "end_engagement")])
def test_a_suspension_reads_a_changed_engagement_again_and_ends_it(
    mworld: MatchingWorld, rematch: bool, write: str
) -> None:
    engagement, event = _suspended(mworld, rematch=rematch)
    calls = _conflicts_first(mworld, write, times=2)
    outcome = rematches.on_coach_vetting_changed(event, mworld.ctx)
    assert outcome.ended == [engagement.engagement_id]
    assert len(outcome.rematch_ids) == (1 if rematch else 0)
    assert outcome.unmatched == ([] if rematch else [engagement.engagement_id])
    assert calls["writes"] == 3
    assert calls["reads"] >= 3  # each attempt reads the engagement again (the re-match reads history too)
    assert [e.engagement_id for e in mworld.events_of(EngagementEnded)] == [engagement.engagement_id]
    assert len([e for e in mworld.events_of(MatchProposed) if e.trigger == "coach_suspended"]) == (1 if rematch else 0)


@pytest.mark.parametrize(("rematch", "write"), [(True, "end_and_propose"), (False, "end_engagement")])
def test_a_suspension_gives_up_after_three_conflicts_naming_the_cause(
    mworld: MatchingWorld, rematch: bool, write: str
) -> None:
    engagement, event = _suspended(mworld, rematch=rematch)
    calls = _conflicts_first(mworld, write, times=3)
    with pytest.raises(Conflict) as raised:
        rematches.on_coach_vetting_changed(event, mworld.ctx)
    assert raised.value.message == (
        f"engagement {engagement.engagement_id} kept changing while its coach's suspension ended it"
    )
    assert calls["writes"] == 3
    assert mworld.events_of(EngagementEnded) == []
    stored, _ = mworld.store.engagement(engagement.org_id, engagement.person_id, engagement.engagement_id)
    assert stored.is_active
