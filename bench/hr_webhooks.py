"""HR webhooks through the local API (real handler, signed deliveries) on DynamoDB Local.

Per 100-event batch (each a hire of a new person) posted to POST /webhooks/hr/{org_id}: the handler
in-process (the function invoked with the proxy event, inside the gateway) and the request through the
local API, each as a ratio to the floor: the batch's own DynamoDB round trips replayed bare right after
it (reads verbatim, each transaction as a bare one of as many items). The ratio is what verification,
parsing, the domain rules and the HTTP path cost on top of the round trips themselves.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.floor import bare_ms, progress, quiet, recorded, settle, table
from bench.local_dynamodb import local_dynamodb
from bench.stack import start_stack

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
    from coaching_local.seed import OPERATOR
    from standardwebhooks.webhooks import Webhook

    ctx = admin.AdminContext(**admin_ports())
    org = admin.create_org(
        OPERATOR, OrgCreate(name="HR bench", time_zone="UTC", currency="EUR", industry="technology"), ctx
    )
    stack = start_stack(endpoint, "HrWebhooksFunction", env={"HR_WEBHOOK_SECRETS": json.dumps({org.org_id: [SECRET]})})
    gateway, http, handler_ms = stack.gateway, stack.http, stack.handler_ms
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    through_api: list[float] = []
    floors: list[float] = []
    round_trips: list[int] = []
    try:
        with quiet():
            for batch in range(args.batches):
                body = json.dumps({"events": _batch(batch)})
                webhook_id = f"msg_bench_{uuid.uuid4().hex}"
                now = int(time.time())
                signature = Webhook(SECRET).sign(webhook_id, datetime.fromtimestamp(now, tz=UTC), body)
                headers = {"webhook-id": webhook_id, "webhook-timestamp": str(now), "webhook-signature": signature}
                settle()
                with recorded() as calls:
                    began = time.perf_counter()
                    response = http.request("POST", f"/webhooks/hr/{org.org_id}", body=body.encode(), headers=headers)
                    through_api.append(time.perf_counter() - began)
                outcomes = json.loads(response.data).get("outcomes", []) if response.status == 200 else []
                if len(outcomes) != BATCH or any(o["outcome"] != "applied" for o in outcomes):
                    raise SystemExit(f"delivery failed: {response.status} {response.data[:300]!r}")
                # The floor: the batch's own round trips, replayed bare right after it.
                floors.append(bare_ms(client, calls, "bench-MainTable") / 1000)
                round_trips.append(len(calls))
                progress("batches", batch + 1, args.batches)
    finally:
        gateway.stop()

    floor = statistics.median(floors) * 1000
    print(f"HR webhooks: {len(through_api)} signed batches of {BATCH} hires; floor = each batch's own "
          f"{statistics.mean(round_trips):.0f} round trips, bare, same run")  # fmt: skip
    table(f"POST /webhooks/hr/{{org}} (a batch of {BATCH})", [
        ("handler in-process", floor, statistics.median(handler_ms)),
        ("through the local API (HTTP)", floor, statistics.median(through_api) * 1000),
    ])  # fmt: skip
    print(f"  {BATCH / statistics.median(through_api):.0f} events/s through the local API")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
