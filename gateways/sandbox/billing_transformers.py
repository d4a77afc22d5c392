"""The one place the sandbox billing engine's objects, statuses and events are mapped onto PayQL's
gateway types (`SubscriptionResult`, `InvoiceResult`, `ProrationPreview`, the billing `EventEffect`s).

An unknown subscription status maps to INCOMPLETE (no access), an unknown invoice status to DRAFT
(nothing owed yet, nothing paid): never to a success. Nothing here calls the processor.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from domain.money import Money
from domain.statuses import InvoiceStatus, SubscriptionStatus
from gateways.sandbox.authentication import authenticate_action
from gateways.sandbox.processor.billing import BilledSubscription, PlanChangeQuote, PriceTerms, Proration
from gateways.sandbox.processor.billing_objects import (
    PAYQL_SUBSCRIPTION_ID,
    InvoiceState,
    SandboxInvoice,
    SandboxSubscription,
    SubscriptionState,
)
from gateways.sandbox.processor.objects import IntentStatus
from gateways.types import (
    EventEffect,
    EventIgnored,
    InvoiceObserved,
    InvoiceResult,
    PlanPrice,
    ProrationMode,
    ProrationPreview,
    SubscriptionNotice,
    SubscriptionNoticeKind,
    SubscriptionObserved,
    SubscriptionResult,
    VerifiedEvent,
)

_SUBSCRIPTION_STATUSES: Final[Mapping[str, SubscriptionStatus]] = MappingProxyType(
    {
        SubscriptionState.INCOMPLETE: SubscriptionStatus.INCOMPLETE,
        SubscriptionState.INCOMPLETE_EXPIRED: SubscriptionStatus.INCOMPLETE_EXPIRED,
        SubscriptionState.TRIALING: SubscriptionStatus.TRIALING,
        SubscriptionState.ACTIVE: SubscriptionStatus.ACTIVE,
        SubscriptionState.PAST_DUE: SubscriptionStatus.PAST_DUE,
        SubscriptionState.PAUSED: SubscriptionStatus.PAUSED,
        SubscriptionState.UNPAID: SubscriptionStatus.UNPAID,
        SubscriptionState.CANCELED: SubscriptionStatus.CANCELED,
    }
)

_INVOICE_STATUSES: Final[Mapping[str, InvoiceStatus]] = MappingProxyType(
    {
        InvoiceState.DRAFT: InvoiceStatus.DRAFT,
        InvoiceState.OPEN: InvoiceStatus.OPEN,
        InvoiceState.PAID: InvoiceStatus.PAID,
        InvoiceState.VOID: InvoiceStatus.VOID,
        InvoiceState.UNCOLLECTIBLE: InvoiceStatus.UNCOLLECTIBLE,
    }
)

_PRORATIONS: Final[Mapping[ProrationMode, str]] = MappingProxyType(
    {
        ProrationMode.IMMEDIATE: Proration.IMMEDIATE,
        ProrationMode.NONE: Proration.NONE,
        ProrationMode.AT_PERIOD_END: Proration.AT_PERIOD_END,
    }
)

# Invoice event type -> `InvoiceObserved.event`.
_INVOICE_EVENTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "invoice.paid": "paid",
        "invoice.payment_failed": "payment_failed",
        "invoice.payment_action_required": "action_required",
        "invoice.finalized": "finalized",
        "invoice.voided": "voided",
    }
)
_SUBSCRIPTION_EVENT_PREFIX: Final = "customer.subscription."
_UPCOMING: Final = "invoice.upcoming"


def is_billing_event(event_type: str) -> bool:
    return event_type.startswith(_SUBSCRIPTION_EVENT_PREFIX) or event_type in _INVOICE_EVENTS or event_type == _UPCOMING


def subscription_status(gateway_status: str) -> SubscriptionStatus:
    """The sandbox subscription status as PayQL's; anything unknown is INCOMPLETE (never a success)."""
    return _SUBSCRIPTION_STATUSES.get(gateway_status, SubscriptionStatus.INCOMPLETE)


def invoice_status(gateway_status: str) -> InvoiceStatus:
    """The sandbox invoice status as PayQL's; anything unknown is DRAFT (never paid)."""
    return _INVOICE_STATUSES.get(gateway_status, InvoiceStatus.DRAFT)


def proration(mode: ProrationMode) -> str:
    return _PRORATIONS[mode]


