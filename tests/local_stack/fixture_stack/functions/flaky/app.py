"""Fixture handler: always fails, recording each attempt, to exercise retries and dead letters."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    sink = Path(os.environ["FIXTURE_SINK_DIR"])
    (sink / f"flaky-{event['id']}-{uuid.uuid4().hex}").touch()
    raise RuntimeError(f"flaky fixture refuses {event['id']}")
