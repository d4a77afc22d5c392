"""Stripe Billing, Checkout and dispute objects mapped onto PayQL's gateway types: the one place for each status.

Like `transformers.py`, everything here works on plain JSON mappings (an SDK object after `to_dict()` or a
webhook's `data.object`) and never calls Stripe. Shapes are those of the pinned API version
(`client.API_VERSION`): a subscription's period lives on its items, an invoice names its subscription under
`parent.subscription_details` and its payments under `payments` (there is no `invoice.payment_intent` any
more), and its client secret under `confirmation_secret`. An unknown status never maps to a success.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from domain.money import Money
from domain.statuses import DisputeStatus, InvoiceStatus, NextActionType, PaymentStatus, SubscriptionStatus
from gateways.stripe.fields import field_int, field_optional_int, field_optional_str, field_reference, field_str
from gateways.stripe.transformers import payment_result
from gateways.types import PAYQL_PAYMENT_ID, DisputeResult, InvoiceResult, NextAction, PaymentResult, SubscriptionResult

# Metadata keys PayQL writes on Stripe objects it creates.
PAYQL_SUBSCRIPTION_ID: Final = "payql_subscription_id"
PAYQL_CUSTOMER_ID: Final = "payql_customer_id"
PAYQL_PRICE_ID: Final = "payql_price_id"
PAYQL_PRODUCT_ID: Final = "payql_product_id"
# A plan change scheduled for the period end (set by `change_plan`, cleared by the schedule's next phase).
PAYQL_PENDING_PRICE_ID: Final = "payql_pending_price_id"

_SUBSCRIPTION_STATUSES: Final[Mapping[str, SubscriptionStatus]] = MappingProxyType(
    {
        "incomplete": SubscriptionStatus.INCOMPLETE,
        "incomplete_expired": SubscriptionStatus.INCOMPLETE_EXPIRED,
        "trialing": SubscriptionStatus.TRIALING,
        "active": SubscriptionStatus.ACTIVE,
        "past_due": SubscriptionStatus.PAST_DUE,
        "unpaid": SubscriptionStatus.UNPAID,
        "canceled": SubscriptionStatus.CANCELED,
        "paused": SubscriptionStatus.PAUSED,
    }
)

_INVOICE_STATUSES: Final[Mapping[str, InvoiceStatus]] = MappingProxyType(
    {
        "draft": InvoiceStatus.DRAFT,
        "open": InvoiceStatus.OPEN,
        "paid": InvoiceStatus.PAID,
        "uncollectible": InvoiceStatus.UNCOLLECTIBLE,
        "void": InvoiceStatus.VOID,
    }
)

_DISPUTE_STATUSES: Final[Mapping[str, DisputeStatus]] = MappingProxyType(
    {
        "needs_response": DisputeStatus.NEEDS_RESPONSE,
        "warning_needs_response": DisputeStatus.NEEDS_RESPONSE,
        "under_review": DisputeStatus.UNDER_REVIEW,
        "warning_under_review": DisputeStatus.UNDER_REVIEW,
        "won": DisputeStatus.WON,
        # An inquiry closed without becoming a chargeback: no funds ever left, as good as won.
        "warning_closed": DisputeStatus.WON,
        "lost": DisputeStatus.LOST,
    }
)


def subscription_status(gateway_status: str, *, collection_paused: bool = False) -> SubscriptionStatus:
    """A Stripe subscription status as ours: the one mapping. Unknown → INCOMPLETE (grants nothing).

    Stripe keeps a subscription whose collection is paused `active`; for PayQL it is PAUSED (no access).
    """
    status = _SUBSCRIPTION_STATUSES.get(gateway_status, SubscriptionStatus.INCOMPLETE)
    if collection_paused and status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE):
        return SubscriptionStatus.PAUSED
    return status


def invoice_status(gateway_status: str) -> InvoiceStatus:
    """A Stripe invoice status as ours: the one mapping. Unknown → DRAFT (nothing owed, nothing paid)."""
    return _INVOICE_STATUSES.get(gateway_status, InvoiceStatus.DRAFT)


def dispute_status(gateway_status: str) -> DisputeStatus:
    """A Stripe dispute status as ours: the one mapping. Unknown → NEEDS_RESPONSE (never a win)."""
    return _DISPUTE_STATUSES.get(gateway_status, DisputeStatus.NEEDS_RESPONSE)


def subscription_result(
    subscription: Mapping[str, Any], *, updated: int, intent: Mapping[str, Any] | None = None
) -> SubscriptionResult:
    """A Subscription as a `SubscriptionResult`.

    `updated` is supplied by the caller because Stripe has no "last modified" field: a webhook passes its
    event's `created`, an API read the time of the read (see `StripeBilling`). `intent` is the latest
    invoice's PaymentIntent when the caller read it (for a decline code or a next action).
    """
    item = _first_item(subscription)
    price = item.get("price") if item is not None else None
    price = price if isinstance(price, Mapping) else None
    metadata = _metadata(subscription)
    paused = isinstance(subscription.get("pause_collection"), Mapping)
    invoice = subscription.get("latest_invoice")
    status = field_str(subscription, "status")
    return SubscriptionResult(
        reference=field_str(subscription, "id"),
        status=subscription_status(status, collection_paused=paused),
        price_id=plan_price_id(price) if price is not None else None,
        payql_subscription_id=metadata.get(PAYQL_SUBSCRIPTION_ID) or None,
        customer_reference=field_reference(subscription.get("customer")),
        current_period_start=field_optional_int(item, "current_period_start") if item is not None else None,
        current_period_end=field_optional_int(item, "current_period_end") if item is not None else None,
        trial_end=field_optional_int(subscription, "trial_end"),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        canceled_at=field_optional_int(subscription, "canceled_at"),
        ended_at=field_optional_int(subscription, "ended_at"),
        default_payment_method=field_reference(subscription.get("default_payment_method")),
        pending_price_id=metadata.get(PAYQL_PENDING_PRICE_ID) or None,
        latest_invoice=invoice_result(invoice, intent=intent) if isinstance(invoice, Mapping) else None,
        updated=updated,
        gateway_status=f"{status}+paused" if paused else status,
    )


def invoice_result(invoice: Mapping[str, Any], *, intent: Mapping[str, Any] | None = None) -> InvoiceResult:
    """An Invoice (of a subscription) as an `InvoiceResult`; `intent` is its PaymentIntent when read.

    The service period is the first line's: for a renewal, Stripe's `invoice.period_*` is the period
    that just ended, not the one being paid for.
    """
    subscription = subscription_reference(invoice)
    if subscription is None:
        raise ValueError("invoice belongs to no subscription")
    status = field_str(invoice, "status")
    line = _first_line(invoice)
    period = line.get("period") if line is not None else None
    period = period if isinstance(period, Mapping) else invoice
    payment_reference = field_reference(intent.get("id")) if intent is not None else invoice_payment_intent(invoice)
    next_action = None
    decline = None
    if intent is not None and status == "open":
        paid = payment_result(intent)
        decline = paid.decline_code
        if paid.status is PaymentStatus.REQUIRES_ACTION:
            next_action = NextAction(
                type=NextActionType.CONFIRM_WITH_SDK,
                client_secret=_confirmation_secret(invoice) or field_optional_str(intent, "client_secret"),
                redirect_url=paid.next_action.redirect_url if paid.next_action else None,
            )
    details = _subscription_details(invoice)
    details_metadata = details.get("metadata") if details is not None else None
    return InvoiceResult(
        reference=field_str(invoice, "id"),
        subscription_reference=subscription,
        status=invoice_status(status),
        amount_due=Money(field_int(invoice, "amount_due"), field_str(invoice, "currency")),
        amount_paid=field_int(invoice, "amount_paid"),
        billing_reason=field_optional_str(invoice, "billing_reason") or "",
        period_start=field_optional_int(period, "start" if period is not invoice else "period_start"),
        period_end=field_optional_int(period, "end" if period is not invoice else "period_end"),
        attempt_count=field_int(invoice, "attempt_count"),
        payment_reference=payment_reference,
        next_action=next_action,
        decline_code=decline,
        created=field_optional_int(invoice, "created"),
        payql_subscription_id=_metadata_value(details_metadata, PAYQL_SUBSCRIPTION_ID),
    )


def subscription_reference(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills (`parent.subscription_details.subscription`), if any."""
    details = _subscription_details(invoice)
    if details is not None:
        return field_reference(details.get("subscription"))
    return field_reference(invoice.get("subscription"))  # shapes before the 2025 `parent` field


