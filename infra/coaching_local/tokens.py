"""Local development JWTs (HS256, signed and verified with PyJWT) shaped like Cognito ID tokens.

These stand in for Cognito locally: the gateway verifies them exactly where API Gateway's Cognito
authorizer would, and hands the handlers the same claim names. They are signed with a per-checkout
random key (at least 32 bytes) and must never be accepted anywhere but the local stack.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jwt

from coaching_local.cfn import LOCAL_USER_POOL_CLIENT_ID
from coaching_local.paths import local_dir

ISSUER = "coaching-platform-local"
DEFAULT_TTL_SECONDS = 12 * 3600  # a working day, so a printed token survives a dev session
ROLES = ("employee", "coach", "org_admin", "leader", "finance", "operator")
PLATFORM_ROLES = frozenset({"operator", "coach"})  # roles that act across organisations: no org claim
SIGNING_KEY_ENV = "LOCAL_DEV_SIGNING_KEY"
SIGNING_KEY_FILE_ENV = "LOCAL_DEV_SIGNING_KEY_FILE"
MIN_KEY_BYTES = 32  # HS256 wants a key as long as its hash (RFC 7518 §3.2)
ALGORITHM = "HS256"
# PyJWT checks signature, algorithm and structure; the times are checked here, against `now`.
_DECODE_OPTIONS: Any = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "enforce_minimum_key_length": True,
}


class InvalidToken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SigningKeyError(ValueError):
    """The development signing key is missing or too short to sign with."""


def check_key(key: bytes, source: str = "the signing key") -> bytes:
    """`key`, if it is long enough for HS256; SigningKeyError naming `source` otherwise."""
    if len(key) < MIN_KEY_BYTES:
        raise SigningKeyError(f"{source} holds {len(key)} bytes; an HS256 signing key needs at least {MIN_KEY_BYTES}")
    return key


def mint(
    claims: Mapping[str, Any], key: bytes, ttl_seconds: int = DEFAULT_TTL_SECONDS, now: float | None = None
) -> str:
    """Sign `claims` as an HS256 JWT, adding `iat` and `exp` unless the caller set them."""
    issued = int(time.time() if now is None else now)
    body = {"iat": issued, "exp": issued + ttl_seconds, **claims}
    return jwt.encode(body, check_key(key), algorithm=ALGORITHM, headers={"typ": "JWT"})


def verify(token: str, key: bytes, now: float | None = None) -> dict[str, Any]:
    """The claims of a valid token; InvalidToken(reason) otherwise."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise InvalidToken("malformed: a JWT has three dot-separated parts")
    try:
        # Only HS256: `none` and algorithm confusion are the classic attacks.
        claims: dict[str, Any] = jwt.decode(token, check_key(key), algorithms=[ALGORITHM], options=_DECODE_OPTIONS)
    except jwt.InvalidAlgorithmError as exc:
        raise InvalidToken(f"unsupported alg {_header_alg(token)!r}: only HS256 is accepted") from exc
    except jwt.InvalidSignatureError as exc:
        raise InvalidToken("bad signature") from exc
    except jwt.InvalidTokenError as exc:  # DecodeError and the rest: not a well-formed JWT
        raise InvalidToken(f"malformed: {exc}") from exc
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


def _header_alg(token: str) -> Any:
    try:
        return jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError:
        return None


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
        "aud": LOCAL_USER_POOL_CLIENT_ID,  # what the template's app clients resolve to locally (cfn)
        "auth_time": int(time.time()),
        "cognito:username": sub,
    }
    if person_id:
        claims["custom:person_id"] = person_id
    if org_id and not platform_only:
        claims["custom:org_id"] = org_id
    return mint(claims, key, ttl_seconds=ttl_seconds)


def signing_key(key_file: Path | None = None) -> bytes:
    """The local signing key: `LOCAL_DEV_SIGNING_KEY` (text), else a file created on first use.

    An existing key file shorter than MIN_KEY_BYTES (an empty one included) is refused with
    SigningKeyError rather than used or silently replaced: tokens signed with it would be forgeable.
    """
    override = os.environ.get(SIGNING_KEY_ENV)
    if override:
        return override.encode("utf-8")
    if key_file is None:
        env_file = os.environ.get(SIGNING_KEY_FILE_ENV)
        key_file = Path(env_file) if env_file else local_dir() / "dev-signing-key"
    if key_file.is_file():
        return _checked_file(key_file)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(MIN_KEY_BYTES)
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
    return _checked_file(key_file)


def _checked_file(key_file: Path) -> bytes:
    try:
        return check_key(key_file.read_bytes(), str(key_file))
    except SigningKeyError as exc:
        raise SigningKeyError(f"{exc}: delete it and a new random key is written on next use") from exc
