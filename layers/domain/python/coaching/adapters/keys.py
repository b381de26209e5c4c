"""Every key the platform writes, in one place (see docs/data-model.md).

Tenant-owned keys start with ``ORG#<org uuid>#`` so that a tenant's items can be found,
exported or erased by prefix and can never collide with another tenant's.
"""

from __future__ import annotations

ORG_PROFILE_SK = "PROFILE"
ORGS_INDEX_PK = "PLATFORM#ORGS"
COACHES_PK = "NETWORK#COACHES"
ROSTER_PK = "NETWORK#ROSTER"
ROSTER_POINTER_SK = "CURRENT"


def org_pk(org_id: str) -> str:
    return f"ORG#{org_id}#"


def org_index_sk(org_id: str) -> str:
    return f"ORG#{org_id}"


def people_pk(org_id: str) -> str:
    return f"ORG#{org_id}#PEOPLE"


def person_sk(person_id: str) -> str:
    return f"PERSON#{person_id}"


def person_pk(org_id: str, person_id: str) -> str:
    return f"ORG#{org_id}#PERSON#{person_id}"


def coach_sk(coach_id: str) -> str:
    return f"COACH#{coach_id}"


def coaches_by_status_pk(status: str) -> str:
    return f"NETWORK#COACHES#{status}"


def roster_part_sk(version: int, build_id: str, part: int) -> str:
    # The build id keeps two concurrent rebuilds from overwriting each other's parts.
    return f"V#{version:012d}#{build_id}#PART#{part:04d}"


# ------------------------------------------------------------------ outbox
# One partition per event: the stream relay reads inserts, nothing ever queries them.
OUTBOX_SK = "EVENT"


def outbox_pk(event_id: str) -> str:
    return f"OUTBOX#{event_id}"


def idempotency_pk(function_name: str) -> str:
    """Where Powertools Idempotency remembers the event ids a function consumed."""
    return f"IDEMPOTENCY#{function_name}"
