"""Stores roster snapshots as gzip parts under a version pointer.

Parts are written first, then the pointer moves with a conditional write, so a reader
never sees a half-written version. Superseded parts expire through the table's TTL.
Rebuild requests are numbered by an atomic counter beside the pointer; the pointer records
the number its build took before reading the coaches (`covers`), so a rebuild can tell
that a snapshot published by another run already holds the change it was started for.
"""

from __future__ import annotations

import gzip
import hashlib
import time
import uuid
from datetime import UTC, datetime

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.condition import And, Condition
from pynamodb.models import Model

from coaching.adapters import keys
from coaching.adapters.dynamo import MainTableMeta
from coaching.domain.errors import RosterVersionConflict
from coaching.domain.roster import Roster, RosterCoach

PART_BYTES = 300_000  # below DynamoDB's 400 KB item limit with room for keys
SUPERSEDED_TTL_SECONDS = 24 * 3600


class RosterPointer(Model):
    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="roster_pointer")
    roster_version = NumberAttribute()
    build_id = UnicodeAttribute()
    content_hash = UnicodeAttribute()
    parts = NumberAttribute()
    coach_count = NumberAttribute()
    built_at = UnicodeAttribute()
    # The rebuild request this build took before reading the coaches (absent on pointers built before requests).
    covers = NumberAttribute(null=True)


class RosterRequests(Model):
    """The number of rebuild requests taken so far: one atomic ADD per request."""

    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="roster_requests")
    taken = NumberAttribute(null=True)


class RosterPart(Model):
    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="roster_part")
    payload = BinaryAttribute(legacy_encoding=False)
    expires_at = NumberAttribute(null=True)


class RosterStore:
    def request_rebuild(self) -> int:
        """Take the next rebuild request number (UpdateItem ADD: numbers follow the order requests were taken)."""
        counter = RosterRequests(keys.ROSTER_PK, keys.ROSTER_REQUESTS_SK)
        counter.update(actions=[RosterRequests.taken.add(1), RosterRequests.kind.set("roster_requests")])
        return int(counter.taken or 0)

    def current_pointer(self) -> RosterPointer | None:
        try:
            return RosterPointer.get(keys.ROSTER_PK, keys.ROSTER_POINTER_SK, consistent_read=True)
        except RosterPointer.DoesNotExist:
            return None

    def publish(self, coaches: list[RosterCoach], covers: int, over: RosterPointer | None) -> int:
        """Publish a new version on top of `over`; return the current version.

        `covers` is the rebuild request taken before `coaches` were read. Unchanged content keeps
        the version (a burst of coach events coalesces into one version, caches reload nothing)
        and only stamps the pointer with `covers`. Either write is conditional on the pointer
        still being `over` (version and covers): a run that read an older pointer can never
        overwrite a newer snapshot. Raises RosterVersionConflict when another run moved it first.
        """
        pointer = over
        previous = int(pointer.roster_version) if pointer else 0
        content = "[" + ",".join(coach.model_dump_json() for coach in coaches) + "]"
        content_hash = hashlib.sha256(content.encode()).hexdigest()
        if pointer is not None and pointer.content_hash == content_hash:
            try:
                pointer.update(actions=[RosterPointer.covers.set(covers)], condition=_still(pointer))
            except UpdateError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise RosterVersionConflict(f"roster version {previous} was replaced by another run") from exc
                raise
            return previous
        roster = Roster(version=previous + 1, built_at=datetime.now(UTC), coaches=coaches)
        blob = gzip.compress(roster.model_dump_json().encode(), compresslevel=6)
        chunks = [blob[i : i + PART_BYTES] for i in range(0, len(blob), PART_BYTES)] or [b""]
        build_id = uuid.uuid4().hex[:12]
        for index, chunk in enumerate(chunks):
            RosterPart(keys.ROSTER_PK, keys.roster_part_sk(roster.version, build_id, index), payload=chunk).save()
        new_pointer = RosterPointer(
            keys.ROSTER_PK,
            keys.ROSTER_POINTER_SK,
            roster_version=roster.version,
            build_id=build_id,
            content_hash=content_hash,
            parts=len(chunks),
            coach_count=len(coaches),
            built_at=roster.built_at.isoformat(),
            covers=covers,
        )
        condition = _still(pointer) if pointer else RosterPointer.pk.does_not_exist()
        try:
            new_pointer.save(condition=condition)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise RosterVersionConflict(f"roster version {roster.version} was published by another run") from exc
            raise
        if pointer:
            self._expire(previous, pointer.build_id, int(pointer.parts))
        return roster.version

    def load(self, pointer: RosterPointer) -> Roster:
        version, parts = int(pointer.roster_version), int(pointer.parts)
        wanted = [(keys.ROSTER_PK, keys.roster_part_sk(version, pointer.build_id, i)) for i in range(parts)]
        items = RosterPart.batch_get(wanted)
        ordered = sorted(items, key=lambda item: item.sk)
        blob = b"".join(item.payload for item in ordered)
        return Roster.model_validate_json(gzip.decompress(blob))

    def _expire(self, version: int, build_id: str, parts: int) -> None:
        expires_at = int(time.time()) + SUPERSEDED_TTL_SECONDS
        for index in range(parts):
            part = RosterPart(keys.ROSTER_PK, keys.roster_part_sk(version, build_id, index))
            part.update(actions=[RosterPart.expires_at.set(expires_at)])


def _still(pointer: RosterPointer) -> Condition:
    """The stored pointer is still the one read: same version and same covered request."""
    same_version = RosterPointer.roster_version == pointer.roster_version
    if pointer.covers is None:
        return And(same_version, RosterPointer.covers.does_not_exist())
    return And(same_version, RosterPointer.covers == pointer.covers)
