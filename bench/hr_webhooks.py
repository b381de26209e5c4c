"""HR webhooks through the local API (real handler, signed deliveries) on DynamoDB Local.

Prints the throughput of 100-event batches (each a hire of a new person) posted to
POST /webhooks/hr/{org_id}, against the same writes done directly on the same DynamoDB Local in
the same run: per batch, one transaction with the receipt and the raw payload, then per event one
transaction with its marker, the HR record and the person (the items the handler writes, at their
sizes). The ratio is what verification, parsing, the domain rules, the reads before each write and
the HTTP path cost on top of the writes themselves.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests

from bench.local_dynamodb import local_dynamodb

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 (the Standard Webhooks libraries' test secret)
BATCH = 100


def _batch(batch: int) -> list[dict[str, object]]:
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    return [
        {
            "type": "employee.hired",
            "external_hr_id": f"B{batch}-E{n}",
            "effective_at": (start + timedelta(minutes=n)).isoformat(),
            "level": "individual_contributor",
            "function": "engineering",
            "title": "Engineer",
            "employee": {
                "name": f"Bench Person {batch}-{n}",
                "email": f"b{batch}-e{n}@example.com",
                "languages": ["en"],
                "time_zone": "UTC",
            },
        }
        for n in range(BATCH)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args(argv)
    endpoint = local_dynamodb()
    import boto3
    from coaching.adapters.dynamo import admin_ports
    from coaching.domain.orgs import OrgCreate
    from coaching.services import admin
    from coaching_local.gateway import LocalGateway
    from coaching_local.seed import OPERATOR
    from standardwebhooks.webhooks import Webhook

    ctx = admin.AdminContext(**admin_ports())
    org = admin.create_org(
        OPERATOR, OrgCreate(name="HR bench", time_zone="UTC", currency="EUR", industry="technology"), ctx
    )
    key = b"bench-signing-key-0123456789abcdef"
    gateway = LocalGateway(
        port=0,
        prefix="bench",
        dynamodb_endpoint=endpoint,
        signing_key=key,
        run_scheduler=False,
        run_streams=False,
        env={"HR_WEBHOOK_SECRETS": json.dumps({org.org_id: [SECRET]})},
    )
    gateway.start()
    session = requests.Session()
    through_api: list[float] = []
    bodies: list[str] = []
    try:
        for batch in range(args.batches):
            body = json.dumps({"events": _batch(batch)})
            bodies.append(body)
            webhook_id = f"msg_bench_{uuid.uuid4().hex}"
            now = int(time.time())
            signature = Webhook(SECRET).sign(webhook_id, datetime.fromtimestamp(now, tz=UTC), body)
            headers = {"webhook-id": webhook_id, "webhook-timestamp": str(now), "webhook-signature": signature}
            began = time.perf_counter()
            response = session.post(f"{gateway.url}/webhooks/hr/{org.org_id}", data=body.encode(), headers=headers)
            through_api.append(time.perf_counter() - began)
            outcomes = response.json().get("outcomes", []) if response.status_code == 200 else []
            if len(outcomes) != BATCH or any(o["outcome"] != "applied" for o in outcomes):
                raise SystemExit(f"delivery failed: {response.status_code} {response.text[:300]}")
    finally:
        gateway.stop()

    # The same writes, directly: per batch the receipt and payload, per event marker + record + person.
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    person_body = json.dumps(_batch(0)[0]) * 2  # about a person's JSON with its history
    record_body = json.dumps(_batch(0)[0]) * 3  # about an HR record with its stamps
    direct: list[float] = []
    for body in bodies:
        pk = f"BENCH#{uuid.uuid4()}"
        began = time.perf_counter()
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "bench-MainTable", "Item": {"pk": {"S": pk}, "sk": {"S": "RECEIPT"},
                         "ref": {"S": "0" * 64}}, "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": "bench-ConfidentialTable", "Item": {"pk": {"S": pk}, "sk": {"S": "PAYLOAD"},
                         "text": {"S": body}}, "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )  # fmt: skip
        for n in range(BATCH):
            items = [
                (f"EVENT#{n:03d}", "ref", '{"index": 0, "outcome": "applied"}'),
                (f"RECORD#{n}", "body", record_body),
                (f"PERSON#{n}", "body", person_body),
            ]
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "bench-MainTable", "Item": {"pk": {"S": pk}, "sk": {"S": sk},
                             field: {"S": value}}, "ConditionExpression": "attribute_not_exists(pk)"}}
                    for sk, field, value in items
                ]
            )  # fmt: skip
        direct.append(time.perf_counter() - began)

    api_rate = BATCH / statistics.median(through_api)
    direct_rate = BATCH / statistics.median(direct)
    print(f"HR webhooks: {len(through_api)} signed batches of {BATCH} hires through the local API")
    api_batch = statistics.median(through_api)
    print(f"  POST /webhooks/hr/{{org}}   {api_rate:7.0f} events/s   (median batch {api_batch:.2f} s)")
    print(
        f"  same writes, directly      {direct_rate:7.0f} events/s   (median batch {statistics.median(direct):.2f} s)"
    )
    print(f"  ratio (direct / API)       {direct_rate / api_rate:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
