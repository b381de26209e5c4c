"""One DynamoDB Local per benchmark process, with the environment the domain package reads.

PynamoDB fixes table names and the endpoint when the domain package is first imported, so
every benchmark in a `make bench` run must share one instance: the first call starts it.
"""

from __future__ import annotations

import atexit
import os
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_endpoint: str | None = None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_dynamodb() -> str:
    """Start DynamoDB Local in memory (once), create the template's tables, return the endpoint."""
    global _endpoint
    if _endpoint is not None:
        return _endpoint
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL_DYNAMODB=endpoint,
        MAIN_TABLE_NAME="bench-MainTable",
        CONFIDENTIAL_TABLE_NAME="bench-ConfidentialTable",
        # The bus the in-process gateway creates for prefix "bench" (the domain caches settings).
        EVENT_BUS_NAME="coaching-platform-bench",
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
    )
    from coaching_local.dynamodb_local import DynamoDBLocal, ensure_tables
    from coaching_local.template import load_template

    server = DynamoDBLocal(port=port)
    server.start()
    atexit.register(server.stop)
    ensure_tables(endpoint, load_template(ROOT / "template.yaml"), "bench")
    _endpoint = endpoint
    return endpoint
