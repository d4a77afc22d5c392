"""Razorpay's wire objects to and from ours. Each Razorpay status is mapped onto ours in exactly one function,
and an unknown one is PENDING, never success.

Our payment's reference is the Razorpay Order's id (`order_...`): the SPA opens Checkout with it, and the order
gathers the shopper's attempts (payments, `pay_...`). Its state is read from the order and its payments together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from domain.money import Money
from domain.statuses import CaptureMethod, DisputeStatus, NextActionType, PaymentStatus, RefundStatus
from gateways.razorpay.errors import decline_code
from gateways.types import (
    PAYQL_PAYMENT_ID,
    ChargeRequest,
    DisputeEvidence,
    DisputeResult,
    NextAction,
    PaymentResult,
    RefundResult,
)

# Notes (Razorpay's metadata: at most 15 keys, 256 characters each) carry what we must find again.
IDEMPOTENCY_NOTE: Final = "payql_idempotency_key"
RECEIPT_LIMIT: Final = 40  # characters, Razorpay's limit on an order's `receipt`

_PAYMENT_STATUSES: Final = {
    "created": PaymentStatus.PROCESSING,  # details submitted, the bank has not answered yet
    "authorized": PaymentStatus.AUTHORIZED,
    "captured": PaymentStatus.PAID,
    "refunded": PaymentStatus.PAID,  # refunds are tracked by amounts
    "failed": PaymentStatus.FAILED,
}
_ORDER_STATUSES: Final = {
    "created": PaymentStatus.REQUIRES_ACTION,  # waiting for the shopper in Checkout
    "attempted": PaymentStatus.REQUIRES_ACTION,  # tried (and failed, or not yet captured): still payable
    "paid": PaymentStatus.PAID,
}
_REFUND_STATUSES: Final = {
    "pending": RefundStatus.PENDING,
    "processed": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
}
_DISPUTE_STATUSES: Final = {
    "open": DisputeStatus.NEEDS_RESPONSE,
    "under_review": DisputeStatus.UNDER_REVIEW,
    "won": DisputeStatus.WON,
    "closed": DisputeStatus.WON,  # closed without a loss: the funds stay with the business
    "lost": DisputeStatus.LOST,
}
# Which of an order's payments decides its state: a captured one over an authorized one over one in flight.
_PRECEDENCE: Final = ("captured", "refunded", "authorized", "created")


def payment_status(status: str) -> PaymentStatus:
    """A Razorpay payment's status."""
    return _PAYMENT_STATUSES.get(status, PaymentStatus.PENDING)


def order_status(status: str) -> PaymentStatus:
    """A Razorpay order's status, when none of its payments decides."""
    return _ORDER_STATUSES.get(status, PaymentStatus.PENDING)


def refund_status(status: str) -> RefundStatus:
    return _REFUND_STATUSES.get(status, RefundStatus.PENDING)


def dispute_status(status: str) -> DisputeStatus:
    """Unknown → NEEDS_RESPONSE: a dispute we cannot read is one to look at, never one won."""
    return _DISPUTE_STATUSES.get(status, DisputeStatus.NEEDS_RESPONSE)


def notes_of(entity: Mapping[str, Any]) -> dict[str, str]:
    """An entity's notes; Razorpay renders empty notes as `[]`."""
    notes = entity.get("notes")
    return {str(k): str(v) for k, v in notes.items()} if isinstance(notes, Mapping) else {}


def receipt_for(request: ChargeRequest) -> str:
    """The order's `receipt`: our payment id (a UUID, 36 characters), which `find_payment` searches by; without
    one, a digest of the idempotency key that fits Razorpay's 40 characters."""
    payment_id = request.metadata.get(PAYQL_PAYMENT_ID, "")
    if payment_id and len(payment_id) <= RECEIPT_LIMIT:
        return payment_id
    return "k_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[: RECEIPT_LIMIT - 2]


def order_request(request: ChargeRequest) -> dict[str, Any]:
    notes = {k: v[:256] for k, v in request.metadata.items()}
    notes[IDEMPOTENCY_NOTE] = request.idempotency_key[:256]
    if request.description:
        notes["description"] = request.description[:256]
    return {
        "amount": request.amount.amount,
        "currency": request.amount.currency,
        "receipt": receipt_for(request),
        "notes": dict(list(notes.items())[:15]),
        # Automatic capture: Razorpay captures the payment as soon as it is authorized; manual: it stays authorized.
        "payment_capture": request.capture_method is CaptureMethod.AUTOMATIC,
    }


