"""HR webhook secrets: rotation with a grace period (domain), the admin API's use case, the local file vault."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from coaching.adapters.hr_store import FileSecrets
from coaching.auth import Principal, Role
from coaching.domain.errors import Conflict, Forbidden, InvalidInput
from coaching.domain.hr import OrgSecrets, RotateSecret, new_webhook_secret
from coaching.services import admin

from tests.unit.fakes.admin import AdminWorld, org_admin, org_input

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_new_secret_is_32_random_bytes_behind_the_prefix() -> None:
    first, second = new_webhook_secret(), new_webhook_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32


def test_rotation_puts_the_new_secret_first_and_keeps_the_old_one_for_the_grace_period() -> None:
    rotated = OrgSecrets.parse([OLD]).rotated("whsec_new", NOW, timedelta(hours=24))
    assert rotated.usable(NOW) == ["whsec_new", OLD]
    assert rotated.usable(NOW + timedelta(hours=23, minutes=59)) == ["whsec_new", OLD]
    assert rotated.usable(NOW + timedelta(hours=24)) == ["whsec_new"]
    assert OrgSecrets.parse([OLD]).rotated("whsec_new", NOW, timedelta(0)).usable(NOW) == ["whsec_new"]


def test_a_second_rotation_never_extends_an_older_secrets_expiry() -> None:
    once = OrgSecrets.parse([OLD]).rotated("whsec_b", NOW, timedelta(hours=1))
    twice = once.rotated("whsec_c", NOW + timedelta(minutes=30), timedelta(hours=24))
    assert twice.usable(NOW + timedelta(minutes=45)) == ["whsec_c", "whsec_b", OLD]
    assert twice.usable(NOW + timedelta(hours=2)) == ["whsec_c", "whsec_b"]
    with pytest.raises(InvalidInput):
        once.rotated("whsec_d", NOW, timedelta(days=8))


def test_stored_values_parse_in_every_shape() -> None:
    assert OrgSecrets.parse(OLD).usable(NOW) == [OLD]
    assert OrgSecrets.parse(json.dumps({"secrets": [OLD]})).usable(NOW) == [OLD]
    stored = OrgSecrets.parse([OLD]).rotated("whsec_new", NOW, timedelta(hours=1)).model_dump_json()
    assert OrgSecrets.parse(stored).usable(NOW) == ["whsec_new", OLD]
    assert OrgSecrets.parse("").usable(NOW) == []


class _Vault:
    def __init__(self) -> None:
        self.stored: dict[str, OrgSecrets] = {}

    def read(self, org_id: str) -> OrgSecrets:
        return self.stored.get(org_id, OrgSecrets())

    def write(self, org_id: str, secrets: OrgSecrets) -> None:
        self.stored[org_id] = secrets


def test_an_org_admin_rotates_their_orgs_secret_and_sees_it_once() -> None:
    world = AdminWorld()
    ctx = world.ctx
    vault = _Vault()
    ctx.hr_secrets = vault
    operator = Principal(person_id="op", org_id=None, roles=frozenset({Role.OPERATOR}))
    org = admin.create_org(operator, org_input(), ctx)
    first = admin.rotate_hr_webhook_secret(org_admin(org.org_id), org.org_id, RotateSecret(), ctx)
    assert first.previous_valid_until is None
    second = admin.rotate_hr_webhook_secret(org_admin(org.org_id), org.org_id, RotateSecret(grace_hours=2), ctx)
    assert second.secret != first.secret
    stored = vault.stored[org.org_id]
    assert [s.secret for s in stored.secrets] == [second.secret, first.secret]
    assert stored.secrets[0].created_at is not None
    assert second.previous_valid_until == stored.secrets[0].created_at + timedelta(hours=2)
    other_admin = Principal(person_id="b", org_id="another-org", roles=frozenset({Role.ORG_ADMIN}))
    with pytest.raises(Forbidden):
        admin.rotate_hr_webhook_secret(other_admin, org.org_id, RotateSecret(), ctx)
    employee = Principal(person_id="c", org_id=org.org_id, roles=frozenset({Role.EMPLOYEE}))
    with pytest.raises(Forbidden):
        admin.rotate_hr_webhook_secret(employee, org.org_id, RotateSecret(), ctx)
    ctx.hr_secrets = None
    with pytest.raises(Conflict):
        admin.rotate_hr_webhook_secret(org_admin(org.org_id), org.org_id, RotateSecret(), ctx)


def test_the_file_vault_writes_what_the_webhook_side_reads(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"other-org": [OLD]}))
    vault = FileSecrets(str(path))
    rotated = vault.read("org-1").rotated("whsec_new", datetime.now(UTC), timedelta(hours=1))
    vault.write("org-1", rotated)
    reader = FileSecrets(str(path))
    assert reader.secrets_for("org-1") == ["whsec_new"]
    assert reader.secrets_for("other-org") == [OLD]
