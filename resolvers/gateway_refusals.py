"""Our own words for a gateway's failure of a capture, void, refund, payment check or charge.

The message depends only on the error's class in the taxonomy (`gateways.errors`), never on its
text: a gateway's own wording (which can name internal objects, fields or other customers'
references) goes to the operators' log here and never into a userError or a stored record.
"""

from __future__ import annotations

import logging
from typing import Final

from gateways.errors import (
    CustomerActionRequired,
    GatewayConfigurationError,
    GatewayError,
    GatewayIdempotencyConflict,
    GatewayUnavailable,
    InvalidGatewayRequest,
    NotSupported,
    PaymentDeclined,
)

logger = logging.getLogger(__name__)

# "{operation}" is a noun: "capture", "void", "refund", "payment check".
_MESSAGES: Final[dict[type[GatewayError], str]] = {
    GatewayUnavailable: "The payment provider did not answer; the {operation} may still happen. Retry shortly.",
    GatewayConfigurationError: "Payments are temporarily unavailable; the {operation} was not made.",
    PaymentDeclined: "The payment provider declined the {operation}.",
    CustomerActionRequired: "The customer must finish the payment before the {operation}.",
    InvalidGatewayRequest: "The payment provider refused the {operation}; refresh the payment and check its state.",
    GatewayIdempotencyConflict: "The payment provider already has this {operation} with different details.",
    NotSupported: "This gateway does not support this {operation}.",
    GatewayError: "The payment provider refused the {operation}.",
}


def refusal_message(operation: str, error: GatewayError, *, payment_id: object) -> str:
    """The message staff see for `error`; the gateway's own text is logged, not returned."""
    logger.warning(
        "gateway %s failed for payment %s (%s): %s [%s]",
        operation,
        payment_id,
        type(error).__name__,
        error.message,
        error.detail,
    )
    template = next(_MESSAGES[cls] for cls in type(error).__mro__ if cls in _MESSAGES)
    return template.format(operation=operation)


# What a shopper is told when the gateway refuses a charge for a reason that is not a decline.
_SHOPPER_MESSAGES: Final[dict[type[GatewayError], str]] = {
    InvalidGatewayRequest: "The payment provider could not use this payment method. Try another one.",
    GatewayIdempotencyConflict: "This payment was already started with other details. Start a new checkout.",
}


def shopper_refusal_message(error: GatewayError, *, payment_id: object) -> str:
    """The message a shopper sees for a refused charge; the gateway's own text is logged, not returned.
    Errors our adapters word themselves (NotSupported, CustomerActionRequired) keep their words."""
    template = _SHOPPER_MESSAGES.get(type(error))
    if template is None:
        return error.message
    logger.warning(
        "gateway refused the charge of payment %s (%s): %s [%s]",
        payment_id,
        type(error).__name__,
        error.message,
        error.detail,
    )
    return template
