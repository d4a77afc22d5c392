"""The one place Square's wire objects are mapped onto PayQL's gateway types.

Everything here works on plain JSON mappings (an SDK answer dumped to its wire JSON, or a webhook's
`data.object`), so an API answer and a verified event go through the same code. Nothing here calls Square.
An unknown payment or refund status maps to PENDING, never to a success.

Square's `Payment` carries no metadata: our payment id travels in `reference_id` (at most 40 characters; ours are
36). After a partial capture (UpdatePayment lowered `amount_money`, then CompletePayment) `approved_money` still
holds what was authorized: the payment's amount is the larger of the two, the captured part is `amount_money`.
Amounts are in the currency's smallest unit on both sides (JPY whole yen, USD cents): nothing is converted.

The `paymentMethod` the SPA sends (`parse_payment_method`) is the Web Payments SDK's token as is (`cnon:...`), or,
when the buyer was verified (SCA: `payments.verifyBuyer(token, details)`), the JSON object
`{"sourceId": "<token>", "verificationToken": "<verifyBuyer's token>"}`: exactly these keys, both non-empty strings
of at most `MAX_TOKEN_LENGTH` characters. The verification token goes to Square as `verification_token`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from domain.money import Money
from domain.statuses import DisputeStatus, PaymentStatus, RefundStatus
from gateways.errors import InvalidGatewayRequest
from gateways.types import DisputeResult, PaymentResult, RefundResult

_PAYMENT_STATUSES: Final[Mapping[str, PaymentStatus]] = MappingProxyType(
    {
        "APPROVED": PaymentStatus.AUTHORIZED,
        "PENDING": PaymentStatus.PROCESSING,
        "COMPLETED": PaymentStatus.PAID,
        "CANCELED": PaymentStatus.CANCELED,
        "FAILED": PaymentStatus.FAILED,
    }
)
_REFUND_STATUSES: Final[Mapping[str, RefundStatus]] = MappingProxyType(
    {
        "PENDING": RefundStatus.PENDING,
        "COMPLETED": RefundStatus.SUCCEEDED,
        "REJECTED": RefundStatus.FAILED,
        "FAILED": RefundStatus.FAILED,
    }
)
_DISPUTE_STATUSES: Final[Mapping[str, DisputeStatus]] = MappingProxyType(
    {
        "EVIDENCE_REQUIRED": DisputeStatus.NEEDS_RESPONSE,
        "INQUIRY_EVIDENCE_REQUIRED": DisputeStatus.NEEDS_RESPONSE,
        "PROCESSING": DisputeStatus.UNDER_REVIEW,
        "INQUIRY_PROCESSING": DisputeStatus.UNDER_REVIEW,
        "WON": DisputeStatus.WON,
        # An inquiry closed without becoming a chargeback: the money never left.
        "INQUIRY_CLOSED": DisputeStatus.WON,
        "LOST": DisputeStatus.LOST,
        "ACCEPTED": DisputeStatus.LOST,
    }
)
# Square's PAYMENT_METHOD_ERROR codes → our normalized decline codes (keys of `gateways.errors.DECLINE_CODES`);
# any other code is a generic decline.
_DECLINE_CODES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "INSUFFICIENT_FUNDS": "insufficient_funds",
        "CARD_EXPIRED": "expired_card",
        "INVALID_EXPIRATION": "expired_card",
        "EXPIRATION_FAILURE": "expired_card",
        "BAD_EXPIRATION": "expired_card",
        "TEMPORARY_ERROR": "processing_error",
        "CARD_DECLINED_VERIFICATION_REQUIRED": "authentication_required",
    }
)


# A card token or a verification token longer than this is not one the Web Payments SDK made.
MAX_TOKEN_LENGTH: Final = 4096
_SOURCE_KEYS: Final = frozenset({"sourceId", "verificationToken"})


@dataclass(frozen=True, slots=True)
class CardSource:
    """What pays: the Web Payments SDK's card token, and verifyBuyer's token when the buyer was verified."""

    source_id: str
    verification_token: str | None = None


def parse_payment_method(raw: str) -> CardSource:
    """The SPA's `paymentMethod`: a bare token, or `{"sourceId", "verificationToken"}` (see the module docstring).
    Anything else is refused before Square is called."""
    if not raw.lstrip().startswith(("{", "[")):
        if not raw or len(raw) > MAX_TOKEN_LENGTH:
            raise InvalidGatewayRequest("The payment method is not a Square card token.", detail="bad token length")
        return CardSource(raw)
    try:
        sent = json.loads(raw)
    except ValueError:
        raise InvalidGatewayRequest("The payment method is not a Square card token.", detail="not JSON") from None
    if not isinstance(sent, dict) or not sent.keys() <= _SOURCE_KEYS:
        raise InvalidGatewayRequest(
            "The payment method is not a Square card token.",
            detail=f"paymentMethod JSON takes the keys {sorted(_SOURCE_KEYS)} only",
        )
    source_id, verification = sent.get("sourceId"), sent.get("verificationToken")
    for name, value in (("sourceId", source_id), ("verificationToken", verification)):
        if (name == "sourceId" or value is not None) and not (
            isinstance(value, str) and 0 < len(value) <= MAX_TOKEN_LENGTH
        ):
            raise InvalidGatewayRequest(
                "The payment method is not a Square card token.",
                detail=f"{name} must be a non-empty string of at most {MAX_TOKEN_LENGTH} characters",
            )
    assert isinstance(source_id, str)
    return CardSource(source_id, verification if isinstance(verification, str) else None)


def payment_status(gateway_status: str) -> PaymentStatus:
    """A Payment status as a PayQL status: the one mapping. Anything unknown is PENDING."""
    return _PAYMENT_STATUSES.get(gateway_status, PaymentStatus.PENDING)


def refund_status(gateway_status: str) -> RefundStatus:
    return _REFUND_STATUSES.get(gateway_status, RefundStatus.PENDING)


def dispute_status(gateway_status: str) -> DisputeStatus:
    # Unknown: someone must look at it, as for a new dispute.
    return _DISPUTE_STATUSES.get(gateway_status, DisputeStatus.NEEDS_RESPONSE)


def decline_code(code: str) -> str:
    return _DECLINE_CODES.get(code, "generic_decline")


def timestamp(value: object) -> int | None:
    """An RFC 3339 timestamp as epoch seconds (None when absent or unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def payment_result(payment: Mapping[str, Any]) -> PaymentResult:
    status = _text(payment, "status")
    amount = _money(payment, "amount_money")
    approved = payment.get("approved_money")
    authorized = (
        max(amount.amount, _money(payment, "approved_money").amount) if isinstance(approved, Mapping) else amount.amount
    )
    refunded = payment.get("refunded_money")
    mapped = payment_status(status)
    errors = _card_errors(payment)
    reference_id = payment.get("reference_id")
    return PaymentResult(
        reference=_text(payment, "id"),
        status=mapped,
        amount=Money(authorized, amount.currency),
        payql_payment_id=reference_id if isinstance(reference_id, str) and reference_id else None,
        created=timestamp(payment.get("created_at")),
        amount_authorized=amount.amount if mapped in (PaymentStatus.AUTHORIZED, PaymentStatus.PAID) else 0,
        amount_captured=amount.amount if mapped is PaymentStatus.PAID else 0,
        amount_refunded=_money(payment, "refunded_money").amount if isinstance(refunded, Mapping) else 0,
        gateway_status=status,
        decline_code=decline_code(errors[0]) if mapped is PaymentStatus.FAILED and errors else None,
        decline_message="The card was declined." if mapped is PaymentStatus.FAILED else None,
    )


def refund_result(refund: Mapping[str, Any]) -> RefundResult:
    status = _text(refund, "status")
    return RefundResult(
        reference=_text(refund, "id"),
        payment_reference=_text(refund, "payment_id"),
        status=refund_status(status),
        amount=_money(refund, "amount_money"),
        gateway_status=status,
        failure_reason=status.lower() if refund_status(status) is RefundStatus.FAILED else None,
    )


def dispute_result(dispute: Mapping[str, Any], *, payql_payment_id: str | None = None) -> DisputeResult:
    state = _text(dispute, "state")
    disputed = dispute.get("disputed_payment")
    payment_id = disputed.get("payment_id") if isinstance(disputed, Mapping) else None
    if not isinstance(payment_id, str) or not payment_id:
        raise ValueError("dispute names no disputed payment")
    reason = dispute.get("reason")
    return DisputeResult(
        reference=_text(dispute, "id"),
        payment_reference=payment_id,
        status=dispute_status(state),
        amount=_money(dispute, "amount_money"),
        reason=reason if isinstance(reason, str) else "",
        payql_payment_id=payql_payment_id,
        evidence_due_by=timestamp(dispute.get("due_at")),
        created=timestamp(dispute.get("created_at")),
        gateway_status=state,
    )


def _card_errors(payment: Mapping[str, Any]) -> list[str]:
    details = payment.get("card_details")
    errors = details.get("errors") if isinstance(details, Mapping) else None
    if not isinstance(errors, list):
        return []
    return [str(e["code"]) for e in errors if isinstance(e, Mapping) and isinstance(e.get("code"), str)]


def _money(obj: Mapping[str, Any], key: str) -> Money:
    value = obj.get(key)
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} is missing")
    amount, currency = value.get("amount"), value.get("currency")
    if not isinstance(amount, int) or isinstance(amount, bool) or not isinstance(currency, str):
        raise ValueError(f"{key} is not a Money")
    return Money(amount, currency)


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is missing")
    return value
