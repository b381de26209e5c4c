"""Re-matches the platform starts on events: a promotion (keep a coach still eligible, else propose anew),
a person's termination (their engagements end) and a coach's suspension (their engagements end, each with
a re-match). Each consumer is idempotent per event: ids derive from the event and the engagement.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from coaching.domain.coaches import VettingStatus
from coaching.domain.common import DeferredModel
from coaching.domain.engagements import (
    COACH_SUSPENDED,
    Engagement,
    MatchRecord,
)
from coaching.domain.errors import Conflict
from coaching.domain.events import (
    CoachVettingChanged,
    EngagementEnded,
    Event,
    PersonPromoted,
    PersonTerminated,
    stable_event_id,
)
from coaching.domain.matching import (
    History,
    NoEligibleCoach,
    map_focus,
    static_constraints,
)
from coaching.services.matching import MatchingContext
from coaching.services.proposals import (
    competency_calibration,
    compiled_roster,
    ended_event,
    new_match,
    org_and_person,
    person_context,
    propose,
    proposed_event,
    refuse,
    settings_of,
)

# ---------------------------------------------------------------------------- promotion


class PromotionOutcome(DeferredModel):
    person_id: str
    kept: list[str] = []
    rematch_ids: list[str] = []


def on_person_promoted(event: PersonPromoted, ctx: MatchingContext) -> PromotionOutcome:
    """Keep a coach who is still eligible at the new level; otherwise propose a new match.

    Idempotent per event: the re-match's id and its event's id derive from the event and
    the engagement, so a redelivered event finds them stored and writes nothing. An inactive
    person is proposed nothing: they can no longer be matched.
    """
    org, person = org_and_person(ctx, event.org_id, event.person_id)
    outcome = PromotionOutcome(person_id=person.person_id)
    if not person.active:
        return outcome
    person = person.at_level(event.new_level)
    history = ctx.store.history(org.org_id, person.person_id)
    roster = {c.coach_id: c for c in compiled_roster(ctx.roster).coaches}
    for engagement in history.active_engagements():
        focus = history.latest_focus(engagement.program)
        context = person_context(org, person, engagement.program, map_focus(focus, competency_calibration(org)), [])
        coach = roster.get(engagement.coach_id)
        if coach is not None and all(c.allows(coach) for c in static_constraints(context, History())):
            outcome.kept.append(engagement.engagement_id)
            continue
        try:
            chosen = propose(
                ctx, context, settings_of(org), history.for_matching(), exclude=frozenset({engagement.coach_id})
            )
        except NoEligibleCoach as error:
            refuse(ctx, context, error)
            continue
        match_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"promotion:{event.event_id}:{engagement.engagement_id}"))
        match = new_match(
            org,
            person,
            engagement.program,
            focus,
            chosen,
            ctx.clock(),
            match_id=match_id,
            level=event.new_level,
            trigger="promotion",
            replaces_engagement_id=engagement.engagement_id,
        )
        proposed = proposed_event(match, event_id=stable_event_id("MatchProposed", match_id))
        ctx.store.save_new_match(match, None, [proposed], exists_ok=True)
        outcome.rematch_ids.append(match.match_id)
    return outcome


# ---------------------------------------------------------------------------- termination

# Why the platform ended an engagement whose person left the organisation (Engagement.end_reason).
PERSON_TERMINATED = "person terminated"


class TerminationOutcome(DeferredModel):
    person_id: str
    ended: list[str] = []  # engagements this delivery ended


def on_person_terminated(event: PersonTerminated, ctx: MatchingContext) -> TerminationOutcome:
    """A person who left ends every active engagement: the coach's place is freed in the same transaction,
    and each EngagementEnded makes booking cancel the engagement's future sessions, unbilled.

    Idempotent per event and re-runnable: an engagement already ended is skipped, and each EngagementEnded's
    id derives from the engagement, so a redelivery writes nothing twice. Nothing is proposed instead.
    """
    outcome = TerminationOutcome(person_id=event.person_id)

    def end_alone(ended: Engagement, version: int, announced: EngagementEnded) -> None:
        ctx.store.end_engagement(ended, version, [announced])
        outcome.ended.append(ended.engagement_id)

    for listed in ctx.store.history(event.org_id, event.person_id).active_engagements():
        _end_by_platform(listed, PERSON_TERMINATED, ctx, end_alone, cause="its person's termination")
    return outcome


# ---------------------------------------------------------------------------- coach suspension


class SuspensionOutcome(DeferredModel):
    coach_id: str
    ended: list[str] = []  # engagements this delivery ended
    rematch_ids: list[str] = []  # the re-matches proposed with them
    unmatched: list[str] = []  # ended with nothing to propose: nobody else fits, or the person is inactive


def on_coach_vetting_changed(event: CoachVettingChanged, ctx: MatchingContext) -> SuspensionOutcome:
    """A suspended coach's active engagements end, and each person is offered a re-match.

    Each engagement ends by the platform ("coach suspended") in one transaction with a new
    proposal that excludes the coach (trigger `coach_suspended`) and both events:
    EngagementEnded (booking cancels its future sessions, unbilled, units back) and
    MatchProposed. When nobody else fits, the gap is recorded and the engagement ends alone;
    an inactive person is proposed nothing.

    The event is a hint: the coach is read again, and a coach approved again since changes
    nothing. Idempotent per event and re-runnable: the re-match's id and the events' ids derive
    from the event and the engagement, and an engagement already ended is skipped, so a re-run
    finishes what an interrupted one left and writes nothing twice.
    """
    outcome = SuspensionOutcome(coach_id=event.coach_id)
    if event.vetting_status != VettingStatus.SUSPENDED.value:
        return outcome
    coach = ctx.coaches.get(event.coach_id)
    if coach is not None and coach.is_approved:
        return outcome
    for listed in ctx.store.coach_engagements(event.coach_id):
        if listed.is_active and listed.coach_id == event.coach_id:
            _end_for_suspension(event, listed, ctx, outcome)
    return outcome


def _end_for_suspension(
    event: CoachVettingChanged, listed: Engagement, ctx: MatchingContext, outcome: SuspensionOutcome
) -> None:
    def end_with_rematch(ended: Engagement, version: int, announced: EngagementEnded) -> None:
        events: list[Event] = [announced]
        match = _suspension_rematch(event, ended, ctx)
        if match is None:
            ctx.store.end_engagement(ended, version, events)
            outcome.unmatched.append(ended.engagement_id)
        else:
            events.append(proposed_event(match, event_id=stable_event_id("MatchProposed", match.match_id)))
            ctx.store.end_and_propose(ended, version, match, None, events)
            outcome.rematch_ids.append(match.match_id)
        outcome.ended.append(ended.engagement_id)

    _end_by_platform(listed, COACH_SUSPENDED, ctx, end_with_rematch, cause="its coach's suspension")


def _suspension_rematch(event: CoachVettingChanged, ended: Engagement, ctx: MatchingContext) -> MatchRecord | None:
    """New proposals for the person without the suspended coach; None when there are none to make."""
    org, person = ctx.people.get_with_org(ended.org_id, ended.person_id)
    if org is None or person is None or not person.active:
        return None  # an inactive person (or one no longer on record) is not matched again
    history = ctx.store.history(org.org_id, person.person_id)
    focus = history.latest_focus(ended.program)
    context = person_context(org, person, ended.program, map_focus(focus, competency_calibration(org)), [])
    try:
        chosen = propose(ctx, context, settings_of(org), history.for_matching(), exclude=frozenset({event.coach_id}))
    except NoEligibleCoach as error:
        refuse(ctx, context, error)  # the gap is recorded for operators; the engagement still ends
        return None
    match_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"coach_suspended:{event.event_id}:{ended.engagement_id}"))
    return new_match(
        org, person, ended.program, focus, chosen, ctx.clock(), match_id=match_id, trigger="coach_suspended"
    )


# ---------------------------------------------------------------------------- ending by the platform

# An engagement the platform ends that changes under us (the person ends it, or changes coach, at that
# moment) is read again this many times before the event is left to the bus to retry.
_END_ATTEMPTS = 3


def _end_by_platform(
    listed: Engagement,
    reason: str,
    ctx: MatchingContext,
    write: Callable[[Engagement, int, EngagementEnded], None],
    *,
    cause: str,
) -> None:
    """End `listed` by the platform for `reason`: `write(ended, version, announced)` stores the ended
    engagement with its EngagementEnded (whose id derives from the engagement) and whatever else goes with it.

    The engagement itself, read consistently, decides (an index that listed it may lag): one no longer active
    (a re-run, or the person ended it or changed coach meanwhile) is left alone. A write that finds it changed
    since it was read (Conflict) reads it again, up to _END_ATTEMPTS times; then Conflict names the `cause`.
    """
    for _ in range(_END_ATTEMPTS):
        found = ctx.store.engagement(listed.org_id, listed.person_id, listed.engagement_id)
        if found is None or not found[0].is_active:
            return  # already ended: a re-run, or the person ended it or changed coach meanwhile
        engagement, version = found
        ended = engagement.end(reason, "platform", ctx.clock())
        announced = ended_event(ended, event_id=stable_event_id(EngagementEnded.detail_type, ended.engagement_id))
        try:
            write(ended, version, announced)
        except Conflict:
            continue  # it changed since it was read: read it again
        return
    raise Conflict(f"engagement {listed.engagement_id} kept changing while {cause} ended it")
