"""Fixture handler for schedules: returns what it was invoked with. It has no API resolver."""

from __future__ import annotations

import os
from typing import Any

_SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME")  # per-function values exist only at import


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("job") == "explode":
        raise ValueError("jobs fixture asked to explode")
    return {"received": event, "service": _SERVICE, "function_name": context.function_name}
