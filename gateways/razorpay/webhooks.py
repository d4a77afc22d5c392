"""Razorpay webhook deliveries: verification and the events' meaning.

Verification: `X-Razorpay-Signature` is the hex HMAC-SHA256 of the raw body with the webhook secret; every
configured secret is tried (rotation), in constant time. Razorpay signs no timestamp, so there is no replay
window to check: a replayed delivery carries its event id (`X-Razorpay-Event-Id`), under which it is stored once,
and every payment event is re-read from Razorpay before it is applied, so a replay can only repeat the truth.

Events: payment.authorized/captured/failed and order.paid name the payment (and its order, our reference);
refund.created/processed/failed carry the refund and its payment; payment.dispute.* carry the dispute and its
payment. Anything else is acknowledged and ignored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from domain.money import Money
from domain.statuses import PaymentStatus
from gateways.errors import WebhookRejected
from gateways.razorpay.billing_transformers import PAYQL_SUBSCRIPTION_ID, invoice_result, subscription_status
from gateways.razorpay.signatures import body_signed_by_any
from gateways.razorpay.transformers import dispute_result, notes_of, payment_status, refund_result
from gateways.types import (
    PAYQL_PAYMENT_ID,
    DisputeObserved,
    EventEffect,
    EventIgnored,
    InvoiceObserved,
    PaymentObserved,
    PaymentResult,
    RefundObserved,
    SubscriptionObserved,
    SubscriptionResult,
    VerifiedEvent,
    WebhookDelivery,
)

PAYMENT_EVENTS = frozenset({"payment.authorized", "payment.captured", "payment.failed", "order.paid"})
REFUND_EVENTS = frozenset({"refund.created", "refund.processed", "refund.failed"})
DISPUTE_PREFIX = "payment.dispute."
SUBSCRIPTION_PREFIX = "subscription."


class RazorpayDeliveryVerifier:
    def __init__(self, webhook_secrets: Sequence[str]) -> None:
        self._secrets = tuple(secret for secret in webhook_secrets if secret)

    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        headers = {name.lower(): value for name, value in delivery.headers.items()}
        signature = headers.get("x-razorpay-signature")
        if not signature:
            raise WebhookRejected("missing X-Razorpay-Signature")
        if not self._secrets:
            raise WebhookRejected("no webhook secret configured")
        if not body_signed_by_any(self._secrets, delivery.body, signature):
            raise WebhookRejected("X-Razorpay-Signature does not verify for any configured webhook secret")
        return verified_event(delivery.body, headers.get("x-razorpay-event-id"))


def verified_event(body: bytes, event_id: str | None) -> VerifiedEvent:
    try:
        event = json.loads(body)
    except ValueError:
        raise WebhookRejected("body is not JSON") from None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("event"), str)
        or not isinstance(event.get("payload"), dict)
    ):
        raise WebhookRejected("body is not a Razorpay event")
    # Without the header (older deliveries), the body itself identifies the delivery: Razorpay resends it unchanged.
    return VerifiedEvent(
        event_id=event_id or "sha256:" + hashlib.sha256(body).hexdigest(),
        event_type=event["event"],
        created=int(event.get("created_at") or 0),
        payload=event,
    )


def _entity(event: VerifiedEvent, name: str) -> dict[str, Any] | None:
    wrapper = event.payload.get("payload", {}).get(name)
    entity = wrapper.get("entity") if isinstance(wrapper, dict) else None
    return entity if isinstance(entity, dict) else None


def event_effects(event: VerifiedEvent) -> list[EventEffect]:
    payment = _entity(event, "payment")
    if event.event_type.startswith(SUBSCRIPTION_PREFIX) or event.event_type == "invoice.paid":
        return _billing_effects(event, payment)
    if event.event_type in PAYMENT_EVENTS and payment is not None and payment.get("order_id"):
        return [PaymentObserved(_payment_hint(payment))]
    if event.event_type in REFUND_EVENTS:
        refund = _entity(event, "refund")
        if refund is not None and payment is not None and payment.get("order_id"):
            return [
                RefundObserved(refund_result(refund, order_id=str(payment["order_id"]))),
                PaymentObserved(_payment_hint(payment)),
            ]
    if event.event_type.startswith(DISPUTE_PREFIX):
        dispute = _entity(event, "dispute")
        if dispute is not None:
            order_id = str(payment["order_id"]) if payment and payment.get("order_id") else None
            notes = notes_of(payment) if payment else {}
            return [
                DisputeObserved(
                    dispute_result(dispute, order_id=order_id, payql_payment_id=notes.get(PAYQL_PAYMENT_ID))
                )
            ]
    return [EventIgnored(f"razorpay event {event.event_type} is not acted on")]


def _billing_effects(event: VerifiedEvent, payment: dict[str, Any] | None) -> list[EventEffect]:
    """subscription.*: the subscription, re-read; a charge (subscription.charged, invoice.paid) also names the
    cycle's invoice, re-read too."""
    effects: list[EventEffect] = []
    sub = _entity(event, "subscription")
    invoice = _entity(event, "invoice")
    payql_subscription_id = notes_of(sub).get(PAYQL_SUBSCRIPTION_ID) if sub else None
    if sub is not None:
        effects.append(SubscriptionObserved(_subscription_hint(sub)))
    invoice_id = invoice.get("id") if invoice else (payment or {}).get("invoice_id")
    subscription_id = (invoice or {}).get("subscription_id") or (sub or {}).get("id")
    if invoice_id and subscription_id and payment is not None:
        hint = {
            "id": invoice_id,
            "subscription_id": subscription_id,
            "status": "paid",
            "amount": payment["amount"],
            "amount_paid": payment["amount"],
            "currency": payment["currency"],
            "order_id": payment.get("order_id"),
        }
        effects.append(InvoiceObserved(invoice_result(hint, payql_subscription_id=payql_subscription_id), "paid"))
    return effects or [EventIgnored(f"razorpay event {event.event_type} names no subscription")]


def _subscription_hint(sub: dict[str, Any]) -> SubscriptionResult:
    """Enough to find our subscription; the pipeline re-reads it."""
    return SubscriptionResult(
        reference=str(sub["id"]),
        status=subscription_status(str(sub.get("status"))),
        price_id=None,
        payql_subscription_id=notes_of(sub).get(PAYQL_SUBSCRIPTION_ID),
        gateway_status=str(sub.get("status")),
    )


def _payment_hint(payment: dict[str, Any]) -> PaymentResult:
    """What the event says about our payment (the order): enough to find it; the pipeline re-reads the order."""
    status = payment_status(str(payment.get("status")))
    return PaymentResult(
        reference=str(payment["order_id"]),
        status=status if status is not PaymentStatus.FAILED else PaymentStatus.REQUIRES_ACTION,
        amount=Money(int(payment["amount"]), str(payment["currency"]).upper()),
        payql_payment_id=notes_of(payment).get(PAYQL_PAYMENT_ID),
        gateway_status=f"payment:{payment.get('id')}:{payment.get('status')}",
    )


__all__ = ["RazorpayDeliveryVerifier", "event_effects", "verified_event"]
