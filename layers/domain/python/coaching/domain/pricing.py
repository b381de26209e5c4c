"""Price books: what an org pays per session, versioned by the month they take effect.

Money is always an integer number of minor units (cents, yen) and percentages are integer
basis points, so no float ever touches an amount. Every rounding is explicit: half up (away
from zero) to whole minor units, once per charge, so sums of charges are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from coaching.domain.booking import SESSION_MINUTES
from coaching.domain.common import CURRENCY_MINOR_UNITS, CurrencyCode, DeferredModel, StrictModel
from coaching.domain.errors import InvalidInput
from coaching.domain.taxonomy import Program

BPS_SCALE = 10_000  # 100% in basis points
MAX_SESSION_PRICE_MINOR = 10_000_000
MAX_MONTHLY_MINOR = 1_000_000_000_000  # a bound only, so a typo cannot overflow a report
MAX_TIERS = 10
# The lengths the platform books; a price for any other length could never be charged.
PRICED_LENGTHS: tuple[int, ...] = tuple(sorted(set(SESSION_MINUTES.values())))

Bps = Annotated[int, Field(ge=0, le=BPS_SCALE)]


class NoPriceBook(InvalidInput):
    """No price book version covers the day: the org cannot be charged until an operator posts one."""

    def __init__(
        self, message: str, *, field: str | None = "price_book", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, field=field, details=details)


# ---------------------------------------------------------------------------- money arithmetic


def round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, exactly, for any int size.

    The context carries enough digits that the quotient's fraction is resolved finer than
    1 / (2 * denominator), so a value near .5 can never be rounded onto .5 first.
    """
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    with localcontext() as ctx:
        ctx.prec = len(str(abs(numerator))) + len(str(denominator)) + 2
        quotient = Decimal(numerator) / Decimal(denominator)
        return int(quotient.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percent_of(amount_minor: int, bps: int) -> int:
    """amount * bps / 10000, half up; symmetric, so percent_of(-x, b) == -percent_of(x, b)."""
    if not 0 <= bps <= BPS_SCALE:
        raise ValueError(f"bps must be 0..{BPS_SCALE}, got {bps}")
    return round_half_up(amount_minor * bps, BPS_SCALE)


def minor_units(currency: str) -> int:
    try:
        return CURRENCY_MINOR_UNITS[currency.upper()]
    except KeyError:
        raise ValueError(f"{currency!r} is not a supported ISO 4217 currency") from None


def format_minor(amount_minor: int, currency: str) -> str:
    """A plain decimal string ("1234.50", "1235" for JPY, "-12.00"): exact, never via float."""
    exponent = minor_units(currency)
    sign = "-" if amount_minor < 0 else ""
    if exponent == 0:
        return f"{sign}{abs(amount_minor)}"
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}"


def format_bps(bps: int) -> str:
    """5000 -> "50%", 3333 -> "33.33%", 1250 -> "12.5%"."""
    whole, fraction = divmod(bps, 100)
    return f"{whole}%" if fraction == 0 else f"{whole}.{fraction:02d}".rstrip("0") + "%"


# ---------------------------------------------------------------------------- price book


def _check_length(value: int) -> int:
    if value not in PRICED_LENGTHS:
        raise ValueError(f"session length must be one of {', '.join(map(str, PRICED_LENGTHS))} minutes")
    return value


SessionLength = Annotated[int, AfterValidator(_check_length)]
PriceMinor = Annotated[int, Field(ge=0, le=MAX_SESSION_PRICE_MINOR)]
PricesByLength = Annotated[dict[SessionLength, PriceMinor], Field(min_length=1)]


class Tier(StrictModel):
    """From the n-th delivered session of the month on, sessions are discounted by discount_bps."""

    from_session: Annotated[int, Field(ge=1)]
    discount_bps: Bps


class PriceBookVersionInput(StrictModel):
    """What a platform operator posts (the contract): effective on the 1st of a month, never edited afterwards."""

    effective_from: date
    currency: CurrencyCode
    session_prices: Annotated[dict[Program, PricesByLength], Field(min_length=1)]
    late_cancel_fee_bps: Bps = BPS_SCALE
    no_show_fee_bps: Bps = BPS_SCALE
    tiers: Annotated[list[Tier], Field(max_length=MAX_TIERS)] = []
    monthly_commitment_minor: Annotated[int, Field(ge=0, le=MAX_MONTHLY_MINOR)] | None = None
    # Reference monthly per-seat licence price: only for the CFO comparison, never charged.
    seat_price_minor: Annotated[int, Field(ge=0, le=MAX_MONTHLY_MINOR)] | None = None
    # TOGETHER: an optional fee per workshop participant, on top of the workshop's own price.
    together_participant_fee_minor: PriceMinor | None = None

    @field_validator("effective_from")
    @classmethod
    def _first_of_month(cls, value: date) -> date:
        # Whole months only: a session's month then maps to exactly one version.
        if value.day != 1:
            raise ValueError("effective_from must be the first day of a month")
        return value

    @field_validator("tiers")
    @classmethod
    def _tiers_ascending(cls, tiers: list[Tier]) -> list[Tier]:
        previous = 1  # tier 1 (list price from session 1) is implicit
        for tier in tiers:
            if tier.from_session <= previous:
                raise ValueError(
                    "tiers must start after session 1 and have strictly increasing from_session"
                    " (the list price applies from session 1)"
                )
            previous = tier.from_session
        return tiers

    def price_of(self, program: Program, length_minutes: int) -> int | None:
        return self.session_prices.get(program, {}).get(length_minutes)


