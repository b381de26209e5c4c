"""Fixture handler: echoes the proxy event, sleeps, fails, and uses DynamoDB and EventBridge."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from pydantic import BaseModel

app = APIGatewayRestResolver(enable_validation=True)
# Created at import, like real handlers: the endpoint comes from AWS_ENDPOINT_URL_DYNAMODB.
_dynamodb = boto3.client("dynamodb")
_events = boto3.client("events")
_LAST_CONTEXT: dict[str, Any] = {}
# Read at import, as Powertools does: the local stack only sets per-function variables during import.
_SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME")


class Thing(BaseModel):
    name: str
    size: int = 0


@app.get("/public")
def public() -> dict[str, Any]:
    return {"greeting": os.environ["GREETING"], "service": _SERVICE, "module": __name__, "context": _LAST_CONTEXT}


@app.get("/echo/static")
def echo_static() -> dict[str, Any]:
    return {"static": True}


@app.get("/echo/<item_id>")
def echo(item_id: str) -> dict[str, Any]:
    return {"item_id": item_id, "event": app.current_event.raw_event}


@app.post("/echo")
def echo_post() -> dict[str, Any]:
    return {"event": app.current_event.raw_event}


@app.get("/slow")
def slow() -> dict[str, Any]:
    started = time.time()
    time.sleep(0.5)
    return {"start": started, "end": time.time(), "module": __name__}


@app.get("/boom")
def boom() -> dict[str, Any]:
    raise RuntimeError("boom: fixture failure")


@app.put("/items/<item_id>")
def put_item(item_id: str, thing: Thing) -> dict[str, Any]:
    _dynamodb.put_item(
        TableName=os.environ["MAIN_TABLE_NAME"],
        Item={
            "pk": {"S": f"ITEM#{item_id}"},
            "sk": {"S": "ITEM"},
            "name": {"S": thing.name},
            "size": {"N": str(thing.size)},
        },
    )
    return {"item_id": item_id, "name": thing.name, "size": thing.size}


@app.get("/items/<item_id>")
def get_item(item_id: str) -> dict[str, Any]:
    item = _dynamodb.get_item(
        TableName=os.environ["MAIN_TABLE_NAME"], Key={"pk": {"S": f"ITEM#{item_id}"}, "sk": {"S": "ITEM"}}
    ).get("Item")
    if item is None:
        return {"found": False}
    return {"found": True, "name": item["name"]["S"], "size": int(item["size"]["N"])}


@app.post("/emit")
def emit() -> dict[str, Any]:
    body = app.current_event.json_body
    response = _events.put_events(
        Entries=[
            {
                "EventBusName": os.environ["EVENT_BUS_NAME"],
                "Source": body["source"],
                "DetailType": body["detail-type"],
                "Detail": json.dumps(body["detail"]),
            }
        ]
    )
    return {"FailedEntryCount": response["FailedEntryCount"], "Entries": response["Entries"]}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _LAST_CONTEXT.update(
        {
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
        }
    )
    return app.resolve(event, context)
