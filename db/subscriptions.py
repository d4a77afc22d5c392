"""The subscription and invoice state machines: the only place that writes their statuses.

The gateway's billing engine is the truth and this module keeps a faithful mirror of it: a copy
older than the one applied (`SubscriptionResult.updated`) never overwrites it, and a move the
transition table does not allow is a stale copy and changes nothing. Our own dunning bookkeeping
(failed attempts, the next retry, the grace period) is written here too, in the same transaction
as the invoice fact that caused it, with its emails in the outbox. Every invoice with something to
pay becomes an ordinary order and payment, so renewals reach the ledger, receipts and refunds
exactly like one-time purchases.

Lock order inside a transaction: subscription, then (through payments) order, payment, refund.
Nothing here calls a gateway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from db import merchant_events
from db.audit_trail import record_audit
from db.models import Invoice, LineItem, Order, Payment, Price, Subscription
from db.outbox import add_message
from db.transitions import Actor, record_payment_created
from db.unit_of_work import StatusChange, UnitOfWork
from domain.dunning import BillingPolicy, grace_until, next_retry_at
from domain.statuses import CaptureMethod, InvoiceStatus, SubscriptionStatus
from gateways.types import InvoiceResult, SubscriptionResult

logger = logging.getLogger(__name__)

S = SubscriptionStatus
I = InvoiceStatus  # noqa: E741

SUBSCRIPTION_TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    S.INCOMPLETE: frozenset({S.TRIALING, S.ACTIVE, S.PAST_DUE, S.INCOMPLETE_EXPIRED, S.CANCELED}),
    S.TRIALING: frozenset({S.ACTIVE, S.PAST_DUE, S.PAUSED, S.UNPAID, S.CANCELED}),
    S.ACTIVE: frozenset({S.PAST_DUE, S.PAUSED, S.UNPAID, S.CANCELED}),
    S.PAST_DUE: frozenset({S.ACTIVE, S.PAUSED, S.UNPAID, S.CANCELED}),
    S.PAUSED: frozenset({S.ACTIVE, S.TRIALING, S.PAST_DUE, S.CANCELED}),
    # UNPAID is ours (the dunning policy's final state); the gateway still says past due, so only
    # a payment (ACTIVE) or an end leaves it.
    S.UNPAID: frozenset({S.ACTIVE, S.CANCELED}),
    S.INCOMPLETE_EXPIRED: frozenset(),
    S.CANCELED: frozenset(),
}

INVOICE_TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    I.DRAFT: frozenset({I.OPEN, I.PAID, I.VOID, I.UNCOLLECTIBLE}),
    I.OPEN: frozenset({I.PAID, I.VOID, I.UNCOLLECTIBLE}),
    I.UNCOLLECTIBLE: frozenset({I.PAID, I.VOID}),
    I.PAID: frozenset(),
    I.VOID: frozenset(),
}

_RECOVERED = frozenset({S.ACTIVE, S.TRIALING})


def can_move_subscription(before: SubscriptionStatus, after: SubscriptionStatus) -> bool:
    return after in SUBSCRIPTION_TRANSITIONS[before]


def can_move_invoice(before: InvoiceStatus, after: InvoiceStatus) -> bool:
    return after in INVOICE_TRANSITIONS[before]


def subscription_channel(subscription_id: object) -> str:
    return f"subscription:{subscription_id}"


@dataclass(frozen=True, slots=True)
class InvoiceApplied:
    invoice: Invoice
    # A payment row created (or found) for the invoice, whose state the caller reads from the gateway.
    payment: Payment | None


async def lock_subscription(subscription_id: UUID, uow: UnitOfWork) -> Subscription:
    return await Subscription.filter(id=subscription_id).using_db(uow.connection).select_for_update().get()


async def record_subscription_created(subscription: Subscription, actor: Actor, uow: UnitOfWork) -> None:
    _audit(actor, "subscription.created", subscription, None, subscription.status, uow)
    await merchant_events.announce(uow, merchant_events.SUBSCRIPTION_CREATED, subscription, once=True)


def status_to_mirror(ours: SubscriptionStatus, theirs: SubscriptionStatus) -> SubscriptionStatus:
    """The status our mirror should hold when the gateway says `theirs`. UNPAID is ours alone (the
    dunning policy's end): the gateway still calls it past due, so UNPAID stays UNPAID then."""
    if ours is S.UNPAID and theirs is S.PAST_DUE:
        return ours
    return theirs


async def apply_subscription_result(
    subscription: Subscription, result: SubscriptionResult, *, actor: Actor, uow: UnitOfWork
) -> bool:
    """Apply the gateway's copy of a locked subscription; False when it is stale or changes nothing."""
    if result.updated and result.updated < subscription.gateway_updated:
        logger.info("stale subscription copy ignored", extra={"subscription_id": str(subscription.id)})
        return False
    before = SubscriptionStatus(subscription.status)
    after = status_to_mirror(before, result.status)
    if after is not before and not can_move_subscription(before, after):
        logger.info(
            "subscription move refused as stale",
            extra={"subscription_id": str(subscription.id), "before": before, "after": after},
        )
        return False

    fields: dict[str, Any] = {
        "status": after,
        "current_period_start": _when(result.current_period_start),
        "current_period_end": _when(result.current_period_end),
        "trial_end": _when(result.trial_end),
        "cancel_at_period_end": result.cancel_at_period_end,
        "canceled_at": _when(result.canceled_at),
        "ended_at": _when(result.ended_at),
        "gateway_updated": max(subscription.gateway_updated, result.updated),
    }
    if result.default_payment_method:
        fields["payment_method"] = result.default_payment_method
    if subscription.gateway_reference is None:
        fields["gateway_reference"] = result.reference
    price = await _our_price(result.price_id, uow)
    if price is not None and price.id != subscription.price_id:
        fields.update(price_id=price.id, currency=price.currency, unit_amount=price.unit_amount)
    pending = await _our_price(result.pending_price_id, uow)
    fields["pending_price_id"] = pending.id if pending is not None else None
    if after in _RECOVERED and before not in _RECOVERED:
        fields.update(failed_attempts=0, next_retry_at=None, grace_until=None)

    changed = {name: value for name, value in fields.items() if getattr(subscription, name) != value}
    if not changed:
        return False
    price_before = subscription.price_id
    for name, value in changed.items():
        setattr(subscription, name, value)
    await subscription.save(using_db=uow.connection, update_fields=[*changed, "updated_at"])
    if after is not before:
        _audit(actor, f"subscription.{after.lower()}", subscription, before, after, uow)
    elif "price_id" in changed:
        _audit(actor, "subscription.price_changed", subscription, before, after, uow, {"from": str(price_before)})
    uow.changes.append(StatusChange("subscription", subscription.id, subscription.id, before, after))
    await _announce_subscription(subscription, before, after, uow)
    return True


async def move_subscription(
    subscription: Subscription, after: SubscriptionStatus, *, actor: Actor, uow: UnitOfWork
) -> bool:
    """A status of our own making (the dunning policy's UNPAID) on a locked subscription."""
    before = SubscriptionStatus(subscription.status)
    if after is before or not can_move_subscription(before, after):
        return False
    subscription.status = after
    subscription.next_retry_at = None
    await subscription.save(using_db=uow.connection, update_fields=["status", "next_retry_at", "updated_at"])
    _audit(actor, f"subscription.{after.lower()}", subscription, before, after, uow)
    uow.changes.append(StatusChange("subscription", subscription.id, subscription.id, before, after))
    await _announce_subscription(subscription, before, after, uow)
    return True


async def _announce_subscription(
    subscription: Subscription, before: SubscriptionStatus, after: SubscriptionStatus, uow: UnitOfWork
) -> None:
    if after is S.CANCELED and before is not S.CANCELED:
        await merchant_events.announce(uow, merchant_events.SUBSCRIPTION_CANCELED, subscription, once=True)
    else:
        await merchant_events.announce(uow, merchant_events.SUBSCRIPTION_UPDATED, subscription)


async def apply_invoice_result(
    subscription: Subscription,
    result: InvoiceResult,
    *,
    now: int,
    policy: BillingPolicy,
    actor: Actor,
    uow: UnitOfWork,
) -> InvoiceApplied:
    """Mirror one invoice of a locked subscription, with its order and payment and its dunning facts."""
    invoice = (
        await Invoice.filter(gateway=subscription.gateway, gateway_reference=result.reference)
        .using_db(uow.connection)
        .select_for_update()
        .first()
    )
    if invoice is None and result.payment_reference:
        # One gateway payment pays one invoice: a payment reported again under another reference (PayPal's
        # sale that collected a failed cycle's balance) belongs to the invoice it already paid.
        invoice = (
            await Invoice.filter(subscription_id=subscription.id, payment_reference=result.payment_reference)
            .using_db(uow.connection)
            .select_for_update()
            .first()
        )
    created = invoice is None
    if invoice is None:
        invoice = await Invoice.create(
            subscription_id=subscription.id,
            gateway=subscription.gateway,
            gateway_reference=result.reference,
            status=result.status,
            billing_reason=result.billing_reason,
            currency=result.amount_due.currency,
            amount_due=result.amount_due.amount,
            period_start=_when(result.period_start),
            period_end=_when(result.period_end),
            using_db=uow.connection,
        )
        _audit(actor, "invoice.created", subscription, None, result.status, uow, {"invoice_id": str(invoice.id)})
    attempts_before = invoice.attempt_count
    before = InvoiceStatus(invoice.status)
    status = result.status if result.status is before or can_move_invoice(before, result.status) else before
    changed = {
        "status": status,
        "amount_paid": max(invoice.amount_paid, result.amount_paid),
        "attempt_count": max(invoice.attempt_count, result.attempt_count),
        "payment_reference": invoice.payment_reference or result.payment_reference,
        "next_action": result.next_action.to_json() if result.next_action and status is I.OPEN else None,
        "decline_code": result.decline_code if status is I.OPEN else None,
    }
    changed = {name: value for name, value in changed.items() if getattr(invoice, name) != value}
    if changed:
        for name, value in changed.items():
            setattr(invoice, name, value)
        await invoice.save(using_db=uow.connection, update_fields=[*changed, "updated_at"])
    if status is not before:
        _audit(actor, f"invoice.{status.lower()}", subscription, before, status, uow, {"invoice_id": str(invoice.id)})

    payment = await _invoice_payment(subscription, invoice, actor, uow)
    if status is I.PAID and (status is not before or created):
        await merchant_events.announce(uow, merchant_events.INVOICE_PAID, invoice, once=True)
    if status is I.OPEN and invoice.attempt_count > attempts_before and result.decline_code:
        await merchant_events.announce(uow, merchant_events.INVOICE_PAYMENT_FAILED, invoice)
    if status is I.PAID and subscription.failed_attempts:
        subscription.failed_attempts, subscription.next_retry_at, subscription.grace_until = 0, None, None
        await subscription.save(
            using_db=uow.connection, update_fields=["failed_attempts", "next_retry_at", "grace_until", "updated_at"]
        )
    elif status is I.OPEN and invoice.attempt_count > attempts_before and result.decline_code:
        await _record_failed_attempt(subscription, invoice, now, policy, uow)
    if status is I.OPEN and invoice.next_action:
        await add_message(
            uow,
            "subscription_action_required",
            f"subscription-action:{invoice.id}",
            _email_payload(subscription, invoice, policy),
        )
    return InvoiceApplied(invoice, payment)


async def queue_trial_ending_email(subscription: Subscription, policy: BillingPolicy, uow: UnitOfWork) -> bool:
    trial_end = subscription.trial_end.isoformat() if subscription.trial_end else "none"
    payload = {"subscription_id": str(subscription.id), "update_payment_url": policy.update_payment_url}
    return await add_message(uow, "trial_will_end", f"trial-will-end:{subscription.id}:{trial_end}", payload)


async def queue_final_action_email(subscription: Subscription, policy: BillingPolicy, uow: UnitOfWork) -> bool:
    payload = {
        "subscription_id": str(subscription.id),
        "final_action": policy.final_action.value,
        "update_payment_url": policy.update_payment_url,
    }
    return await add_message(uow, "subscription_dunning_ended", f"dunning-ended:{subscription.id}", payload)


async def _record_failed_attempt(
    subscription: Subscription, invoice: Invoice, now: int, policy: BillingPolicy, uow: UnitOfWork
) -> None:
    """A renewal attempt failed: schedule the next retry (or the final action) and tell the customer.

    The first invoice of a subscription is not dunned: the customer is at the checkout and sees it.
    """
    if invoice.billing_reason == "subscription_create" or subscription.status in (S.UNPAID, S.CANCELED):
        return
    first_failure = subscription.failed_attempts == 0
    subscription.failed_attempts = invoice.attempt_count
    retry_at = next_retry_at(policy, invoice.attempt_count, now)
    # No retry left: the final action is due now; the dunning job carries it out.
    subscription.next_retry_at = retry_at if retry_at is not None else now
    if first_failure or subscription.grace_until is None:
        subscription.grace_until = grace_until(policy, now)
    await subscription.save(
        using_db=uow.connection, update_fields=["failed_attempts", "next_retry_at", "grace_until", "updated_at"]
    )
    payload = _email_payload(subscription, invoice, policy) | {
        "attempt": invoice.attempt_count,
        "next_retry_at": retry_at,
        "final_action": policy.final_action.value if retry_at is None else None,
    }
    await add_message(uow, "subscription_payment_failed", f"dunning:{invoice.id}:{invoice.attempt_count}", payload)


async def _invoice_payment(
    subscription: Subscription, invoice: Invoice, actor: Actor, uow: UnitOfWork
) -> Payment | None:
    """The order and payment that carry the invoice's money, created once it has a gateway payment."""
    if invoice.payment_reference is None or invoice.amount_due <= 0:
        return None
    if invoice.order_id is not None:
        return await Payment.filter(order_id=invoice.order_id).using_db(uow.connection).first()
    existing = (
        await Payment.filter(gateway=invoice.gateway, gateway_reference=invoice.payment_reference)
        .using_db(uow.connection)
        .first()
    )
    if existing is not None:
        invoice.order_id = existing.order_id
        await invoice.save(using_db=uow.connection, update_fields=["order_id", "updated_at"])
        return existing
    price = await Price.filter(id=subscription.price_id).using_db(uow.connection).select_related("product").get()
    order = await Order.create(
        customer_id=subscription.customer_id,
        currency=invoice.currency,
        total_amount=invoice.amount_due,
        using_db=uow.connection,
    )
    label = (
        price.product.name if invoice.billing_reason != "subscription_update" else f"{price.product.name} (proration)"
    )
    await LineItem.create(
        order_id=order.id,
        price_id=price.id,
        product_name=label[:200],
        quantity=1,
        currency=invoice.currency,
        unit_amount=invoice.amount_due,
        total_amount=invoice.amount_due,
        using_db=uow.connection,
    )
    payment = await Payment.create(
        order_id=order.id,
        gateway=invoice.gateway,
        gateway_reference=invoice.payment_reference,
        idempotency_key=f"invoice-{invoice.id}",
        capture_method=CaptureMethod.AUTOMATIC,
        payment_method=subscription.payment_method,
        currency=invoice.currency,
        amount=invoice.amount_due,
        using_db=uow.connection,
    )
    # The order was created just above: this payment is its only one.
    await record_payment_created(payment, order, [], actor, uow)
    invoice.order_id = order.id
    await invoice.save(using_db=uow.connection, update_fields=["order_id", "updated_at"])
    return payment


async def _our_price(price_id: str | None, uow: UnitOfWork) -> Price | None:
    if not price_id:
        return None
    try:
        return await Price.filter(id=UUID(price_id)).using_db(uow.connection).first()
    except ValueError:
        return None


def _email_payload(subscription: Subscription, invoice: Invoice, policy: BillingPolicy) -> dict[str, Any]:
    return {
        "subscription_id": str(subscription.id),
        "invoice_id": str(invoice.id),
        "update_payment_url": policy.update_payment_url,
        "final_action": policy.final_action.value,
    }


def _when(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def _audit(
    actor: Actor,
    action: str,
    subscription: Subscription,
    before: str | None,
    after: str | None,
    uow: UnitOfWork,
    data: dict[str, Any] | None = None,
) -> None:
    record_audit(
        actor,
        action,
        "subscription",
        subscription.id,
        before=before,
        after=after,
        amount=subscription.unit_amount,
        currency=subscription.currency,
        uow=uow,
        data=data,
    )
