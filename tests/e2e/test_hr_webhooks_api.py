"""HR webhooks over HTTP on the local stack: signed deliveries, replays, concurrency, garbage, the promotion path.

The local stack reads each org's secrets from `.local/hr-webhook-secrets.json` (HR_WEBHOOK_SECRETS_FILE);
this module adds its tenant's secrets to that file.
"""

import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from coaching_local.paths import local_dir
from standardwebhooks.webhooks import Webhook

from .helpers import Api, Tenant, coach_profile, make_tenant, person_row

pytestmark = pytest.mark.e2e

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEXT_SECRET = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
OTHER_ORG_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
WEEKDAYS_9_TO_17 = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]


def _add_secrets(org_id: str, secrets: list[str]) -> None:
    path = local_dir() / "hr-webhook-secrets.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text() or "{}") if path.exists() else {}
    current[org_id] = secrets
    temporary = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(current))
    temporary.replace(path)


@pytest.fixture(scope="module")
def tenant(local_stack, operator) -> Tenant:
    org = make_tenant(local_stack, operator, "HR webhooks org")
    _add_secrets(org.org_id, [NEXT_SECRET, SECRET])  # mid-rotation: both verify
    return org


@pytest.fixture(scope="module")
def other_tenant(local_stack, operator) -> Tenant:
    org = make_tenant(local_stack, operator, "HR webhooks other org")
    _add_secrets(org.org_id, [OTHER_ORG_SECRET])
    return org


def deliver(
    local_stack, org_id: str, events: list[dict], *, webhook_id: str | None = None, secret: str = SECRET
) -> requests.Response:
    body = json.dumps({"events": events})
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    now = int(time.time())
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(now, tz=UTC), body)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(now),
        "webhook-signature": signature,
    }
    return requests.post(f"{local_stack.url}/webhooks/hr/{org_id}", data=body.encode(), headers=headers, timeout=60)


def promotion(hr_id: str, level: str = "first_time_manager", at: str = "2026-04-01T09:00:00Z") -> dict:
    return {
        "type": "employee.promoted",
        "external_hr_id": hr_id,
        "effective_at": at,
        "sequence": 1,
        "level": level,
        "function": "engineering",
        "title": "Engineering lead",
    }


def test_a_signed_promotion_moves_a_coached_ic_to_first_time_manager_and_keeps_an_eligible_coach(
    local_stack, operator, tenant
):
    lang = "mk"
    manager_roles = [{"level": "manager", "function": "engineering", "industry": "technology", "years": 6}]
    profile = coach_profile(
        languages=[lang], time_zone="Europe/London", weekly_availability=WEEKDAYS_9_TO_17, roles_held=manager_roles
    )
    coach = operator.call("POST", "/coaches", profile).json()
    assert operator.call("PUT", f"/coaches/{coach['coach_id']}/vetting", {"status": "approved"}).status_code == 200
    assert local_stack.fire("RosterRefresh")["status"] == "succeeded"
    hr_id = f"HR-{uuid.uuid4().hex[:8]}"
    row = person_row(hr_id, level="individual_contributor", languages=[lang], time_zone="Europe/London")
    created = tenant.admin.call("POST", "/people", row)
    assert created.status_code == 201, created.text
    person_id = created.json()["person_id"]
    employee = Api(local_stack.url, local_stack.token(["employee"], org_id=tenant.org_id, person_id=person_id))
    match = employee.call(
        "POST",
        "/matches",
        {"program": "SCALE", "focus_competencies": ["delegation"], "situation": "I lead a new team from next month."},
    )
    assert match.status_code == 201, match.text
    chosen = employee.call("POST", f"/matches/{match.json()['match_id']}/choose", {"coach_id": coach["coach_id"]})
    assert chosen.status_code == 201, chosen.text

    last_seq = max((d["seq"] for d in local_stack.deliveries()), default=0)
    answer = deliver(local_stack, tenant.org_id, [promotion(hr_id)], webhook_id=f"msg_promo_{hr_id}")
    assert answer.status_code == 200, answer.text
    (outcome,) = answer.json()["outcomes"]
    assert (outcome["outcome"], outcome["person_id"], outcome["duplicate"]) == ("applied", person_id, False)

    promoted = tenant.admin.call("GET", f"/people/{person_id}").json()
    assert promoted["level"] == "first_time_manager"
    assert promoted["title"] == "Engineering lead"
    assert [c["level"] for c in promoted["level_history"]] == ["first_time_manager"]

    # PersonPromoted went through the outbox and the bus to matching.
    delivered = local_stack.wait_for_delivery(
        lambda d: d.get("detail_type") == "PersonPromoted" and d["seq"] > last_seq, timeout=30
    )
    assert delivered["status"] == "succeeded", delivered
    # The coach holds a manager role: still eligible for a first-time manager, so no re-match.
    assert not [m for m in employee.call("GET", "/matches").json()["items"] if m["trigger"] == "promotion"]
    assert [e["status"] for e in employee.call("GET", "/engagements").json()["items"]] == ["active"]

    # A replay changes nothing and answers the first outcome.
    replay = deliver(local_stack, tenant.org_id, [promotion(hr_id)], webhook_id=f"msg_promo_{hr_id}")
    assert replay.status_code == 200, replay.text
    assert replay.json()["outcomes"][0] | {"duplicate": False} == outcome
    assert replay.json()["outcomes"][0]["duplicate"] is True
    assert tenant.admin.call("GET", f"/people/{person_id}").json() == promoted


