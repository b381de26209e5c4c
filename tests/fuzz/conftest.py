"""The fuzz tier's world: a small seeded tenant on the session's local stack, and one schema per role.

Every role's development token belongs to that tenant (the coach's to its coach), and the ids of its
objects are a dictionary the generated path parameters and bodies draw from half the time, so the
fuzzer reaches the authorised code paths as well as the 403s and 404s.

Budget (environment):
- FUZZ_MAX_EXAMPLES: examples per operation and role in the fuzzing phase (default 4, for `make test`).
- FUZZ_ROUNDS and FUZZ_MINUTES: `make fuzz` repeats the fuzzing phase in rounds, each with its own seed,
  and starts no round once FUZZ_MINUTES have passed (the session then ends, failing if anything failed).
- FUZZ_SEED: the seed of round 0 (default 20261130); round n uses FUZZ_SEED + n.

No example database is kept, and a single round (`make test`) is derandomized: a run is the same every time.
Progress lines (`[fuzz mm:ss] ...`) go past pytest's capture every 20 seconds.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from e2e.helpers import Api, coach_profile, make_tenant, person_row

ROLES = ("employee", "coach", "org_admin", "leader", "finance", "operator")
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "4"))
ROUNDS = int(os.environ.get("FUZZ_ROUNDS", "1"))
MINUTES = float(os.environ.get("FUZZ_MINUTES", "0"))
SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
# A language no other test uses, so the fuzz coach never shows up in another test's proposals.
LANGUAGE = "qfz"
ALL_WEEK = [{"weekday": day, "start": "07:00", "end": "21:00"} for day in range(7)]


@dataclass
class FuzzWorld:
    """The seeded tenant: its ids by parameter name, and a token per role."""

    url: str
    org_id: str
    ids: dict[str, list[str]]
    tokens: dict[str, str]
    started: float = field(default_factory=time.monotonic)


def _created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _seed(local_stack: Any) -> FuzzWorld:
    operator = Api(local_stack.url, local_stack.token(["operator"], person_id="operator-fuzz"))
    tenant = make_tenant(local_stack, operator, "Fuzz org")
    admin_row = person_row(f"FZ-{uuid.uuid4().hex[:8]}", languages=[LANGUAGE])
    admin_id = _created(tenant.admin.call("POST", "/people", admin_row))["person_id"]
    admin = Api(local_stack.url, local_stack.token(["org_admin"], org_id=tenant.org_id, person_id=admin_id))
    people = {
        role: _created(admin.call("POST", "/people", person_row(f"FZ-{uuid.uuid4().hex[:8]}", languages=[LANGUAGE])))
        for role in ("employee", "leader", "finance")
    }
    coach = _created(
        operator.call(
            "POST",
            "/coaches",
            coach_profile(languages=[LANGUAGE], time_zone="Europe/Berlin", weekly_availability=ALL_WEEK, capacity=20),
        )
    )
    approved = operator.call("PUT", f"/coaches/{coach['coach_id']}/vetting", {"status": "approved"})
    assert approved.status_code == 200, approved.text
    fired = local_stack.fire("RosterRefresh")
    assert fired["status"] == "succeeded", fired
    employee_id = people["employee"]["person_id"]
    employee = Api(local_stack.url, local_stack.token(["employee"], org_id=tenant.org_id, person_id=employee_id))
    match = _created(
        employee.call(
            "POST",
            "/matches",
            {"program": "SCALE", "focus_competencies": ["delegation"], "situation": "Two teams merge next month."},
        )
    )
    engagement = _created(
        employee.call("POST", f"/matches/{match['match_id']}/choose", {"coach_id": coach["coach_id"]})
    )
    start = datetime.now(UTC) + timedelta(days=5)
    slots = employee.call(
        "GET",
        f"/engagements/{engagement['engagement_id']}/slots",
        params={"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()},
    )
    assert slots.status_code == 200, slots.text
    assert slots.json()["items"], "the fuzz coach has open slots all week"
    booking = _created(
        employee.call(
            "POST",
            "/bookings",
            {
                "engagement_id": engagement["engagement_id"],
                "start": slots.json()["items"][0]["start"],
                "focus_competencies": ["delegation"],
                "situation": "Preparing a feedback conversation.",
            },
        )
    )
    # Erased by the fuzzed erasure route instead of the people the other operations use.
    erasable = _created(admin.call("POST", "/people", person_row(f"FZ-{uuid.uuid4().hex[:8]}", languages=[LANGUAGE])))
    persons = {"org_admin": admin_id, **{role: body["person_id"] for role, body in people.items()}}
    tokens = {role: local_stack.token([role], org_id=tenant.org_id, person_id=persons[role]) for role in persons}
    tokens["coach"] = local_stack.token(["coach"], person_id=coach["coach_id"])
    tokens["operator"] = operator.token or ""
    ids = {
        "org_id": [tenant.org_id],
        "person_id": sorted(persons.values()),
        "coach_id": [coach["coach_id"]],
        "match_id": [match["match_id"]],
        "engagement_id": [engagement["engagement_id"]],
        "booking_id": [booking["booking_id"]],
        "erasable_person_id": [erasable["person_id"]],
    }
    return FuzzWorld(url=local_stack.url, org_id=tenant.org_id, ids=ids, tokens=tokens)


@pytest.fixture(scope="session")
def fuzz_world(local_stack: Any) -> FuzzWorld:
    return _seed(local_stack)


# The role whose run also sends the coverage phase's invalid values (see schema_config).
NEGATIVE_COVERAGE_ROLE = "org_admin"
# Path parameters and body fields that name the tenant's objects draw from its ids this often.
ID_PROBABILITY = 0.5


def schema_config(world: FuzzWorld, role: str, fuzz_round: int) -> dict[str, Any]:
    """The Schemathesis configuration (as in schemathesis.toml) of one role's run."""
    bindings = {
        f"{where}.{name}": {"dictionary": name, "probability": ID_PROBABILITY}
        for name in world.ids
        for where in ("path", "body")
        if name not in {"coach_id", "erasable_person_id"}
    }
    bindings["body.coach_id"] = {"dictionary": "coach_id", "probability": ID_PROBABILITY}
    bindings["body.participant_ids[*]"] = {"dictionary": "person_id", "probability": ID_PROBABILITY}
    deterministic = ROUNDS == 1
    return {
        "seed": SEED + fuzz_round,
        "base-url": world.url,
        "suppress-health-check": ["all"],  # they time generation, which would make a slow machine flaky
        "headers": {"Authorization": f"Bearer {world.tokens[role]}"},
        "request-timeout": 60,
        "dictionaries": {name: {"values": values} for name, values in world.ids.items()},
        "parameters": bindings,
        # The seeded coach's id only where it is read: a fuzzed PATCH or vetting decision must not change its
        # language, which no other test uses, or it could join another test's proposals.
        "operations": [
            {
                "include-name": "GET /coaches/{coach_id}",
                "parameters": {"path.coach_id": {"dictionary": "coach_id", "probability": ID_PROBABILITY}},
            },
            {
                # An erasure anonymises a person for good: only the person seeded to be erased.
                "include-name": "POST /orgs/{org_id}/people/{person_id}/erasure",
                "parameters": {"path.person_id": {"dictionary": "erasable_person_id", "probability": ID_PROBABILITY}},
            },
        ],
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": deterministic,
            "database": "none",
            # The token is the role's: generated Authorization headers would only test the gateway's 401.
            "with-security-parameters": False,
        },
        "phases": {
            # The examples and the coverage phase are the same every round: round 0 runs them.
            "examples": {"enabled": fuzz_round == 0},
            # Request validation runs before the role check, so one role's run covers the invalid values of
            # every parameter and field (boundaries, wrong types, missing and extra ones); the other roles
            # cover the valid boundaries, which reach their authorisation and the domain.
            "coverage": {
                "enabled": fuzz_round == 0,
                "generation": {"mode": "all" if role == NEGATIVE_COVERAGE_ROLE else "positive"},
            },
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "checks": {
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "negative_data_rejection": {"enabled": True},
            # Schema-valid data can break a business rule (an unknown competency, an end before a start,
            # a time zone that is not IANA's): a 422 for it is right, so acceptance is not required.
            "positive_data_acceptance": {"enabled": False},
            # API Gateway answers 403 `Missing Authentication Token` for a method a resource does not
            # declare, never 405 with Allow: the gateway's behaviour, which the local stack reproduces.
            "unsupported_method": {"enabled": False},
            "allow_header_conformance": {"enabled": False},
            # Re-sends each request without credentials: the gateway's 401, covered by the access matrix.
            "ignored_auth": {"enabled": False},
        },
    }