def invoice_payment_intent(invoice: Mapping[str, Any]) -> str | None:
    """The PaymentIntent of an invoice's default payment, from the `payments` list when it was expanded."""
    payments = invoice.get("payments")
    data = payments.get("data") if isinstance(payments, Mapping) else None
    if not isinstance(data, list):
        return None
    chosen: str | None = None
    for entry in data:
        payment = entry.get("payment") if isinstance(entry, Mapping) else None
        reference = field_reference(payment.get("payment_intent")) if isinstance(payment, Mapping) else None
        if reference is not None and (chosen is None or entry.get("is_default")):
            chosen = reference
    return chosen


def plan_price_id(price: Mapping[str, Any]) -> str | None:
    """Our price id for a Stripe Price: its metadata, else its lookup key; None when it is not ours."""
    return _metadata(price).get(PAYQL_PRICE_ID) or field_optional_str(price, "lookup_key")


def dispute_result(dispute: Mapping[str, Any]) -> DisputeResult:
    """A Dispute; `payment_intent` expanded gives our payment id from its metadata."""
    intent = dispute.get("payment_intent")
    payment_reference = field_reference(intent) or field_reference(dispute.get("charge"))
    if payment_reference is None:
        raise ValueError("dispute names no payment")
    details = dispute.get("evidence_details")
    status = field_str(dispute, "status")
    payql_payment_id = _metadata_value(
        intent.get("metadata") if isinstance(intent, Mapping) else None, PAYQL_PAYMENT_ID
    )
    return DisputeResult(
        reference=field_str(dispute, "id"),
        payment_reference=payment_reference,
        status=dispute_status(status),
        amount=Money(field_int(dispute, "amount"), field_str(dispute, "currency")),
        reason=field_optional_str(dispute, "reason") or "general",
        payql_payment_id=payql_payment_id or _metadata(dispute).get(PAYQL_PAYMENT_ID) or None,
        evidence_due_by=field_optional_int(details, "due_by") if isinstance(details, Mapping) else None,
        created=field_optional_int(dispute, "created"),
        gateway_status=status,
    )


