"""A large cohort launch as a background job, through the local stack (HTTP, async Lambda invocation).

Builds a network of --coaches approved coaches and an org of --participants people on DynamoDB Local,
then POST /cohorts/match (202 with a job), watches GET /cohorts/jobs/{id} until the worker, invoked
asynchronously and run in-process by the local stack, has planned it, and prints the progress seen
and the total time. Defaults keep `make bench` short; the company-wide wave is
`python -m bench cohort_jobs --participants 5000` (on the 4,000-coach network).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.floor import quiet
from bench.local_dynamodb import local_dynamodb
from bench.stack import KEY, start_stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--coaches", type=int, default=4000)
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--commit", action="store_true", help="also commit the plan (engagements)")
    args = parser.parse_args(argv)
    endpoint = local_dynamodb()
    from coaching.adapters.dynamo import CoachRepository, admin_ports
    from coaching.adapters.roster_store import RosterStore
    from coaching.auth import Principal, Role
    from coaching.domain.coaches import Coach
    from coaching.domain.errors import Conflict
    from coaching.domain.orgs import OrgCreate
    from coaching.ids import person_id_for
    from coaching.services import admin
    from coaching.services.roster import rebuild_roster
    from coaching_local import synthetic, tokens
    from coaching_local.seed import OPERATOR

    started = time.perf_counter()
    repo = CoachRepository()

    def add(coach: Coach) -> None:
        with contextlib.suppress(Conflict):  # the same network as the matching benchmark's, when run after it
            repo.add(coach)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(add, synthetic.coaches(args.coaches)))
    rebuild_roster(repo, RosterStore())
    ctx = admin.AdminContext(**admin_ports())
    org = admin.create_org(OPERATOR, OrgCreate(name="Wave", time_zone="Europe/Berlin", currency="EUR",
                                               industry="technology"), ctx)  # fmt: skip
    org_admin = Principal(person_id="bench", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
    rows = synthetic.people(org.org_id, args.participants, seed=29)
    admin.import_people(org_admin, rows, ctx)
    ids = [person_id_for(org.org_id, row["external_hr_id"]) for row in rows]
    print(f"setup: {args.coaches} coaches, {len(ids)} participants in {time.perf_counter() - started:.1f} s")

    gateway, key = start_stack(endpoint, env={"ROSTER_CACHE_TTL_SECONDS": "0"}).gateway, KEY
    token = tokens.dev_token("org_admin", org.org_id, "bench", key)
    headers = {"Authorization": f"Bearer {token}"}
    body = {"program": "GROW", "participant_ids": ids, "commit": args.commit}
    seen: list[tuple[float, str, int]] = []
    try:
        with quiet():
            began = time.perf_counter()
            answer = requests.post(f"{gateway.url}/cohorts/match", json=body, headers=headers, timeout=60)
            if answer.status_code != 202:
                raise SystemExit(f"expected 202 with a job: {answer.status_code} {answer.text[:300]}")
            job_id = answer.json()["job_id"]
            accepted = time.perf_counter() - began
            while True:
                job = requests.get(f"{gateway.url}/cohorts/jobs/{job_id}", headers=headers, timeout=60).json()
                elapsed = time.perf_counter() - began
                if not seen or (job["status"], job["phase_done"]) != seen[-1][1:]:
                    seen.append((elapsed, job["status"], job["phase_done"]))
                    print(f"  {elapsed:6.1f} s  {job['status']:<10} {job['phase_done']:>5}/{job['participants']}",
                          file=sys.stderr, flush=True)  # fmt: skip
                if job["status"] in ("succeeded", "failed"):
                    break
                time.sleep(0.25)
            total = time.perf_counter() - began
    finally:
        gateway.stop()
    if job["status"] != "succeeded":
        raise SystemExit(f"the job failed: {job.get('error')}")
    plan = job["result"]
    print(f"cohort job through the local stack: {len(ids)} participants on the {args.coaches}-coach network")
    print(f"  202 with the job after {accepted * 1000:.0f} ms; plan ready after {total:.1f} s "
          f"({len(seen)} progress states seen); matched {plan['matched']}, objective {plan['objective']:.2f}"
          f"{', committed' if args.commit else ''}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
