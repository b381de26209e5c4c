"""Context handoff and erasure on DynamoDB: consent items, situations read back, the erasure's writes.

The only reader of the confidential table: situations are read from the person's own partition, and only
for the person themselves or for a coach the person consented to share them with (services/context.py).
"""

from __future__ import annotations

import json
from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from coaching.adapters import keys
from coaching.adapters.dynamo import (
    ConfidentialTableMeta,
    MainItem,
    MainTableMeta,
    SituationItem,
    connection,
    failed_keys,
    lost_to_another_transaction,
)
from coaching.adapters.hr_store import HrMarker, HrPayload, WaitlistItem
from coaching.adapters.outbox import add_events
from coaching.domain.booking import Booking
from coaching.domain.context import ContextConsent, ErasureReport, Situation, erased_record
from coaching.domain.engagements import Engagement, MatchRecord, PersonHistory
from coaching.domain.errors import Conflict
from coaching.domain.events import Event
from coaching.domain.people import Person
from coaching.domain.taxonomy import Transition

ERASED_HR_ID = "erased"


class ConsentItem(Model):
    """The person's consent (main table, their partition); only they write it, the last write wins."""

    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    body = UnicodeAttribute()


class _ConfidentialRecord(Model):
    """Any record of the confidential table, by its keys only: what an erasure deletes."""

    class Meta(ConfidentialTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


# What the person said or was told about themselves, beyond situations: session feedback, raters' answers about
# them, released 360 results (confidential table), and their development goals (main table, in their words).
_CONFIDENTIAL_DEVELOPMENT = (keys.FEEDBACK_PREFIX, keys.ANSWER_PREFIX, keys.RESULT_PREFIX)


def _redacted_events(text: str, hr_id: str) -> str | None:
    """The payload with every event about `hr_id` reduced to its type and time; None if it names them nowhere."""
    try:
        payload: Any = json.loads(text)
    except ValueError:
        return None
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        return None
    changed = False
    for index, event in enumerate(events):
        named = isinstance(event, dict) and (
            event.get("external_hr_id") == hr_id or event.get("manager_external_hr_id") == hr_id
        )
        if named:
            kept = {k: event[k] for k in ("type", "effective_at", "sequence") if k in event}
            events[index] = kept | {"external_hr_id": ERASED_HR_ID}
            changed = True
    return json.dumps(payload) if changed else None


class ContextStore:
    # ------------------------------------------------------------------ reads

    def person(self, org_id: str, person_id: str) -> tuple[Person, int] | None:
        try:
            item = MainItem.get(keys.people_pk(org_id), keys.person_sk(person_id), consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return Person.model_validate_json(item.body), int(item.version or 0)

    def history(self, org_id: str, person_id: str) -> PersonHistory:
        matches: list[tuple[MatchRecord, int]] = []
        engagements: list[tuple[Engagement, int]] = []
        for item in MainItem.query(keys.person_pk(org_id, person_id), consistent_read=True):
            if item.kind == "match":
                matches.append((MatchRecord.model_validate_json(item.body), int(item.version or 0)))
            elif item.kind == "engagement":
                engagements.append((Engagement.model_validate_json(item.body), int(item.version or 0)))
        return PersonHistory(matches=matches, engagements=engagements)

    def situations(self, org_id: str, person_id: str) -> list[Situation]:
        found = []
        for item in SituationItem.query(
            keys.person_pk(org_id, person_id),
            SituationItem.sk.startswith(keys.SITUATION_PREFIX),
            consistent_read=True,
        ):
            kind, ref = keys.situation_ref(item.sk)
            found.append(Situation(kind=kind, id=ref, text=item.text, created_at=item.created_at))
        return sorted(found, key=lambda s: s.created_at)

    def consent(self, org_id: str, person_id: str) -> ContextConsent | None:
        try:
            item = ConsentItem.get(keys.person_pk(org_id, person_id), keys.CONTEXT_CONSENT_SK, consistent_read=True)
        except ConsentItem.DoesNotExist:
            return None
        return ContextConsent.model_validate_json(item.body)

    def save_consent(self, consent: ContextConsent) -> None:
        ConsentItem(
            keys.person_pk(consent.org_id, consent.person_id),
            keys.CONTEXT_CONSENT_SK,
            kind="context_consent",
            body=consent.model_dump_json(),
        ).save()

    def coach_engagement(self, coach_id: str, engagement_id: str) -> Engagement | None:
        for item in MainItem.gsi1.query(
            keys.coach_engagements_pk(coach_id), MainItem.gsi1sk == keys.engagement_sk(engagement_id)
        ):
            # The index may lag a write: the engagement itself, read consistently, decides.
            engagement = Engagement.model_validate_json(item.body)
            try:
                fresh = MainItem.get(
                    keys.person_pk(engagement.org_id, engagement.person_id),
                    keys.engagement_sk(engagement_id),
                    consistent_read=True,
                )
            except MainItem.DoesNotExist:
                return None
            return Engagement.model_validate_json(fresh.body)
        return None

    # ------------------------------------------------------------------ erasure

    def erase(self, erased: Person, version: int, external_hr_id: str, events: list[Event]) -> ErasureReport:
        org_id, person_id = erased.org_id, erased.person_id
        # Everything but the person first: a run that stops half-way is finished by the next one, which still
        # finds the HR id on the person until the last step commits.
        redacted = self._redact_hr_data(org_id, external_hr_id) if external_hr_id else 0
        deleted = 0
        for situation in SituationItem.query(
            keys.person_pk(org_id, person_id), SituationItem.sk.startswith(keys.SITUATION_PREFIX)
        ):
            situation.delete()
            deleted += 1
        development = 0
        for prefix in _CONFIDENTIAL_DEVELOPMENT:
            for record in _ConfidentialRecord.query(
                keys.person_pk(org_id, person_id), _ConfidentialRecord.sk.startswith(prefix)
            ):
                record.delete()
                development += 1
        for goal in MainItem.query(keys.person_pk(org_id, person_id), MainItem.sk.startswith(keys.GOAL_PREFIX)):
            goal.delete()
            development += 1
        ConsentItem(keys.person_pk(org_id, person_id), keys.CONTEXT_CONSENT_SK).delete()
        reasons = self._erase_booking_reasons(org_id, person_id)
        removed = 0
        for transition in Transition:
            entry = WaitlistItem(keys.waitlist_pk(org_id, transition.value), keys.waitlist_sk(person_id))
            try:
                WaitlistItem.get(entry.pk, entry.sk, consistent_read=True)
            except WaitlistItem.DoesNotExist:
                continue
            entry.delete()
            removed += 1
        self._commit_person(erased, version, events)
        return ErasureReport(
            org_id=org_id,
            person_id=person_id,
            erased_at=erased.erased_at or erased.updated_at,
            situations_deleted=deleted,
            payloads_redacted=redacted,
            waitlist_entries_removed=removed,
            development_records_deleted=development,
            booking_reasons_erased=reasons,
        )

    @staticmethod
    def _erase_booking_reasons(org_id: str, person_id: str) -> int:
        """The person's bookings without the reasons written about them. A booking that changes meanwhile
        (a version conflict) is left for the next run, which the erasure's idempotency allows."""
        erased = 0
        for item in MainItem.query(keys.person_pk(org_id, person_id), MainItem.sk.startswith(keys.BOOKING_PREFIX)):
            booking = Booking.model_validate_json(item.body)
            cleared = booking.without_personal_text()
            if cleared is booking:
                continue
            item.body = cleared.model_dump_json()
            try:
                item.save()  # conditional on the version it was read at
            except PutError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
                raise Conflict("a booking changed while the person was being erased; retry") from exc
            erased += 1
        return erased

    @staticmethod
    def _redact_hr_data(org_id: str, hr_id: str) -> int:
        """Raw payloads (confidential) and event markers (main) that name the HR id, rewritten without it."""
        redacted = 0
        pk = keys.people_pk(org_id)
        for payload in HrPayload.query(pk, HrPayload.sk.startswith(keys.HR_WEBHOOK_PREFIX)):
            if not keys.is_hr_payload_sk(payload.sk):
                continue
            text = _redacted_events(payload.text, hr_id)
            if text is not None:
                payload.text = text
                payload.save()
                redacted += 1
        for marker in HrMarker.query(pk, HrMarker.sk.startswith(keys.HR_WEBHOOK_PREFIX), HrMarker.kind == "hr_event"):
            outcome = json.loads(marker.ref)
            if outcome.get("external_hr_id") == hr_id:
                marker.ref = json.dumps(outcome | {"external_hr_id": ERASED_HR_ID})
                marker.save()
        return redacted

    @staticmethod
    def _commit_person(erased: Person, version: int, events: list[Event]) -> None:
        pk = keys.people_pk(erased.org_id)
        record_sk = keys.hr_record_sk(erased.person_id)
        try:
            record_version: int | None = int(MainItem.get(pk, record_sk, consistent_read=True).version or 0)
        except MainItem.DoesNotExist:
            record_version = None
        person = MainItem(pk, keys.person_sk(erased.person_id), kind="person", body=erased.model_dump_json())
        person.version = version
        record = MainItem(
            pk, record_sk, kind="hr_record", body=erased_record(erased.org_id, erased.person_id).model_dump_json()
        )
        if record_version is not None:
            record.version = record_version
        transaction = TransactWrite(connection=connection())
        try:
            with transaction:
                transaction.save(person)
                transaction.save(record)
                add_events(transaction, events)
        except TransactWriteError as exc:
            if failed_keys(transaction, exc) or lost_to_another_transaction(exc):
                raise Conflict("the person changed while being erased") from exc
            raise
