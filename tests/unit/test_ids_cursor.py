"""Pagination cursors are checked against the key the listing pages over: the table's or the index's."""

from __future__ import annotations

import base64
import json

import pytest
from coaching.adapters import keys
from coaching.domain.errors import InvalidInput
from coaching.ids import CursorIndex, decode_cursor, encode_cursor

PEOPLE_A = keys.people_pk("org-a")
PEOPLE_B = keys.people_pk("org-b")
APPROVED = keys.coaches_by_status_pk("approved")
PENDING = keys.coaches_by_status_pk("pending")


def table_key(pk: str, sk: str) -> dict[str, object]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def index_key(pk: str, sk: str, gsi1pk: str, gsi1sk: str) -> dict[str, object]:
    return table_key(pk, sk) | {"gsi1pk": {"S": gsi1pk}, "gsi1sk": {"S": gsi1sk}}


def refused(cursor: str | None, *, expected_pk: str, index: CursorIndex | None) -> InvalidInput:
    with pytest.raises(InvalidInput) as error:
        decode_cursor(cursor, expected_pk=expected_pk, index=index)
    assert error.value.field == "cursor"
    return error.value


def test_a_base_table_cursor_of_the_listed_partition_resumes_there():
    key = table_key(PEOPLE_A, keys.person_sk("p1"))
    assert decode_cursor(encode_cursor(key), expected_pk=PEOPLE_A, index=None) == key
    assert decode_cursor(encode_cursor(key), expected_pk=PEOPLE_A) == key  # the table is the default
    assert decode_cursor(None, expected_pk=PEOPLE_A, index=None) is None
    assert decode_cursor("", expected_pk=PEOPLE_A, index="gsi1") is None


def test_an_index_cursor_of_the_listed_index_partition_resumes_there():
    key = index_key(keys.COACHES_PK, keys.coach_sk("c1"), APPROVED, keys.coach_sk("c1"))
    assert decode_cursor(encode_cursor(key), expected_pk=APPROVED, index="gsi1") == key


def test_a_base_table_listing_refuses_a_foreign_pk_even_with_a_matching_gsi1pk():
    """Regression: the check used gsi1pk whenever present, so this cursor passed for org A's people."""
    forged = index_key(PEOPLE_B, keys.person_sk("victim"), PEOPLE_A, keys.person_sk("victim"))
    assert "not a valid pagination cursor" in refused(encode_cursor(forged), expected_pk=PEOPLE_A, index=None).message


def test_a_base_table_listing_refuses_an_index_shaped_cursor_of_its_own_partition():
    own = index_key(PEOPLE_A, keys.person_sk("p1"), PEOPLE_A, keys.person_sk("p1"))
    refused(encode_cursor(own), expected_pk=PEOPLE_A, index=None)


def test_a_base_table_listing_refuses_another_partition():
    foreign = table_key(PEOPLE_B, keys.person_sk("p1"))
    assert "does not belong" in refused(encode_cursor(foreign), expected_pk=PEOPLE_A, index=None).message


def test_an_index_listing_refuses_the_wrong_gsi1pk_even_with_a_matching_pk():
    other_status = index_key(keys.COACHES_PK, keys.coach_sk("c1"), PENDING, keys.coach_sk("c1"))
    assert "does not belong" in refused(encode_cursor(other_status), expected_pk=APPROVED, index="gsi1").message
    pk_only_matches = index_key(APPROVED, keys.coach_sk("c1"), PENDING, keys.coach_sk("c1"))
    refused(encode_cursor(pk_only_matches), expected_pk=APPROVED, index="gsi1")


def test_an_index_listing_refuses_a_base_table_cursor():
    table_shaped = table_key(APPROVED, keys.coach_sk("c1"))
    assert "not a valid" in refused(encode_cursor(table_shaped), expected_pk=APPROVED, index="gsi1").message


def raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!!",
        raw([1, 2]),
        raw({"pk": {"S": PEOPLE_A}}),
        raw({"pk": {"S": PEOPLE_A}, "sk": {"N": "1"}}),
        raw({"pk": {"S": PEOPLE_A}, "sk": {"S": ""}}),
        raw({"pk": {"S": PEOPLE_A}, "sk": {"S": "x" * 513}}),
        raw({"pk": {"S": PEOPLE_A}, "sk": {"S": "PERSON#1"}, "extra": {"S": "x"}}),
        raw({"pk": {"S": PEOPLE_A}, "sk": {"S": "PERSON#1", "N": "1"}}),
    ],
)
def test_malformed_cursors_are_refused_for_both_kinds_of_listing(cursor: str):
    refused(cursor, expected_pk=PEOPLE_A, index=None)
    refused(cursor, expected_pk=PEOPLE_A, index="gsi1")
