"""Reports read rollups, not sessions: an org of 50,000 people with 12 months of rollups on DynamoDB Local.

Two orgs with the same 50,000 people and dimensions: one with 1x the sessions, one with 10x. Each month's
cells are the sum of the people's contributions (`coaching.domain.rollups.sum_counters`, what the daily
rebuild writes) stored through `RollupStore.rewrite_cells`. Then, for each org:

- read units: the capacity DynamoDB reports for the report's Queries (and the trends' 12 months), printed
  for 1x and 10x sessions: equal, because a report reads cells, one per group, whatever the session count;
- latency: the month's report (Query + suppression of the whole linked system + figures) and the 12-month
  trends, each as a ratio to ONE bare boto3 Query of the same rollup partition, timed in the same run. Trends
  twice: computed (every month suppressed: the kept points are deleted before each run) and kept (each closed
  month's point served again because its inputs' digest is unchanged; the months still Queried and digested);
- the leader's request, GET /orgs/{org}/reports/{period}: the handler in-process (the report function invoked
  with the proxy event, inside the local gateway) and the whole request through the local API, each as a ratio
  to the floor of its own DynamoDB round trips replayed bare right after it (`bench.floor`).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import Any

from bench.floor import bare_ms, quiet, recorded, settle, table
from bench.local_dynamodb import local_dynamodb
from bench.stack import KEY, start_stack
from bench.stats import percentile

DEPARTMENTS = tuple(f"dept-{i:02d}" for i in range(10))
LOCATIONS = ("Berlin", "London", "Madrid", "Austin", "Singapore")
LEVELS = ("individual_contributor", "first_time_manager", "manager", "senior_leader", "executive")
PROGRAMMES = ("SCALE", "GROW", "EXEC", "none")
FOCUS = ("delegation", "giving-feedback", "strategic-thinking", "communication")


def _months(count: int) -> list[str]:
    return [f"{2025 + (m // 12)}-{m % 12 + 1:02d}" for m in range(count)]


def _people(count: int, rng: random.Random) -> list[dict[str, str]]:
    people = []
    for _ in range(count):
        programme = rng.choice(PROGRAMMES)
        people.append({
            "programme": programme, "level": rng.choice(LEVELS), "department": rng.choice(DEPARTMENTS),
            "location": rng.choice(LOCATIONS),
            "grow_cohort": f"2025-{rng.randint(1, 6):02d}" if programme == "GROW" else "none",
            "newly_promoted": "yes" if rng.random() < 0.1 else "no",
            "coached": "not_yet" if programme == "none" else "yes",
        })  # fmt: skip
    return people


def _seed(org_id: str, people: list[dict[str, str]], months: list[str], factor: int, seed: int) -> int:
    """Write every month's cells for `org_id`; the number of sessions behind them."""
    from coaching.adapters.rollup_store import RollupStore
    from coaching.domain.common import utc_now
    from coaching.domain.reporting import Contribution
    from coaching.domain.rollups import sum_counters
    from coaching.services.rollups import RollupMeta

    store = RollupStore()
    sessions = 0
    for number, period in enumerate(months, start=1):
        rng = random.Random(seed * 1000 + number)  # the same people and months for 1x and 10x
        contributions = []
        for index, dims in enumerate(people):
            engaged = dims["coached"] == "yes"
            completed = rng.choice((0, 1, 1, 2, 2, 3, 4)) * factor if engaged else 0
            no_shows = factor if engaged and rng.random() < 0.08 else 0
            sessions += completed + no_shows
            leaving = rng.random() < 0.01
            contributions.append(Contribution.model_construct(
                pid=f"p{index}", dims=dims, engaged=engaged, completed=completed, no_shows=no_shows, late_cancels=0,
                focus=[rng.choice(FOCUS)] if completed else [], sessions_on_priorities=completed // 2,
                terminated=leaving, regrettable=leaving and rng.random() < 0.5))  # fmt: skip
        cells = sum_counters(contributions)
        store.rewrite_cells(org_id, period, cells)
        store.write_meta(RollupMeta(org_id=org_id, period=period, min_group_size=5, priorities=["delegation"],
                                    spend_minor=sessions * 15000, currency="EUR", built_at=utc_now(),
                                    rebuilt=True))  # fmt: skip
        print(f"\r  {org_id}: month {number}/{len(months)} written ({len(cells)} cells)", end="", flush=True)
    print()
    return sessions


def _context() -> Any:
    from coaching.adapters.report_render import ReportRenderer
    from coaching.adapters.rollup_store import ReportReader, ReportWriter
    from coaching.domain.common import utc_now
    from coaching.services.reports import ReportContext

    class NoArtefacts:
        def store(self, org_id: str, period: str, files: Any) -> None:
            raise AssertionError("the bench writes no artefacts")

        def link(self, org_id: str, period: str, name: str, expires_at: Any) -> str:
            raise AssertionError("the bench makes no links")

    return ReportContext(reader=ReportReader(), writer=ReportWriter(), artefacts=NoArtefacts(),
                         renderer=ReportRenderer(), clock=utc_now)  # fmt: skip


def _bare_query(client: Any, table: str, pk: str) -> float:
    started = time.perf_counter()
    request: dict[str, Any] = {"TableName": table, "KeyConditionExpression": "pk = :pk",
                               "ExpressionAttributeValues": {":pk": {"S": pk}}}  # fmt: skip
    while True:
        response = client.query(**request)
        if "LastEvaluatedKey" not in response:
            break
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return time.perf_counter() - started


