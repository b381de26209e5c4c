"""Who is calling: the principal parsed from API Gateway authorizer claims.

Deployed, the Cognito user pool authorizer verifies the token and API Gateway passes its
claims as strings in ``requestContext.authorizer.claims``. Locally, the gateway verifies a
development token and passes claims in the same shape, so this one parser serves both.

The authorizer checks the signature, the expiry and that a platform pool issued the token, not
which app client it was issued to nor whether it is an ID token. So, when ``USER_POOL_CLIENT_IDS``
is set (the template sets it for every function, the local stack to its development client), a
token must be an ID token (``token_use``) issued to one of those clients (``aud``). The staff
roles, which can change money and other people's records, count only in tokens of the staff
pool's clients (``STAFF_USER_POOL_CLIENT_IDS``), where every sign-in needs MFA.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from coaching.domain.errors import Forbidden, Unauthorized


class Role(StrEnum):
    EMPLOYEE = "employee"
    COACH = "coach"
    ORG_ADMIN = "org_admin"
    LEADER = "leader"
    FINANCE = "finance"
    OPERATOR = "operator"  # platform staff who manage the coach network


# Roles honoured only from the staff user pool, where MFA is required (docs/operations.md).
STAFF_ROLES = frozenset({Role.ORG_ADMIN, Role.FINANCE, Role.OPERATOR})
# Comma-separated app client ids, set from template.yaml (Globals).
CLIENT_IDS_ENV = "USER_POOL_CLIENT_IDS"
STAFF_CLIENT_IDS_ENV = "STAFF_USER_POOL_CLIENT_IDS"


@dataclass(frozen=True, slots=True)
class Principal:
    person_id: str
    org_id: str | None
    roles: frozenset[Role]

    def has(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)

    def require(self, *roles: Role) -> Principal:
        if not self.has(*roles):
            allowed = ", ".join(sorted(r.value for r in roles))
            raise Forbidden(f"this action needs one of the roles: {allowed}")
        return self

    def require_org(self, *roles: Role) -> str:
        """Require a role and a tenant; return the caller's org id."""
        self.require(*roles)
        if not self.org_id:
            raise Forbidden("this action needs a caller who belongs to an organisation")
        return self.org_id

    def require_same_org(self, org_id: str, *roles: Role) -> None:
        """Object-level check: the caller's tenant must own the object."""
        if self.require_org(*roles) != org_id:
            raise Forbidden("this object belongs to another organisation")


def _parse_groups(raw: object) -> list[str]:
    # REST API authorizers flatten arrays into strings; the exact flattening has varied
    # ("a,b", "[a b]", '["a","b"]'), so accept all of them.
    if raw is None:
        return []
    if isinstance(raw, list | tuple | set):
        return [str(item).strip() for item in raw if str(item).strip()]
    text = str(raw).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
        except ValueError:
            text = text[1:-1]
        else:
            if isinstance(parsed, list):
                return _parse_groups(parsed)
    return [part for part in text.replace(",", " ").split() if part]


def _known_roles(names: Iterable[str]) -> frozenset[Role]:
    valid = {role.value for role in Role}
    return frozenset(Role(name) for name in names if name in valid)


def _client_ids(variable: str) -> frozenset[str] | None:
    """The client ids listed in `variable`, or None when it is not set at all."""
    raw = os.environ.get(variable)
    if raw is None:
        return None
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _check_client(claims: Mapping[str, object]) -> None:
    """An ID token issued to one of the platform's app clients, or Unauthorized."""
    clients = _client_ids(CLIENT_IDS_ENV)
    if clients is None:
        # Unit tests and tools parse claims without a deployment. A Lambda function always has
        # the variable from the template: one without it is misconfigured and accepts nobody.
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            raise Unauthorized(f"the platform's app clients are not configured ({CLIENT_IDS_ENV})")
        return
    if str(claims.get("token_use") or "") != "id":
        raise Unauthorized("send the ID token: access tokens and other tokens are not accepted")
    if str(claims.get("aud") or "") not in clients:
        raise Unauthorized("the token was issued to another application")


def _honoured(roles: frozenset[Role], claims: Mapping[str, object]) -> frozenset[Role]:
    """The roles this token may exercise: staff roles only from the staff pool's clients."""
    staff_clients = _client_ids(STAFF_CLIENT_IDS_ENV)
    if staff_clients is None or str(claims.get("aud") or "") in staff_clients:
        return roles
    return roles - STAFF_ROLES


def principal_from_claims(claims: Mapping[str, object] | None) -> Principal:
    if not claims:
        raise Unauthorized("missing or invalid credentials")
    _check_client(claims)
    person_id = str(claims.get("custom:person_id") or claims.get("sub") or "").strip()
    if not person_id:
        raise Unauthorized("the token names no person")
    org_id = str(claims.get("custom:org_id") or "").strip() or None
    roles = _honoured(_known_roles(_parse_groups(claims.get("cognito:groups"))), claims)
    if not roles:
        raise Forbidden("the token carries no platform role")
    return Principal(person_id=person_id, org_id=org_id, roles=roles)


def principal_from_event(event: Mapping[str, object]) -> Principal:
    request_context = event.get("requestContext") or {}
    authorizer = request_context.get("authorizer") if isinstance(request_context, Mapping) else None
    claims = authorizer.get("claims") if isinstance(authorizer, Mapping) else None
    return principal_from_claims(claims if isinstance(claims, Mapping) else None)
