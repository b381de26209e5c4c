"""Standard Webhooks verification of HR deliveries (coaching.domain.hr.verify_delivery).

The reference vectors are the Standard Webhooks libraries' own (Python/JS/Go/... `test_sign_function`,
Rust `test_sign`); their timestamps are years old, so they are checked through the signing step the
verifier uses, and then verified end to end re-signed at the current time with the same secret.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from coaching.domain.errors import Unauthorized
from coaching.domain.hr import TOLERANCE_SECONDS, verify_delivery
from standardwebhooks.webhooks import Webhook

VECTOR_1 = {
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "timestamp": 1614265330,
    "body": '{"test": 2432232314}',
    "signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
VECTOR_2 = {
    "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "id": "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
    "timestamp": 1649367553,
    "body": '{"email":"test@example.com","username":"test_user"}',
    "signature": "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
}
SECRET = VECTOR_1["secret"]
OTHER_ORG_SECRET = VECTOR_2["secret"]


def _sign(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    return Webhook(secret).sign(webhook_id, datetime.fromtimestamp(timestamp, tz=UTC), body)


def _headers(webhook_id: str, timestamp: int | str, signature: str) -> dict[str, str]:
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


@pytest.mark.parametrize("vector", [VECTOR_1, VECTOR_2], ids=["shared-vector", "rust-vector"])
def test_the_reference_vectors_sign_as_published_and_verify(vector: dict[str, object]) -> None:
    secret, webhook_id, body = str(vector["secret"]), str(vector["id"]), str(vector["body"])
    assert _sign(secret, webhook_id, int(str(vector["timestamp"])), body) == vector["signature"]
    now = int(time.time())
    headers = _headers(webhook_id, now, _sign(secret, webhook_id, now, body))
    assert verify_delivery([secret], headers, body.encode()).webhook_id == webhook_id


@pytest.mark.parametrize("vector", [VECTOR_1, VECTOR_2], ids=["shared-vector", "rust-vector"])
def test_the_reference_vectors_at_their_own_time_are_refused_as_stale(vector: dict[str, object]) -> None:
    headers = _headers(str(vector["id"]), str(vector["timestamp"]), str(vector["signature"]))
    with pytest.raises(Unauthorized) as refused:
        verify_delivery([str(vector["secret"])], headers, str(vector["body"]).encode())
    assert refused.value.field == "webhook-timestamp"


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (-(TOLERANCE_SECONDS - 1), True),
        (TOLERANCE_SECONDS - 1, True),
        (-(TOLERANCE_SECONDS + 1), False),
        (TOLERANCE_SECONDS + 1, False),
    ],
)
def test_the_tolerance_is_five_minutes_both_ways(offset: int, accepted: bool) -> None:
    body = '{"events": []}'
    stamp = int(time.time()) + offset
    headers = _headers("msg_1", stamp, _sign(SECRET, "msg_1", stamp, body))
    if accepted:
        assert verify_delivery([SECRET], headers, body.encode()).timestamp == stamp
    else:
        with pytest.raises(Unauthorized, match="seconds from now"):
            verify_delivery([SECRET], headers, body.encode())


def test_rotation_either_secret_verifies_and_several_signatures_are_tried() -> None:
    old, new = SECRET, "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    body, now = '{"events": []}', int(time.time())
    by_old = _sign(old, "msg_r", now, body)
    by_new = _sign(new, "msg_r", now, body)
    for signatures in (by_old, by_new, f"{by_new} {by_old}", f"v1a,AAAA v2,{by_old.split(',')[1]} {by_old}"):
        verify_delivery([new, old], _headers("msg_r", now, signatures), body.encode())
    with pytest.raises(Unauthorized):
        verify_delivery([new], _headers("msg_r", now, by_old), body.encode())


def test_another_orgs_secret_is_refused() -> None:
    body, now = '{"events": []}', int(time.time())
    headers = _headers("msg_o", now, _sign(OTHER_ORG_SECRET, "msg_o", now, body))
    with pytest.raises(Unauthorized) as refused:
        verify_delivery([SECRET], headers, body.encode())
    assert refused.value.field == "webhook-signature"


def test_an_org_without_a_secret_is_refused_like_a_bad_signature() -> None:
    body, now = '{"events": []}', int(time.time())
    with pytest.raises(Unauthorized, match="no signature"):
        verify_delivery([], _headers("msg_n", now, _sign(SECRET, "msg_n", now, body)), body.encode())


def test_a_changed_body_or_id_is_refused() -> None:
    body, now = '{"events": []}', int(time.time())
    signature = _sign(SECRET, "msg_b", now, body)
    with pytest.raises(Unauthorized):
        verify_delivery([SECRET], _headers("msg_b", now, signature), b'{"events": [] }')
    with pytest.raises(Unauthorized):
        verify_delivery([SECRET], _headers("msg_c", now, signature), body.encode())


@pytest.mark.parametrize(
    "signature",
    [
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",  # tampered (last character)
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd",  # not base64
        "v1,dawfeoifkpqwoekfpqoekf",
        "v1,",
        "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",  # right bytes, wrong version
        "invalid_signature",  # no comma
        "v1,a,b",
        "",
        " ",
    ],
)
def test_malformed_or_wrong_signatures_are_refused(signature: str) -> None:
    with pytest.raises(Unauthorized):
        verify_delivery([SECRET], _headers("msg_x", int(time.time()), signature), b"{}")


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_header_is_required(missing: str) -> None:
    now = int(time.time())
    headers = _headers("msg_m", now, _sign(SECRET, "msg_m", now, "{}"))
    del headers[missing]
    with pytest.raises(Unauthorized) as refused:
        verify_delivery([SECRET], headers, b"{}")
    assert refused.value.field == missing


def test_header_names_are_case_insensitive() -> None:
    now = int(time.time())
    signature = _sign(SECRET, "msg_case", now, "{}")
    headers = {"Webhook-Id": "msg_case", "WEBHOOK-TIMESTAMP": str(now), "webhook-SIGNATURE": signature}
    assert verify_delivery([SECRET], headers, b"{}").webhook_id == "msg_case"


@pytest.mark.parametrize(
    ("webhook_id", "timestamp"),
    [
        ("msg.dot", None),
        ("a#b", None),
        ("x" * 129, None),
        ("msg_t", "hello"),
        ("msg_t", "1614265330.0"),
        ("msg_t", "-5"),
    ],
)
def test_ids_and_timestamps_a_key_or_the_signed_text_could_be_forged_from_are_refused(
    webhook_id: str, timestamp: str | None
) -> None:
    stamp = timestamp or str(int(time.time()))
    with pytest.raises(Unauthorized):
        verify_delivery([SECRET], _headers(webhook_id, stamp, "v1,AAAA"), b"{}")


def test_a_body_that_is_not_utf8_is_refused_not_crashed_on() -> None:
    now = int(time.time())
    with pytest.raises(Unauthorized):
        verify_delivery([SECRET], _headers("msg_u", now, _sign(SECRET, "msg_u", now, "{}")), b"\xff\xfe")


def test_an_unpadded_or_unprefixed_secret_verifies_the_same() -> None:
    now, body = int(time.time()), "{}"
    signature = _sign(SECRET, "msg_p", now, body)
    verify_delivery([SECRET.removeprefix("whsec_")], _headers("msg_p", now, signature), body.encode())
