"""Receive an HR webhook: verify it, keep the raw payload, apply each event once, in effective order."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from coaching.auth import Principal, Role
from coaching.domain.common import Clock
from coaching.domain.errors import Conflict, NotFound
from coaching.domain.events import Event, PersonPromoted
from coaching.domain.hr import (
    EventOutcome,
    HrEvent,
    HrRecord,
    HrState,
    WebhookResult,
    apply_hr_event,
    parse_payload,
    verify_delivery,
)
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.reconciliation import SyncReport, parse_entries, plan_sync
from coaching.domain.taxonomy import Program, Transition
from coaching.domain.transitions import Waitlist, WaitlistEntry, plan_transition
from coaching.ids import person_id_for

# A concurrent change of the same person: read again and re-apply, this many times.
_ATTEMPTS = 8


class WebhookSecrets(Protocol):
    def secrets_for(self, org_id: str) -> Sequence[str]: ...


class HrWebhookPort(Protocol):
    def record_receipt(self, org_id: str, webhook_id: str, digest: str, raw: str, now: datetime) -> str | None: ...

    def read(self, org_id: str, person_id: str) -> HrState: ...

    def read_many(self, org_id: str, person_ids: Sequence[str]) -> dict[str, HrState]: ...

    def org(self, org_id: str) -> Org | None:
        """The org, for its transition and booking policies (None: the defaults apply)."""
        ...

    def people_of(self, org_id: str) -> list[tuple[Person, HrRecord | None]]:
        """Every person of the org with their HR record (roster reconciliation)."""
        ...

    def waitlist(self, org_id: str, transition: Transition) -> list[WaitlistEntry]:
        """The wait-list's entries, oldest first."""
        ...

    def commit_event(
        self,
        org_id: str,
        webhook_id: str,
        outcome: EventOutcome,
        read: HrState,
        after: HrState,
        events: Sequence[Event],
        now: datetime,
        waitlist: Sequence[WaitlistEntry] = (),
    ) -> EventOutcome | None:
        """Commit one event with its effect, its events and its wait-list entries (written if not there yet)."""
        ...


@dataclass(frozen=True, slots=True)
class HrContext:
    secrets: WebhookSecrets
    store: HrWebhookPort
    clock: Clock


def receive(org_id: str, headers: Mapping[str, str], body: bytes, ctx: HrContext) -> WebhookResult:
    """Apply a signed delivery once per webhook-id; a replay answers the outcomes the first one recorded.

    401 for a bad, missing or stale signature or an org without that secret; 400 naming the field for a
    payload that is not a batch of known events; 409 for a webhook-id reused with another body.
    """
    delivery = verify_delivery(ctx.secrets.secrets_for(org_id), headers, body)
    payload = parse_payload(body)
    now = ctx.clock()
    digest = hashlib.sha256(body).hexdigest()
    earlier = ctx.store.record_receipt(org_id, delivery.webhook_id, digest, body.decode("utf-8"), now)
    if earlier is not None and earlier != digest:
        raise Conflict("this webhook-id was delivered before with another body", field="webhook-id")
    return WebhookResult(
        webhook_id=delivery.webhook_id, outcomes=apply_events(org_id, delivery.webhook_id, payload.events, ctx)
    )


def apply_events(org_id: str, delivery_id: str, events: Sequence[HrEvent], ctx: HrContext) -> list[EventOutcome]:
    """Apply each event once (markers under `delivery_id`), in payload order; shared with roster reconciliation."""
    # One BatchGetItem for every person the batch names; a person changed since is read again.
    states = ctx.store.read_many(org_id, sorted({person_id_for(org_id, e.external_hr_id) for e in events}))
    orgs: dict[str, Org | None] = {}
    return [_apply_once(org_id, delivery_id, index, event, ctx, states, orgs) for index, event in enumerate(events)]


