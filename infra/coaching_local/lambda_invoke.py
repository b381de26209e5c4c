"""Lambda's Invoke API, locally: `POST /2015-03-31/functions/{name}/invocations` on the gateway's port.

Functions invoke each other with their own boto3 Lambda client (AWS_ENDPOINT_URL_LAMBDA points here).
`InvocationType: Event` is queued like a rule's delivery (`deliveries.AsyncDelivery`): 202 at once, then
the function runs in-process with the template's EventInvokeConfig retries, and what still fails lands
in the dead letters (kind "invoke"), as Lambda sends it to the on-failure destination.
`RequestResponse` (the default) runs it now and answers its result; `DryRun` only checks the name.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from coaching_local.deliveries import AsyncDelivery, Target
from coaching_local.runtime import FunctionPool
from coaching_local.server import LocalRequest, LocalResponse, json_response, response

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
# Lambda's defaults for asynchronous invocation, when the template sets no EventInvokeConfig.
DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE_SECONDS = 21_600


class LambdaInvoke:
    def __init__(self, delivery: AsyncDelivery) -> None:
        self.delivery = delivery
        self._targets: dict[str, Target] = {}

    def add(self, pool: FunctionPool, properties: Mapping[str, Any]) -> None:
        """Invocable by its local name, its ARN and its logical id, with its EventInvokeConfig."""
        config = properties.get("EventInvokeConfig") or {}
        target = Target(
            kind="invoke",
            name=pool.function_name,
            pool=pool,
            max_retries=int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES)),
            max_event_age_seconds=int(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_SECONDS)),
        )
        for name in (pool.function_name, pool.arn, pool.spec.logical_id):
            self._targets[name] = target

    @staticmethod
    def matches(request: LocalRequest) -> bool:
        return request.method == "POST" and INVOKE_PATH.match(request.raw_path) is not None

    def handle(self, request: LocalRequest) -> LocalResponse:
        found = INVOKE_PATH.match(request.raw_path)
        name = found.group("name") if found else ""
        target = self._targets.get(name)
        if target is None:
            missing = {"Type": "User", "message": f"Function not found: {name}"}
            return json_response(404, missing, [("x-amzn-ErrorType", "ResourceNotFoundException")])
        kind = request.header("X-Amz-Invocation-Type") or "RequestResponse"
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return json_response(
                400, {"Type": "User", "message": "Could not parse request body into json"},
                [("x-amzn-ErrorType", "InvalidRequestContentException")],
            )  # fmt: skip
        request_id = str(uuid.uuid4())
        if kind == "DryRun":
            return response(204, b"", [("x-amzn-RequestId", request_id)])
        if kind == "Event":
            self.delivery.submit(target, payload, request_id, None)
            return response(202, b"", [("x-amzn-RequestId", request_id)])
        try:
            result = target.pool.invoke(payload)
        except Exception as exc:  # the function's error, as Lambda reports it: 200 with X-Amz-Function-Error
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
            return json_response(200, error, [("X-Amz-Function-Error", "Unhandled"), ("x-amzn-RequestId", request_id)])
        return json_response(200, result, [("x-amzn-RequestId", request_id)])
