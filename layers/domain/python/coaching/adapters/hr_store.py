"""HR webhooks on DynamoDB: receipts, per-event markers committed with their effect, and the org secrets.

A delivery's receipt (main table) and its raw payload (confidential table, KMS-encrypted) are written
in one transaction before any event is processed. Each event then commits in its own transaction:
its marker (conditional on not existing), the person (conditional on the version read) and the
catalogue events' outbox items. A second delivery of the same webhook id, concurrent or days later,
fails the marker's condition and reads back the outcome the first one recorded: one change.
Receipts, markers and payloads expire through the tables' TTL after `RETENTION`.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from coaching.adapters import keys
from coaching.adapters.dynamo import (
    ConfidentialTableMeta,
    MainItem,
    MainTableMeta,
    connection,
    failed_keys,
    get_entity,
    lost_to_another_transaction,
)
from coaching.adapters.outbox import add_events
from coaching.config import settings
from coaching.domain.common import utc_now
from coaching.domain.errors import Conflict
from coaching.domain.events import Event
from coaching.domain.hr import EventOutcome, HrRecord, HrState, OrgSecrets
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.taxonomy import Transition
from coaching.domain.transitions import WaitlistEntry

# Longer than the Standard Webhooks retry schedule (about 3 days) and the 7 days a replay must be recognised.
RETENTION = timedelta(days=8)
# Locally and in tests: {"<org id>": ["whsec_…", …]}, inline or in a file the local stack names (re-read when it
# changes). Deployed, each org's secret is in Secrets Manager.
SECRETS_ENV = "HR_WEBHOOK_SECRETS"
SECRETS_FILE_ENV = "HR_WEBHOOK_SECRETS_FILE"
SECRET_PREFIX_ENV = "HR_WEBHOOK_SECRET_PREFIX"  # noqa: S105 (the variable's name, not a secret)
SECRET_CACHE_SECONDS = 300


class HrMarker(Model):
    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    ref = UnicodeAttribute()  # the receipt: the body's digest; an event marker: its outcome as JSON
    expires_at = NumberAttribute()


class HrPayload(Model):
    """The raw body as received, in the confidential table."""

    class Meta(ConfidentialTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    text = UnicodeAttribute()
    created_at = UnicodeAttribute()
    expires_at = NumberAttribute()


class WaitlistItem(Model):
    """A wait-list entry (coaching.domain.transitions.WaitlistEntry); written only if not there yet."""

    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    body = UnicodeAttribute()


def _expiry(now: datetime) -> int:
    return int((now + RETENTION).timestamp())


class HrWebhookStore:
    def record_receipt(self, org_id: str, webhook_id: str, digest: str, raw: str, now: datetime) -> str | None:
        """Store the receipt and the raw payload; None when new, else the digest the first delivery stored."""
        pk = keys.people_pk(org_id)
        receipt = HrMarker(pk, keys.hr_receipt_sk(webhook_id), kind="hr_receipt", ref=digest, expires_at=_expiry(now))
        payload = HrPayload(
            pk, keys.hr_payload_sk(webhook_id), text=raw, created_at=now.isoformat(), expires_at=_expiry(now)
        )
        transaction = TransactWrite(connection=connection())
        try:
            with transaction:
                transaction.save(receipt, condition=HrMarker.pk.does_not_exist())
                transaction.save(payload, condition=HrPayload.pk.does_not_exist())
        except TransactWriteError as exc:
            if not (failed_keys(transaction, exc) or lost_to_another_transaction(exc)):
                raise
            try:
                return str(HrMarker.get(pk, keys.hr_receipt_sk(webhook_id), consistent_read=True).ref)
            except HrMarker.DoesNotExist as missing:
                # Lost to a concurrent first delivery whose transaction has not landed: the sender retries.
                raise Conflict("this webhook-id is being received right now; retry") from missing
        return None

    def read(self, org_id: str, person_id: str) -> HrState:
        """The person's HR record and person item with their versions, in one BatchGetItem."""
        pk = keys.people_pk(org_id)
        record_key, person_key = (pk, keys.hr_record_sk(person_id)), (pk, keys.person_sk(person_id))
        state = HrState()
        for item in MainItem.batch_get([record_key, person_key], consistent_read=True):
            version = int(item.version or 0)
            if (item.pk, item.sk) == record_key:
                state.record, state.record_version = HrRecord.model_validate_json(item.body), version
            else:
                state.person, state.person_version = Person.model_validate_json(item.body), version
        return state

    def read_many(self, org_id: str, person_ids: Sequence[str]) -> dict[str, HrState]:
        """`read` for many people in BatchGetItem calls of 100 keys (two per person)."""
        pk = keys.people_pk(org_id)
        wanted = [(pk, sk) for pid in person_ids for sk in (keys.hr_record_sk(pid), keys.person_sk(pid))]
        states = {pid: HrState() for pid in person_ids}
        for item in MainItem.batch_get(wanted, consistent_read=True):
            version = int(item.version or 0)
            if item.kind == "hr_record":
                record = HrRecord.model_validate_json(item.body)
                states[record.person_id].record, states[record.person_id].record_version = record, version
            else:
                person = Person.model_validate_json(item.body)
                states[person.person_id].person, states[person.person_id].person_version = person, version
        return states

    def org(self, org_id: str) -> Org | None:
        return get_entity(keys.org_pk(org_id), keys.ORG_PROFILE_SK, Org)

    def waitlist(self, org_id: str, transition: Transition) -> list[WaitlistEntry]:
        """The wait-list's entries, oldest first."""
        # Entries only: the programmes keep their current cohort per language in the same partition.
        items = WaitlistItem.query(
            keys.waitlist_pk(org_id, transition.value),
            WaitlistItem.sk.startswith(keys.PERSON_PREFIX),
            consistent_read=True,
        )
        entries = [WaitlistEntry.model_validate_json(item.body) for item in items]
        return sorted(entries, key=lambda entry: (entry.joined_at, entry.person_id))

    def people_of(self, org_id: str) -> list[tuple[Person, HrRecord | None]]:
        """Every person of the org with their HR record (one Query of the people partition, paged)."""
        people: dict[str, Person] = {}
        records: dict[str, HrRecord] = {}
        for item in MainItem.query(keys.people_pk(org_id), consistent_read=True):
            if item.kind == "person":
                person = Person.model_validate_json(item.body)
                people[person.person_id] = person
            elif item.kind == "hr_record":
                record = HrRecord.model_validate_json(item.body)
                records[record.person_id] = record
        return [(person, records.get(pid)) for pid, person in people.items()]

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
        """Commit one event's marker with its effect; None if the record or person changed since `read`.

        `after` holds the record and person to write (None: unchanged). When the marker already exists,
        nothing is written and the outcome it recorded is returned (marked as a duplicate).
        """
        pk = keys.people_pk(org_id)
        marker_sk = keys.hr_event_sk(webhook_id, outcome.index)
        marker = HrMarker(pk, marker_sk, kind="hr_event", ref=outcome.model_dump_json(), expires_at=_expiry(now))
        transaction = TransactWrite(connection=connection())
        try:
            with transaction:
                transaction.save(marker, condition=HrMarker.pk.does_not_exist())
                if after.record is not None:
                    record = MainItem(
                        pk,
                        keys.hr_record_sk(after.record.person_id),
                        kind="hr_record",
                        body=after.record.model_dump_json(),
                    )
                    if read.record_version is not None:  # else PynamoDB's condition is "must not exist yet"
                        record.version = read.record_version
                    transaction.save(record)
                if after.person is not None:
                    person = MainItem(
                        pk, keys.person_sk(after.person.person_id), kind="person", body=after.person.model_dump_json()
                    )
                    if read.person_version is not None:
                        person.version = read.person_version
                    transaction.save(person)
                for entry in waitlist:
                    # SET … if_not_exists: a person already on the list keeps their place and status.
                    item = WaitlistItem(
                        keys.waitlist_pk(org_id, entry.transition.value), keys.waitlist_sk(entry.person_id)
                    )
                    transaction.update(
                        item,
                        actions=[
                            WaitlistItem.kind.set(WaitlistItem.kind | "waitlist_entry"),
                            WaitlistItem.body.set(WaitlistItem.body | entry.model_dump_json()),
                        ],
                    )
                add_events(transaction, events)
        except TransactWriteError as exc:
            failed = failed_keys(transaction, exc)
            if (pk, marker_sk) in failed:
                recorded = self._recorded(pk, marker_sk)
                if recorded is not None:
                    return recorded
            if failed or lost_to_another_transaction(exc):
                return None
            raise
        return outcome

    @staticmethod
    def _recorded(pk: str, sk: str) -> EventOutcome | None:
        try:
            marker = HrMarker.get(pk, sk, consistent_read=True)
        except HrMarker.DoesNotExist:
            return None
        return EventOutcome.model_validate_json(str(marker.ref)).model_copy(update={"duplicate": True})


