"""On-demand matching against a 4,000-coach network on DynamoDB Local.

Prints p50/p99 of a full match request, POST /matches (roster from the warm cache; org, person, the org's
programme catalogue and the history summary in one BatchGetItem; loads of the finalists; exact availability;
the request and its situation written in one transaction), both the handler in-process (the function invoked
with the proxy event, inside the local gateway) and through the local API over HTTP, each as a ratio to the floor of
its own round trips replayed bare right after it; and the scoring pass (hard constraints and scores
over the network) by the reference scorer that matching used before (tests/reference/scorer_v1.py)
and by the precomputed one, for the same people in the same run. Then a 1,000-participant cohort
launch through the service.
Targets (issue 14): full request p50 <= 1.5x its floor; scoring >= 4x faster than the reference.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from bench.floor import bare_ms, progress, quiet, recorded, settle, table
from bench.local_dynamodb import ROOT, local_dynamodb
from bench.stack import KEY, start_stack
from bench.stats import percentile

FULL_TARGET = 1.5  # full request p50 over the floor of its own round trips
SPEEDUP_TARGET = 4.0  # scoring pass, reference scorer over the precomputed one
UNIT_REQUESTS = 20  # more requests, untimed, that count capacity units


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--coaches", type=int, default=4000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50, help="requests before measuring (other people)")
    args = parser.parse_args(argv)
    endpoint = local_dynamodb()  # before the domain package is imported: PynamoDB reads the endpoint then
    import boto3
    from coaching.adapters.booking_store import BookingStore
    from coaching.adapters.dynamo import CoachRepository, OrgRepository, PersonRepository, admin_ports
    from coaching.adapters.matching_store import MatchingStore
    from coaching.adapters.roster_store import RosterStore
    from coaching.auth import Principal, Role
    from coaching.domain.common import utc_now
    from coaching.domain.compiled_roster import compile_roster
    from coaching.domain.matching import (
        History,
        MatchingSettings,
        MatchRequestIn,
        NoEligibleCoach,
        scored_candidates,
    )
    from coaching.domain.orgs import OrgCreate
    from coaching.ids import person_id_for
    from coaching.services import admin, cohorts, matching, proposals
    from coaching.services.roster import RosterCache, rebuild_roster
    from coaching_local import synthetic, tokens
    from coaching_local.seed import OPERATOR

    from bench.capacity import metered

    sys.path.insert(0, str(ROOT / "tests"))
    from reference.scorer_v1 import reference_candidates  # the scorer before the roster was precomputed

    started = time.perf_counter()
    repo = CoachRepository()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(repo.add, synthetic.coaches(args.coaches)))
    store = RosterStore()
    rebuild_roster(repo, store)
    ctx_admin = admin.AdminContext(**admin_ports())
    org = admin.create_org(
        OPERATOR,
        OrgCreate(name="Bench", time_zone="Europe/Berlin", currency="EUR", industry="technology"),
        ctx_admin,
    )
    org_admin = Principal(person_id="bench", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
    rows = synthetic.people(org.org_id, 1000)
    admin.import_people(org_admin, rows, ctx_admin)
    print(f"setup: {args.coaches} approved coaches, 1,000 people in {time.perf_counter() - started:.1f} s")

    roster_cache = RosterCache(store, ttl_seconds=30)
    matching_store, people, bookings = MatchingStore(), PersonRepository(), BookingStore()
    ctx = matching.MatchingContext(
        roster=roster_cache, store=matching_store, people=people, coaches=repo, bookings=bookings, clock=utc_now
    )
    cohort_ctx = cohorts.CohortContext(
        roster=roster_cache, store=matching_store, orgs=OrgRepository(), people=people, bookings=bookings, clock=utc_now
    )
    ctx.roster.get()  # a warm container: the roster is cached
    competencies = [
        "delegation",
        "giving-feedback",
        "decision-making",
        "prioritisation",
        "hiring",
        "stakeholder-management",
        "resilience",
        "change-leadership",
    ]
    rng = random.Random(11)
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    weights = MatchingSettings().weights
    key = KEY
    # The same requests through the local API (werkzeug, proxy events, the real handler); the handler's own
    # time is taken around the function's invocation inside the gateway.
    stack = start_stack(endpoint, "MatchingFunction", env={"ROSTER_CACHE_TTL_SECONDS": "30"})
    gateway, http, handler_ms = stack.gateway, stack.http, stack.handler_ms

    trips: list[list[str]] = []  # each request's DynamoDB round trips, as the floor replays them

    def one(index: int) -> tuple[float, float, float, float, float, bool]:
        """One full request with its floor, then the scoring pass for the same person: reference and new."""
        row = rows[index % len(rows)]
        caller = Principal(
            person_id=person_id_for(org.org_id, row["external_hr_id"]),
            org_id=org.org_id,
            roles=frozenset({Role.EMPLOYEE}),
        )
        program = "EXEC" if row["level"] in {"senior_leader", "executive"} and rng.random() < 0.5 else "SCALE"
        request = MatchRequestIn(
            program=program,
            focus_competencies=rng.sample(competencies, k=2),
            situation="Preparing a difficult conversation with a peer next week.",
        )
        token = tokens.dev_token("employee", org.org_id, caller.person_id, key)
        body = json.dumps(request.model_dump(mode="json", exclude={"preferences"}))
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        settle()
        with recorded() as calls:
            began = time.perf_counter()
            response = http.request("POST", "/matches", body=body, headers=headers)
            full = (time.perf_counter() - began) * 1000
        if response.status not in (201, 422):
            raise SystemExit(f"match failed: {response.status} {response.data[:300]!r}")
        refused = response.status == 422  # no eligible coach: refused with the binding constraint
        handler = handler_ms[-1]
        trips.append([f"{op}({_items(params)})" for op, params in calls])
        floor = bare_ms(client, calls, "bench-MainTable")

        org_obj, person = proposals.load_person(ctx, org.org_id, caller.person_id)
        focus = proposals.check_focus(org_obj, request.focus_competencies)
        context = proposals.person_context(org_obj, person, request.program, focus, [])
        compiled = compile_roster(ctx.roster.get())
        now = datetime.now(UTC)
        timings = []
        for scorer in (reference_candidates, scored_candidates):
            began = time.perf_counter()
            with contextlib.suppress(NoEligibleCoach):
                scorer(compiled, context, weights, History(), now)
            timings.append((time.perf_counter() - began) * 1000)
        return full, handler, floor, timings[0], timings[1], refused

    # A new container pays for compiling the roster and, per person time zone, the weekly
    # overlap of every coach; that is reported apart from the warm steady state.
    with quiet():
        first_ms = one(len(rows) - 1)[1]
        warm_started = time.perf_counter()
        for index in range(args.warmup):
            one(len(rows) - 2 - index)
            progress("warm-up", index + 1, args.warmup)
        warmup_s = time.perf_counter() - warm_started
        full_ms: list[float] = []
        inproc_ms: list[float] = []
        floor_ms: list[float] = []
        before_ms: list[float] = []
        after_ms: list[float] = []
        refused = 0
        for index in range(args.requests):
            full, handler, floor, before, after, was_refused = one(index)
            full_ms.append(full)
            inproc_ms.append(handler)
            floor_ms.append(floor)
            before_ms.append(before)
            after_ms.append(after)
            refused += was_refused
            progress("requests", index + 1, args.requests)
        # Capacity units on requests of their own (other people): the meter asks every call for
        # ReturnConsumedCapacity, which the platform never does, so no timed request carries it.
        with metered() as meter:
            for index in range(UNIT_REQUESTS):
                one(len(rows) - 2 - args.warmup - index)
        reads, writes = meter.read_units, meter.write_units

    print(f"round trips of the last request (the floor replays these): {', '.join(trips[-1])}")
    print(f"first request in a new container: {first_ms:.1f} ms; warm-up of {args.warmup} requests: {warmup_s:.1f} s")
    p50, floor = statistics.median(full_ms), statistics.median(floor_ms)
    handler50 = statistics.median(inproc_ms)
    print(f"on-demand match over {args.requests} requests ({refused} refused: no eligible coach)")
    table("POST /matches", [("handler in-process", floor, handler50), ("through the local API (HTTP)", floor, p50)])
    print(f"  p99: handler {percentile(inproc_ms, 0.99):.1f} ms, API {percentile(full_ms, 0.99):.1f} ms, "
          f"floor {percentile(floor_ms, 0.99):.1f} ms; target p50 <= {FULL_TARGET}x the floor")  # fmt: skip
    b50, a50 = statistics.median(before_ms), statistics.median(after_ms)
    print(f"scoring pass over the {args.coaches}-coach network (eligibility + scores, same people, same run)")
    print(f"  before (reference scorer)   p50 {b50:6.2f} ms   p99 {percentile(before_ms, 0.99):6.2f} ms")
    print(f"  after (precomputed roster)  p50 {a50:6.2f} ms   p99 {percentile(after_ms, 0.99):6.2f} ms")
    print(f"  speed-up p50 {b50 / a50:5.1f}x (target >= {SPEEDUP_TARGET:.0f}x)")
    print(
        f"  capacity per match: {reads / UNIT_REQUESTS:.2f} read units, {writes / UNIT_REQUESTS:.2f} write units "
        f"(the match request and the situation are written in one transaction; the scoring pass reads nothing)"
    )
    ok = handler50 <= FULL_TARGET * floor and b50 >= SPEEDUP_TARGET * a50

    # A cohort launch through the service: real constraints, scores, history reads, solver.
    participants = [person_id_for(org.org_id, row["external_hr_id"]) for row in rows]
    started = time.perf_counter()
    with quiet():
        plan = cohorts.match_cohort_for_org(
            org_admin, cohorts.CohortRequest(program="GROW", participant_ids=participants), cohort_ctx
        )
    cohort_s = time.perf_counter() - started
    gateway.stop()
    print(
        f"cohort launch through the service: {len(participants)} participants on the {args.coaches}-coach "
        f"network in {cohort_s:.2f} s; matched {plan.matched}, objective {plan.objective:.2f}"
    )
    return 0 if ok else 1


def _items(params: dict[str, object]) -> int:
    """How many items a call names: keys of a BatchGetItem, items of a transaction, else one."""
    if "RequestItems" in params:
        return sum(len(t.get("Keys", t) if isinstance(t, dict) else t) for t in params["RequestItems"].values())  # type: ignore[attr-defined]
    if "TransactItems" in params:
        return len(params["TransactItems"])  # type: ignore[arg-type]
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