def test_ten_concurrent_deliveries_of_one_webhook_id_make_one_change(local_stack, tenant):
    hr_id = f"HR-{uuid.uuid4().hex[:8]}"
    hire = {
        "type": "employee.hired",
        "external_hr_id": hr_id,
        "effective_at": "2026-01-05T09:00:00Z",
        "level": "individual_contributor",
        "function": "engineering",
        "employee": {"name": "Ada L", "email": f"{hr_id.lower()}@example.com", "languages": ["en"], "time_zone": "UTC"},
    }
    assert deliver(local_stack, tenant.org_id, [hire]).json()["outcomes"][0]["outcome"] == "applied"
    webhook_id = f"msg_{uuid.uuid4().hex}"
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(
            pool.map(
                lambda _: deliver(local_stack, tenant.org_id, [promotion(hr_id)], webhook_id=webhook_id), range(10)
            )
        )
    assert all(a.status_code in {200, 409} for a in answers), [a.text for a in answers]
    firsts = [a for a in answers if a.status_code == 200 and not a.json()["outcomes"][0]["duplicate"]]
    assert len(firsts) == 1
    person_id = firsts[0].json()["outcomes"][0]["person_id"]
    person = tenant.admin.call("GET", f"/people/{person_id}").json()
    assert person["level"] == "first_time_manager"
    assert len(person["level_history"]) == 2  # the hire and the one promotion
    # A 409 (receipt still being written) is retried by the sender: the retry changes nothing.
    retry = deliver(local_stack, tenant.org_id, [promotion(hr_id)], webhook_id=webhook_id)
    assert retry.status_code == 200
    assert retry.json()["outcomes"][0]["duplicate"] is True
    assert tenant.admin.call("GET", f"/people/{person_id}").json() == person


def test_signatures_orgs_and_payloads_get_401_and_400(local_stack, tenant, other_tenant):
    event = promotion(f"HR-{uuid.uuid4().hex[:8]}")
    assert deliver(local_stack, tenant.org_id, [event], secret=OTHER_ORG_SECRET).status_code == 401
    assert deliver(local_stack, other_tenant.org_id, [event], secret=SECRET).status_code == 401
    assert deliver(local_stack, str(uuid.uuid4()), [event]).status_code == 401
    assert deliver(local_stack, tenant.org_id, [event], secret=NEXT_SECRET).status_code == 200  # rotation
    unknown = deliver(local_stack, tenant.org_id, [{"type": "employee.vanished", "external_hr_id": "X"}])
    assert unknown.status_code == 400, unknown.text
    assert unknown.json()["error"]["fields"][0]["field"] == "events[0].type"
    stale = requests.post(
        f"{local_stack.url}/webhooks/hr/{tenant.org_id}",
        data=b'{"events": []}',
        headers={"webhook-id": "msg_stale", "webhook-timestamp": "1614265330", "webhook-signature": "v1,AAAA"},
        timeout=30,
    )
    assert stale.status_code == 401
    assert stale.json()["error"]["fields"][0]["field"] == "webhook-timestamp"


def test_random_headers_and_bodies_never_get_a_5xx(local_stack, tenant):
    rng = random.Random(12)
    url = f"{local_stack.url}/webhooks/hr/{tenant.org_id}"
    pieces = [
        "",
        "v1,AAAA v1,BBBB",
        "v1,",
        "v1,AAAA",
        ",",
        "v1a,x",
        "\u00e9",
        "1" * 40,
        "-1",
        "nan",
        "1e99",
        "msg.a",
        str(int(time.time())),
        SECRET,
    ]
    bodies = [b"", b"{", b"[]", b"null", b'{"events": null}', b"\xff\xfe\x00", b'{"events": [' + b"[" * 5000, b"0" * 10]
    for _ in range(60):
        headers = {
            name: rng.choice(pieces)
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature", "Content-Type")
            if rng.random() < 0.8
        }
        body = rng.choice(bodies) if rng.random() < 0.6 else bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        answer = requests.post(url, data=body, headers={k: v.encode("utf-8") for k, v in headers.items()}, timeout=30)
        assert answer.status_code < 500, (headers, body, answer.text)
        assert answer.status_code in {400, 401, 409, 415, 422}, (headers, body, answer.text)
    # Signed garbage gets past the signature and must still be a 400.
    for body in bodies:
        text = body.decode("utf-8", errors="replace")
        now = int(time.time())
        webhook_id = f"msg_{uuid.uuid4().hex}"
        signature = Webhook(SECRET).sign(webhook_id, datetime.fromtimestamp(now, tz=UTC), text)
        answer = requests.post(
            url,
            data=text.encode(),
            headers={"webhook-id": webhook_id, "webhook-timestamp": str(now), "webhook-signature": signature},
            timeout=30,
        )
        assert answer.status_code == 400, (body, answer.text)


