"""Braintree's transactions and disputes mapped onto PayQL's results, each status mapping in one function.

A payment is a `sale` transaction; its refunds are `credit` transactions naming it (`refunded_transaction_id`),
listed in its `refund_ids`. Our payment id travels as the sale's `order_id`; a refund's `order_id` is derived from
its idempotency key. Submitting for settlement is
our capture: `submitted_for_settlement`, `settling` and `settled` are PAID. Submitting less than was authorized
changes the transaction's `amount` to the settled one; the authorized amount stays in its `status_history`.
An unknown status is never PAID: it maps to PENDING (and a refund's to PENDING).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from domain.money import Money, currency_exponent
from domain.statuses import DisputeStatus, PaymentStatus, RefundStatus
from gateways.types import DisputeResult, PaymentResult, RefundResult

_PAYMENT_STATUS: Final = {
    "authorizing": PaymentStatus.PROCESSING,
    "authorized": PaymentStatus.AUTHORIZED,
    "submitted_for_settlement": PaymentStatus.PAID,
    "settlement_pending": PaymentStatus.PAID,
    "settling": PaymentStatus.PAID,
    "settled": PaymentStatus.PAID,
    "settlement_confirmed": PaymentStatus.PAID,
    "voided": PaymentStatus.CANCELED,
    # The hold lapsed before capture: the funds went back, as after a void.
    "authorization_expired": PaymentStatus.CANCELED,
    "processor_declined": PaymentStatus.FAILED,
    "gateway_rejected": PaymentStatus.FAILED,
    "failed": PaymentStatus.FAILED,
    "settlement_declined": PaymentStatus.FAILED,
    "settlement_failed": PaymentStatus.FAILED,
}
_REFUND_STATUS: Final = {
    # Braintree accepted the credit; the money goes back with the next settlement batch.
    "submitted_for_settlement": RefundStatus.SUCCEEDED,
    "settlement_pending": RefundStatus.SUCCEEDED,
    "settling": RefundStatus.SUCCEEDED,
    "settled": RefundStatus.SUCCEEDED,
    "settlement_confirmed": RefundStatus.SUCCEEDED,
    "voided": RefundStatus.CANCELED,
    "processor_declined": RefundStatus.FAILED,
    "gateway_rejected": RefundStatus.FAILED,
    "failed": RefundStatus.FAILED,
    "settlement_declined": RefundStatus.FAILED,
    "settlement_failed": RefundStatus.FAILED,
}
_DISPUTE_STATUS: Final = {
    "open": DisputeStatus.NEEDS_RESPONSE,
    "disputed": DisputeStatus.UNDER_REVIEW,  # our evidence was finalized; the issuer decides
    "under_review": DisputeStatus.UNDER_REVIEW,
    "won": DisputeStatus.WON,
    "lost": DisputeStatus.LOST,
    "accepted": DisputeStatus.LOST,
    "auto_accepted": DisputeStatus.LOST,
    "expired": DisputeStatus.LOST,  # no answer before the reply-by date
}
# Processor response codes (2000-3999) → our normalized decline codes (gateways/errors.py DECLINE_CODES).
_DECLINE_CODES: Final = {
    "2001": "insufficient_funds",
    "2002": "insufficient_funds",  # limit exceeded
    "2003": "insufficient_funds",  # cardholder's activity limit exceeded
    "2004": "expired_card",
    "2099": "authentication_required",  # cardholder authentication required
    "3000": "processing_error",  # processor network unavailable
}
SETTLED_STATUSES: Final = frozenset(("settling", "settled", "settlement_confirmed"))
CAPTURED_STATUSES: Final = frozenset(("submitted_for_settlement", "settlement_pending")) | SETTLED_STATUSES
_COUNTED_REFUNDS: Final = frozenset({RefundStatus.SUCCEEDED, RefundStatus.PENDING})


def payment_status(status: str) -> PaymentStatus:
    return _PAYMENT_STATUS.get(status, PaymentStatus.PENDING)


def refund_status(status: str) -> RefundStatus:
    return _REFUND_STATUS.get(status, RefundStatus.PENDING)


def dispute_status(status: str) -> DisputeStatus:
    return _DISPUTE_STATUS.get(status, DisputeStatus.NEEDS_RESPONSE)


def decline_code(transaction: Any) -> str:
    """The normalized decline code of a declined, failed or rejected transaction."""
    if getattr(transaction, "status", "") == "gateway_rejected":
        reason = str(getattr(transaction, "gateway_rejection_reason", "") or "")
        return "authentication_required" if reason == "three_d_secure" else "card_declined"
    code = str(getattr(transaction, "processor_response_code", "") or "")
    if code in _DECLINE_CODES:
        return _DECLINE_CODES[code]
    if getattr(transaction, "status", "") == "failed":
        return "processing_error"
    return "generic_decline"


def decline_message(transaction: Any) -> str:
    if getattr(transaction, "status", "") == "gateway_rejected":
        if getattr(transaction, "gateway_rejection_reason", "") == "three_d_secure":
            return "The card needs 3-D Secure verification. Verify it and pay again."
        return "The payment was refused."
    text = str(getattr(transaction, "processor_response_text", "") or "")
    return f"The card was declined ({text})." if text else "The card was declined."


def refund_order_id(idempotency_key: str) -> str:
    """The `order_id` a refund (a credit transaction) carries: derived from our key, within Braintree's 255."""
    return f"payql-refund-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}"


