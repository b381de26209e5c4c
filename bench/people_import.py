"""Bulk people import on DynamoDB Local: POST /people/import against bare transactions of the same items.

Two figures per size, like every latency benchmark here: the handler in-process (the admin function invoked
with the proxy event, inside the local gateway) and the whole request through the local API over HTTP. The
floor writes the same items with raw boto3 TransactWriteItems in chunks of 100 on 4 threads, without
reading, validating or conditions: what the import cannot go below. The ratio is the platform's overhead
(parsing, validation, the version read, conditions). A re-run of the same rows changes nothing and is
timed too.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

from bench.floor import quiet, settle
from bench.local_dynamodb import local_dynamodb
from bench.stack import KEY, start_stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated row counts")
    args = parser.parse_args(argv)
    endpoint = local_dynamodb()
    import boto3
    from coaching.adapters import keys
    from coaching.adapters.dynamo import admin_ports
    from coaching.domain.common import utc_now
    from coaching.domain.orgs import OrgCreate
    from coaching.domain.people import ImportRow, Person
    from coaching.ids import person_id_for
    from coaching.services import admin
    from coaching_local import tokens
    from coaching_local.seed import OPERATOR, people_rows

    client = boto3.client("dynamodb", endpoint_url=endpoint)
    ctx = admin.AdminContext(**admin_ports())
    stack = start_stack(endpoint, "AdminFunction", timeout=120)
    gateway, http, handler_ms, key = stack.gateway, stack.http, stack.handler_ms, KEY

    def post(org_id: str, rows: list[dict[str, object]]) -> tuple[float, float, dict[str, object]]:
        """(API seconds, handler seconds, the import report) of one POST /people/import."""
        token = tokens.dev_token("org_admin", org_id, "bench-admin", key)
        body = json.dumps({"people": rows})
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        settle()
        with quiet():
            began = time.perf_counter()
            response = http.request("POST", "/people/import", body=body, headers=headers)
            api = time.perf_counter() - began
        if response.status != 200:
            raise SystemExit(f"import failed: {response.status} {response.data[:300]!r}")
        return api, handler_ms[-1] / 1000, json.loads(response.data)

    print(
        "people import on DynamoDB Local: POST /people/import vs bare TransactWriteItems of the same items (4 threads)"
    )
    print(f"{'rows':>7}{'floor s':>9}{'handler s':>11}{'ratio':>7}{'API s':>8}{'ratio':>7}{'re-run API s':>14}")
    for size in [int(s) for s in args.sizes.split(",")]:
        org = admin.create_org(
            OPERATOR, OrgCreate(name=f"Bench {size}", time_zone="UTC", currency="EUR", industry="retail"), ctx
        )
        rows = people_rows(org.org_id, size, seed=size % 97, home_zone="UTC")
        imported, handler, report = post(org.org_id, rows)
        assert report["created"] == size, report["errors"][:3]  # type: ignore[index]
        rerun, _, _ = post(org.org_id, rows)

        # Baseline: the same person items, unconditional, into a fresh org partition.
        bare_org = admin.create_org(
            OPERATOR, OrgCreate(name="Bare", time_zone="UTC", currency="EUR", industry="retail"), ctx
        )
        now = utc_now()
        items = []
        for row in rows:
            parsed = ImportRow.model_validate(row)
            pid = person_id_for(bare_org.org_id, parsed.external_hr_id)
            person = Person(
                person_id=pid,
                org_id=bare_org.org_id,
                created_at=now,
                updated_at=now,
                **parsed.model_dump(exclude={"manager_external_hr_id", "manager_id"}),
            )
            items.append(
                {
                    "Put": {
                        "TableName": "bench-MainTable",
                        "Item": {
                            "pk": {"S": keys.people_pk(bare_org.org_id)},
                            "sk": {"S": keys.person_sk(pid)},
                            "kind": {"S": "person"},
                            "body": {"S": person.model_dump_json()},
                            "version": {"N": "1"},
                        },
                    }
                }
            )
        chunks = [items[i : i + 100] for i in range(0, len(items), 100)]
        settle()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda chunk: client.transact_write_items(TransactItems=chunk), chunks))
        bare = time.perf_counter() - started
        print(f"{size:>7}{bare:>9.2f}{handler:>11.2f}{handler / bare:>7.2f}{imported:>8.2f}{imported / bare:>7.2f}"
              f"{rerun:>14.2f}")  # fmt: skip
    gateway.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
