"""Stores roster snapshots as gzip parts under a version pointer.

Parts are written first, then the pointer moves with a conditional write, so a reader
never sees a half-written version. Superseded parts expire through the table's TTL.
"""

from __future__ import annotations

import gzip
import hashlib
import time
import uuid
from datetime import UTC, datetime

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
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


class RosterPart(Model):
    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="roster_part")
    payload = BinaryAttribute(legacy_encoding=False)
    expires_at = NumberAttribute(null=True)


class RosterStore:
    def current_pointer(self) -> RosterPointer | None:
        try:
            return RosterPointer.get(keys.ROSTER_PK, keys.ROSTER_POINTER_SK, consistent_read=True)
        except RosterPointer.DoesNotExist:
            return None

    def publish(self, coaches: list[RosterCoach]) -> int:
        """Publish a new version unless the content is unchanged; return the current version."""
        pointer = self.current_pointer()
        previous = int(pointer.roster_version) if pointer else 0
        content = "[" + ",".join(coach.model_dump_json() for coach in coaches) + "]"
        content_hash = hashlib.sha256(content.encode()).hexdigest()
        if pointer is not None and pointer.content_hash == content_hash:
            return previous  # a burst of coach events coalesces into one version
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
        )
        condition = RosterPointer.roster_version == previous if pointer else RosterPointer.pk.does_not_exist()
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
