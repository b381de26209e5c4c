"""Match requests and engagements change state only through methods that check their rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from coaching.domain.engagements import (
    Engagement,
    EngagementStatus,
    MatchRecord,
    MatchStatus,
    PersonHistory,
)
from coaching.domain.errors import Conflict, InvalidInput
from coaching.domain.matching import Proposal
from coaching.domain.taxonomy import Program

from .fakes.matching import NOW

LATER = NOW + timedelta(hours=1)


def offer(*coach_ids: str) -> list[Proposal]:
    return [
        Proposal(coach_id=c, name=c, headline="", score=1.0, reasons=["speaks English"], factors={}) for c in coach_ids
    ]


def match(*coach_ids: str, **overrides: object) -> MatchRecord:
    fields: dict[str, object] = {
        "match_id": "m1",
        "org_id": "o1",
        "person_id": "p1",
        "program": Program.SCALE,
        "focus_competencies": ["delegation"],
        "proposals": offer(*(coach_ids or ("a", "b", "c"))),
        "now": NOW,
    }
    return MatchRecord.propose(**(fields | overrides))  # type: ignore[arg-type]


def engagement(coach_id: str = "a", **overrides: object) -> Engagement:
    fields: dict[str, object] = {
        "engagement_id": "e1",
        "org_id": "o1",
        "person_id": "p1",
        "coach_id": coach_id,
        "program": Program.SCALE,
        "now": NOW,
    }
    return Engagement.start(**(fields | overrides))  # type: ignore[arg-type]


def test_a_new_match_shows_its_proposals_and_never_one_coach_twice():
    record = match("a", "b", "c")
    assert (record.status, record.shown, record.declined) == (MatchStatus.PROPOSED, ["a", "b", "c"], [])
    with pytest.raises(InvalidInput, match="at least one coach"):
        match(proposals=[])
    with pytest.raises(InvalidInput, match="same coach twice"):
        match("a", "a")


def test_declining_moves_the_shown_to_declined_and_refuses_showing_anyone_again():
    declined = match("a", "b", "c").decline_shown(offer("d", "e"), LATER)
    assert declined.declined == ["a", "b", "c"]
    assert declined.proposed_ids == ["d", "e"]
    assert declined.shown == ["a", "b", "c", "d", "e"]
    assert declined.updated_at == LATER
    assert declined.not_to_show_again() == {"a", "b", "c", "d", "e"}
    with pytest.raises(InvalidInput, match="never shows a coach twice") as refused:
        declined.decline_shown(offer("f", "b"), LATER)
    assert refused.value.field == "proposals"
    with pytest.raises(InvalidInput):
        declined.decline_shown([], LATER)


def test_exhausting_closes_the_match_and_keeps_every_declined_coach():
    exhausted = match("a", "b").exhaust(LATER)
    assert exhausted.status is MatchStatus.EXHAUSTED
    assert (exhausted.proposals, exhausted.declined) == ([], ["a", "b"])
    for action in (lambda: exhausted.exhaust(LATER), lambda: exhausted.decline_shown(offer("z"), LATER)):
        with pytest.raises(Conflict, match="this match is exhausted; nothing to decline"):
            action()
    with pytest.raises(Conflict, match="already exhausted"):
        exhausted.choose("a", "e1", LATER)


def test_choosing_takes_only_a_proposed_coach_and_decides_the_match_once():
    record = match("a", "b", "c")
    with pytest.raises(InvalidInput, match="choose one of the coaches proposed") as refused:
        record.choose("z", "e1", LATER)
    assert refused.value.field == "coach_id"
    chosen = record.choose("b", "e1", LATER)
    assert (chosen.status, chosen.engagement_id) == (MatchStatus.CHOSEN, "e1")
    with pytest.raises(Conflict, match="this match is already chosen") as again:
        chosen.choose("b", "e2", LATER)
    assert again.value.field == "match_id"
    with pytest.raises(Conflict):
        chosen.check_declinable()
    started = Engagement.from_choice(chosen, "b", LATER)
    assert (started.engagement_id, started.coach_id, started.match_id) == ("e1", "b", "m1")
    assert started.start_date == LATER.date().isoformat()
    with pytest.raises(Conflict, match="from a decided match"):
        Engagement.from_choice(record, "b", LATER)


def test_an_engagement_ends_once_and_only_its_active_coach_sees_it():
    running = engagement("a")
    assert running.visible_to_coach("a")
    assert not running.visible_to_coach("b")
    ended = running.end("we did not click", "person", LATER)
    assert (ended.status, ended.end_reason, ended.ended_by, ended.ended_at) == (
        EngagementStatus.ENDED,
        "we did not click",
        "person",
        LATER,
    )
    assert not ended.visible_to_coach("a")
    with pytest.raises(Conflict, match="already ended") as twice:
        ended.end("again", "platform", LATER)
    assert twice.value.field == "engagement_id"


def test_history_excludes_declined_and_left_coaches_and_remembers_the_previous_one():
    declined = match("a", "b", "c").decline_shown(offer("d"), NOW)
    left = engagement("e", engagement_id="e1").end("no click", "person", NOW + timedelta(days=2))
    replaced = engagement("f", engagement_id="e2").end("promotion", "platform", NOW + timedelta(days=1))
    current = engagement("g", engagement_id="e3", program=Program.GROW)
    history = PersonHistory(matches=[(declined, 2)], engagements=[(left, 2), (replaced, 2), (current, 1)])
    seen = history.for_matching()
    assert seen.declined == {"a", "b", "c", "e"}
    # The most recent coach the person did not leave: the replaced one ended after g started.
    assert seen.previous_coach == "f"
    assert [e.engagement_id for e in history.active_engagements()] == ["e3"]


def test_latest_focus_is_the_last_request_in_that_programme():
    first = match(match_id="m1", focus_competencies=["hiring"])
    second = match(match_id="m2", focus_competencies=["resilience"], now=LATER)
    other = match(match_id="m3", focus_competencies=["delegation"], program=Program.GROW, now=LATER)
    history = PersonHistory(matches=[(second, 1), (first, 1), (other, 1)], engagements=[])
    assert history.latest_focus(Program.SCALE) == ["resilience"]
    assert history.latest_focus(Program.EXEC)  # the default framework's first competency
