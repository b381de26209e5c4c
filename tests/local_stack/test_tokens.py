"""Local HS256 development tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from coaching_local import tokens
from coaching_local.tokens import InvalidToken, dev_token, mint, verify

KEY = b"k" * 32


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_round_trip() -> None:
    token = mint({"sub": "abc", "custom:org_id": "o1"}, KEY, ttl_seconds=60)
    claims = verify(token, KEY)
    assert claims["sub"] == "abc"
    assert claims["exp"] - claims["iat"] == 60


def test_tampered_payload_is_rejected() -> None:
    header, _, signature = mint({"sub": "abc", "cognito:groups": ["employee"]}, KEY).split(".")
    forged = _b64({"sub": "abc", "cognito:groups": ["operator"], "exp": time.time() + 999})
    with pytest.raises(InvalidToken, match="bad signature"):
        verify(f"{header}.{forged}.{signature}", KEY)


def test_wrong_key_is_rejected() -> None:
    with pytest.raises(InvalidToken, match="bad signature"):
        verify(mint({"sub": "x"}, KEY), b"other-key" * 4)


def test_expired() -> None:
    token = mint({"sub": "x"}, KEY, ttl_seconds=10, now=1_000)
    assert verify(token, KEY, now=1_009)["sub"] == "x"
    with pytest.raises(InvalidToken, match="expired") as info:
        verify(token, KEY, now=1_010)
    assert info.value.reason == "expired"


@pytest.mark.parametrize("alg", ["none", "None", "HS512", "RS256", None])
def test_other_algorithms_are_rejected(alg: str | None) -> None:
    payload = _b64({"sub": "x", "exp": time.time() + 60})
    header = _b64({"alg": alg, "typ": "JWT"})
    for signature in ("", "AAAA"):
        with pytest.raises(InvalidToken, match="alg"):
            verify(f"{header}.{payload}.{signature}", KEY)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!.??.**",
        f"{_b64({'alg': 'HS256'})}.e30.x",
        f"{base64.urlsafe_b64encode(b'[1]').decode()}.e30.x",
    ],
)
def test_malformed(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify(token, KEY)


def test_missing_exp_is_rejected() -> None:
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64({"sub": "x"})
    sig = base64.urlsafe_b64encode(hmac.new(KEY, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidToken, match="exp"):
        verify(f"{header}.{payload}.{sig.rstrip(b'=').decode()}", KEY)


def test_dev_token_is_cognito_shaped() -> None:
    claims = verify(dev_token(["employee", "leader"], "org-1", "person-1", KEY, email="p@example.test"), KEY)
    assert claims["custom:org_id"] == "org-1"
    assert claims["custom:person_id"] == "person-1"
    assert claims["cognito:groups"] == ["employee", "leader"]
    assert claims["email"] == "p@example.test"
    assert claims["token_use"] == "id"
    assert claims["iss"] == "coaching-platform-local"
    assert claims["exp"] > claims["iat"]
    assert claims["sub"] == verify(dev_token(["employee", "leader"], "org-1", "person-1", KEY), KEY)["sub"]


def test_operator_has_no_org() -> None:
    claims = verify(dev_token("operator", "org-ignored", None, KEY), KEY)
    assert "custom:org_id" not in claims
    assert claims["cognito:groups"] == ["operator"]


def test_unknown_role() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        dev_token("superuser", "o", "p", KEY)


def test_signing_key_file_is_created_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tokens.SIGNING_KEY_ENV, raising=False)
    key_file = tmp_path / ".local" / "dev-signing-key"
    first = tokens.signing_key(key_file)
    assert len(first) == 32
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert tokens.signing_key(key_file) == first


def test_signing_key_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tokens.SIGNING_KEY_ENV, "override-key")
    assert tokens.signing_key() == b"override-key"


@pytest.mark.parametrize("content", [b"", b"short-key", b"x" * 31])
def test_empty_or_short_key_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    monkeypatch.delenv(tokens.SIGNING_KEY_ENV, raising=False)
    key_file = tmp_path / "dev-signing-key"
    key_file.write_bytes(content)
    with pytest.raises(tokens.SigningKeyError, match=f"holds {len(content)} bytes.*at least 32.*delete it"):
        tokens.signing_key(key_file)
    assert key_file.read_bytes() == content  # refused, never silently replaced or used


def test_short_keys_never_sign_or_verify() -> None:
    with pytest.raises(tokens.SigningKeyError, match="at least 32"):
        mint({"sub": "x"}, b"short")
    with pytest.raises(tokens.SigningKeyError, match="at least 32"):
        verify(mint({"sub": "x"}, KEY), b"")


def test_gateway_refuses_a_short_key() -> None:
    from coaching_local.gateway import LocalGateway

    fixture = Path(__file__).parent / "fixture_stack" / "template.yaml"
    with pytest.raises(tokens.SigningKeyError, match="at least 32"):
        LocalGateway(fixture, port=0, signing_key=b"0123456789")
