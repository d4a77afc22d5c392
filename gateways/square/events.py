"""The table of Square event types PayQL acts on, and what each becomes; anything else is ignored with a reason.

- `payment.created`, `payment.updated` (`data.object.payment`): `PaymentObserved`
- `refund.created`, `refund.updated` (`data.object.refund`; PENDING, then COMPLETED, REJECTED or FAILED):
  `RefundObserved`
- `dispute.created`, `dispute.state.updated` and its deprecated twin `dispute.state.changed`
  (`data.object.object`): `DisputeObserved`; the outcome (WON, LOST) arrives this way
- `subscription.created`, `subscription.updated` (`data.object.subscription`): `SubscriptionObserved`
- `invoice.published` (finalized), `invoice.payment_made` (paid), `invoice.scheduled_charge_failed` (the card on
  file was declined: payment_failed), `invoice.canceled` (voided) (`data.object.invoice`): `InvoiceObserved`

Every effect is `stale_possible`: Square delivers snapshots, possibly out of order and up to 72 hours late, so
PayQL re-reads the object before applying it. Nothing here calls Square; a signed event whose object cannot be read
is ignored with a reason (the reconciliation read still sees the truth).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from gateways.square.billing_transformers import invoice_result, subscription_result
from gateways.square.transformers import dispute_result, payment_result, refund_result, timestamp
from gateways.types import (
    DisputeObserved,
    EventEffect,
    EventIgnored,
    InvoiceObserved,
    InvoiceResult,
    PaymentObserved,
    RefundObserved,
    SubscriptionObserved,
    SubscriptionResult,
    VerifiedEvent,
)

PAYMENT_EVENTS: Final = frozenset({"payment.created", "payment.updated"})
REFUND_EVENTS: Final = frozenset({"refund.created", "refund.updated"})
DISPUTE_EVENTS: Final = frozenset({"dispute.created", "dispute.state.updated", "dispute.state.changed"})
SUBSCRIPTION_EVENTS: Final = frozenset({"subscription.created", "subscription.updated"})
INVOICE_EVENTS: Final[Mapping[str, str]] = {
    "invoice.published": "finalized",
    "invoice.payment_made": "paid",
    "invoice.scheduled_charge_failed": "payment_failed",
    "invoice.canceled": "voided",
}


def event_effects(event: VerifiedEvent) -> list[EventEffect]:
    kind = event.event_type
    if kind in PAYMENT_EVENTS:
        key = "payment"
    elif kind in REFUND_EVENTS:
        key = "refund"
    elif kind in DISPUTE_EVENTS:
        key = "object"
    elif kind in SUBSCRIPTION_EVENTS:
        key = "subscription"
    elif kind in INVOICE_EVENTS:
        key = "invoice"
    else:
        return [EventIgnored(f"unhandled event type {kind!r}")]
    data = event.payload.get("data")
    wrapper = data.get("object") if isinstance(data, Mapping) else None
    obj = wrapper.get(key) if isinstance(wrapper, Mapping) else None
    if not isinstance(obj, Mapping):
        return [EventIgnored(f"{kind} event {event.event_id} carries no {key}")]
    try:
        if key == "payment":
            return [PaymentObserved(payment_result(obj), stale_possible=True)]
        if key == "refund":
            return [RefundObserved(refund_result(obj))]
        if key == "subscription":
            return [SubscriptionObserved(_subscription(obj))]
        if key == "invoice":
            return [InvoiceObserved(_invoice(obj), INVOICE_EVENTS[kind])]
        return [DisputeObserved(dispute_result(obj), stale_possible=True)]
    except (KeyError, TypeError, ValueError) as exc:
        return [EventIgnored(f"{kind} event {event.event_id} carries an unreadable {key}: {exc!r}")]


def _subscription(obj: Mapping[str, Any]) -> SubscriptionResult:
    """The event's copy names the subscription only: PayQL re-reads it (with its plan and invoices) before use."""
    return subscription_result(obj, price_id=None, cadence=None)


def _invoice(obj: Mapping[str, Any]) -> InvoiceResult:
    """As for subscriptions: re-read (with its charges) before use."""
    return invoice_result(obj, first=False, cadence=None)


def verified_event(payload: Mapping[str, Any]) -> VerifiedEvent:
    """The envelope's id, type and time; raises ValueError when one is missing."""
    event_id, kind = payload.get("event_id"), payload.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(kind, str) or not kind:
        raise ValueError("event_id or type missing")
    return VerifiedEvent(
        event_id=event_id, event_type=kind, created=timestamp(payload.get("created_at")) or 0, payload=dict(payload)
    )
