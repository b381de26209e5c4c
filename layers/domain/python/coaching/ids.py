"""Identifiers and opaque pagination cursors."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Literal

from coaching.domain.errors import InvalidInput


def new_id() -> str:
    return str(uuid.uuid4())


def person_id_for(org_id: str, external_hr_id: str) -> str:
    """A person's id derives from the org and the HR system's id.

    That makes imports idempotent without a lookup item, and lets a row name its manager by
    HR id before the manager's own row has been written.
    """
    return str(uuid.uuid5(uuid.UUID(org_id), f"hr:{external_hr_id}"))


def encode_cursor(last_evaluated_key: dict[str, object] | None) -> str | None:
    if not last_evaluated_key:
        return None
    raw = json.dumps(last_evaluated_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CursorIndex = Literal["gsi1"]

_TABLE_KEY = frozenset({"pk", "sk"})
_INDEX_KEYS: dict[CursorIndex, frozenset[str]] = {"gsi1": frozenset({"pk", "sk", "gsi1pk", "gsi1sk"})}


def decode_cursor(
    cursor: str | None, *, expected_pk: str, index: CursorIndex | None = None
) -> dict[str, object] | None:
    """Decode a cursor and check it belongs to the partition being listed.

    A cursor is client-supplied: one that points into another tenant's partition is refused.
    The caller names what the listing pages over, and the cursor must be exactly that kind of
    start key: a base-table listing (``index=None``) takes ``{pk, sk}`` with ``pk == expected_pk``;
    an index listing (``index="gsi1"``) takes ``{pk, sk, gsi1pk, gsi1sk}`` with
    ``gsi1pk == expected_pk``. So an index-shaped cursor whose ``gsi1pk`` matches cannot carry a
    foreign ``pk`` into a base-table listing, and the reverse.
    """
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput("cursor is not a valid pagination cursor", field="cursor") from exc
    shape = _TABLE_KEY if index is None else _INDEX_KEYS[index]
    if not _well_formed(key, shape):
        raise InvalidInput("cursor is not a valid pagination cursor", field="cursor")
    partition = key["pk"]["S"] if index is None else key[f"{index}pk"]["S"]
    if partition != expected_pk:
        raise InvalidInput("cursor does not belong to this listing", field="cursor")
    found: dict[str, object] = key
    return found


def _well_formed(key: object, shape: frozenset[str]) -> bool:
    """Exactly the listing's start key, of short strings: anything else never reaches DynamoDB."""
    if not isinstance(key, dict) or set(key) != shape:
        return False
    for value in key.values():
        if not (isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str)):
            return False
        if not 0 < len(value["S"]) <= 512:
            return False
    return True