def configured_secrets(environ: Mapping[str, str]) -> dict[str, list[str]] | None:
    """The secrets the environment holds (tests), or None when they come from elsewhere."""
    raw = environ.get(SECRETS_ENV)
    if raw is None:
        return None
    now = utc_now()
    return {org: secrets.usable(now) for org, secrets in parse_secrets_config(raw).items()}


def parse_secrets_config(raw: str) -> dict[str, OrgSecrets]:
    """`{"<org id>": <secrets>}`, each a list of `whsec_` strings or an `OrgSecrets` object."""
    parsed: Any = json.loads(raw)
    if not isinstance(parsed, dict) or not all(isinstance(v, list | dict | str) for v in parsed.values()):
        raise ValueError(f"{SECRETS_ENV} must be a JSON object of org id -> list of whsec_ secrets")
    return {str(org): OrgSecrets.parse(value) for org, value in parsed.items()}


class ConfiguredSecrets:
    def __init__(self, secrets: Mapping[str, Sequence[str]]) -> None:
        self._secrets = {org: list(values) for org, values in secrets.items()}

    def secrets_for(self, org_id: str) -> list[str]:
        return list(self._secrets.get(org_id, []))


_FILE_LOCK = threading.Lock()


class FileSecrets:
    """The local stack's secrets file (`.local/hr-webhook-secrets.json`): read again whenever it changes,
    written by the admin API's rotation (atomically, by replacing the file)."""

    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self._seen: tuple[float, dict[str, OrgSecrets]] | None = None

    def _all(self) -> dict[str, OrgSecrets]:
        try:
            modified = self._path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if self._seen is None or self._seen[0] != modified:
            self._seen = (modified, parse_secrets_config(self._path.read_text() or "{}"))
        return self._seen[1]

    def secrets_for(self, org_id: str) -> list[str]:
        return self._all().get(org_id, OrgSecrets()).usable(utc_now())

    def read(self, org_id: str) -> OrgSecrets:
        with _FILE_LOCK:
            self._seen = None
            return self._all().get(org_id, OrgSecrets())

    def write(self, org_id: str, secrets: OrgSecrets) -> None:
        with _FILE_LOCK:
            current: dict[str, Any] = json.loads(self._path.read_text() or "{}") if self._path.exists() else {}
            current[org_id] = secrets.model_dump(mode="json")
            self._path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._path.with_name(f"{self._path.name}.{uuid.uuid4().hex}.tmp")
            temporary.write_text(json.dumps(current, indent=2))
            temporary.replace(self._path)
            self._seen = None


