"""The local stack as the benchmarks drive it.

One gateway on a free port, with neither schedules nor stream pollers (their DynamoDB calls are not a request's
round trips), the function under test timed in-process (`bench.floor.timed_handler`), and a lean HTTP client:
urllib3's connection pool, so that a client library's own work is not counted as the platform's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import urllib3

from bench.floor import timed_handler

KEY = b"bench-signing-key-0123456789abcdef"  # signs the benchmarks' development tokens


@dataclass
class Stack:
    gateway: Any  # coaching_local.gateway.LocalGateway, imported once DynamoDB Local is configured
    http: urllib3.HTTPConnectionPool
    handler_ms: list[float]  # every invocation of the timed function, in order


def start_stack(endpoint: str, function: str | None = None, *, env: dict[str, str] | None = None,
                timeout: float = 60.0) -> Stack:  # fmt: skip
    """Start the gateway on DynamoDB Local at `endpoint`; time `function`'s invocations if one is named."""
    from coaching_local.gateway import LocalGateway

    gateway = LocalGateway(port=0, prefix="bench", dynamodb_endpoint=endpoint, signing_key=KEY, run_scheduler=False,
                           run_streams=False, env=env or {})  # fmt: skip
    gateway.start()
    handler_ms = timed_handler(gateway.pools[function]) if function else []
    http = urllib3.HTTPConnectionPool(gateway.host, gateway.port, maxsize=1, timeout=timeout)
    return Stack(gateway=gateway, http=http, handler_ms=handler_ms)
