"""Razorpay plans, subscriptions and invoices to and from ours (see `billing.py`).

A new subscription waits for the shopper to authenticate it in Checkout (opened with the subscription id); that
wait is the invoice `<subscription id>:authentication`, OPEN with a CONFIRM_WITH_SDK next action while the
subscription is `created` and VOID afterwards (it moves no money itself). Each billing cycle is a Razorpay
invoice whose payment is an ordinary order (our payment reference). An unknown subscription status is INCOMPLETE
(no access), an unknown invoice status OPEN: never paid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from domain.money import Money
from domain.statuses import InvoiceStatus, NextActionType, SubscriptionStatus
from gateways.razorpay.errors import decline_code
from gateways.razorpay.transformers import notes_of
from gateways.types import InvoiceResult, NextAction, PlanPrice, SubscriptionResult

PAYQL_SUBSCRIPTION_ID: Final = "payql_subscription_id"
PAYQL_PRICE_ID: Final = "payql_price_id"
AUTHENTICATION_SUFFIX: Final = ":authentication"
# Razorpay needs the number of cycles up front: ten years' worth of each period.
TOTAL_COUNTS: Final = {"daily": 3650, "weekly": 520, "monthly": 120, "yearly": 10}
_PERIODS: Final = {"DAY": "daily", "WEEK": "weekly", "MONTH": "monthly", "YEAR": "yearly"}

_SUBSCRIPTION_STATUSES: Final = {
    "created": SubscriptionStatus.INCOMPLETE,  # waiting for the shopper to authenticate it
    "authenticated": SubscriptionStatus.TRIALING,  # authenticated, first charge at start_at
    "active": SubscriptionStatus.ACTIVE,
    "pending": SubscriptionStatus.PAST_DUE,  # a charge failed; Razorpay retries
    "halted": SubscriptionStatus.UNPAID,  # retries exhausted
    "paused": SubscriptionStatus.PAUSED,
    "cancelled": SubscriptionStatus.CANCELED,
    "completed": SubscriptionStatus.CANCELED,  # ran its cycles
    "expired": SubscriptionStatus.INCOMPLETE_EXPIRED,  # never authenticated
}
_INVOICE_STATUSES: Final = {
    "draft": InvoiceStatus.DRAFT,
    "issued": InvoiceStatus.OPEN,
    "partially_paid": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "cancelled": InvoiceStatus.VOID,
    "expired": InvoiceStatus.VOID,
}


def subscription_status(status: str) -> SubscriptionStatus:
    return _SUBSCRIPTION_STATUSES.get(status, SubscriptionStatus.INCOMPLETE)


def invoice_status(status: str) -> InvoiceStatus:
    return _INVOICE_STATUSES.get(status, InvoiceStatus.OPEN)


def period_of(price: PlanPrice) -> str:
    return _PERIODS[price.interval]


def plan_request(price: PlanPrice) -> dict[str, Any]:
    return {
        "period": period_of(price),
        "interval": price.interval_count,
        "item": {
            "name": price.product_name[:255],
            "amount": price.unit_amount.amount,
            "currency": price.unit_amount.currency,
            "description": f"PayQL price {price.price_id}",
        },
        "notes": {PAYQL_PRICE_ID: price.price_id},
    }


def plan_matches(plan: Mapping[str, Any], price: PlanPrice) -> bool:
    """Our plan for `price`: Razorpay plans cannot change, so a changed price gets a new plan."""
    item = plan.get("item") or {}
    return (
        notes_of(plan).get(PAYQL_PRICE_ID) == price.price_id
        and plan.get("period") == period_of(price)
        and plan.get("interval") == price.interval_count
        and item.get("amount") == price.unit_amount.amount
        and str(item.get("currency", "")).upper() == price.unit_amount.currency
    )


def plan_amount(plan: Mapping[str, Any]) -> Money:
    item = plan["item"]
    return Money(int(item["amount"]), str(item["currency"]).upper())


def invoice_result(
    invoice: Mapping[str, Any], *, payql_subscription_id: str | None, failed_payment: Mapping[str, Any] | None = None
) -> InvoiceResult:
    status = invoice_status(str(invoice.get("status")))
    currency = str(invoice["currency"]).upper()
    return InvoiceResult(
        reference=str(invoice["id"]),
        subscription_reference=str(invoice.get("subscription_id") or ""),
        status=status,
        amount_due=Money(int(invoice["amount"]), currency),
        amount_paid=int(invoice.get("amount_paid") or 0),
        billing_reason="subscription_cycle",
        period_start=invoice.get("billing_start"),
        period_end=invoice.get("billing_end"),
        attempt_count=1,
        payment_reference=str(invoice["order_id"]) if invoice.get("order_id") else None,
        decline_code=decline_code(failed_payment.get("error_reason")) if failed_payment else None,
        created=invoice.get("created_at"),
        payql_subscription_id=payql_subscription_id,
    )


def authentication_invoice(sub: Mapping[str, Any], plan: Mapping[str, Any]) -> InvoiceResult:
    """The shopper's authentication as an invoice: OPEN with Checkout to open while `created`, VOID after."""
    pending = sub.get("status") == "created"
    trial = bool(sub.get("start_at"))
    amount = plan_amount(plan)
    return InvoiceResult(
        reference=f"{sub['id']}{AUTHENTICATION_SUFFIX}",
        subscription_reference=str(sub["id"]),
        status=InvoiceStatus.OPEN if pending else InvoiceStatus.VOID,
        amount_due=Money(0, amount.currency) if trial else amount,
        billing_reason="subscription_create",
        next_action=NextAction(NextActionType.CONFIRM_WITH_SDK, client_secret=str(sub["id"])) if pending else None,
        created=sub.get("created_at"),
        payql_subscription_id=notes_of(sub).get(PAYQL_SUBSCRIPTION_ID),
    )


