"""PynamoDB models and the repositories behind which all DynamoDB access sits.

Entities are stored as their pydantic JSON in ``body``; keys and a VersionAttribute sit
beside it, so every single-item write is an optimistic, conditional write.
"""

from __future__ import annotations

import builtins
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypedDict, cast

from pydantic import BaseModel
from pynamodb.attributes import UnicodeAttribute, VersionAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from coaching.adapters import keys
from coaching.config import settings
from coaching.domain.coaches import Coach, VettingThresholds
from coaching.domain.common import Clock, utc_now
from coaching.domain.errors import Conflict
from coaching.domain.events import Event
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.ids import CursorIndex, decode_cursor, encode_cursor

TRANSACTION_LIMIT = 100
_CONFLICT_RETRIES = 8
_BACKOFF_SECONDS = 0.01


class _Gsi1(GlobalSecondaryIndex["MainItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class MainTableMeta:
    """Where every main-table model lives; read from the environment at import."""

    table_name = settings().main_table
    host = settings().dynamodb_endpoint
    region = settings().region


class ConfidentialTableMeta:
    """Where what people say lives (KMS-encrypted, never granted to a reporting path); read at import."""

    table_name = settings().confidential_table
    host = settings().dynamodb_endpoint
    region = settings().region


class MainItem(Model):
    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    kind = UnicodeAttribute()
    body = UnicodeAttribute()
    version = VersionAttribute()
    gsi1 = _Gsi1()


class MarkerItem(Model):
    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    ref = UnicodeAttribute()


class SituationItem(Model):
    """Lives in the confidential table: what the person said, kept away from every report."""

    class Meta(ConfidentialTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    text = UnicodeAttribute()
    created_at = UnicodeAttribute()


@lru_cache(maxsize=1)
def connection() -> Connection:
    # One connection per container: building a botocore client costs tens of milliseconds
    # and takes a process-wide lock, far more than the transaction it would serve.
    config = settings()
    return Connection(region=config.region, host=config.dynamodb_endpoint)


@dataclass(slots=True)
class Page[EntityT: BaseModel]:
    items: list[EntityT]
    next_cursor: str | None = None


def _item(entity: BaseModel, *, pk: str, sk: str, kind: str, gsi1: tuple[str, str] | None = None) -> MainItem:
    item = MainItem(pk, sk, kind=kind, body=entity.model_dump_json())
    if gsi1:
        item.gsi1pk, item.gsi1sk = gsi1
    return item


def _insert(item: MainItem, what: str) -> None:
    try:
        item.save(condition=MainItem.pk.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise Conflict(f"{what} already exists") from exc
        raise


def modify_entity[EntityT: BaseModel](
    pk: str,
    sk: str,
    model: type[EntityT],
    change: Callable[[EntityT], EntityT],
    gsi1: Callable[[EntityT], tuple[str, str] | None] | None = None,
) -> EntityT | None:
    """Read-modify-write with an optimistic version check; retries a concurrent change."""
    for attempt in range(_CONFLICT_RETRIES):
        try:
            item = MainItem.get(pk, sk, consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        updated = change(model.model_validate_json(item.body))
        item.body = updated.model_dump_json()
        if gsi1:
            index_keys = gsi1(updated)
            if index_keys:
                item.gsi1pk, item.gsi1sk = index_keys
        try:
            item.save()
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                # Someone else changed it between our read and write: back off with jitter so
                # concurrent writers spread out, then apply the change to their result.
                backoff(attempt)
                continue
            raise
        return updated
    raise Conflict("the object is being changed by someone else; try again")


def batch_read(wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Strongly consistent BatchGetItem of main-table items of any kind, keyed by (pk, sk).

    One round trip for up to 100 keys (plus a retry of any keys DynamoDB left unprocessed).
    """
    table = settings().main_table
    pending = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in dict.fromkeys(wanted)]
    found: dict[tuple[str, str], dict[str, Any]] = {}
    attempt = 0
    while pending:
        request = {table: {"Keys": pending[:100], "ConsistentRead": True}}
        response = connection().dispatch("BatchGetItem", {"RequestItems": request})
        for item in response.get("Responses", {}).get(table, []):
            found[(item["pk"]["S"], item["sk"]["S"])] = item
        unprocessed = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        pending = unprocessed + pending[100:]
        if unprocessed:
            backoff(attempt)
            attempt += 1
    return found


def backoff(attempt: int) -> None:
    """Jittered exponential pause before retrying a conditional write that lost a race."""
    time.sleep(random.uniform(0, _BACKOFF_SECONDS * 2**attempt))


def get_entity[EntityT: BaseModel](pk: str, sk: str, model: type[EntityT]) -> EntityT | None:
    try:
        item = MainItem.get(pk, sk, consistent_read=True)
    except MainItem.DoesNotExist:
        return None
    return model.model_validate_json(item.body)


def _page[EntityT: BaseModel](
    results: Any,
    model: type[EntityT],
) -> Page[EntityT]:
    items = [model.model_validate_json(item.body) for item in results]
    return Page(items=items, next_cursor=encode_cursor(results.last_evaluated_key))


def _start_key(cursor: str | None, expected_pk: str, *, index: CursorIndex | None) -> dict[str, dict[str, Any]] | None:
    """Where a listing resumes: the client's cursor, checked to be a start key of the table or
    index the listing queries (``index``) and to belong to the partition listed."""
    return cast("dict[str, dict[str, Any]] | None", decode_cursor(cursor, expected_pk=expected_pk, index=index))


class OrgRepository:
    def add(self, org: Org) -> None:
        _insert(
            _item(
                org,
                pk=keys.org_pk(org.org_id),
                sk=keys.ORG_PROFILE_SK,
                kind="org",
                gsi1=(keys.ORGS_INDEX_PK, keys.org_index_sk(org.org_id)),
            ),
            "organisation",
        )

    def get(self, org_id: str) -> Org | None:
        return get_entity(keys.org_pk(org_id), keys.ORG_PROFILE_SK, Org)

    def modify(self, org_id: str, change: Callable[[Org], Org]) -> Org | None:
        return modify_entity(keys.org_pk(org_id), keys.ORG_PROFILE_SK, Org, change)

    def list(self, *, limit: int, cursor: str | None) -> Page[Org]:
        start = _start_key(cursor, keys.ORGS_INDEX_PK, index="gsi1")
        results = MainItem.gsi1.query(keys.ORGS_INDEX_PK, limit=limit, last_evaluated_key=start)
        return _page(results, Org)


class PersonRepository:
    def add(self, person: Person) -> None:
        _insert(self._item(person), f"a person with external_hr_id {person.external_hr_id!r}")

    def get(self, org_id: str, person_id: str) -> Person | None:
        return get_entity(keys.people_pk(org_id), keys.person_sk(person_id), Person)

    def modify(self, org_id: str, person_id: str, change: Callable[[Person], Person]) -> Person | None:
        return modify_entity(keys.people_pk(org_id), keys.person_sk(person_id), Person, change)

    def list(self, org_id: str, *, limit: int, cursor: str | None) -> Page[Person]:
        pk = keys.people_pk(org_id)
        start = _start_key(cursor, pk, index=None)
        results = MainItem.query(pk, MainItem.sk.startswith(keys.PERSON_PREFIX), limit=limit, last_evaluated_key=start)
        return _page(results, Person)

    def get_many(self, org_id: str, person_ids: Iterable[str]) -> dict[str, tuple[Person, int]]:
        """Current people and their versions, by id (BatchGetItem, 100 keys a call)."""
        pk = keys.people_pk(org_id)
        found: dict[str, tuple[Person, int]] = {}
        for item in MainItem.batch_get([(pk, keys.person_sk(pid)) for pid in dict.fromkeys(person_ids)]):
            person = Person.model_validate_json(item.body)
            found[person.person_id] = (person, int(item.version or 0))
        return found

    def write_batch(self, changes: Sequence[tuple[Person, int | None]]) -> None:
        """Write up to 100 people in one transaction, each conditional on the version read.

        ``None`` as version means "must not exist yet". A concurrent change to any row fails
        the whole chunk, which the caller re-reads and retries: no lost update, no half chunk.
        """
        if len(changes) > TRANSACTION_LIMIT:
            raise ValueError(f"at most {TRANSACTION_LIMIT} items per transaction")
        transaction = TransactWrite(connection=connection())
        try:
            with transaction:
                for person, version in changes:
                    item = self._item(person)
                    # PynamoDB turns the version read into the write's condition (absent when
                    # None) and increments it, exactly as a single-item save does.
                    if version is not None:
                        item.version = version
                    transaction.save(item)
        except TransactWriteError as exc:
            if failed_keys(transaction, exc) or lost_to_another_transaction(exc):
                raise Conflict("a person in this batch changed since it was read; read again") from exc
            raise

    def get_with_org(self, org_id: str, person_id: str) -> tuple[Org | None, Person | None]:
        """The person and their org in one round trip (get_org_and_person)."""
        return get_org_and_person(org_id, person_id)

    @staticmethod
    def _item(person: Person) -> MainItem:
        return _item(person, pk=keys.people_pk(person.org_id), sk=keys.person_sk(person.person_id), kind="person")


def get_org_and_person(org_id: str, person_id: str) -> tuple[Org | None, Person | None]:
    """Both in one BatchGetItem round trip: every person-facing request starts with these two."""
    org_key = (keys.org_pk(org_id), keys.ORG_PROFILE_SK)
    person_key = (keys.people_pk(org_id), keys.person_sk(person_id))
    org: Org | None = None
    person: Person | None = None
    for item in MainItem.batch_get([org_key, person_key], consistent_read=True):
        if (item.pk, item.sk) == org_key:
            org = Org.model_validate_json(item.body)
        else:
            person = Person.model_validate_json(item.body)
    return org, person


def _coach_index(coach: Coach) -> tuple[str, str]:
    return keys.coaches_by_status_pk(coach.vetting_status.value), keys.coach_sk(coach.coach_id)


class CoachRepository:
    def add(self, coach: Coach) -> None:
        _insert(
            _item(coach, pk=keys.COACHES_PK, sk=keys.coach_sk(coach.coach_id), kind="coach", gsi1=_coach_index(coach)),
            "coach",
        )

    def get(self, coach_id: str) -> Coach | None:
        return get_entity(keys.COACHES_PK, keys.coach_sk(coach_id), Coach)

    def modify(self, coach_id: str, change: Callable[[Coach], Coach]) -> Coach | None:
        return modify_entity(keys.COACHES_PK, keys.coach_sk(coach_id), Coach, change, gsi1=_coach_index)

    def modify_with_events(
        self, coach_id: str, change: Callable[[Coach], tuple[Coach, Sequence[Event]]]
    ) -> Coach | None:
        """Read-modify-write like `modify`, committing the change's events with it.

        One TransactWrite: the coach item (conditional on the version read, the status index
        moved with it) and the events' outbox items. A concurrent change fails the version
        condition; the change is then applied again to the fresh coach, with fresh events.
        """
        # Imported here: the outbox builds on this module's table model and connection.
        from coaching.adapters.outbox import add_events

        pk, sk = keys.COACHES_PK, keys.coach_sk(coach_id)
        for attempt in range(_CONFLICT_RETRIES):
            try:
                item = MainItem.get(pk, sk, consistent_read=True)
            except MainItem.DoesNotExist:
                return None
            updated, events = change(Coach.model_validate_json(item.body))
            item.body = updated.model_dump_json()
            item.gsi1pk, item.gsi1sk = _coach_index(updated)
            transaction = TransactWrite(connection=connection())
            try:
                with transaction:
                    transaction.save(item)
                    add_events(transaction, events)
            except TransactWriteError as exc:
                if (pk, sk) in failed_keys(transaction, exc) or lost_to_another_transaction(exc):
                    backoff(attempt)
                    continue
                raise
            return updated
        raise Conflict("the object is being changed by someone else; try again")

    def list(self, *, status: str | None, limit: int, cursor: str | None) -> Page[Coach]:
        if status:
            pk = keys.coaches_by_status_pk(status)
            start = _start_key(cursor, pk, index="gsi1")
            results = MainItem.gsi1.query(pk, limit=limit, last_evaluated_key=start)
        else:
            start = _start_key(cursor, keys.COACHES_PK, index=None)
            # The network partition also holds each coach's load counter: list profiles only.
            results = MainItem.query(
                keys.COACHES_PK, MainItem.sk.startswith(keys.COACH_PREFIX), limit=limit, last_evaluated_key=start
            )
        return _page(results, Coach)

    def all_approved(self) -> builtins.list[Coach]:
        """Every approved coach, through the status index (a Query, never a Scan)."""
        results = MainItem.gsi1.query(keys.coaches_by_status_pk("approved"))
        return [Coach.model_validate_json(item.body) for item in results]


def lost_to_another_transaction(exc: TransactWriteError) -> bool:
    """DynamoDB cancelled the transaction because another one was changing one of its items."""
    return any(reason is not None and reason.code == "TransactionConflict" for reason in exc.cancellation_reasons or [])


def is_transaction_conflict(exc: TransactWriteError) -> bool:
    reasons = exc.cancellation_reasons or []
    return any(reason is not None and reason.code == "ConditionalCheckFailed" for reason in reasons)


def failed_keys(transaction: TransactWrite, exc: TransactWriteError) -> list[tuple[str, str]]:
    """The (pk, sk) of every item whose condition failed, in transaction order.

    DynamoDB reports cancellation reasons by position; PynamoDB sends condition checks,
    then deletes, then puts, then updates (`Connection.transact_write_items`), so the
    position maps back to the key without each caller keeping a parallel label list.
    """
    operations = [
        *transaction._condition_check_items,
        *transaction._delete_items,
        *transaction._put_items,
        *transaction._update_items,
    ]
    failed = []
    for operation, reason in zip(operations, exc.cancellation_reasons or [], strict=False):
        if reason is not None and reason.code == "ConditionalCheckFailed":
            key = operation.get("Key") or operation.get("Item") or {}
            failed.append((key["pk"]["S"], key["sk"]["S"]))
    return failed


class AdminPorts(TypedDict):
    """What `coaching.services.admin.AdminContext` needs, on DynamoDB: `AdminContext(**admin_ports())`."""

    orgs: OrgRepository
    people: PersonRepository
    coaches: CoachRepository
    clock: Clock
    vetting: VettingThresholds


def admin_ports() -> AdminPorts:
    """The admin service's ports on the real tables, for the handler, the seed and tests."""
    config = settings()
    return AdminPorts(
        orgs=OrgRepository(),
        people=PersonRepository(),
        coaches=CoachRepository(),
        clock=utc_now,
        vetting=VettingThresholds(
            min_operating_years=config.vetting_min_operating_years,
            min_paid_coaching_hours=config.vetting_min_paid_coaching_hours,
        ),
    )


__all__ = [
    "AdminPorts",
    "CoachRepository",
    "MainItem",
    "OrgRepository",
    "Page",
    "PersonRepository",
    "TransactWriteError",
    "admin_ports",
    "failed_keys",
    "is_transaction_conflict",
    "lost_to_another_transaction",
]
