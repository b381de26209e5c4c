"""The GROW wait-list trigger: people wait for a cohort of their transition (an org admin puts them there, or a
promotion through the HR integration), and enough of one language waiting opens a cohort and enrols them.

Cohorts themselves (opening by hand, enrolment, coaches, group sessions) are in `coaching.services.grow`,
whose context and ports this module shares.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from coaching.auth import Principal
from coaching.domain.common import DeferredModel
from coaching.domain.errors import Conflict
from coaching.domain.grow import Cohort, CohortStatus, Enrolment, GrowCohortRequest, WaitEntry
from coaching.services.grow import (
    GrowContext,
    admin_org,
    eligible_person,
    enrolment_events,
    grow_settings,
    new_cohort,
    opened_event,
)

__all__ = ["WaitEntry", "WaitOutcome", "add_to_waitlist", "open_from_waitlist", "open_waiting"]

# A wait-list enrolment that lost to a concurrent one on the same cohort is tried this often.
_ENROL_ATTEMPTS = 8


class WaitOutcome(DeferredModel):
    person_id: str
    waiting: int
    opened_cohort_id: str | None = None
    enrolled: list[str] = []


def add_to_waitlist(caller: Principal, org_id: str, person_id: str, ctx: GrowContext) -> WaitOutcome:
    """An org admin puts a person on the GROW wait-list (promotions put them there through HR)."""
    admin_org(caller, org_id)
    _, settings = grow_settings(ctx, org_id)
    person = eligible_person(ctx, org_id, person_id, settings)
    now = ctx.clock()
    entry = WaitEntry(
        org_id=org_id,
        person_id=person_id,
        transition=settings.transition,
        language=person.languages[0],
        source="admin",
        since=now,
    )
    ctx.waitlist_writer.add(entry)
    return open_from_waitlist(org_id, settings.transition, ctx, person_id=person_id)


def _wait_cohort_id(org_id: str, transition: str, language: str, members: Sequence[str]) -> str:
    # The same waiting people open the same cohort: a retried or concurrent trigger opens it once.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"grow-wait:{org_id}:{transition}:{language}:{','.join(members)}"))


def open_waiting(caller: Principal, org_id: str, ctx: GrowContext) -> WaitOutcome:
    """The trigger: an org admin (or operator) opens cohorts for everyone waiting, whoever put them there
    (an admin, or a promotion through the HR integration). Idempotent: a repeat opens nothing new."""
    admin_org(caller, org_id)
    _, settings = grow_settings(ctx, org_id)
    return open_from_waitlist(org_id, settings.transition, ctx)


def _enrol_waiting(cohort: Cohort, entries: Sequence[WaitEntry], ctx: GrowContext, now: datetime) -> list[str]:
    """Enrol waiting people into `cohort` until it is full; each enrolment takes the person off the wait-list
    in its own transaction (and is refused if they no longer wait: another cohort took them meanwhile)."""
    enrolled: list[str] = []
    for entry in entries:
        enrolment = Enrolment(
            cohort_id=cohort.cohort_id,
            org_id=cohort.org_id,
            person_id=entry.person_id,
            enrolled_at=now,
            source="waitlist",
        )
        outcome = _enrol_once(cohort, enrolment, ctx, now)
        if outcome == "full":  # the rest wait for the next cohort
            break
        if outcome == "enrolled":
            enrolled.append(entry.person_id)
    return enrolled


def _enrol_once(cohort: Cohort, enrolment: Enrolment, ctx: GrowContext, now: datetime) -> str:
    """ "enrolled", "full", or "taken" (enrolled elsewhere, or no longer waiting). A transaction that lost to a
    concurrent one on the cohort (another trigger enrolling at the same moment) is tried again while places
    are left, so concurrent triggers never strand a waiting person."""
    events = enrolment_events(cohort, enrolment.person_id, "waitlist", now)
    for _ in range(_ENROL_ATTEMPTS):
        try:
            ctx.store.enrol(cohort, enrolment, events)
        except Conflict as refused:
            if refused.field != "cohort_id":
                return "taken"
            if len(ctx.store.members(cohort.org_id, cohort.cohort_id)) >= cohort.size:
                return "full"
            continue
        return "enrolled"
    raise Conflict("the cohort is being enrolled by others at the same time; run the trigger again", field="cohort_id")


def open_from_waitlist(org_id: str, transition: str, ctx: GrowContext, *, person_id: str = "") -> WaitOutcome:
    """Enrol people waiting for `transition`: first into the forming cohort the wait-list opened for their
    language while it has places, then, when enough of one language still wait, into a new cohort.

    Idempotent and safe under retries and concurrent triggers: the wait-list's current cohort per
    transition and language is one item changed only conditionally (so two triggers never open two
    cohorts for the same people), an enrolment takes the person off the wait-list in the same
    transaction, and a cohort left part-filled by an interrupted run is topped up first.
    """
    org, settings = grow_settings(ctx, org_id)
    waiting = ctx.waitlist.waiting(org_id, transition)
    outcome = WaitOutcome(person_id=person_id, waiting=len(waiting))
    languages = sorted({entry.language for entry in waiting})
    now = ctx.clock()
    for language in languages:
        for _ in range(_ENROL_ATTEMPTS):
            # Who waits now (consistent): people are only ever enrolled from the wait-list into the
            # wait-list's current cohort, so once it is full this list cannot change under us.
            entries = [e for e in ctx.waitlist.waiting(org_id, transition) if e.language == language]
            current_id = ctx.store.waitlist_cohort(org_id, transition, language)
            current = ctx.store.cohort(org_id, current_id) if current_id else None
            if current is not None and current[0].status is CohortStatus.FORMING:
                room = current[0].size - len(ctx.store.members(org_id, current[0].cohort_id))
                if room > 0:
                    if not entries:
                        break
                    taken = _enrol_waiting(current[0], entries[:room], ctx, now)
                    outcome.enrolled += taken
                    if taken:
                        outcome.opened_cohort_id = current[0].cohort_id
                    continue
            if len(entries) < settings.opens_when_waiting:
                break
            chosen = entries[: settings.max_size]
            members = sorted(e.person_id for e in chosen)
            zone = ZoneInfo(org.time_zone)
            start_date = (now + timedelta(days=settings.lead_days)).astimezone(zone).date()
            size = max(len(chosen), settings.min_size)
            request = GrowCohortRequest(transition=transition, size=size, language=language, start_date=start_date)
            cohort_id = _wait_cohort_id(org_id, transition, language, members)
            cohort = new_cohort(org, settings, request, now, cohort_id=cohort_id, from_waitlist=True)
            if not ctx.store.open_waitlist_cohort(cohort, current_id, [opened_event(cohort, now)]):
                continue  # another trigger opened one meanwhile: enrol through theirs
            outcome.enrolled += _enrol_waiting(cohort, chosen, ctx, now)
            outcome.opened_cohort_id = cohort.cohort_id
    return outcome