def minor_units(amount: Decimal | str, currency: str) -> int:
    return int((Decimal(str(amount)) * 10 ** currency_exponent(currency)).to_integral_value())


def major_units(money: Money) -> str:
    """Braintree's amount: a decimal string in the currency's major unit ("10.00", "1500")."""
    exponent = currency_exponent(money.currency)
    return f"{Decimal(money.amount).scaleb(-exponent):.{exponent}f}"


def epoch(value: datetime | date | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


def authorized_amount(transaction: Any) -> Decimal:
    """What was authorized: the `authorized` entry of the status history (settling less lowers `amount`)."""
    for event in getattr(transaction, "status_history", None) or []:
        if getattr(event, "status", "") == "authorized" and getattr(event, "amount", None) is not None:
            return Decimal(str(event.amount))
    return Decimal(str(transaction.amount))


def payment_result(transaction: Any, refunds: Iterable[Any] = ()) -> PaymentResult:
    """A sale transaction (and its refund transactions, read separately) as our payment."""
    currency = str(transaction.currency_iso_code)
    status = payment_status(str(transaction.status))
    authorized = minor_units(authorized_amount(transaction), currency)
    succeeded = status in (PaymentStatus.AUTHORIZED, PaymentStatus.PAID)
    captured = minor_units(transaction.amount, currency) if str(transaction.status) in CAPTURED_STATUSES else 0
    refunded = sum(
        minor_units(refund.amount, currency)
        for refund in refunds
        if refund_status(str(refund.status)) in _COUNTED_REFUNDS
    )
    failed = status is PaymentStatus.FAILED
    return PaymentResult(
        reference=str(transaction.id),
        status=status,
        amount=Money(authorized, currency),
        payql_payment_id=getattr(transaction, "order_id", None) or None,
        created=epoch(getattr(transaction, "created_at", None)),
        amount_authorized=authorized if succeeded or status is PaymentStatus.CANCELED else 0,
        amount_captured=captured,
        amount_refunded=refunded,
        gateway_status=str(transaction.status),
        decline_code=decline_code(transaction) if failed else None,
        decline_message=decline_message(transaction) if failed else None,
    )


def refund_result(refund: Any) -> RefundResult:
    currency = str(refund.currency_iso_code)
    status = refund_status(str(refund.status))
    return RefundResult(
        reference=str(refund.id),
        payment_reference=str(refund.refunded_transaction_id),
        status=status,
        amount=Money(minor_units(refund.amount, currency), currency),
        gateway_status=str(refund.status),
        failure_reason=str(getattr(refund, "processor_response_text", "") or "") or None
        if status is RefundStatus.FAILED
        else None,
    )


def dispute_result(dispute: Any) -> DisputeResult:
    currency = str(dispute.currency_iso_code)
    transaction = getattr(dispute, "transaction", None)
    amount = getattr(dispute, "amount_disputed", None) or dispute.amount
    return DisputeResult(
        reference=str(dispute.id),
        payment_reference=str(getattr(transaction, "id", "") or ""),
        status=dispute_status(str(dispute.status)),
        amount=Money(minor_units(amount, currency), currency),
        reason=str(getattr(dispute, "reason", "") or ""),
        payql_payment_id=getattr(transaction, "order_id", None) or None,
        evidence_due_by=epoch(getattr(dispute, "reply_by_date", None)),
        created=epoch(getattr(dispute, "created_at", None) or getattr(dispute, "received_date", None)),
        gateway_status=str(dispute.status),
    )
