"""Value types shared by the domain models."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

# ISO 4217 codes with their minor-unit exponent: billing stores integer minor units.
CURRENCY_MINOR_UNITS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "SGD": 2,
    "HKD": 2,
    "INR": 2,
    "BRL": 2,
    "MXN": 2,
    "ZAR": 2,
    "JPY": 0,
    "KRW": 0,
    "CNY": 2,
    "AED": 2,
    "ILS": 2,
    "TRY": 2,
}

_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _check_time_zone(value: str) -> str:
    # A path-like or empty name is not an IANA zone, whatever the local tz database says.
    if not value or len(value) > 64 or value.startswith(("/", ".")) or ".." in value:
        raise ValueError("must be an IANA time zone such as Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # OSError: a name that is a folder of the tz database ("Europe") or otherwise unreadable.
        raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Berlin") from exc
    return value


def _check_currency(value: str) -> str:
    code = value.upper()
    if code not in CURRENCY_MINOR_UNITS:
        raise ValueError(f"{value!r} is not a supported ISO 4217 currency")
    return code


def _check_language(value: str) -> str:
    code = value.strip().lower()
    if not _LANGUAGE.match(code):
        raise ValueError(f"{value!r} is not an ISO 639 language code such as 'en' or 'es'")
    return code


def _unique[T](values: list[T]) -> list[T]:
    seen: list[T] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


TimeZoneName = Annotated[str, AfterValidator(_check_time_zone)]
CurrencyCode = Annotated[str, AfterValidator(_check_currency)]
LanguageCode = Annotated[str, AfterValidator(_check_language)]
Languages = Annotated[list[LanguageCode], AfterValidator(_unique)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# A deliberately plain check: deliverability is the HR system's job, shape is ours.
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
# Platform ids are UUIDs (or short, safe tokens): bounded so they can never overflow a key.
EntityId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class DeferredModel(BaseModel):
    """Builds its validator on first use: a function imports many models and uses few."""

    model_config = ConfigDict(defer_build=True)


class StrictModel(BaseModel):
    """Input models refuse unknown fields, so a typo is a 422 rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class Entity(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)


# What every service takes to read the time: production passes `utc_now`, tests a fixed clock.
type Clock = Callable[[], datetime]