def _forget_trends(client: Any, table: str, pk: str) -> None:
    """Delete the kept trend points of an org, so the next trends read computes every month."""
    from coaching.adapters import keys

    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :t)",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":t": {"S": keys.TREND_CACHE_PREFIX}},
    }
    for item in client.query(**request).get("Items", []):
        client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--runs", type=int, default=5, help="timed repetitions of each read")
    parser.add_argument("--quick", action="store_true", help="5,000 people, 3 runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.people, args.runs = 5_000, 3
    endpoint = local_dynamodb()
    import boto3
    from coaching.adapters import keys
    from coaching.adapters.rollup_store import QUERY_STATS
    from coaching.config import settings
    from coaching.services import reports

    months = _months(args.months)
    people = _people(args.people, random.Random(42))
    print(f"reports for an org of {args.people:,} people with {len(months)} months of rollups (DynamoDB Local)")
    orgs = {factor: f"bench-reports-{factor}x" for factor in (1, 10)}
    sessions = {factor: _seed(org, people, months, factor, seed=7) for factor, org in orgs.items()}
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    table = settings().main_table
    ctx = _context()
    last = months[-1]
    rows = []
    for factor, org_id in orgs.items():
        reports.build_report(org_id, last, [], ctx)  # warm: imports, connection
        QUERY_STATS.reset()
        reports.build_report(org_id, last, [], ctx)
        report_units, report_items = QUERY_STATS.read_units, QUERY_STATS.items
        QUERY_STATS.reset()
        reports.build_trends(org_id, last, len(months), [], ctx)
        trend_units = QUERY_STATS.read_units
        QUERY_STATS.reset()
        reports.build_trends(org_id, last, len(months), [], ctx)
        kept_units = QUERY_STATS.read_units
        bare, report_s, trend_s, kept_s = [], [], [], []
        for _ in range(args.runs):
            bare.append(_bare_query(client, table, keys.rollup_pk(org_id, last)))
            started = time.perf_counter()
            reports.build_report(org_id, last, [], ctx)
            report_s.append(time.perf_counter() - started)
            _forget_trends(client, table, keys.report_pk(org_id))
            started = time.perf_counter()
            reports.build_trends(org_id, last, len(months), [], ctx)
            trend_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            reports.build_trends(org_id, last, len(months), [], ctx)
            kept_s.append(time.perf_counter() - started)
            print(".", end="", flush=True)
        print()
        rows.append((factor, sessions[factor], report_units, report_items, trend_units, kept_units,
                     percentile(bare, 0.5), percentile(report_s, 0.5), percentile(trend_s, 0.5),
                     percentile(kept_s, 0.5)))  # fmt: skip
    print(f"{'sessions':>12}{'report RCU':>12}{'items':>7}{'trends RCU':>12}{'kept RCU':>10}{'bare Query ms':>15}"
          f"{'report ms':>11}{'ratio':>7}{'trends ms':>11}{'ratio':>7}{'kept ms':>9}{'ratio':>7}")  # fmt: skip
    for _, count, units, items, trend_units, kept_units, bare_s, rep_s, tr_s, kept in rows:
        print(f"{count:>12,}{units:>12.1f}{items:>7}{trend_units:>12.1f}{kept_units:>10.1f}{bare_s * 1000:>15.1f}"
              f"{rep_s * 1000:>11.1f}{rep_s / bare_s:>6.1f}x{tr_s * 1000:>11.1f}{tr_s / bare_s:>6.1f}x"
              f"{kept * 1000:>9.1f}{kept / bare_s:>6.1f}x")  # fmt: skip
    (_, s1, u1, i1, t1, *_), (_, s10, u10, i10, t10, *_) = rows
    print(f"10x the sessions ({s1:,} -> {s10:,}): items read {i1} -> {i10}; report read units {u1:.1f} -> "
          f"{u10:.1f} ({u10 / u1:.3f}x), trends {t1:.1f} -> {t10:.1f} ({t10 / t1:.3f}x). Read units follow the "
          "cells' bytes (wider counters), never the number of sessions.")  # fmt: skip
    _through_the_api(endpoint, orgs, last, args.runs)
    return 0


def _through_the_api(endpoint: str, orgs: dict[int, str], period: str, runs: int) -> None:
    """The leader's GET of the month's report: handler and local API, each against its own round trips bare."""
    import boto3
    from coaching_local import tokens

    stack = start_stack(endpoint, "ReportGenerationFunction")
    gateway, http, handler_ms, key = stack.gateway, stack.http, stack.handler_ms, KEY
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    try:
        for factor, org_id in orgs.items():
            headers = {"Authorization": f"Bearer {tokens.dev_token('leader', org_id, 'bench-leader', key)}"}
            api, handler, floor = [], [], []
            for attempt in range(runs + 1):  # the first warms the container
                settle()
                with quiet(), recorded() as calls:
                    began = time.perf_counter()
                    response = http.request("GET", f"/orgs/{org_id}/reports/{period}", headers=headers)
                    elapsed = (time.perf_counter() - began) * 1000
                if response.status != 200:
                    raise SystemExit(f"report failed: {response.status} {response.data[:300]!r}")
                if attempt:
                    api.append(elapsed)
                    handler.append(handler_ms[-1])
                    floor.append(bare_ms(client, calls, "bench-MainTable"))
            trips = ", ".join(operation for operation, _ in calls)
            table(f"GET /orgs/{{org}}/reports/{{period}}, {factor}x sessions ({trips}; median of {runs})", [
                ("handler in-process", percentile(floor, 0.5), percentile(handler, 0.5)),
                ("through the local API (HTTP)", percentile(floor, 0.5), percentile(api, 0.5)),
            ])  # fmt: skip
    finally:
        gateway.stop()


if __name__ == "__main__":
    sys.exit(main())
