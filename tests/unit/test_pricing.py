"""Price books: validation, effective-date selection, append-only history and exact money arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from coaching.domain.errors import InvalidInput
from coaching.domain.pricing import (
    NoPriceBook,
    Outcome,
    PriceBook,
    PriceBookVersion,
    PriceBookVersionInput,
    UsageCharge,
    charge_for,
    format_bps,
    format_minor,
    percent_of,
    round_half_up,
)
from coaching.domain.taxonomy import Program
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def version_input(**overrides: object) -> PriceBookVersionInput:
    fields: dict[str, object] = {
        "effective_from": date(2026, 1, 1),
        "currency": "EUR",
        "session_prices": {"SCALE": {"30": 12_000}, "EXEC": {"60": 45_000}},
    }
    return PriceBookVersionInput.model_validate({**fields, **overrides})


def error_locations(refused: pytest.ExceptionInfo[ValidationError]) -> list[tuple]:
    return [error["loc"] for error in refused.value.errors()]


# ---------------------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("amount", "bps", "expected"),
    [
        (2999, 3333, 1000),  # 999.5667 -> 1000
        (2999, 5000, 1500),  # 1499.5 -> 1500: half up, not half even
        (5, 5000, 3),  # 2.5 -> 3 (banker's rounding would give 2)
        (3, 5000, 2),  # 1.5 -> 2
        (1, 4999, 0),  # 0.4999 -> 0
        (1, 5000, 1),  # 0.5 -> 1
        (12_000, 10_000, 12_000),
        (12_000, 0, 0),
        (0, 7_500, 0),
        (-2999, 5000, -1500),  # symmetric: half away from zero
        (-5, 5000, -3),
    ],
)
def test_percent_of_rounds_half_up(amount, bps, expected):
    assert percent_of(amount, bps) == expected


@pytest.mark.parametrize("bps", [-1, 10_001])
def test_percent_of_refuses_out_of_range_bps(bps):
    with pytest.raises(ValueError, match="bps"):
        percent_of(100, bps)


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(-(10**30), 10**30), bps=st.integers(0, 10_000))
def test_percent_of_is_exact_half_up_and_symmetric(amount, bps):
    exact = Fraction(amount * bps, 10_000)
    result = percent_of(amount, bps)
    assert abs(result - exact) <= Fraction(1, 2)
    if abs(result - exact) == Fraction(1, 2):  # a tie goes away from zero
        assert abs(result) > abs(exact)
    assert percent_of(-amount, bps) == -result
    assert 0 <= abs(result) <= abs(amount)


@settings(max_examples=200, deadline=None)
@given(numerator=st.integers(-(10**40), 10**40), denominator=st.integers(1, 10**25))
def test_round_half_up_matches_exact_rational_rounding(numerator, denominator):
    exact = Fraction(numerator, denominator)
    floor = exact.numerator // exact.denominator
    fraction = exact - floor
    expected = floor + 1 if fraction > Fraction(1, 2) or (fraction == Fraction(1, 2) and exact > 0) else floor
    assert round_half_up(numerator, denominator) == expected


def test_round_half_up_near_ties_with_huge_denominators():
    # (d - 1) / (2d) is a hair below one half; a short decimal context would round it onto .5.
    denominator = 10**20 + 1
    assert round_half_up(denominator - 1, 2 * denominator) == 0
    assert round_half_up(denominator, 2 * denominator) == 1
    assert round_half_up(denominator + 1, 2 * denominator) == 1
    assert round_half_up(7, 2) == 4
    assert round_half_up(-7, 2) == -4
    with pytest.raises(ValueError, match="denominator"):
        round_half_up(1, 0)


# ---------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (123_450, "EUR", "1234.50"),
        (1235, "JPY", "1235"),
        (-1235, "JPY", "-1235"),
        (0, "JPY", "0"),
        (-1200, "EUR", "-12.00"),
        (-5, "EUR", "-0.05"),
        (0, "USD", "0.00"),
        (99, "GBP", "0.99"),
        (10**20 + 1, "EUR", "1000000000000000000.01"),
        (50_000, "KRW", "50000"),
        (1, "eur", "0.01"),
    ],
)
def test_format_minor_is_exact_per_currency(amount, currency, expected):
    assert format_minor(amount, currency) == expected


def test_format_minor_refuses_unknown_currency():
    with pytest.raises(ValueError, match="XXX"):
        format_minor(100, "XXX")


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(-(10**18), 10**18), currency=st.sampled_from(["EUR", "JPY", "USD", "KRW"]))
def test_format_minor_round_trips_through_decimal(amount, currency):
    text = format_minor(amount, currency)
    assert "e" not in text.lower()
    exponent = 0 if currency in {"JPY", "KRW"} else 2
    assert Decimal(text).scaleb(exponent) == amount
    assert text.count(".") == (1 if exponent else 0)


@pytest.mark.parametrize(
    ("bps", "text"), [(5000, "50%"), (3333, "33.33%"), (1250, "12.5%"), (0, "0%"), (10_000, "100%")]
)
def test_format_bps(bps, text):
    assert format_bps(bps) == text


# ---------------------------------------------------------------------------- validation


def test_version_input_defaults_to_full_fees_and_no_tiers():
    version = version_input()
    assert version.late_cancel_fee_bps == 10_000
    assert version.no_show_fee_bps == 10_000
    assert version.tiers == []
    assert version.monthly_commitment_minor is None
    assert version.seat_price_minor is None
    assert version.session_prices == {Program.SCALE: {30: 12_000}, Program.EXEC: {60: 45_000}}
    assert version.currency == "EUR"


def test_effective_from_must_be_the_first_of_a_month():
    with pytest.raises(ValidationError, match="first day of a month") as refused:
        version_input(effective_from=date(2026, 7, 15))
    assert error_locations(refused) == [("effective_from",)]


@pytest.mark.parametrize(
    ("prices", "location"),
    [
        ({"SCALE": {"31": 100}}, ("session_prices", "SCALE", "31", "[key]")),
        ({"SCALE": {"30": -1}}, ("session_prices", "SCALE", "30")),
        ({"SCALE": {"30": 10_000_001}}, ("session_prices", "SCALE", "30")),
        ({"SCALE": {"30": 12.5}}, ("session_prices", "SCALE", "30")),
        ({"SCALE": {}}, ("session_prices", "SCALE")),
        ({}, ("session_prices",)),
        ({"COFFEE": {"30": 100}}, ("session_prices", "COFFEE", "[key]")),
    ],
)
def test_session_prices_are_bounded_integers_for_bookable_lengths(prices, location):
    with pytest.raises(ValidationError) as refused:
        version_input(session_prices=prices)
    assert location in error_locations(refused)


def test_session_prices_accept_the_bounds():
    version = version_input(session_prices={"SCALE": {"30": 0, "45": 10_000_000, "60": 1}})
    assert version.session_prices[Program.SCALE] == {30: 0, 45: 10_000_000, 60: 1}


@pytest.mark.parametrize(
    "tiers",
    [
        [{"from_session": 1, "discount_bps": 500}],  # tier 1 is the implicit list price
        [{"from_session": 10, "discount_bps": 500}, {"from_session": 10, "discount_bps": 900}],
        [{"from_session": 20, "discount_bps": 500}, {"from_session": 10, "discount_bps": 900}],
        [{"from_session": 2 + i, "discount_bps": 100} for i in range(11)],
        [{"from_session": 5, "discount_bps": 10_001}],
        [{"from_session": 0, "discount_bps": 100}],
    ],
)
def test_tiers_are_bounded_and_strictly_increasing_after_session_one(tiers):
    with pytest.raises(ValidationError) as refused:
        version_input(tiers=tiers)
    assert all(location[0] == "tiers" for location in error_locations(refused))


@pytest.mark.parametrize("field", ["late_cancel_fee_bps", "no_show_fee_bps"])
@pytest.mark.parametrize("value", [-1, 10_001])
def test_fee_bps_are_bounded(field, value):
    with pytest.raises(ValidationError) as refused:
        version_input(**{field: value})
    assert error_locations(refused) == [(field,)]


def test_input_refuses_unknown_fields_but_the_stored_version_ignores_them():
    with pytest.raises(ValidationError) as refused:
        version_input(discount=5)
    assert error_locations(refused) == [("discount",)]
    stored = PriceBookVersion.model_validate(
        {**version_input().model_dump(mode="json"), "version": 1, "created_at": NOW, "created_by": "f", "later": 1}
    )
    assert stored.version == 1
    assert not hasattr(stored, "later")


def test_currency_must_be_supported_and_is_normalised():
    assert version_input(currency="jpy").currency == "JPY"
    with pytest.raises(ValidationError) as refused:
        version_input(currency="XXX")
    assert error_locations(refused) == [("currency",)]


# ---------------------------------------------------------------------------- history


def test_version_selection_by_effective_date_including_a_mid_year_change():
    book = (
        PriceBook(org_id="org-1")
        .with_version(version_input(effective_from=date(2026, 1, 1)), now=NOW, actor="finance-1")
        .with_version(
            version_input(effective_from=date(2026, 7, 1), session_prices={"SCALE": {"30": 13_000}}),
            now=NOW,
            actor="finance-2",
        )
    )
    assert [v.version for v in book.versions] == [1, 2]
    assert book.version_for(date(2026, 1, 1)).version == 1
    assert book.version_for(date(2026, 6, 30)).version == 1
    assert book.version_for(date(2026, 7, 1)).version == 2
    assert book.version_for(date(2030, 2, 1)).version == 2
    assert book.versions[1].created_by == "finance-2"
    assert book.versions[1].created_at == NOW
    with pytest.raises(NoPriceBook) as refused:
        book.version_for(date(2025, 12, 31))
    assert isinstance(refused.value, InvalidInput)
    assert refused.value.field == "price_book"
    assert refused.value.status == 422


def test_version_selection_does_not_depend_on_stored_order():
    book = (
        PriceBook(org_id="org-1")
        .with_version(version_input(effective_from=date(2026, 1, 1)), now=NOW, actor="f")
        .with_version(version_input(effective_from=date(2026, 7, 1)), now=NOW, actor="f")
    )
    shuffled = PriceBook(org_id="org-1", versions=list(reversed(book.versions)))
    assert shuffled.version_for(date(2026, 8, 1)).version == 2
    assert shuffled.version_for(date(2026, 3, 1)).version == 1


def test_empty_price_book_has_no_version():
    with pytest.raises(NoPriceBook):
        PriceBook(org_id="org-1").version_for(date(2026, 1, 1))


def test_versions_are_append_only():
    book = PriceBook(org_id="org-1").with_version(version_input(effective_from=date(2026, 7, 1)), now=NOW, actor="f")
    for earlier_or_same in (date(2026, 7, 1), date(2026, 3, 1)):
        with pytest.raises(InvalidInput) as refused:
            book.with_version(version_input(effective_from=earlier_or_same), now=NOW, actor="f")
        assert refused.value.field == "effective_from"
    later = book.with_version(version_input(effective_from=date(2026, 8, 1)), now=NOW, actor="f")
    assert len(book.versions) == 1  # the original is untouched
    assert [v.effective_from for v in later.versions] == [date(2026, 7, 1), date(2026, 8, 1)]


def test_a_version_cannot_change_the_currency():
    book = PriceBook(org_id="org-1").with_version(version_input(), now=NOW, actor="f")
    with pytest.raises(InvalidInput) as refused:
        book.with_version(version_input(effective_from=date(2027, 1, 1), currency="USD"), now=NOW, actor="f")
    assert refused.value.field == "currency"
    assert "EUR" in refused.value.message


def test_price_book_round_trips_through_json():
    book = PriceBook(org_id="org-1").with_version(
        version_input(tiers=[{"from_session": 11, "discount_bps": 1000}], monthly_commitment_minor=500_000),
        now=NOW,
        actor="f",
    )
    assert PriceBook.model_validate_json(book.model_dump_json()) == book


# ---------------------------------------------------------------------------- charges


def stored(**overrides: object) -> PriceBookVersion:
    return PriceBook(org_id="org-1").with_version(version_input(**overrides), now=NOW, actor="f").versions[0]


def test_completed_session_charges_the_list_price():
    charge = charge_for(stored(), Program.SCALE, 30, Outcome.COMPLETED)
    assert charge == UsageCharge(
        price_book_version=1, currency="EUR", list_price_minor=12_000, fee_bps=None, amount_minor=12_000
    )


def test_fees_round_half_up_per_session():
    version = stored(session_prices={"SCALE": {"30": 2999}}, no_show_fee_bps=3333, late_cancel_fee_bps=5000)
    no_show = charge_for(version, Program.SCALE, 30, Outcome.NO_SHOW)
    late = charge_for(version, Program.SCALE, 30, Outcome.LATE_CANCELLED)
    assert (no_show.fee_bps, no_show.amount_minor, no_show.list_price_minor) == (3333, 1000, 2999)
    assert (late.fee_bps, late.amount_minor) == (5000, 1500)


def test_default_fees_charge_the_full_price():
    version = stored()
    assert charge_for(version, Program.EXEC, 60, Outcome.NO_SHOW).amount_minor == 45_000
    assert charge_for(version, Program.EXEC, 60, Outcome.LATE_CANCELLED).amount_minor == 45_000


@pytest.mark.parametrize(("program", "length"), [(Program.GROW, 45), (Program.SCALE, 60)])
def test_an_unpriced_program_or_length_is_refused_naming_it(program, length):
    with pytest.raises(InvalidInput) as refused:
        charge_for(stored(), program, length, Outcome.COMPLETED)
    assert refused.value.field == "price_book"
    assert str(program) in refused.value.message
    assert f"{length} min" in refused.value.message


@settings(max_examples=200, deadline=None)
@given(
    price=st.integers(0, 10_000_000),
    fee_bps=st.integers(0, 10_000),
    outcome=st.sampled_from(list(Outcome)),
)
def test_charges_are_integer_and_never_exceed_the_list_price(price, fee_bps, outcome):
    version = stored(session_prices={"GROW": {"45": price}}, no_show_fee_bps=fee_bps, late_cancel_fee_bps=fee_bps)
    charge = charge_for(version, Program.GROW, 45, outcome)
    assert type(charge.amount_minor) is int
    assert 0 <= charge.amount_minor <= price
    expected = Decimal(price) if outcome is Outcome.COMPLETED else Decimal(price * fee_bps) / 10_000
    assert charge.amount_minor == int(expected.quantize(Decimal(1), rounding=ROUND_HALF_UP))
