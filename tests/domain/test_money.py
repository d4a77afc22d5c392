"""Money: integer minor units, ISO-4217 exponents, exact decimal strings, and no mixing of currencies."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.money import Money, UnknownCurrency, currency_exponent, normalize_currency


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("CLP", 0),
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("TND", 3),
        ("CLF", 4),
        ("UYW", 4),
    ],
)
def test_exponent_follows_iso_4217(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent
    assert Money(1, currency).exponent == exponent


def test_currency_codes_are_normalized_to_upper_case() -> None:
    assert normalize_currency(" usd ") == "USD"
    assert Money(100, "eur").currency == "EUR"
    assert Money(100, "eur") == Money(100, "EUR")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1999, "USD", "19.99"),
        (0, "USD", "0.00"),
        (5, "USD", "0.05"),
        (100, "USD", "1.00"),
        (-5, "USD", "-0.05"),
        (-1999, "USD", "-19.99"),
        (0, "JPY", "0"),
        (500, "JPY", "500"),
        (-500, "JPY", "-500"),
        (5, "KWD", "0.005"),
        (-5, "KWD", "-0.005"),
        (1234, "KWD", "1.234"),
        (1, "CLF", "0.0001"),
        (0, "CLF", "0.0000"),
        (123456789012345678, "USD", "1234567890123456.78"),
    ],
)
def test_decimal_string_is_exact(amount: int, currency: str, expected: str) -> None:
    money = Money(amount, currency)
    assert money.decimal_string() == expected
    assert Decimal(expected) == Decimal(amount).scaleb(-money.exponent)
    assert str(money) == f"{expected} {currency}"


@pytest.mark.parametrize("code", ["XYZ", "US", "USDD", "", "EURO", "BTC", "usd1"])
def test_unknown_currency_is_refused(code: str) -> None:
    with pytest.raises(UnknownCurrency, match="unknown currency"):
        Money(100, code)
    with pytest.raises(UnknownCurrency):
        currency_exponent(code)


def test_unknown_currency_is_a_value_error() -> None:
    assert issubclass(UnknownCurrency, ValueError)


@pytest.mark.parametrize("amount", [19.99, 20.0, Decimal("19.99"), "1999", True, False, None])
def test_amount_must_be_an_int_of_minor_units(amount: object) -> None:
    with pytest.raises(TypeError, match="int of minor units"):
        Money(amount, "USD")  # type: ignore[arg-type]


def test_times_refuses_a_fractional_quantity() -> None:
    with pytest.raises(TypeError):
        Money(333, "USD").times(1.5)  # type: ignore[arg-type]


def test_arithmetic_within_one_currency() -> None:
    assert Money(1999, "USD") + Money(1, "USD") == Money(2000, "USD")
    assert Money(1999, "USD") - Money(2000, "USD") == Money(-1, "USD")
    assert Money(1999, "USD").times(3) == Money(5997, "USD")


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (Money(100, "USD"), Money(100, "EUR")),
        (Money(100, "JPY"), Money(100, "USD")),
        (Money(1000, "KWD"), Money(1000, "BHD")),
    ],
)
def test_arithmetic_across_currencies_is_refused(left: Money, right: Money) -> None:
    with pytest.raises(ValueError, match=f"cannot combine {left.currency} with {right.currency}"):
        left + right
    with pytest.raises(ValueError, match="cannot combine"):
        left - right


def test_money_is_immutable() -> None:
    money = Money(100, "USD")
    with pytest.raises(AttributeError):
        money.amount = 200  # type: ignore[misc]
