"""Checks the sandbox processor makes on a request before it changes anything.

Each check raises `SandboxInvalidRequest` with a Stripe-like code. A refusal message may reach a
shopper or a log, so it must never echo a card number, a CVC or a payment method string.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from domain.money import UnknownCurrency, normalize_currency
from gateways.sandbox.processor.errors import SandboxInvalidRequest
from gateways.sandbox.processor.objects import CaptureMode, IntentStatus, SandboxPaymentIntent

# Stripe's limits, so callers meet the same refusals here as with a real processor.
MAX_AMOUNT = 99_999_999
_MAX_KEY_LENGTH = 255
_MAX_METADATA_KEYS, _MAX_METADATA_KEY_LENGTH, _MAX_METADATA_VALUE_LENGTH = 50, 40, 500


def _invalid(message: str, code: str = "parameter_invalid") -> SandboxInvalidRequest:
    return SandboxInvalidRequest(message, code=code)


def idempotency_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY_LENGTH:
        raise _invalid(f"An idempotency key of 1 to {_MAX_KEY_LENGTH} characters is required.")
    return key


def positive_amount(amount: object, name: str) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise _invalid(f"{name} must be an integer of minor units.")
    if not 1 <= amount <= MAX_AMOUNT:
        raise _invalid(f"{name} must be between 1 and {MAX_AMOUNT}.")
    return amount


def currency(code: str) -> str:
    try:
        return normalize_currency(code)
    except (UnknownCurrency, AttributeError):
        raise _invalid("Invalid currency.") from None


def capture_mode(value: str) -> CaptureMode:
    try:
        return CaptureMode(value)
    except ValueError:
        raise _invalid("capture_method must be 'automatic' or 'manual'.") from None


def text(value: str, name: str, max_length: int) -> str:
    if not isinstance(value, str) or len(value) > max_length:
        raise _invalid(f"{name} must be a string of at most {max_length} characters.")
    return value


def return_url(url: str | None) -> str | None:
    # Only absolute http(s): the authentication page sends the shopper's browser there.
    if url is not None:
        parts = urlsplit(text(url, "return_url", 2048))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _invalid("return_url must be an absolute http(s) URL.", "url_invalid")
    return url


def metadata(values: Mapping[str, str] | None) -> dict[str, str]:
    items = dict(values or {})
    if len(items) > _MAX_METADATA_KEYS:
        raise _invalid(f"metadata can have at most {_MAX_METADATA_KEYS} keys.")
    for key, value in items.items():
        text(key, "A metadata key", _MAX_METADATA_KEY_LENGTH)
        text(value, "A metadata value", _MAX_METADATA_VALUE_LENGTH)
    return items


def year_month(now: int) -> tuple[int, int]:
    moment = datetime.fromtimestamp(now, UTC)
    return moment.year, moment.month


def expiry_year(exp_month: int, exp_year: int, now: int) -> int:
    """The four-digit expiry year, after refusing a malformed or past expiry date."""
    for value in (exp_month, exp_year):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid("The expiry month and year must be integers.")
    if not 1 <= exp_month <= 12:
        raise _invalid("Your card's expiration month is invalid.", "invalid_expiry_month")
    year = exp_year + 2000 if 0 <= exp_year < 100 else exp_year
    this_year, this_month = year_month(now)
    if (year, exp_month) < (this_year, this_month) or year > this_year + 50:
        raise _invalid("Your card's expiration year is invalid.", "invalid_expiry_year")
    return year


def cvc(value: str) -> None:
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) in (3, 4)):
        raise _invalid("Your card's security code is invalid.", "invalid_cvc")


def require_status(intent: SandboxPaymentIntent, *allowed: IntentStatus) -> None:
    if intent.status not in allowed:
        needed = " or ".join(status.value for status in allowed)
        raise _invalid(
            f"This PaymentIntent's status is {intent.status.value}; this action needs {needed}.",
            "payment_intent_unexpected_state",
        )


def require_currency(intent: SandboxPaymentIntent, code: str | None) -> None:
    if code is not None and currency(code) != intent.currency:
        raise _invalid(f"This PaymentIntent is in {intent.currency}, not {code}.", "currency_mismatch")


def require_within(amount: int, limit: int, what: str) -> None:
    if amount > limit:
        raise _invalid(f"The amount {amount} is more than the {limit} {what}.", "amount_too_large")
