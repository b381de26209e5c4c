"""Receiving HR webhooks (coaching.services.hr.receive) on the in-memory store."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from coaching.adapters.hr_store import ConfiguredSecrets, configured_secrets, parse_secret_value
from coaching.domain.errors import Conflict, DomainError, Unauthorized
from coaching.domain.events import PersonPromoted, PersonTerminated, PersonTransitioned
from coaching.domain.taxonomy import Level, Program, Transition
from coaching.ids import person_id_for
from coaching.services.hr import HrContext, receive
from standardwebhooks.webhooks import Webhook

from tests.unit.fakes.hr import FakeHrStore

ORG = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER_ORG = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
EMPLOYEE = {"name": "Grace Hopper", "email": "grace@example.com", "languages": ["en"], "time_zone": "America/New_York"}


def _ctx(store: FakeHrStore | None = None) -> HrContext:
    secrets = ConfiguredSecrets({ORG: [SECRET], OTHER_ORG: [OTHER_SECRET]})
    return HrContext(secrets=secrets, store=store or FakeHrStore(), clock=lambda: datetime.now(UTC))


def _delivery(
    events: list[dict[str, Any]], webhook_id: str = "msg_1", secret: str = SECRET
) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"events": events})
    now = int(time.time())
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(now, tz=UTC), body)
    headers = {"webhook-id": webhook_id, "webhook-timestamp": str(now), "webhook-signature": signature}
    return headers, body.encode()


def _hire(hr_id: str = "E-1", at: str = "2026-01-05T09:00:00Z") -> dict[str, Any]:
    return {
        "type": "employee.hired",
        "external_hr_id": hr_id,
        "effective_at": at,
        "level": "individual_contributor",
        "function": "engineering",
        "employee": EMPLOYEE,
    }


def _promotion(hr_id: str = "E-1", at: str = "2026-04-01T09:00:00Z") -> dict[str, Any]:
    return {
        "type": "employee.promoted",
        "external_hr_id": hr_id,
        "effective_at": at,
        "level": "first_time_manager",
        "function": "engineering",
        "title": "Engineering lead",
    }


def test_a_batch_applies_each_event_and_reports_each_outcome() -> None:
    store = FakeHrStore()
    termination = {
        "type": "employee.terminated",
        "external_hr_id": "E-2",
        "effective_at": "2026-05-01T00:00:00Z",
        "regrettable": False,
    }
    unknown_update = {"type": "employee.updated", "external_hr_id": "E-9", "effective_at": "2026-05-01T00:00:00Z"}
    events = [_hire(), _promotion(), _hire("E-2"), termination, unknown_update]
    result = receive(ORG, *_delivery(events), _ctx(store))
    assert [o.outcome for o in result.outcomes] == ["applied", "applied", "applied", "applied", "pending"]
    assert [o.index for o in result.outcomes] == [0, 1, 2, 3, 4]
    assert store.batch_reads == 1  # every person of the batch in one read; later events start from the last write
    person, _ = store.people[(ORG, person_id_for(ORG, "E-1"))]
    assert person.level == Level.FIRST_TIME_MANAGER
    assert [change.level for change in person.level_history] == ["individual_contributor", "first_time_manager"]
    leaver, _ = store.people[(ORG, person_id_for(ORG, "E-2"))]
    assert (leaver.active, str(leaver.terminated_on), leaver.regrettable) == (False, "2026-05-01", False)
    assert [type(e) for e in store.outbox] == [PersonPromoted, PersonTransitioned, PersonTerminated]
    (waiting,) = store.waitlist(ORG, Transition.NEW_MANAGER)  # IC → first-time manager: the GROW wait-list
    assert (waiting.person_id, waiting.program) == (person.person_id, Program.GROW)
    assert json.loads(store.payloads[(ORG, "msg_1")]) == {"events": events}  # the raw payload, kept


def test_a_replay_changes_nothing_and_answers_the_first_outcomes() -> None:
    store = FakeHrStore()
    headers, body = _delivery([_hire(), _promotion()])
    first = receive(ORG, headers, body, _ctx(store))
    writes, outbox = store.person_writes, list(store.outbox)
    again = receive(ORG, headers, body, _ctx(store))
    assert store.person_writes == writes
    assert store.outbox == outbox
    assert [o.outcome for o in again.outcomes] == [o.outcome for o in first.outcomes]
    assert all(o.duplicate for o in again.outcomes)


def test_ten_concurrent_deliveries_of_one_webhook_id_make_one_change() -> None:
    store = FakeHrStore()
    receive(ORG, *_delivery([_hire()], webhook_id="msg_hire"), _ctx(store))
    headers, body = _delivery([_promotion()], webhook_id="msg_promo")
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: receive(ORG, headers, body, _ctx(store)), range(10)))
    assert sum(1 for r in results if not r.outcomes[0].duplicate) == 1
    assert [type(e) for e in store.outbox] == [PersonPromoted, PersonTransitioned]
    assert len(store.waitlist(ORG, Transition.NEW_MANAGER)) == 1
    assert store.person_writes == 2  # the hire, then the promotion once


def test_the_same_webhook_id_with_another_body_is_a_conflict() -> None:
    store = FakeHrStore()
    receive(ORG, *_delivery([_hire()], webhook_id="msg_same"), _ctx(store))
    with pytest.raises(Conflict):
        receive(ORG, *_delivery([_hire("E-7")], webhook_id="msg_same"), _ctx(store))


def test_another_orgs_secret_or_an_unknown_org_is_unauthorized_and_writes_nothing() -> None:
    store = FakeHrStore()
    with pytest.raises(Unauthorized):
        receive(ORG, *_delivery([_hire()], secret=OTHER_SECRET), _ctx(store))
    with pytest.raises(Unauthorized):
        receive("2c5ea4c0-4067-11e9-8bad-9b1deb4d3b7d", *_delivery([_hire()]), _ctx(store))
    assert store.receipts == {}


def test_a_signed_but_malformed_payload_is_400_and_stores_nothing() -> None:
    store = FakeHrStore()
    with pytest.raises(DomainError) as refused:
        receive(ORG, *_delivery([{"type": "employee.vanished", "external_hr_id": "E-1"}]), _ctx(store))
    assert (refused.value.status, refused.value.field) == (400, "events[0].type")
    assert store.receipts == {}


def test_events_out_of_order_across_deliveries_keep_the_newest_state() -> None:
    store = FakeHrStore()
    late_old = {**_promotion(at="2026-02-01T00:00:00Z"), "level": "manager"}
    receive(ORG, *_delivery([_hire(), _promotion(at="2026-06-01T00:00:00Z")], webhook_id="a"), _ctx(store))
    result = receive(ORG, *_delivery([late_old], webhook_id="b"), _ctx(store))
    person, _ = store.people[(ORG, person_id_for(ORG, "E-1"))]
    assert person.level == Level.FIRST_TIME_MANAGER
    assert result.outcomes[0].outcome == "applied"  # kept in the history, the current level unchanged
    assert [c.level for c in person.level_history] == ["individual_contributor", "manager", "first_time_manager"]


def test_secrets_config_and_secret_values_parse() -> None:
    assert configured_secrets({}) is None
    assert configured_secrets({"HR_WEBHOOK_SECRETS": json.dumps({ORG: [SECRET]})}) == {ORG: [SECRET]}
    with pytest.raises(ValueError, match="org id"):
        configured_secrets({"HR_WEBHOOK_SECRETS": json.dumps([SECRET])})
    assert parse_secret_value(json.dumps({"secrets": [SECRET, OTHER_SECRET]})) == [SECRET, OTHER_SECRET]
    assert parse_secret_value(f" {SECRET}\n") == [SECRET]
    assert parse_secret_value("{}") == []


def test_the_local_secrets_file_is_read_again_when_it_changes(tmp_path: Any) -> None:
    from coaching.adapters.hr_store import FileSecrets, secrets_from_environment

    path = tmp_path / "secrets.json"
    secrets = secrets_from_environment({"HR_WEBHOOK_SECRETS_FILE": str(path)})
    assert isinstance(secrets, FileSecrets)
    assert secrets.secrets_for(ORG) == []
    path.write_text(json.dumps({ORG: [SECRET]}))
    assert secrets.secrets_for(ORG) == [SECRET]
    path.write_text(json.dumps({ORG: [OTHER_SECRET, SECRET]}))

    os.utime(path, (time.time() + 5, time.time() + 5))
    assert secrets.secrets_for(ORG) == [OTHER_SECRET, SECRET]


def test_deployed_secrets_come_from_secrets_manager_per_org_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
    from coaching.adapters.hr_store import SecretsManagerSecrets, secrets_from_environment

    asked: list[tuple[str, int | None]] = []

    def fake_get_secret(name: str, max_age: int | None = None) -> str:
        asked.append((name, max_age))
        if name.endswith(ORG):
            return json.dumps({"secrets": [SECRET, OTHER_SECRET]})
        raise GetParameterError("ResourceNotFoundException")

    monkeypatch.setattr(parameters, "get_secret", fake_get_secret)
    secrets = secrets_from_environment({"HR_WEBHOOK_SECRET_PREFIX": "coaching/dev/hr-webhook/"})
    assert isinstance(secrets, SecretsManagerSecrets)
    assert secrets.secrets_for(ORG) == [SECRET, OTHER_SECRET]
    assert secrets.secrets_for(OTHER_ORG) == []
    assert asked == [(f"coaching/dev/hr-webhook/{ORG}", 300), (f"coaching/dev/hr-webhook/{OTHER_ORG}", 300)]
