"""The emulator's objects as Square renders them: `Payment`, `PaymentRefund`, `Dispute` and `DisputeEvidence` of
Square's connect-api-specification (api.json), field names and shapes as sent."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tests.square_emulator.ledger import (
    DELAY_DURATION,
    Dispute,
    Evidence,
    Payment,
    Refund,
    capabilities,
    completed_refunds,
    money,
    now,
    rfc3339,
)

if TYPE_CHECKING:
    from tests.square_emulator.ledger import Ledger


def render_payment(payment: Payment, ledger: Ledger | None = None) -> dict[str, Any]:
    currency = payment.currency
    timeline: dict[str, Any] = {"authorized_at": rfc3339(payment.created_at)}
    if payment.captured_at is not None:
        timeline["captured_at"] = rfc3339(payment.captured_at)
    if payment.voided_at is not None:
        timeline["voided_at"] = rfc3339(payment.voided_at)
    card_details: dict[str, Any] = {
        "status": payment.card_status,
        "card": {
            "card_brand": "VISA",
            "last_4": "5858",
            "exp_month": 12,
            "exp_year": now().year + 3,
            "fingerprint": "sq-1-emulator",
            "card_type": "CREDIT",
            "prepaid_type": "NOT_PREPAID",
            "bin": "453275",
        },
        "entry_method": "KEYED",
        "cvv_status": "CVV_ACCEPTED" if payment.status != "FAILED" else "CVV_NOT_CHECKED",
        "avs_status": "AVS_ACCEPTED" if payment.status != "FAILED" else "AVS_NOT_CHECKED",
        "statement_description": "SQ *DEFAULT TEST ACCOUNT",
        "card_payment_timeline": timeline,
    }
    if payment.errors:
        card_details["errors"] = payment.errors
    rendered: dict[str, Any] = {
        "id": payment.id,
        "created_at": rfc3339(payment.created_at),
        "updated_at": rfc3339(payment.updated_at),
        "amount_money": money(payment.amount, currency),
        "approved_money": money(payment.approved, currency),
        "total_money": money(payment.amount, currency),
        "status": payment.status,
        "delay_duration": "PT168H",
        "delay_action": "CANCEL",
        "delayed_until": rfc3339(payment.created_at + DELAY_DURATION),
        "source_type": "CARD",
        "card_details": card_details,
        "location_id": payment.merchant.location_id,
        "order_id": payment.order_id,
        "application_details": {"square_product": "ECOMMERCE_API", "application_id": "sandbox-sq0idb-emulator"},
        "version_token": payment.version_token,
    }
    if payment.status == "APPROVED":
        rendered["capabilities"] = list(capabilities(payment))
    if ledger is not None and payment.refund_ids:
        rendered["refund_ids"] = list(payment.refund_ids)
        rendered["refunded_money"] = money(completed_refunds(ledger, payment), currency)
    if payment.reference_id is not None:
        rendered["reference_id"] = payment.reference_id
    if payment.note is not None:
        rendered["note"] = payment.note
    if payment.status == "COMPLETED":
        rendered["receipt_number"] = payment.id[:4]
        rendered["receipt_url"] = f"https://squareupsandbox.com/receipt/preview/{payment.id}"
    return rendered


def render_refund(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "status": refund.status,
        "location_id": refund.location_id,
        "unlinked": False,
        "destination_type": "CARD",
        "amount_money": money(refund.amount, refund.currency),
        "payment_id": refund.payment_id,
        "order_id": refund.order_id,
        "created_at": rfc3339(refund.created_at),
        "updated_at": rfc3339(refund.updated_at),
        **({"reason": refund.reason} if refund.reason is not None else {}),
    }


def render_dispute(dispute: Dispute) -> dict[str, Any]:
    return {
        "dispute_id": dispute.id,
        "id": dispute.id,
        "amount_money": money(dispute.amount, dispute.payment.currency),
        "reason": dispute.reason,
        "state": dispute.state,
        "due_at": rfc3339(dispute.created_at + timedelta(days=14)),
        "disputed_payment": {"payment_id": dispute.payment.id},
        "evidence_ids": [e.id for e in dispute.evidence],
        "card_brand": "VISA",
        "created_at": rfc3339(dispute.created_at),
        "updated_at": rfc3339(dispute.updated_at),
        "brand_dispute_id": dispute.id[:20],
        "reported_at": rfc3339(dispute.created_at),
        "version": dispute.version,
        "location_id": dispute.payment.merchant.location_id,
    }


def render_evidence(dispute: Dispute, evidence: Evidence) -> dict[str, Any]:
    return {
        "evidence_id": evidence.id,
        "id": evidence.id,
        "dispute_id": dispute.id,
        "evidence_text": evidence.evidence_text,
        "uploaded_at": rfc3339(evidence.uploaded_at),
        "evidence_type": evidence.evidence_type,
    }
