"""Settings read from the environment, once per cold start, and validated.

The template sets these on every function; the local stack and the tests set the same names.
There are no fallback table or bus names: a function deployed without them refuses to start
(with a message naming what is missing) rather than write to a table that happens to exist.
The local defaults live only in the local stack (`infra/coaching_local`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Setting -> the environment variable it is read from.
ENVIRONMENT: Mapping[str, str] = {
    "main_table": "MAIN_TABLE_NAME",
    "confidential_table": "CONFIDENTIAL_TABLE_NAME",
    "event_bus": "EVENT_BUS_NAME",
    "region": "AWS_REGION",
    "dynamodb_endpoint": "AWS_ENDPOINT_URL_DYNAMODB",
    "vetting_min_operating_years": "VETTING_MIN_OPERATING_YEARS",
    "vetting_min_paid_coaching_hours": "VETTING_MIN_PAID_COACHING_HOURS",
    "roster_cache_ttl_seconds": "ROSTER_CACHE_TTL_SECONDS",
}


class SettingsError(RuntimeError):
    """The environment lacks a required setting or holds an invalid one."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    main_table: str = Field(min_length=3, max_length=255)
    confidential_table: str = Field(min_length=3, max_length=255)
    event_bus: str = Field(min_length=1, max_length=256)
    region: str = Field(min_length=1)
    # Set only where DynamoDB is not AWS's own (DynamoDB Local); None means the AWS endpoint.
    dynamodb_endpoint: str | None = None
    # Vetting policy: the template's parameters set them; these are the platform's own minimums.
    vetting_min_operating_years: int = Field(default=10, ge=0)
    vetting_min_paid_coaching_hours: int = Field(default=250, ge=0)
    # How often a warm matching container re-checks the roster version (one small GetItem).
    roster_cache_ttl_seconds: float = Field(default=30.0, ge=0)


def settings_from(environ: Mapping[str, str]) -> Settings:
    values: dict[str, str] = {}
    for name, variable in ENVIRONMENT.items():
        raw = environ.get(variable) or (environ.get("AWS_DEFAULT_REGION") if name == "region" else None)
        if raw:
            values[name] = raw
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = [
            f"{ENVIRONMENT[str(error['loc'][0])]}: {'not set' if error['type'] == 'missing' else error['msg']}"
            for error in exc.errors()
        ]
        raise SettingsError("the function's environment is incomplete: " + "; ".join(problems)) from exc


@lru_cache(maxsize=1)
def settings() -> Settings:
    return settings_from(os.environ)
