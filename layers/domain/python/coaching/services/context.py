"""Context handoff: what a person's coach sees of them, the person's consent for their situations, erasure.

The coach sees the person's growth (level history, focus history, past engagements) only while their
engagement is active and they are approved; situations only with the person's consent, read fresh on
every request, so a revocation takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from coaching.auth import Principal, Role
from coaching.domain.assessments import AssessmentResult
from coaching.domain.coaches import Coach
from coaching.domain.common import Clock
from coaching.domain.context import (
    ConsentChange,
    ContextConsent,
    ErasureReport,
    Handoff,
    SharingView,
    Situation,
    anonymised,
    handoff,
    sharing_view,
)
from coaching.domain.engagements import Engagement, PersonHistory, require_approved_coach
from coaching.domain.errors import Conflict, NotFound
from coaching.domain.events import Event, PersonErased, stable_event_id
from coaching.domain.goals import Goal
from coaching.domain.people import Person


class ContextStore(Protocol):
    def person(self, org_id: str, person_id: str) -> tuple[Person, int] | None: ...

    def history(self, org_id: str, person_id: str) -> PersonHistory: ...

    def situations(self, org_id: str, person_id: str) -> list[Situation]:
        """Every situation the person wrote (confidential table), newest last."""
        ...

    def consent(self, org_id: str, person_id: str) -> ContextConsent | None: ...

    def save_consent(self, consent: ContextConsent) -> None: ...

    def coach_engagement(self, coach_id: str, engagement_id: str) -> Engagement | None: ...

    def erase(self, erased: Person, version: int, external_hr_id: str, events: list[Event]) -> ErasureReport:
        """Write the anonymised person (conditional on `version`) and the erased HR record with `events`, then
        delete their situations and consent, redact their raw HR payloads and remove them from wait-lists.
        Re-runnable: a second run finds nothing left to delete."""
        ...


class DevelopmentReader(Protocol):
    """The person's goals and released 360 results (the development function's records)."""

    def goals(self, org_id: str, person_id: str) -> list[Goal]: ...

    def results(self, org_id: str, person_id: str) -> list[AssessmentResult]: ...


class CoachReader(Protocol):
    def get(self, coach_id: str) -> Coach | None: ...


@dataclass(frozen=True, slots=True)
class ContextContext:
    store: ContextStore
    coaches: CoachReader
    development: DevelopmentReader
    clock: Clock


def _person(ctx: ContextContext, org_id: str, person_id: str) -> Person:
    found = ctx.store.person(org_id, person_id)
    if found is None:
        raise NotFound(f"person {person_id} not found")
    return found[0]


def handoff_for(org_id: str, person_id: str, ctx: ContextContext, current_engagement: str | None = None) -> Handoff:
    """The person's context as a new coach or programme receives it (situations only with consent)."""
    person = _person(ctx, org_id, person_id)
    history = ctx.store.history(org_id, person_id)
    consent = ctx.store.consent(org_id, person_id) or ContextConsent.none(org_id, person_id)
    # What the person said is read only when they share some of it.
    situations = ctx.store.situations(org_id, person_id) if consent.shares_any else []
    return handoff(
        person,
        [m for m, _ in history.matches],
        [e for e, _ in history.engagements],
        situations,
        consent,
        current_engagement,
        goals=ctx.development.goals(org_id, person_id),
        results=ctx.development.results(org_id, person_id),
    )


def coach_handoff(caller: Principal, engagement_id: str, ctx: ContextContext) -> Handoff:
    """The coach of an active engagement sees their coachee's context; anyone else sees nothing (404)."""
    caller.require(Role.COACH)
    coach = ctx.coaches.get(caller.person_id)
    require_approved_coach(caller.person_id, coach)
    engagement = ctx.store.coach_engagement(caller.person_id, engagement_id)
    if engagement is None or not engagement.visible_to_coach(caller.person_id):
        raise NotFound(f"engagement {engagement_id} not found")
    return handoff_for(engagement.org_id, engagement.person_id, ctx, current_engagement=engagement_id)


def my_sharing(caller: Principal, ctx: ContextContext) -> SharingView:
    org_id = caller.require_org(Role.EMPLOYEE)
    person = _person(ctx, org_id, caller.person_id)
    history = ctx.store.history(org_id, caller.person_id)
    consent = ctx.store.consent(org_id, caller.person_id) or ContextConsent.none(org_id, caller.person_id)
    situations = ctx.store.situations(org_id, caller.person_id)
    return sharing_view(person, [e for e, _ in history.engagements], situations, consent)


def set_consent(caller: Principal, change: ConsentChange, ctx: ContextContext) -> SharingView:
    org_id = caller.require_org(Role.EMPLOYEE)
    _person(ctx, org_id, caller.person_id)
    situations = ctx.store.situations(org_id, caller.person_id)
    current = ctx.store.consent(org_id, caller.person_id) or ContextConsent.none(org_id, caller.person_id)
    ctx.store.save_consent(current.changed(change, situations, ctx.clock()))
    return my_sharing(caller, ctx)


def revoke_consent(caller: Principal, ctx: ContextContext) -> SharingView:
    org_id = caller.require_org(Role.EMPLOYEE)
    current = ctx.store.consent(org_id, caller.person_id) or ContextConsent.none(org_id, caller.person_id)
    ctx.store.save_consent(current.revoked(ctx.clock()))
    return my_sharing(caller, ctx)


# ---------------------------------------------------------------------------- erasure

_ERASE_ATTEMPTS = 3


def erase_person(caller: Principal, org_id: str, person_id: str, ctx: ContextContext) -> ErasureReport:
    """Right to erasure (org_admin of the org, or an operator): anonymise the person, idempotently.

    Ledger entries, invoices and published aggregates refer to the person id only, so their amounts stay.
    """
    if not caller.has(Role.OPERATOR):
        caller.require_same_org(org_id, Role.ORG_ADMIN)
    for _ in range(_ERASE_ATTEMPTS):
        found = ctx.store.person(org_id, person_id)
        if found is None:
            raise NotFound(f"person {person_id} not found")
        person, version = found
        erased = anonymised(person, ctx.clock())
        event = PersonErased(
            event_id=stable_event_id("PersonErased", org_id, person_id), org_id=org_id, person_id=person_id
        )
        try:
            return ctx.store.erase(erased, version, person.external_hr_id, [] if person.erased_at else [event])
        except Conflict:
            continue  # the person changed since it was read (an HR event): erase the newer state
    raise Conflict(f"person {person_id} kept changing while being erased; retry", field="person_id")
