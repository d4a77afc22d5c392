"""Braintree subscriptions mapped onto PayQL's subscriptions and invoices.

Braintree has no invoices: each charge of a subscription is a sale transaction naming it (`subscription_id`, with
the billing period it paid in `subscription`), and that transaction is our invoice (its payment is itself). Our
subscription id is the Braintree subscription's own `id`, and a plan is one of our prices (settings map price ids
to plan ids, one plan per price, so the plan names the price back). An unknown status is INCOMPLETE, never ACTIVE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from domain.money import Money
from domain.statuses import InvoiceStatus, PaymentStatus, SubscriptionStatus
from gateways.braintree.transformers import decline_code, epoch, minor_units, payment_status
from gateways.types import InvoiceResult, SubscriptionResult

_STATUS: Final = {
    "Active": SubscriptionStatus.ACTIVE,
    "Past Due": SubscriptionStatus.PAST_DUE,
    "Canceled": SubscriptionStatus.CANCELED,
    "Expired": SubscriptionStatus.CANCELED,  # its last billing cycle ended (a cancel at the period end)
}


def subscription_status(subscription: Any) -> SubscriptionStatus:
    status = str(subscription.status)
    if status == "Active" and getattr(subscription, "trial_period", False) and not _charges(subscription):
        return SubscriptionStatus.TRIALING
    return _STATUS.get(status, SubscriptionStatus.INCOMPLETE)


def _charges(subscription: Any) -> list[Any]:
    return list(getattr(subscription, "transactions", None) or [])


def ends_at_period_end(subscription: Any) -> bool:
    cycles = getattr(subscription, "number_of_billing_cycles", None)
    return str(subscription.status) == "Active" and cycles is not None and cycles <= subscription.current_billing_cycle


def invoice_result(transaction: Any, subscription: Any, currency: str) -> InvoiceResult:
    status = payment_status(str(transaction.status))
    paid = status in (PaymentStatus.PAID, PaymentStatus.AUTHORIZED)
    amount = minor_units(transaction.amount, currency)
    period = getattr(transaction, "subscription_details", None)
    charges = _charges(subscription)
    first = bool(charges) and str(charges[-1].id) == str(transaction.id)
    return InvoiceResult(
        reference=str(transaction.id),
        subscription_reference=str(subscription.id),
        status=InvoiceStatus.PAID if paid else InvoiceStatus.OPEN,
        amount_due=Money(amount, currency),
        amount_paid=amount if paid else 0,
        billing_reason="subscription_create" if first else "subscription_cycle",
        period_start=epoch(getattr(period, "billing_period_start_date", None)),
        period_end=epoch(getattr(period, "billing_period_end_date", None)),
        attempt_count=1,
        payment_reference=str(transaction.id),
        decline_code=decline_code(transaction) if status is PaymentStatus.FAILED else None,
        created=epoch(getattr(transaction, "created_at", None)),
        payql_subscription_id=str(subscription.id),
    )


def subscription_result(
    subscription: Any, *, currency: str, price_of_plan: Mapping[str, str], customer_reference: str | None = None
) -> SubscriptionResult:
    status = subscription_status(subscription)
    trial = bool(getattr(subscription, "trial_period", False))
    start = getattr(subscription, "billing_period_start_date", None)
    end = getattr(subscription, "billing_period_end_date", None)
    if status is SubscriptionStatus.TRIALING:
        start, end = getattr(subscription, "created_at", None), getattr(subscription, "first_billing_date", None)
    ended = status is SubscriptionStatus.CANCELED
    charges = _charges(subscription)
    plan_id = str(subscription.plan_id)
    return SubscriptionResult(
        reference=str(subscription.id),
        status=status,
        price_id=price_of_plan.get(plan_id, plan_id),
        payql_subscription_id=str(subscription.id),
        customer_reference=customer_reference,
        current_period_start=epoch(start),
        current_period_end=epoch(end),
        trial_end=epoch(getattr(subscription, "first_billing_date", None)) if trial else None,
        cancel_at_period_end=ends_at_period_end(subscription),
        canceled_at=epoch(getattr(subscription, "updated_at", None)) if ended else None,
        ended_at=epoch(getattr(subscription, "updated_at", None)) if ended else None,
        default_payment_method=getattr(subscription, "payment_method_token", None),
        latest_invoice=invoice_result(charges[0], subscription, currency) if charges else None,
        updated=epoch(getattr(subscription, "updated_at", None)) or 0,
        gateway_status=str(subscription.status),
    )