def price_terms(price: PlanPrice) -> PriceTerms:
    return PriceTerms(
        payql_price_id=price.price_id,
        payql_product_id=price.product_id,
        product_name=price.product_name,
        unit_amount=price.unit_amount.amount,
        currency=price.unit_amount.currency,
        interval=price.interval.lower(),
        interval_count=price.interval_count,
        metered=price.metered,
    )


def invoice_result(invoice: SandboxInvoice, *, routes_url: str) -> InvoiceResult:
    payment = invoice.payment
    next_action = None
    if payment is not None and payment.status == IntentStatus.REQUIRES_ACTION and invoice.status is InvoiceState.OPEN:
        next_action = authenticate_action(routes_url, payment.id, payment.client_secret)
    return InvoiceResult(
        reference=invoice.id,
        subscription_reference=invoice.subscription,
        status=invoice_status(invoice.status),
        amount_due=Money(invoice.amount_due, invoice.currency),
        amount_paid=invoice.amount_paid,
        billing_reason=invoice.billing_reason,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        attempt_count=invoice.attempt_count,
        payment_reference=None if payment is None else payment.id,
        next_action=next_action,
        decline_code=None if payment is None or invoice.status is InvoiceState.PAID else payment.decline_code,
        created=invoice.created,
        payql_subscription_id=invoice.subscription_metadata.get(PAYQL_SUBSCRIPTION_ID),
    )


def subscription_result(
    sub: SandboxSubscription, latest_invoice: SandboxInvoice | None = None, *, routes_url: str
) -> SubscriptionResult:
    pending = sub.pending_price
    return SubscriptionResult(
        reference=sub.id,
        status=subscription_status(sub.status),
        price_id=sub.price.terms.payql_price_id or None,
        payql_subscription_id=sub.metadata.get(PAYQL_SUBSCRIPTION_ID),
        customer_reference=sub.customer,
        current_period_start=sub.current_period_start,
        current_period_end=sub.current_period_end,
        trial_end=sub.trial_end,
        cancel_at_period_end=sub.cancel_at_period_end,
        canceled_at=sub.canceled_at,
        ended_at=sub.ended_at,
        default_payment_method=sub.default_payment_method,
        pending_price_id=None if pending is None else pending.terms.payql_price_id or None,
        latest_invoice=None if latest_invoice is None else invoice_result(latest_invoice, routes_url=routes_url),
        updated=sub.updated,
        gateway_status=sub.status.value,
    )


def billed_result(billed: BilledSubscription, *, routes_url: str) -> SubscriptionResult:
    return subscription_result(billed.subscription, billed.latest_invoice, routes_url=routes_url)


def proration_preview(quote: PlanChangeQuote) -> ProrationPreview:
    """`amount_due_now` is what the change charges now, or (negative) the credit a downgrade leaves."""
    due_now = quote.charge_now if quote.proration >= 0 else quote.proration
    return ProrationPreview(
        amount_due_now=Money(due_now, quote.currency),
        next_invoice_amount=Money(quote.next_invoice_amount, quote.currency),
        next_invoice_at=quote.next_invoice_at,
    )


def billing_event_effects(event: VerifiedEvent, *, routes_url: str) -> list[EventEffect]:
    """What a verified subscription or invoice event says (see `is_billing_event`)."""
    kind = event.event_type
    data = event.payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return [EventIgnored(f"{kind} event {event.event_id} carries no object")]
    try:
        if kind.startswith(_SUBSCRIPTION_EVENT_PREFIX):
            sub = SandboxSubscription.from_dict(obj)
            effects: list[EventEffect] = [
                SubscriptionObserved(subscription_result(sub, routes_url=routes_url), stale_possible=True)
            ]
            if kind == "customer.subscription.trial_will_end":
                effects.append(SubscriptionNotice(sub.id, SubscriptionNoticeKind.TRIAL_WILL_END, at=sub.trial_end))
            return effects
        invoice = SandboxInvoice.from_dict(obj)
    except (KeyError, ValueError) as exc:
        # Signed by the sandbox yet unreadable: a sender bug. Said so; a re-read still sees the truth.
        return [EventIgnored(f"{kind} event {event.event_id} carries a malformed object: {exc!r}")]
    if kind == _UPCOMING:
        return [
            SubscriptionNotice(
                invoice.subscription, SubscriptionNoticeKind.INVOICE_UPCOMING, invoice.next_payment_attempt
            )
        ]
    if kind in _INVOICE_EVENTS:
        result = invoice_result(invoice, routes_url=routes_url)
        return [InvoiceObserved(result, event=_INVOICE_EVENTS[kind], stale_possible=True)]
    return [EventIgnored(f"unhandled event type {kind!r}")]