def subscription_result(
    sub: Mapping[str, Any],
    plan: Mapping[str, Any],
    *,
    invoices: Sequence[Mapping[str, Any]] = (),
    failed_payment: Mapping[str, Any] | None = None,
    pending_plan: Mapping[str, Any] | None = None,
) -> SubscriptionResult:
    """The subscription with its latest unpaid cycle as `latest_invoice`, else its authentication invoice (paid
    cycles reach us as invoice.paid events and invoice reads)."""
    status = subscription_status(str(sub.get("status")))
    payql_subscription_id = notes_of(sub).get(PAYQL_SUBSCRIPTION_ID)
    unpaid = [i for i in invoices if i.get("status") == "issued"]
    latest = (
        invoice_result(
            max(unpaid, key=lambda i: int(i.get("created_at") or 0)),
            payql_subscription_id=payql_subscription_id,
            failed_payment=failed_payment,
        )
        if unpaid
        else authentication_invoice(sub, plan)
    )
    ending = sub.get("end_at")
    current_end = sub.get("current_end")
    live = sub.get("status") in ("active", "authenticated")
    return SubscriptionResult(
        reference=str(sub["id"]),
        status=status,
        price_id=notes_of(plan).get(PAYQL_PRICE_ID),
        payql_subscription_id=payql_subscription_id,
        customer_reference=sub.get("customer_id"),
        current_period_start=sub.get("current_start"),
        current_period_end=current_end,
        trial_end=sub.get("start_at") if status is SubscriptionStatus.TRIALING else None,
        # Cancelling at the cycle end leaves the subscription active and ending with the current cycle.
        cancel_at_period_end=bool(live and ending and current_end and ending <= current_end),
        canceled_at=sub.get("ended_at") if sub.get("status") == "cancelled" else None,
        ended_at=sub.get("ended_at"),
        pending_price_id=notes_of(pending_plan).get(PAYQL_PRICE_ID) if pending_plan else None,
        latest_invoice=latest,
        gateway_status=str(sub.get("status")),
    )