class PriceBookVersion(PriceBookVersionInput):
    """A posted version as stored; tolerant of fields added later."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    version: Annotated[int, Field(ge=1)]
    created_at: datetime
    created_by: str


class PriceBook(DeferredModel):
    """An org's append-only history of price book versions."""

    org_id: str
    versions: list[PriceBookVersion] = []

    @property
    def currency(self) -> str | None:
        return self.versions[-1].currency if self.versions else None

    def latest(self) -> PriceBookVersion | None:
        return max(self.versions, key=lambda v: (v.effective_from, v.version), default=None)

    def version_for(self, day: date) -> PriceBookVersion:
        """The version in effect on `day`: the latest one effective on or before it."""
        candidates = [v for v in self.versions if v.effective_from <= day]
        if not candidates:
            raise NoPriceBook(f"no price book version is in effect on {day.isoformat()}")
        return max(candidates, key=lambda v: (v.effective_from, v.version))

    def with_version(self, new: PriceBookVersionInput, *, now: datetime, actor: str) -> PriceBook:
        """Append a version. History is never rewritten, so past invoices stay reproducible."""
        latest = self.latest()
        if latest is not None:
            if new.effective_from <= latest.effective_from:
                raise InvalidInput(
                    f"effective_from must be after {latest.effective_from.isoformat()}, when version "
                    f"{latest.version} took effect: versions are append-only",
                    field="effective_from",
                )
            if new.currency != latest.currency:
                # Amounts of different currencies would be summed on one invoice.
                raise InvalidInput(
                    f"the price book is in {latest.currency}; a version cannot change the currency",
                    field="currency",
                )
        number = max((v.version for v in self.versions), default=0) + 1
        version = PriceBookVersion.model_validate(
            {**new.model_dump(), "version": number, "created_at": now, "created_by": actor}
        )
        return PriceBook(org_id=self.org_id, versions=[*self.versions, version])


# ---------------------------------------------------------------------------- charges


class Outcome(StrEnum):
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    LATE_CANCELLED = "late_cancelled"


@dataclass(frozen=True, slots=True)
class UsageCharge:
    price_book_version: int
    currency: str
    list_price_minor: int
    fee_bps: int | None  # None for a completed session: the list price applies
    amount_minor: int


def fee_bps_for(version: PriceBookVersionInput, outcome: Outcome) -> int | None:
    if outcome is Outcome.NO_SHOW:
        return version.no_show_fee_bps
    if outcome is Outcome.LATE_CANCELLED:
        return version.late_cancel_fee_bps
    return None


def charge_amount(list_price_minor: int, fee_bps: int | None) -> int:
    """The single rule for what one session costs; the ledger re-checks entries against it."""
    return list_price_minor if fee_bps is None else percent_of(list_price_minor, fee_bps)


def charge_for(version: PriceBookVersion, program: Program, length_minutes: int, outcome: Outcome) -> UsageCharge:
    list_price = version.price_of(program, length_minutes)
    if list_price is None:
        raise InvalidInput(
            f"price book version {version.version} has no price for {program} sessions of {length_minutes} min",
            field="price_book",
            details={"program": str(program), "length_minutes": length_minutes, "version": version.version},
        )
    fee_bps = fee_bps_for(version, outcome)
    return UsageCharge(
        price_book_version=version.version,
        currency=version.currency,
        list_price_minor=list_price,
        fee_bps=fee_bps,
        amount_minor=charge_amount(list_price, fee_bps),
    )


def programme_charge(version: PriceBookVersion, program: Program, length_minutes: int, outcome: Outcome) -> UsageCharge:
    """A group session's or workshop's charge: the price for exactly that length when the book has one,
    otherwise its 60-minute price pro rata (half up), so any length the catalogue allows can be billed."""
    list_price = version.price_of(program, length_minutes)
    if list_price is None:
        hourly = version.price_of(program, 60)
        if hourly is None:
            raise InvalidInput(
                f"price book version {version.version} has no price for {program} (a 60 min price prices any length)",
                field="price_book",
                details={"program": str(program), "length_minutes": length_minutes, "version": version.version},
            )
        list_price = round_half_up(hourly * length_minutes, 60)
    fee_bps = fee_bps_for(version, outcome)
    return UsageCharge(
        price_book_version=version.version,
        currency=version.currency,
        list_price_minor=list_price,
        fee_bps=fee_bps,
        amount_minor=charge_amount(list_price, fee_bps),
    )


def participant_fee_charge(version: PriceBookVersion) -> UsageCharge | None:
    """TOGETHER's optional per-participant fee, when the version sets one."""
    fee = version.together_participant_fee_minor
    if not fee:
        return None
    return UsageCharge(
        price_book_version=version.version,
        currency=version.currency,
        list_price_minor=fee,
        fee_bps=None,
        amount_minor=fee,
    )