def _apply_once(
    org_id: str,
    webhook_id: str,
    index: int,
    event: HrEvent,
    ctx: HrContext,
    states: dict[str, HrState],
    orgs: dict[str, Org | None],
) -> EventOutcome:
    """One event, once: its marker commits in the same transaction as its effect."""
    person_id = person_id_for(org_id, event.external_hr_id)
    for _ in range(_ATTEMPTS):
        read = states.pop(person_id, None) or ctx.store.read(org_id, person_id)
        now = ctx.clock()
        applied = apply_hr_event(
            read.record, read.person, org_id, event, event_id=f"{org_id}:{webhook_id}:{index}", now=now
        )
        person, events, waitlist = applied.person, list(applied.events), list[WaitlistEntry]()
        for promoted in [e for e in applied.events if isinstance(e, PersonPromoted)]:
            if person is None:
                break  # a promotion is only emitted for a person it changed
            # The org's transition policy commits with the promotion: wait-list, EXEC eligibility, event.
            if org_id not in orgs:
                orgs[org_id] = ctx.store.org(org_id)
            org = orgs[org_id]
            plan = plan_transition(
                org.transitions if org else None, org.booking if org else None, promoted, person, now
            )
            person = plan.person
            events.extend(plan.events)
            waitlist.extend(plan.waitlist)
        outcome = EventOutcome(
            index=index,
            type=event.type,
            external_hr_id=event.external_hr_id,
            person_id=applied.person.person_id if applied.person else None,
            outcome=applied.outcome,
            message=applied.message,
        )
        after = HrState(
            record=applied.record if applied.record != read.record else None,
            person=person if person is not None and person != read.person else None,
        )
        committed = ctx.store.commit_event(org_id, webhook_id, outcome, read, after, events, now, waitlist)
        if committed is None:
            continue  # the record or person changed since it was read: read it again
        if not committed.duplicate:
            states[person_id] = _written(read, after)  # what the next event of this person starts from
        return committed
    raise Conflict(f"events[{index}]: the person is being changed by another delivery; retry", field=f"events[{index}]")


def _written(read: HrState, after: HrState) -> HrState:
    """The stored state after a commit: each item written is one version newer."""
    state = HrState(
        record=read.record, person=read.person, record_version=read.record_version, person_version=read.person_version
    )
    if after.record is not None:
        state.record, state.record_version = after.record, (read.record_version or 0) + 1
    if after.person is not None:
        state.person, state.person_version = after.person, (read.person_version or 0) + 1
    return state


# ---------------------------------------------------------------------------- wait-lists and reconciliation


def get_waitlist(caller: Principal, org_id: str, transition: Transition, ctx: HrContext) -> Waitlist:
    """Who waits for the next cohort after a transition (org_admin of the org, or an operator)."""
    if not caller.has(Role.OPERATOR):
        caller.require_same_org(org_id, Role.ORG_ADMIN)
    org = ctx.store.org(org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    policy = org.transitions
    program = (policy.new_manager_program if policy else None) if transition is Transition.NEW_MANAGER else None
    entries = ctx.store.waitlist(org_id, transition)
    return Waitlist(
        org_id=org_id, transition=transition, program=program or _default_program(transition), items=entries
    )


def _default_program(transition: Transition) -> Program | None:
    return Program.GROW if transition is Transition.NEW_MANAGER else None


def sync_roster(
    caller: Principal, rows: list[Any], as_of: datetime | None, checksum: str | None, ctx: HrContext
) -> SyncReport:
    """Reconcile the org with the HR system's full list: a dry run without `checksum`, else apply that plan.

    Every row is validated before anything is written (422 naming `people[i].field`); applying a plan other
    than the reviewed one (the list, `as_of` or the people changed since) is a 409.
    """
    org_id = caller.require_org(Role.ORG_ADMIN)
    if ctx.store.org(org_id) is None:
        raise NotFound(f"organisation {org_id} not found")
    entries = parse_entries(rows)
    moment = as_of or ctx.clock()
    events, report = plan_sync(org_id, entries, ctx.store.people_of(org_id), moment)
    if checksum is None:
        return report
    if checksum != report.checksum:
        raise Conflict(
            "the plan changed since the dry run (another list, as_of, or people changed meanwhile): review it again",
            field="checksum",
        )
    report.applied = True
    report.outcomes = apply_events(org_id, f"sync_{checksum[:32]}", events, ctx)
    return report
