"""Money as integer minor units with an ISO-4217 currency.

Never a float, never a Decimal crossing a boundary: amounts are `int` minor units and the
currency's exponent (JPY 0, USD 2, KWD 3) is only used to format for humans and to validate.
"""

from __future__ import annotations

from dataclasses import dataclass

# ISO-4217 minor-unit exponents that differ from the default of 2.
# fmt: off
_EXPONENT_OVERRIDES: dict[str, int] = {
    # zero-decimal
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    # three-decimal
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # four-decimal
    "CLF": 4, "UYW": 4,
}

# Active ISO-4217 codes with exponent 2 that we accept; anything else is refused as unknown.
_TWO_DECIMAL: frozenset[str] = frozenset((
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD "
    "CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ "
    "GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA "
    "MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR "
    "RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD "
    "TWD TZS UAH USD UZS VES WST XCD YER ZAR ZMW ZWL"
).split())
# fmt: on


class UnknownCurrency(ValueError):
    """The code is not an active ISO-4217 currency we know the exponent of."""


def normalize_currency(code: str) -> str:
    upper = code.strip().upper()
    if upper not in _EXPONENT_OVERRIDES and upper not in _TWO_DECIMAL:
        raise UnknownCurrency(f"unknown currency {code!r}")
    return upper


def currency_exponent(code: str) -> int:
    """Number of decimal digits of the currency's minor unit (JPY 0, USD 2, KWD 3)."""
    upper = normalize_currency(code)
    return _EXPONENT_OVERRIDES.get(upper, 2)


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: `amount` minor units of `currency` (e.g. 1999 USD is $19.99)."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("Money.amount must be an int of minor units")
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    @property
    def exponent(self) -> int:
        return currency_exponent(self.currency)

    def decimal_string(self) -> str:
        """The amount in major units as an exact decimal string: 1999 USD → '19.99', 5 KWD → '0.005'."""
        exp = self.exponent
        sign = "-" if self.amount < 0 else ""
        digits = str(abs(self.amount))
        if exp == 0:
            return sign + digits
        digits = digits.rjust(exp + 1, "0")
        return f"{sign}{digits[:-exp]}.{digits[-exp:]}"

    def __add__(self, other: Money) -> Money:
        self._require_same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._require_same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def _require_same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __str__(self) -> str:
        return f"{self.decimal_string()} {self.currency}"
