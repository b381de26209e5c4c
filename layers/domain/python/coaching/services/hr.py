"""Receive an HR webhook: verify it, keep the raw payload, apply each event once, in effective order."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from coaching.domain.common import Clock
from coaching.domain.errors import Conflict
from coaching.domain.events import Event, PersonPromoted
from coaching.domain.hr import (
    EventOutcome,
    HrEvent,
    HrState,
    WebhookResult,
    apply_hr_event,
    parse_payload,
    verify_delivery,
)
from coaching.domain.orgs import Org
from coaching.domain.transitions import WaitlistEntry, plan_transition
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
    return WebhookResult(webhook_id=delivery.webhook_id, outcomes=apply_events(org_id, delivery.webhook_id, payload.events, ctx))


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
        for promoted in [e for e in applied.events if isinstance(e, PersonPromoted) and person is not None]:
            # The org's transition policy commits with the promotion: wait-list, EXEC eligibility, event.
            if org_id not in orgs:
                orgs[org_id] = ctx.store.org(org_id)
            org = orgs[org_id]
            plan = plan_transition(org.transitions if org else None, org.booking if org else None, promoted, person, now)
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
