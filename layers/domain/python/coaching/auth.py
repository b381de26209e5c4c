"""Who is calling: the principal parsed from API Gateway authorizer claims.

Deployed, the Cognito user pool authorizer verifies the token and API Gateway passes its
claims as strings in ``requestContext.authorizer.claims``. Locally, the gateway verifies a
development token and passes claims in the same shape, so this one parser serves both.
"""

from __future__ import annotations

import json
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


def principal_from_claims(claims: Mapping[str, object] | None) -> Principal:
    if not claims:
        raise Unauthorized("missing or invalid credentials")
    person_id = str(claims.get("custom:person_id") or claims.get("sub") or "").strip()
    if not person_id:
        raise Unauthorized("the token names no person")
    org_id = str(claims.get("custom:org_id") or "").strip() or None
    roles = _known_roles(_parse_groups(claims.get("cognito:groups")))
    if not roles:
        raise Forbidden("the token carries no platform role")
    return Principal(person_id=person_id, org_id=org_id, roles=roles)


def principal_from_event(event: Mapping[str, object]) -> Principal:
    request_context = event.get("requestContext") or {}
    authorizer = request_context.get("authorizer") if isinstance(request_context, Mapping) else None
    claims = authorizer.get("claims") if isinstance(authorizer, Mapping) else None
    return principal_from_claims(claims if isinstance(claims, Mapping) else None)