def deciding_payment(payments: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for status in _PRECEDENCE:
        for payment in payments:
            if payment.get("status") == status:
                return payment
    return None


def payment_result(order: Mapping[str, Any], payments: Sequence[Mapping[str, Any]]) -> PaymentResult:
    """Our payment as a Razorpay order and its payments say."""
    amount = Money(int(order["amount"]), str(order["currency"]).upper())
    deciding = deciding_payment(payments)
    common: dict[str, Any] = {
        "reference": str(order["id"]),
        "amount": amount,
        "payql_payment_id": notes_of(order).get(PAYQL_PAYMENT_ID),
        "created": int(order["created_at"]) if order.get("created_at") is not None else None,
    }
    if deciding is not None:
        status = payment_status(str(deciding["status"]))
        paid = status is PaymentStatus.PAID
        return PaymentResult(
            status=status,
            amount_authorized=int(deciding["amount"])
            if status in (PaymentStatus.AUTHORIZED, PaymentStatus.PAID)
            else 0,
            amount_captured=int(deciding["amount"]) if paid else 0,
            amount_refunded=int(deciding.get("amount_refunded") or 0) if paid else 0,
            gateway_status=f"order:{order.get('status')} payment:{deciding['id']}:{deciding['status']}",
            **common,
        )
    status = order_status(str(order.get("status")))
    failed = [p for p in payments if p.get("status") == "failed"]
    last_failure = max(failed, key=lambda p: int(p.get("created_at") or 0)) if failed else None
    return PaymentResult(
        status=status,
        # The SPA opens Razorpay Checkout with the order id (and the public key id from publicConfig).
        next_action=NextAction(NextActionType.CONFIRM_WITH_SDK, client_secret=str(order["id"]))
        if status is PaymentStatus.REQUIRES_ACTION
        else None,
        decline_code=decline_code(last_failure.get("error_reason")) if last_failure else None,
        decline_message=str(last_failure.get("error_description") or "") or None if last_failure else None,
        gateway_status=f"order:{order.get('status')}",
        **common,
    )


def refund_result(refund: Mapping[str, Any], *, order_id: str) -> RefundResult:
    return RefundResult(
        reference=str(refund["id"]),
        payment_reference=order_id,
        status=refund_status(str(refund.get("status"))),
        amount=Money(int(refund["amount"]), str(refund["currency"]).upper()),
        gateway_status=str(refund.get("status")),
        failure_reason="refund failed at the bank" if refund.get("status") == "failed" else None,
    )


def dispute_result(dispute: Mapping[str, Any], *, order_id: str | None, payql_payment_id: str | None) -> DisputeResult:
    """`order_id`: the disputed payment's order (our payment's reference); the dispute names only the payment."""
    return DisputeResult(
        reference=str(dispute["id"]),
        payment_reference=order_id or str(dispute["payment_id"]),
        status=dispute_status(str(dispute.get("status"))),
        amount=Money(int(dispute["amount"]), str(dispute["currency"]).upper()),
        reason=str(dispute.get("reason_code") or ""),
        payql_payment_id=payql_payment_id,
        evidence_due_by=int(dispute["respond_by"]) if dispute.get("respond_by") else None,
        created=int(dispute["created_at"]) if dispute.get("created_at") else None,
        gateway_status=f"{dispute.get('phase')}:{dispute.get('status')}",
    )


def contest_request(evidence: DisputeEvidence, amount: int) -> dict[str, Any]:
    """Razorpay's contest body: a `summary` (required to submit; up to 1000 characters) and document ids per
    proof type. We hold no uploaded documents, so every text field goes into the summary."""
    labelled = [
        (label, value)
        for label, value in (
            ("Product", evidence.product_description),
            ("Customer", evidence.customer_name),
            ("Email", evidence.customer_email_address),
            ("Purchase IP", evidence.customer_purchase_ip),
            ("Billing address", evidence.billing_address),
            ("Receipt", evidence.receipt),
            ("Carrier", evidence.shipping_carrier),
            ("Tracking number", evidence.shipping_tracking_number),
            ("Shipped", evidence.shipping_date),
            ("Refund policy", evidence.refund_policy),
            ("Notes", evidence.uncategorized_text),
        )
        if value
    ]
    summary = "\n".join(f"{label}: {value}" for label, value in labelled)[:1000]
    return {"amount": amount, "summary": summary, "action": "submit"}
