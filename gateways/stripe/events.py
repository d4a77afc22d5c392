"""The table of Stripe webhook event types PayQL acts on, and what each becomes; anything else is ignored.

- `payment_intent.*`, `charge.refunded`, `charge.refund.updated`, `refund.*`: see `transformers.event_effects`
- `checkout.session.completed | expired | async_payment_succeeded | async_payment_failed` (mode payment):
  `PaymentObserved` of the session (PayQL knows a hosted payment by its session id)
- `customer.subscription.created | updated | deleted | paused | resumed`: `SubscriptionObserved`
- `customer.subscription.trial_will_end`: `SubscriptionObserved` and `SubscriptionNotice` TRIAL_WILL_END
- `invoice.paid | payment_failed | payment_action_required | finalized | voided | marked_uncollectible`:
  `InvoiceObserved` (event paid | payment_failed | action_required | finalized | voided | uncollectible)
- `invoice.upcoming`: `SubscriptionNotice` INVOICE_UPCOMING
- `charge.dispute.created | updated | closed | funds_withdrawn | funds_reinstated`: `DisputeObserved`

Every effect is `stale_possible`: events arrive out of order, so PayQL re-reads the object before applying
it. A subscription event's `updated` is the event's `created`. Nothing here calls Stripe; an object that
cannot be read is ignored with a reason (the reconciliation read still sees the truth).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from gateways.stripe import transformers
from gateways.stripe.billing_transformers import (
    checkout_session_result,
    dispute_result,
    invoice_result,
    subscription_reference,
    subscription_result,
)
from gateways.types import (
    DisputeObserved,
    EventEffect,
    EventIgnored,
    InvoiceObserved,
    PaymentObserved,
    SubscriptionNotice,
    SubscriptionNoticeKind,
    SubscriptionObserved,
    VerifiedEvent,
)

SUBSCRIPTION_EVENTS: Final = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
    }
)
# Stripe's invoice event → the normalized `InvoiceObserved.event`.
INVOICE_EVENTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "invoice.paid": "paid",
        "invoice.payment_failed": "payment_failed",
        "invoice.payment_action_required": "action_required",
        "invoice.finalized": "finalized",
        "invoice.voided": "voided",
        "invoice.marked_uncollectible": "uncollectible",
    }
)
DISPUTE_EVENTS: Final = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)
CHECKOUT_EVENTS: Final = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.expired",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
    }
)
UPCOMING_INVOICE: Final = "invoice.upcoming"


def event_effects(event: VerifiedEvent) -> list[EventEffect]:
    """What a verified Stripe event says, as normalized effects; anything else is `EventIgnored`."""
    kind = event.event_type
    interpret = _interpreter(kind)
    if interpret is None:
        return transformers.event_effects(event)
    data = event.payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return [EventIgnored(f"{kind} event {event.event_id} carries no object")]
    try:
        return interpret(event, obj)
    except (KeyError, TypeError, ValueError) as exc:
        return [EventIgnored(f"{kind} event {event.event_id} carries an unreadable object: {exc!r}")]


Interpreter = Callable[[VerifiedEvent, Mapping[str, Any]], list[EventEffect]]


def _interpreter(kind: str) -> Interpreter | None:
    if kind in SUBSCRIPTION_EVENTS:
        return _subscription
    if kind in INVOICE_EVENTS:
        return _invoice
    if kind == UPCOMING_INVOICE:
        return _upcoming
    if kind in DISPUTE_EVENTS:
        return _dispute
    if kind in CHECKOUT_EVENTS:
        return _checkout
    return None


def _subscription(event: VerifiedEvent, obj: Mapping[str, Any]) -> list[EventEffect]:
    result = subscription_result(obj, updated=event.created)
    effects: list[EventEffect] = [SubscriptionObserved(result, stale_possible=True)]
    if event.event_type == "customer.subscription.trial_will_end":
        effects.append(SubscriptionNotice(result.reference, SubscriptionNoticeKind.TRIAL_WILL_END, at=result.trial_end))
    return effects


def _invoice(event: VerifiedEvent, obj: Mapping[str, Any]) -> list[EventEffect]:
    if subscription_reference(obj) is None:
        return [EventIgnored(f"{event.event_type} event {event.event_id} is about an invoice of no subscription")]
    return [InvoiceObserved(invoice_result(obj), INVOICE_EVENTS[event.event_type], stale_possible=True)]


def _upcoming(event: VerifiedEvent, obj: Mapping[str, Any]) -> list[EventEffect]:
    # An upcoming invoice is a preview: it has no id yet, only the subscription it will bill.
    reference = subscription_reference(obj)
    if reference is None:
        return [EventIgnored(f"{event.event_type} event {event.event_id} is about an invoice of no subscription")]
    at = obj.get("next_payment_attempt") or obj.get("period_end")
    return [
        SubscriptionNotice(reference, SubscriptionNoticeKind.INVOICE_UPCOMING, at=at if isinstance(at, int) else None)
    ]


def _dispute(event: VerifiedEvent, obj: Mapping[str, Any]) -> list[EventEffect]:
    return [DisputeObserved(dispute_result(obj), stale_possible=True)]


def _checkout(event: VerifiedEvent, obj: Mapping[str, Any]) -> list[EventEffect]:
    if obj.get("mode") != "payment":
        return [EventIgnored(f"{event.event_type} event {event.event_id} is about a {obj.get('mode')} session")]
    # The success URL proves nothing and neither does this copy: the session is read again before use.
    return [PaymentObserved(checkout_session_result(obj), stale_possible=True)]