class Progress:
    """Counts requests and answers; prints a line every EVERY_SECONDS (shown even under pytest's capture)."""

    EVERY_SECONDS = 20.0

    def __init__(self, config: pytest.Config, started: float) -> None:
        self._reporter = config.pluginmanager.get_plugin("terminalreporter")
        self._capture = config.pluginmanager.get_plugin("capturemanager")
        self._started = started
        self._last = time.monotonic()
        self.requests = 0
        self.statuses: dict[int, int] = {}
        self.operations: set[tuple[str, str]] = set()

    def count(self, role: str, label: str, status: int) -> None:
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.operations.add((role, label))
        now = time.monotonic()
        if now - self._last >= self.EVERY_SECONDS:
            self._last = now
            self.report(f"now {role} {label}")

    def report(self, where: str) -> None:
        if self._reporter is None:
            return
        minutes, seconds = divmod(int(time.monotonic() - self._started), 60)
        by_class = {f"{c}xx": sum(n for s, n in self.statuses.items() if s // 100 == c) for c in (2, 4, 5)}
        summary = ", ".join(f"{n} {name}" for name, n in by_class.items() if n)
        line = (
            f"[fuzz {minutes:02d}:{seconds:02d}] {self.requests} requests ({summary}), "
            f"{len(self.operations)} operation-role pairs; {where}"
        )
        # Past pytest's output capture, so that `make fuzz` shows it as it goes.
        with self._capture.global_and_fixture_disabled() if self._capture else contextlib.nullcontext():
            self._reporter.write_line(line)


@pytest.fixture(scope="module")
def fuzz_progress(request: pytest.FixtureRequest, fuzz_world: FuzzWorld) -> Any:
    progress = Progress(request.config, fuzz_world.started)
    yield progress
    progress.report("done")


@pytest.fixture(scope="session")
def raw_openapi(fuzz_world: FuzzWorld) -> dict[str, Any]:
    """The stack's /openapi.json, fetched once: what clients generate from."""
    import requests

    response = requests.get(f"{fuzz_world.url}/openapi.json", timeout=60)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(scope="module", params=range(ROUNDS), ids=lambda n: f"round{n}")
def fuzz_round(request: pytest.FixtureRequest, fuzz_world: FuzzWorld, fuzz_progress: Progress) -> int:
    """A round of every operation and role; `make fuzz` starts rounds until FUZZ_MINUTES have passed."""
    number: int = request.param
    spent = time.monotonic() - fuzz_world.started
    if number > 0 and MINUTES and spent >= MINUTES * 60:
        failed = request.session.testsfailed
        rounds = f"{number} round{'s' if number > 1 else ''}"
        fuzz_progress.report(f"the {MINUTES:g}-minute budget is spent after {rounds}; {failed} failed")
        pytest.exit(f"fuzzed for {spent / 60:.1f} minutes in {rounds}", returncode=1 if failed else 0)
    fuzz_progress.report(f"round {number} starts (seed {SEED + number})")
    return number


@pytest.fixture(params=ROLES)
def fuzz_schema(request: pytest.FixtureRequest, fuzz_world: FuzzWorld, raw_openapi: dict[str, Any], fuzz_round: int):
    """The API schema, configured for one role (its token, the tenant's ids) and one round's seed."""
    import schemathesis

    config = schemathesis.Config.from_dict(schema_config(fuzz_world, request.param, fuzz_round))
    return schemathesis.openapi.from_dict(copy.deepcopy(raw_openapi), config=config)


def _relabel_shim() -> None:
    """Let Schemathesis 4.32.5's lazy schemas run under pytest 9.2.

    `from_fixture` renames the running test to `test[METHOD /path]` for each operation through
    `Node._nodeid`, which pytest 9.2 replaced with a NodeId in `_id`. The name is cosmetic (each
    operation is reported as its own subtest, labelled), so the shim keeps it beside the real id.
    """
    if hasattr(pytest.Function, "_nodeid"):
        return

    def get(node: pytest.Function) -> str:
        return str(node.__dict__.get("_schemathesis_label", node.nodeid))

    def put(node: pytest.Function, label: str) -> None:
        node.__dict__["_schemathesis_label"] = label

    pytest.Function._nodeid = property(get, put)  # type: ignore[attr-defined]


_relabel_shim()
