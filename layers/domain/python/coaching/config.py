"""Settings read from the environment, once per cold start.

The template sets these on every function; the local stack and the tests set the same names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Settings:
    main_table: str
    confidential_table: str
    event_bus: str
    dynamodb_endpoint: str | None
    region: str
    vetting_min_operating_years: int
    vetting_min_paid_coaching_hours: int


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"environment variable {name} must be an integer, got {raw!r}") from exc


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings(
        main_table=os.environ.get("MAIN_TABLE_NAME", "coaching-main"),
        confidential_table=os.environ.get("CONFIDENTIAL_TABLE_NAME", "coaching-confidential"),
        event_bus=os.environ.get("EVENT_BUS_NAME", "coaching-platform"),
        dynamodb_endpoint=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None,
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1",
        vetting_min_operating_years=_int_env("VETTING_MIN_OPERATING_YEARS", 10),
        vetting_min_paid_coaching_hours=_int_env("VETTING_MIN_PAID_COACHING_HOURS", 250),
    )