def checkout_session_result(session: Mapping[str, Any]) -> PaymentResult:
    """A hosted Checkout Session as the payment it stands for, keyed by the session's id.

    With its PaymentIntent expanded the intent decides (PAID, AUTHORIZED, PROCESSING, FAILED); an open
    session is REQUIRES_ACTION with the session URL to redirect to; an expired one is CANCELED (nobody
    paid) or FAILED (the last attempt was declined). Without the intent, a completed session is only
    PROCESSING: the caller re-reads it (`stale_possible`), so nothing is marked paid from a copy.
    """
    status = field_str(session, "status")
    payment_status = field_optional_str(session, "payment_status") or "unpaid"
    intent = session.get("payment_intent")
    intent = intent if isinstance(intent, Mapping) else None
    amount = Money(field_int(session, "amount_total"), field_str(session, "currency"))
    payql_payment_id = _metadata(session).get(PAYQL_PAYMENT_ID) or field_optional_str(session, "client_reference_id")
    observed = payment_result(intent) if intent is not None else None
    base = PaymentResult(
        reference=field_str(session, "id"),
        status=PaymentStatus.PROCESSING,
        amount=amount,
        payql_payment_id=payql_payment_id,
        created=field_optional_int(session, "created"),
        gateway_status=f"checkout.{status}.{payment_status}",
    )
    if status == "open":
        url = field_optional_str(session, "url")
        next_action = NextAction(type=NextActionType.REDIRECT, redirect_url=url) if url else None
        return _replace_status(base, PaymentStatus.REQUIRES_ACTION, next_action=next_action)
    if status == "expired":
        declined = observed is not None and observed.decline_code is not None
        if observed is not None and observed.status in (PaymentStatus.PAID, PaymentStatus.AUTHORIZED):
            return _from_intent(base, observed)
        return _replace_status(
            base,
            PaymentStatus.FAILED if declined else PaymentStatus.CANCELED,
            decline_code=observed.decline_code if observed is not None else None,
            decline_message=observed.decline_message if observed is not None else None,
        )
    if observed is not None:
        return _from_intent(base, observed)
    return base


def _from_intent(base: PaymentResult, observed: PaymentResult) -> PaymentResult:
    return PaymentResult(
        reference=base.reference,
        status=observed.status,
        amount=observed.amount,
        payql_payment_id=base.payql_payment_id or observed.payql_payment_id,
        created=base.created,
        amount_authorized=observed.amount_authorized,
        amount_captured=observed.amount_captured,
        amount_refunded=observed.amount_refunded,
        next_action=None,
        gateway_status=f"{base.gateway_status}/{observed.gateway_status}",
        decline_code=observed.decline_code,
        decline_message=observed.decline_message,
    )


def _replace_status(
    base: PaymentResult,
    status: PaymentStatus,
    *,
    next_action: NextAction | None = None,
    decline_code: str | None = None,
    decline_message: str | None = None,
) -> PaymentResult:
    return PaymentResult(
        reference=base.reference,
        status=status,
        amount=base.amount,
        payql_payment_id=base.payql_payment_id,
        created=base.created,
        next_action=next_action,
        gateway_status=base.gateway_status,
        decline_code=decline_code,
        decline_message=decline_message,
    )


def _first_item(subscription: Mapping[str, Any]) -> Mapping[str, Any] | None:
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        return data[0]
    return None


def _first_line(invoice: Mapping[str, Any]) -> Mapping[str, Any] | None:
    lines = invoice.get("lines")
    data = lines.get("data") if isinstance(lines, Mapping) else None
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        return data[0]
    return None


def _subscription_details(invoice: Mapping[str, Any]) -> Mapping[str, Any] | None:
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    return details if isinstance(details, Mapping) else None


def _confirmation_secret(invoice: Mapping[str, Any]) -> str | None:
    secret = invoice.get("confirmation_secret")
    return field_optional_str(secret, "client_secret") if isinstance(secret, Mapping) else None


def _metadata(obj: Mapping[str, Any]) -> dict[str, str]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return {}
    return {key: value for key, value in metadata.items() if isinstance(key, str) and isinstance(value, str)}


def _metadata_value(metadata: object, key: str) -> str | None:
    value = metadata.get(key) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) and value else None