class SecretsManagerSecrets:
    """One secret per org, `<prefix><org id>`, its value `OrgSecrets` JSON (or a bare `whsec_…`).

    The webhook function reads it through Powertools Parameters, cached `SECRET_CACHE_SECONDS`; the admin
    function's rotation reads it fresh and writes a new version (creating the secret the first time).
    """

    def __init__(self, prefix: str, max_age: int = SECRET_CACHE_SECONDS) -> None:
        self._prefix = prefix
        self._max_age = max_age

    def secrets_for(self, org_id: str) -> list[str]:
        from aws_lambda_powertools.utilities.parameters import get_secret
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = get_secret(f"{self._prefix}{org_id}", max_age=self._max_age)
        except GetParameterError:
            return []  # no secret for this org (or none readable): refused like a bad signature
        return parse_secret_value(value)

    def read(self, org_id: str) -> OrgSecrets:
        client = self._client()
        try:
            value = client.get_secret_value(SecretId=f"{self._prefix}{org_id}")
        except client.exceptions.ResourceNotFoundException:
            return OrgSecrets()
        return OrgSecrets.parse(value.get("SecretString", ""))

    def write(self, org_id: str, secrets: OrgSecrets) -> None:
        client = self._client()
        name, value = f"{self._prefix}{org_id}", secrets.model_dump_json()
        try:
            client.put_secret_value(SecretId=name, SecretString=value)
        except client.exceptions.ResourceNotFoundException:
            client.create_secret(Name=name, SecretString=value, Description=f"HR webhook secrets of org {org_id}")

    @staticmethod
    def _client() -> Any:
        import boto3

        return boto3.client("secretsmanager", region_name=settings().region)


def parse_secret_value(value: str) -> list[str]:
    """The secrets a stored value holds that verify now."""
    try:
        return OrgSecrets.parse(value).usable(utc_now())
    except ValueError:
        return []


def secrets_from_environment(
    environ: Mapping[str, str] | None = None,
) -> ConfiguredSecrets | FileSecrets | SecretsManagerSecrets:
    """Inline (tests), a file (the local stack), else Secrets Manager under the template's prefix."""
    environ = os.environ if environ is None else environ
    configured = configured_secrets(environ)
    if configured is not None:
        return ConfiguredSecrets(configured)
    if environ.get(SECRETS_FILE_ENV):
        return FileSecrets(environ[SECRETS_FILE_ENV])
    prefix = environ.get(SECRET_PREFIX_ENV)
    if not prefix:
        return ConfiguredSecrets({})  # no org has a secret: every delivery is refused (401)
    return SecretsManagerSecrets(prefix)


def secret_vault_from_environment(
    environ: Mapping[str, str] | None = None,
) -> FileSecrets | SecretsManagerSecrets | None:
    """Where the admin API's rotation writes: the local file, or Secrets Manager; None if neither is configured."""
    environ = os.environ if environ is None else environ
    if environ.get(SECRETS_FILE_ENV):
        return FileSecrets(environ[SECRETS_FILE_ENV])
    prefix = environ.get(SECRET_PREFIX_ENV)
    return SecretsManagerSecrets(prefix) if prefix else None