def test_an_org_admin_rotates_the_secret_and_both_verify_during_the_grace_period(local_stack, operator):
    org = make_tenant(local_stack, operator, "HR rotation org")
    _add_secrets(org.org_id, [SECRET])
    event = promotion(f"HR-{uuid.uuid4().hex[:8]}")
    rotated = org.admin.call("POST", f"/orgs/{org.org_id}/hr-webhook-secret/rotate", {"grace_hours": 1})
    assert rotated.status_code == 201, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_")
    assert rotated.json()["previous_valid_until"]
    assert deliver(local_stack, org.org_id, [event], secret=new_secret).status_code == 200
    assert deliver(local_stack, org.org_id, [event], secret=SECRET).status_code == 200  # the grace period
    # A rotation without grace: only the newest secret verifies.
    latest = org.admin.call("POST", f"/orgs/{org.org_id}/hr-webhook-secret/rotate", {"grace_hours": 0}).json()
    assert deliver(local_stack, org.org_id, [event], secret=new_secret).status_code == 401
    assert deliver(local_stack, org.org_id, [event], secret=SECRET).status_code == 401
    assert deliver(local_stack, org.org_id, [event], secret=latest["secret"]).status_code == 200
    # Only that org's admin rotates it.
    assert org.admin.call("POST", f"/orgs/{uuid.uuid4()}/hr-webhook-secret/rotate", {}).status_code == 403
    employee = Api(local_stack.url, local_stack.token(["employee"], org_id=org.org_id, person_id=str(uuid.uuid4())))
    assert employee.call("POST", f"/orgs/{org.org_id}/hr-webhook-secret/rotate", {}).status_code == 403


def test_a_termination_deactivates_the_person_and_ends_their_engagement(local_stack, operator, tenant):
    lang = "mn"
    profile = coach_profile(languages=[lang], time_zone="Europe/London", weekly_availability=WEEKDAYS_9_TO_17)
    coach = operator.call("POST", "/coaches", profile).json()
    assert operator.call("PUT", f"/coaches/{coach['coach_id']}/vetting", {"status": "approved"}).status_code == 200
    assert local_stack.fire("RosterRefresh")["status"] == "succeeded"
    hr_id = f"HR-{uuid.uuid4().hex[:8]}"
    row = person_row(hr_id, languages=[lang], time_zone="Europe/London")
    person_id = tenant.admin.call("POST", "/people", row).json()["person_id"]
    employee = Api(local_stack.url, local_stack.token(["employee"], org_id=tenant.org_id, person_id=person_id))
    match = employee.call(
        "POST",
        "/matches",
        {"program": "SCALE", "focus_competencies": ["delegation"], "situation": "Leaving the company soon, probably."},
    ).json()
    engagement = employee.call("POST", f"/matches/{match['match_id']}/choose", {"coach_id": coach["coach_id"]})
    assert engagement.status_code == 201, engagement.text

    termination = {
        "type": "employee.terminated",
        "external_hr_id": hr_id,
        "effective_at": "2026-05-31T17:00:00+02:00",
        "regrettable": True,
    }
    answer = deliver(local_stack, tenant.org_id, [termination])
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcomes"][0]["outcome"] == "applied"
    person = tenant.admin.call("GET", f"/people/{person_id}").json()
    assert (person["active"], person["terminated_on"], person["regrettable"]) == (False, "2026-05-31", True)

    deadline = time.monotonic() + 30
    statuses: list[str] = []
    while time.monotonic() < deadline:
        statuses = [e["status"] for e in employee.call("GET", "/engagements").json()["items"]]
        if statuses == ["ended"]:
            break
        time.sleep(0.2)
    assert statuses == ["ended"], local_stack.deliveries()[-5:]
    # A promotion dated after the termination cannot bring them back; only a rehire can.
    late = deliver(local_stack, tenant.org_id, [promotion(hr_id, level="manager", at="2026-06-15T09:00:00Z")])
    assert late.status_code == 200
    assert tenant.admin.call("GET", f"/people/{person_id}").json()["active"] is False
