"""An object as GraphQL shows it to staff, as the JSON an outgoing webhook carries in `data`.

Field names and shapes follow the GraphQL types (camelCase, Money as amount/currency/exponent/decimal,
date-times in ISO 8601), so a receiver reads an event the way it reads a query's answer. Read inside
the announcing transaction, so `data` is the object as that transaction leaves it. Never here: a
sealed column (evidence, notes, emails, tracking numbers): an event leaves the server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from db.models import Dispute, Invoice, LineItem, Order, Payment, Refund, Subscription
from domain.money import Money

Announceable = Order | Payment | Refund | Dispute | Subscription | Invoice

OBJECT_TYPES: dict[type[Any], str] = {
    Order: "order",
    Payment: "payment",
    Refund: "refund",
    Dispute: "dispute",
    Subscription: "subscription",
    Invoice: "invoice",
}


def object_type(obj: Announceable) -> str:
    return OBJECT_TYPES[type(obj)]


def money(amount: int, currency: str) -> dict[str, Any]:
    value = Money(amount, currency)
    return {
        "amount": value.amount,
        "currency": value.currency,
        "exponent": value.exponent,
        "decimal": value.decimal_string(),
    }


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def render(obj: Announceable, connection: BaseDBAsyncClient) -> dict[str, Any]:
    if isinstance(obj, Order):
        return await _order(obj, connection)
    if isinstance(obj, Payment):
        return _payment(obj)
    if isinstance(obj, Refund):
        return _refund(obj)
    if isinstance(obj, Dispute):
        return _dispute(obj)
    if isinstance(obj, Subscription):
        return _subscription(obj)
    return _invoice(obj)


async def _order(order: Order, connection: BaseDBAsyncClient) -> dict[str, Any]:
    items = await LineItem.filter(order_id=order.id).using_db(connection).order_by("id")
    return {
        "id": str(order.id),
        "status": str(order.status),
        "total": money(order.total_amount, order.currency),
        "createdAt": _when(order.created_at),
        "updatedAt": _when(order.updated_at),
        "lineItems": [
            {
                "id": str(item.id),
                "priceId": str(item.price_id),
                "productName": item.product_name,
                "quantity": item.quantity,
                "unitAmount": money(item.unit_amount, item.currency),
                "total": money(item.total_amount, item.currency),
            }
            for item in items
        ],
    }


def _payment(payment: Payment) -> dict[str, Any]:
    return {
        "id": str(payment.id),
        "orderId": str(payment.order_id),
        "gateway": payment.gateway,
        "gatewayReference": payment.gateway_reference,
        "status": str(payment.status),
        "captureMethod": str(payment.capture_method),
        "amount": money(payment.amount, payment.currency),
        "amountAuthorized": money(payment.amount_authorized, payment.currency),
        "amountCaptured": money(payment.amount_captured, payment.currency),
        "amountRefunded": money(payment.amount_refunded, payment.currency),
        "declineCode": payment.decline_code,
        "failureMessage": payment.failure_message,
        "nextAction": _next_action(payment.next_action),
        "createdAt": _when(payment.created_at),
    }


def _next_action(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if not data:
        return None
    return {
        "type": data.get("type"),
        "redirectUrl": data.get("redirect_url"),
        "clientSecret": data.get("client_secret"),
    }


def _refund(refund: Refund) -> dict[str, Any]:
    return {
        "id": str(refund.id),
        "paymentId": str(refund.payment_id),
        "status": str(refund.status),
        "amount": money(refund.amount, refund.currency),
        "reason": refund.reason,
        "failureReason": refund.failure_reason,
        "gatewayReference": refund.gateway_reference,
        "createdAt": _when(refund.created_at),
    }


def _dispute(dispute: Dispute) -> dict[str, Any]:
    return {
        "id": str(dispute.id),
        "paymentId": str(dispute.payment_id),
        "status": str(dispute.status),
        "reason": dispute.reason,
        "amount": money(dispute.amount, dispute.currency),
        "gateway": dispute.gateway,
        "gatewayReference": dispute.gateway_reference,
        "evidenceDueBy": _when(dispute.evidence_due_by),
        "evidenceSubmittedAt": _when(dispute.evidence_submitted_at),
        "closedAt": _when(dispute.closed_at),
        "createdAt": _when(dispute.created_at),
    }


def _subscription(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": str(subscription.id),
        "status": str(subscription.status),
        "gateway": subscription.gateway,
        "gatewayReference": subscription.gateway_reference,
        "priceId": str(subscription.price_id),
        "pendingPriceId": str(subscription.pending_price_id) if subscription.pending_price_id else None,
        "unitAmount": money(subscription.unit_amount, subscription.currency),
        "currentPeriodStart": _when(subscription.current_period_start),
        "currentPeriodEnd": _when(subscription.current_period_end),
        "trialEnd": _when(subscription.trial_end),
        "cancelAtPeriodEnd": subscription.cancel_at_period_end,
        "canceledAt": _when(subscription.canceled_at),
        "endedAt": _when(subscription.ended_at),
        "failedAttempts": subscription.failed_attempts,
    }


def _invoice(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": str(invoice.id),
        "subscriptionId": str(invoice.subscription_id),
        "status": str(invoice.status),
        "billingReason": invoice.billing_reason,
        "amountDue": money(invoice.amount_due, invoice.currency),
        "amountPaid": money(invoice.amount_paid, invoice.currency),
        "periodStart": _when(invoice.period_start),
        "periodEnd": _when(invoice.period_end),
        "attemptCount": invoice.attempt_count,
        "declineCode": invoice.decline_code,
        "orderId": str(invoice.order_id) if invoice.order_id else None,
        "createdAt": _when(invoice.created_at),
    }
