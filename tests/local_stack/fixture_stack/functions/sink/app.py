"""Fixture handler: writes every EventBridge event it receives to FIXTURE_SINK_DIR."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    sink = Path(os.environ["FIXTURE_SINK_DIR"])
    # Write aside and rename, so a test polling for the file never reads it half-written.
    partial = sink / f".sink-{event['id']}.tmp"
    partial.write_text(json.dumps(event), encoding="utf-8")
    partial.replace(sink / f"sink-{event['id']}.json")
    return {"stored": event["id"]}
