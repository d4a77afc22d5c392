"""The sandbox's test payment methods and test card numbers, and how each one behaves.

Only test cards exist in the sandbox: a number that is not listed here is refused. Nothing in this
module may log, store or echo a card number it is asked about; callers keep only the behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True, slots=True)
class CardBehaviour:
    """What charging a card does: succeed, decline with `decline_code`, or ask for 3-D Secure first."""

    brand: str
    last4: str
    decline_code: str | None = None
    requires_authentication: bool = False


# (Stripe-style payment method id, test card number, brand, decline code, needs 3-D Secure)
_TEST_CARDS: Final = (
    ("pm_card_visa", "4242424242424242", "visa", None, False),
    ("pm_card_mastercard", "5555555555554444", "mastercard", None, False),
    ("pm_card_chargeDeclined", "4000000000000002", "visa", "generic_decline", False),
    ("pm_card_chargeDeclinedInsufficientFunds", "4000000000009995", "visa", "insufficient_funds", False),
    ("pm_card_chargeDeclinedExpiredCard", "4000000000000069", "visa", "expired_card", False),
    ("pm_card_chargeDeclinedProcessingError", "4000000000000119", "visa", "processing_error", False),
    ("pm_card_authenticationRequired", "4000002500003155", "visa", None, True),
)

PAYMENT_METHODS: Final[Mapping[str, CardBehaviour]] = MappingProxyType(
    {pm: CardBehaviour(brand, number[-4:], code, auth) for pm, number, brand, code, auth in _TEST_CARDS}
)

_BY_NUMBER: Final[Mapping[str, CardBehaviour]] = MappingProxyType(
    {number: PAYMENT_METHODS[pm] for pm, number, *_ in _TEST_CARDS}
)

# Stripe's wording: safe to show a shopper, and the same text whichever gateway PayQL talks to.
_DECLINE_MESSAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "generic_decline": "Your card was declined.",
        "insufficient_funds": "Your card has insufficient funds.",
        "expired_card": "Your card has expired.",
        "processing_error": "An error occurred while processing your card. Try again in a little bit.",
        "authentication_required": (
            "We are unable to authenticate your payment method. Please choose a different payment method and try again."
        ),
    }
)


def behaviour_for_payment_method(payment_method: str) -> CardBehaviour | None:
    """The behaviour of a `pm_card_*` test payment method, or None when it is not one."""
    return PAYMENT_METHODS.get(payment_method)


def behaviour_for_card_number(number: str) -> CardBehaviour | None:
    """The behaviour of a test card number (spaces and dashes allowed), or None for any other number."""
    return _BY_NUMBER.get(number.replace(" ", "").replace("-", ""))


def decline_message(decline_code: str) -> str:
    return _DECLINE_MESSAGES.get(decline_code, _DECLINE_MESSAGES["generic_decline"])
