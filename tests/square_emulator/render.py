"""The emulator's objects as Square renders them: `Payment`, `PaymentRefund`, `Dispute`, `DisputeEvidence`,
`Customer`, `Card`, `CatalogObject` (subscription plans and variations), `Subscription` and `Invoice` of Square's
connect-api-specification (api.json), field names and shapes as sent."""

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
    from tests.square_emulator.billing import Card, CatalogObject, Customer, Invoice, Subscription
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


def render_customer(customer: Customer) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "id": customer.id,
        "created_at": rfc3339(customer.created_at),
        "updated_at": rfc3339(customer.created_at),
        "preferences": {"email_unsubscribed": False},
        "creation_source": "THIRD_PARTY",
        "version": 0,
    }
    if customer.email_address is not None:
        rendered["email_address"] = customer.email_address
    if customer.reference_id is not None:
        rendered["reference_id"] = customer.reference_id
    return rendered


def render_card(card: Card) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "id": card.id,
        "card_brand": "VISA",
        "last_4": "5858",
        "exp_month": 12,
        "exp_year": now().year + 3,
        "fingerprint": "sq-1-emulator",
        "customer_id": card.customer_id,
        "merchant_id": card.merchant.merchant_id,
        "enabled": card.enabled,
        "card_type": "CREDIT",
        "prepaid_type": "NOT_PREPAID",
        "bin": "453275",
        "version": 1,
    }
    if card.reference_id is not None:
        rendered["reference_id"] = card.reference_id
    return rendered


def render_catalog_object(obj: CatalogObject) -> dict[str, Any]:
    key = "subscription_plan_data" if obj.type == "SUBSCRIPTION_PLAN" else "subscription_plan_variation_data"
    return {
        "type": obj.type,
        "id": obj.id,
        "updated_at": rfc3339(obj.updated_at),
        "version": obj.version,
        "is_deleted": False,
        "present_at_all_locations": True,
        key: obj.data,
    }


def render_subscription(subscription: Subscription, *, actions: bool = False) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "id": subscription.id,
        "location_id": subscription.merchant.location_id,
        "plan_variation_id": subscription.plan_variation_id,
        "customer_id": subscription.customer_id,
        "start_date": subscription.start_date.isoformat(),
        "status": subscription.status,
        "invoice_ids": list(subscription.invoice_ids),
        "version": subscription.version,
        "created_at": rfc3339(subscription.created_at),
        "timezone": "UTC",
        "source": {"name": "PayQL"},
    }
    if subscription.card_id is not None:
        rendered["card_id"] = subscription.card_id
    if subscription.charged_through_date is not None:
        rendered["charged_through_date"] = subscription.charged_through_date.isoformat()
    if subscription.canceled_date is not None:
        rendered["canceled_date"] = subscription.canceled_date.isoformat()
    if actions and subscription.actions:
        rendered["actions"] = [dict(action) for action in subscription.actions]
    return rendered


def render_invoice(invoice: Invoice) -> dict[str, Any]:
    currency = invoice.currency
    request: dict[str, Any] = {
        "uid": f"{invoice.id[-8:]}-balance",
        "request_type": "BALANCE",
        "due_date": invoice.due_date.isoformat(),
        "tipping_enabled": False,
        "automatic_payment_source": "CARD_ON_FILE" if invoice.card_id else "NONE",
        "computed_amount_money": money(invoice.amount, currency),
        "total_completed_amount_money": money(invoice.paid, currency),
    }
    if invoice.card_id:
        request["card_id"] = invoice.card_id
    rendered: dict[str, Any] = {
        "id": invoice.id,
        "version": invoice.version,
        "location_id": invoice.merchant.location_id,
        "order_id": invoice.order_id,
        "primary_recipient": {"customer_id": invoice.customer_id},
        "payment_requests": [request],
        "delivery_method": "EMAIL",
        "invoice_number": invoice.invoice_number,
        "status": invoice.status,
        "timezone": "UTC",
        "created_at": rfc3339(invoice.created_at),
        "updated_at": rfc3339(invoice.updated_at),
        "subscription_id": invoice.subscription_id,
        "sale_or_service_date": invoice.due_date.isoformat(),
        "accepted_payment_methods": {"card": True, "square_gift_card": False, "bank_account": False},
    }
    if invoice.status != "PAID":
        rendered["next_payment_amount_money"] = money(invoice.amount - invoice.paid, currency)
    return rendered
