"""Test-session wiring shared by the whole suite: environment, DynamoDB Local, the local stack.

The environment is set in pytest_configure, before any test module is imported, because the domain
package (PynamoDB models) reads table names and the DynamoDB host at import time.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from coaching_local.testing import StackProcess

# Shared test helpers that assert (not test modules): pytest rewrites their asserts too, so a failure shows its values.
pytest.register_assert_rewrite("tests.report_charts")

TABLE_PREFIX = "test"
_MARKERS = {
    "integration": "needs DynamoDB Local (started by the test session)",
    "e2e": "drives the local stack over HTTP",
    "deploy": "builds or validates the SAM template (needs PyPI for sam build)",
}
_dynamodb_port = 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    global _dynamodb_port
    _dynamodb_port = free_port()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{_dynamodb_port}",
            "MAIN_TABLE_NAME": f"{TABLE_PREFIX}-MainTable",
            "CONFIDENTIAL_TABLE_NAME": f"{TABLE_PREFIX}-ConfidentialTable",
            "EVENT_BUS_NAME": f"coaching-platform-{TABLE_PREFIX}",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "CoachingPlatformTest",
            "POWERTOOLS_DEV": "false",
        }
    )
    # A real session token or profile must never pair with the dummy keys above.
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    # One signing key per session, shared with the stack subprocess; never the developer's .local key.
    os.environ["LOCAL_DEV_SIGNING_KEY"] = secrets.token_hex(32)
    declared = "\n".join(config.getini("markers"))
    for name, description in _MARKERS.items():
        if f"{name}:" not in declared:
            config.addinivalue_line("markers", f"{name}: {description}")


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[str]:
    """DynamoDB Local in memory with the template's tables (prefix `test`); yields the endpoint.

    Started on first use only. A missing java or jar is an error that says what to install.
    """
    from coaching_local.dynamodb_local import DynamoDBLocal, ensure_tables
    from coaching_local.paths import default_template
    from coaching_local.template import load_template

    with DynamoDBLocal(port=_dynamodb_port) as db:
        ensure_tables(db.endpoint, load_template(default_template()), TABLE_PREFIX)
        yield db.endpoint


@pytest.fixture(scope="session")
def local_stack(dynamodb_local: str) -> Iterator[StackProcess]:
    """`python -m coaching_local serve` on the real template, as a subprocess.

    Yields an object with .url, .token(roles, org_id=None, person_id=None), .fire(name) and
    .deliveries(). Any traceback the stack printed fails the session at teardown.
    """
    from coaching_local.testing import StackProcess

    port = free_port()
    stack = StackProcess(
        dynamodb_endpoint=dynamodb_local,
        prefix=TABLE_PREFIX,
        port=port,
        # botocore reads *_EVENTBRIDGE (service id "EventBridge"); *_EVENTS is the project's name for it.
        env={
            "AWS_ENDPOINT_URL_EVENTS": f"http://127.0.0.1:{port}",
            "AWS_ENDPOINT_URL_EVENTBRIDGE": f"http://127.0.0.1:{port}",
            # Tests change the coach network and fire the roster rebuild; matching must see it at once.
            "ROSTER_CACHE_TTL_SECONDS": "0",
        },
        signing_key=os.environ["LOCAL_DEV_SIGNING_KEY"].encode(),
    ).start()
    try:
        yield stack
    finally:
        stack.stop()
        tracebacks = stack.tracebacks()
        if tracebacks:
            pytest.fail(
                f"the local stack printed {len(tracebacks)} traceback(s); a 5xx is always a bug:\n\n"
                + "\n\n".join(tracebacks),
                pytrace=False,
            )
