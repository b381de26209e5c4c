"""Bulk people import on DynamoDB Local: the service against bare transactions of the same items.

The baseline writes the same items with raw boto3 TransactWriteItems in chunks of 100 on the
same number of threads, without reading, validating or conditions: what the import cannot
go below. The ratio is the platform's overhead (validation, the version read, conditions).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from bench.local_dynamodb import local_dynamodb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated row counts")
    args = parser.parse_args(argv)
    endpoint = local_dynamodb()
    import boto3
    from coaching.adapters import keys
    from coaching.adapters.dynamo import admin_ports
    from coaching.auth import Principal, Role
    from coaching.domain.common import utc_now
    from coaching.domain.orgs import OrgCreate
    from coaching.domain.people import ImportRow, Person
    from coaching.ids import person_id_for
    from coaching.services import admin
    from coaching_local.seed import OPERATOR, people_rows

    client = boto3.client("dynamodb", endpoint_url=endpoint)
    ctx = admin.AdminContext(**admin_ports())
    print("people import on DynamoDB Local (in-process service vs bare TransactWriteItems, 4 threads)")
    print(f"{'rows':>7}{'import s':>10}{'re-run s':>10}{'bare s':>9}{'ratio':>8}")
    for size in [int(s) for s in args.sizes.split(",")]:
        org = admin.create_org(
            OPERATOR, OrgCreate(name=f"Bench {size}", time_zone="UTC", currency="EUR", industry="retail"), ctx
        )
        caller = Principal(person_id="bench", org_id=org.org_id, roles=frozenset({Role.ORG_ADMIN}))
        rows = people_rows(org.org_id, size, seed=size % 97, home_zone="UTC")
        started = time.perf_counter()
        report = admin.import_people(caller, rows, ctx)
        imported = time.perf_counter() - started
        assert report.created == size, report.errors[:3]
        started = time.perf_counter()
        admin.import_people(caller, rows, ctx)
        rerun = time.perf_counter() - started

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
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda chunk: client.transact_write_items(TransactItems=chunk), chunks))
        bare = time.perf_counter() - started
        print(f"{size:>7}{imported:>10.2f}{rerun:>10.2f}{bare:>9.2f}{imported / bare:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
