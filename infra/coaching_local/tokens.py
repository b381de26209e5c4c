"""Local development JWTs (HS256, stdlib only) shaped like Cognito ID tokens.

These stand in for Cognito locally: the gateway verifies them exactly where API Gateway's Cognito
authorizer would, and hands the handlers the same claim names. They are signed with a per-checkout
random key and must never be accepted anywhere but the local stack.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from coaching_local.paths import local_dir

ISSUER = "coaching-platform-local"
DEFAULT_TTL_SECONDS = 12 * 3600  # a working day, so a printed token survives a dev session
ROLES = ("employee", "coach", "org_admin", "leader", "finance", "operator")
PLATFORM_ROLES = frozenset({"operator", "coach"})  # roles that act across organisations: no org claim
SIGNING_KEY_ENV = "LOCAL_DEV_SIGNING_KEY"
SIGNING_KEY_FILE_ENV = "LOCAL_DEV_SIGNING_KEY_FILE"


class InvalidToken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed: bad base64url") from exc


def _sign(signing_input: bytes, key: bytes) -> str:
    return _b64encode(hmac.new(key, signing_input, hashlib.sha256).digest())


def mint(
    claims: Mapping[str, Any], key: bytes, ttl_seconds: int = DEFAULT_TTL_SECONDS, now: float | None = None
) -> str:
    """Sign `claims` as an HS256 JWT, adding `iat` and `exp` unless the caller set them."""
    issued = int(time.time() if now is None else now)
    body = {"iat": issued, "exp": issued + ttl_seconds, **claims}
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = (
        _b64encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64encode(json.dumps(body, separators=(",", ":")).encode())
    )
    return signing_input + "." + _sign(signing_input.encode("ascii"), key)


def verify(token: str, key: bytes, now: float | None = None) -> dict[str, Any]:
    """The claims of a valid token; InvalidToken(reason) otherwise."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise InvalidToken("malformed: a JWT has three dot-separated parts")
    header_b64, payload_b64, signature_b64 = token.split(".")
    try:
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(payload_b64))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidToken("malformed: header or payload is not JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidToken("malformed: header and payload must be JSON objects")
    # Check the algorithm before anything else: `none` and algorithm confusion are the classic attacks.
    if header.get("alg") != "HS256":
        raise InvalidToken(f"unsupported alg {header.get('alg')!r}: only HS256 is accepted")
    expected = _sign(f"{header_b64}.{payload_b64}".encode("ascii"), key)
    if not hmac.compare_digest(expected, signature_b64):
        raise InvalidToken("bad signature")
    current = time.time() if now is None else now
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise InvalidToken("malformed: exp claim missing or not a number")
    if current >= exp:
        raise InvalidToken("expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and current < nbf:
        raise InvalidToken("not yet valid")
    return claims


def dev_token(
    role_or_roles: str | Iterable[str],
    org_id: str | None,
    person_id: str | None,
    key: bytes,
    email: str | None = None,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
) -> str:
    """A Cognito-shaped ID token for the given role(s), organisation and person."""
    roles = [role_or_roles] if isinstance(role_or_roles, str) else list(role_or_roles)
    if not roles:
        raise ValueError("a dev token needs at least one role")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}; known roles: {', '.join(ROLES)}")
    # Without org_id the claim is simply absent: tests use that to check handlers refuse such tokens.
    platform_only = all(r in PLATFORM_ROLES for r in roles)
    # Stable per subject, so repeated tokens for the same person carry the same Cognito `sub`.
    sub = str(uuid.uuid5(uuid.NAMESPACE_URL, f"coaching-local:{org_id or ''}:{person_id or ''}:{','.join(roles)}"))
    claims: dict[str, Any] = {
        "sub": sub,
        "cognito:groups": roles,
        "email": email or f"{person_id or roles[0]}@example.test",
        "email_verified": True,
        "token_use": "id",
        "iss": ISSUER,
        "aud": "coaching-platform-local-client",
        "auth_time": int(time.time()),
        "cognito:username": sub,
    }
    if person_id:
        claims["custom:person_id"] = person_id
    if org_id and not platform_only:
        claims["custom:org_id"] = org_id
    return mint(claims, key, ttl_seconds=ttl_seconds)


def signing_key(key_file: Path | None = None) -> bytes:
    """The local signing key: `LOCAL_DEV_SIGNING_KEY` (text), else a file created on first use."""
    override = os.environ.get(SIGNING_KEY_ENV)
    if override:
        return override.encode("utf-8")
    if key_file is None:
        env_file = os.environ.get(SIGNING_KEY_FILE_ENV)
        key_file = Path(env_file) if env_file else local_dir() / "dev-signing-key"
    if key_file.is_file():
        key = key_file.read_bytes()
        if len(key) >= 32:
            return key
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # Write aside then hard-link into place: the link fails if another process won the race, and
    # nobody ever reads a half-written key. Everyone then uses whichever key landed first.
    tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}")
    tmp.write_bytes(key)
    tmp.chmod(0o600)
    try:
        os.link(tmp, key_file)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return key_file.read_bytes()
