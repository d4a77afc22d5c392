"""PayPal Subscriptions v1 wire objects (catalog products, billing plans, subscriptions, v1 sales) mapped to and
from PayQL's billing types, and the `BILLING.SUBSCRIPTION.*` / `PAYMENT.SALE.*` events. Nothing here does I/O.

How PayPal's model maps onto ours:
- Our product is a catalog product whose id we choose (`PAYQL-<our product id>`), so it is found by id.
- Our recurring price is a billing plan. Plan ids are PayPal's, so the plan says whose it is in its description
  (`payql:price=<id>:trial=<days>`); a trial is a TRIAL billing cycle of the plan, so there is one plan per
  (price, trial days).
- PayPal has no invoices. Each billing cycle's payment is a v1 *sale*: one sale is one paid (or denied) invoice
  whose reference is the sale id and whose payment reference is `SALE_PREFIX` + the sale id, so that
  `PayPalGateway.retrieve`/`refund` know to read or refund a sale rather than an order. The buyer's approval of
  a new subscription is the invoice `<subscription id>:approval`, OPEN with the approve link while
  APPROVAL_PENDING and VOID afterwards (it moves no money; the first cycle's payment is a sale). A failed cycle
  (BILLING.SUBSCRIPTION.PAYMENT.FAILED) is the invoice `<subscription id>:outstanding:<failure time>`, OPEN while the
  subscription owes a balance.
An unknown PayPal status never maps to a success.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from domain.money import Money
from domain.statuses import InvoiceStatus, NextActionType, PaymentStatus, SubscriptionStatus
from gateways.paypal.transformers import amount_wire, epoch, link, money, refund_status
from gateways.types import (
    EventEffect,
    EventIgnored,
    InvoiceObserved,
    InvoiceResult,
    NextAction,
    PaymentResult,
    PlanPrice,
    RefundObserved,
    RefundResult,
    SubscriptionObserved,
    SubscriptionRequest,
    SubscriptionResult,
    VerifiedEvent,
)

APPROVAL_SUFFIX: Final = ":approval"
# A payment reference that names a v1 sale (one billing cycle's payment) rather than an order.
SALE_PREFIX: Final = "paypal_sale:"
OUTSTANDING_MARK: Final = ":outstanding:"
_PLAN_MARK: Final = "payql:price="

SUBSCRIPTION_EVENTS: Final = frozenset(
    {
        "BILLING.SUBSCRIPTION.CREATED",
        "BILLING.SUBSCRIPTION.ACTIVATED",
        "BILLING.SUBSCRIPTION.UPDATED",
        "BILLING.SUBSCRIPTION.RE-ACTIVATED",
        "BILLING.SUBSCRIPTION.SUSPENDED",
        "BILLING.SUBSCRIPTION.CANCELLED",
        "BILLING.SUBSCRIPTION.EXPIRED",
    }
)
PAYMENT_FAILED_EVENT: Final = "BILLING.SUBSCRIPTION.PAYMENT.FAILED"
SALE_EVENTS: Final = frozenset({"PAYMENT.SALE.COMPLETED", "PAYMENT.SALE.DENIED", "PAYMENT.SALE.PENDING"})
SALE_REFUND_EVENTS: Final = frozenset({"PAYMENT.SALE.REFUNDED", "PAYMENT.SALE.REVERSED"})

_ENDED: Final = frozenset({"CANCELLED", "EXPIRED"})


# --- catalog and plans ---------------------------------------------------------------------------------------
def paypal_product_id(price: PlanPrice) -> str:
    """Our product's catalog id at PayPal (6 to 50 characters)."""
    return f"PAYQL-{price.product_id}"[:50]


def product_request(price: PlanPrice) -> dict[str, Any]:
    return {
        "id": paypal_product_id(price),
        "name": price.product_name[:127] or price.product_id,
        "type": "SERVICE",
        "description": f"PayQL product {price.product_id}"[:256],
    }


def plan_marker(price: PlanPrice, trial_days: int) -> str:
    return f"{_PLAN_MARK}{price.price_id}:trial={trial_days}"


def price_id_of_plan(plan: Mapping[str, Any] | None) -> str | None:
    """Our price id from a plan we made (its description), None for anyone else's plan."""
    description = str((plan or {}).get("description") or "")
    if not description.startswith(_PLAN_MARK):
        return None
    return description.removeprefix(_PLAN_MARK).rsplit(":trial=", 1)[0] or None


def plan_request(price: PlanPrice, trial_days: int) -> dict[str, Any]:
    """A plan that bills `price` every interval until cancelled, after an unpaid TRIAL cycle of `trial_days`."""
    regular: dict[str, Any] = {
        "frequency": {"interval_unit": price.interval, "interval_count": price.interval_count},
        "tenure_type": "REGULAR",
        "sequence": 1,
        "total_cycles": 0,  # 0: until cancelled
        "pricing_scheme": {"fixed_price": amount_wire(price.unit_amount)},
    }
    cycles = [regular]
    if trial_days > 0:
        trial = {
            "frequency": {"interval_unit": "DAY", "interval_count": trial_days},
            "tenure_type": "TRIAL",
            "sequence": 1,
            "total_cycles": 1,
        }
        cycles = [trial, {**regular, "sequence": 2}]
    return {
        "product_id": paypal_product_id(price),
        "name": price.product_name[:127] or price.price_id,
        "description": plan_marker(price, trial_days),
        "status": "ACTIVE",
        "billing_cycles": cycles,
        "payment_preferences": {
            # A failed cycle is retried by PayPal and then left outstanding for our dunning to collect
            # (`pay_invoice`); the subscription is suspended after three failures.
            "auto_bill_outstanding": True,
            "payment_failure_threshold": 3,
        },
    }


def plan_matches(plan: Mapping[str, Any], price: PlanPrice, trial_days: int) -> bool:
    return plan.get("description") == plan_marker(price, trial_days) and plan.get("status") in (None, "ACTIVE")


def regular_amount(plan: Mapping[str, Any] | None) -> Money | None:
    for cycle in (plan or {}).get("billing_cycles") or ():
        if cycle.get("tenure_type") == "REGULAR":
            return money((cycle.get("pricing_scheme") or {}).get("fixed_price"))
    return None


def has_trial(plan: Mapping[str, Any] | None) -> bool:
    return any(cycle.get("tenure_type") == "TRIAL" for cycle in (plan or {}).get("billing_cycles") or ())


# --- subscriptions -------------------------------------------------------------------------------------------
def subscription_request(request: SubscriptionRequest, plan_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"plan_id": plan_id, "custom_id": request.payql_subscription_id[:127]}
    if request.customer_email:
        body["subscriber"] = {"email_address": request.customer_email}
    if request.return_url:
        body["application_context"] = {
            "return_url": request.return_url,
            "cancel_url": request.return_url,
            "user_action": "SUBSCRIBE_NOW",
            "shipping_preference": "NO_SHIPPING",
        }
    return body


def _in_trial(billing_info: Mapping[str, Any]) -> bool:
    for execution in billing_info.get("cycle_executions") or ():
        if execution.get("tenure_type") == "TRIAL":
            return int(execution.get("cycles_completed") or 0) < int(execution.get("total_cycles") or 0)
    return False


def _owes(billing_info: Mapping[str, Any]) -> bool:
    balance = billing_info.get("outstanding_balance")
    try:
        return balance is not None and Decimal(str(balance.get("value"))) > 0
    except InvalidOperation:
        return False


def subscription_status(sub: Mapping[str, Any]) -> SubscriptionStatus:
    """PayPal's status (and billing info) as ours; anything unknown stays INCOMPLETE, never a success."""
    status = sub.get("status")
    billing_info = sub.get("billing_info") or {}
    if status in ("APPROVAL_PENDING", "APPROVED"):
        return SubscriptionStatus.INCOMPLETE
    if status == "ACTIVE":
        if _owes(billing_info) and int(billing_info.get("failed_payments_count") or 0) > 0:
            return SubscriptionStatus.PAST_DUE
        return SubscriptionStatus.TRIALING if _in_trial(billing_info) else SubscriptionStatus.ACTIVE
    if status == "SUSPENDED":
        # PayPal suspends by itself once `payment_failure_threshold` cycles failed: that one owes a balance.
        return SubscriptionStatus.PAST_DUE if _owes(billing_info) else SubscriptionStatus.PAUSED
    if status in _ENDED:
        return SubscriptionStatus.CANCELED
    return SubscriptionStatus.INCOMPLETE


def approval_invoice(sub: Mapping[str, Any], first_amount: Money) -> InvoiceResult:
    """The buyer's approval as an invoice: OPEN with the approve link until approved, VOID after (no money moves)."""
    pending = sub.get("status") == "APPROVAL_PENDING"
    approve = link(sub, "approve")
    return InvoiceResult(
        reference=f"{sub['id']}{APPROVAL_SUFFIX}",
        subscription_reference=str(sub["id"]),
        status=InvoiceStatus.OPEN if pending else InvoiceStatus.VOID,
        amount_due=first_amount,
        billing_reason="subscription_create",
        next_action=NextAction(NextActionType.REDIRECT, redirect_url=approve) if pending and approve else None,
        created=epoch(sub.get("create_time")),
        payql_subscription_id=sub.get("custom_id"),
    )


def outstanding_invoice(sub: Mapping[str, Any]) -> InvoiceResult | None:
    """The balance a failed cycle left (BILLING.SUBSCRIPTION.PAYMENT.FAILED), None when nothing ever failed."""
    billing_info = sub.get("billing_info") or {}
    failed = billing_info.get("last_failed_payment")
    if not isinstance(failed, Mapping):
        return None
    owed = _owes(billing_info)
    amount = money(billing_info["outstanding_balance"]) if owed else money(failed.get("amount"))
    return InvoiceResult(
        reference=f"{sub['id']}{OUTSTANDING_MARK}{epoch(failed.get('time')) or 0}",
        subscription_reference=str(sub["id"]),
        status=InvoiceStatus.OPEN if owed else InvoiceStatus.PAID,
        amount_due=amount,
        amount_paid=0 if owed else amount.amount,
        billing_reason="subscription_cycle",
        attempt_count=int(billing_info.get("failed_payments_count") or 0),
        decline_code="generic_decline" if owed else None,
        created=epoch(failed.get("time")),
        payql_subscription_id=sub.get("custom_id"),
    )


def subscription_result(sub: Mapping[str, Any], *, plan: Mapping[str, Any] | None = None) -> SubscriptionResult:
    """A subscription (with its plan, inline or given) as ours. `latest_invoice` is the outstanding balance of a
    failed cycle once there is one, else the approval invoice (None when the plan is unknown)."""
    plan = plan if plan is not None else sub.get("plan")
    status = subscription_status(sub)
    billing_info = sub.get("billing_info") or {}
    last_payment = billing_info.get("last_payment") or {}
    next_billing = epoch(billing_info.get("next_billing_time"))
    latest = outstanding_invoice(sub)
    first_amount = regular_amount(plan)
    if latest is None and first_amount is not None:  # without the plan (an event's copy) the amount is unknown
        latest = approval_invoice(sub, Money(0, first_amount.currency) if has_trial(plan) else first_amount)
    subscriber = sub.get("subscriber") or {}
    changed = epoch(sub.get("status_update_time"))
    ended = changed if sub.get("status") in _ENDED else None
    return SubscriptionResult(
        reference=str(sub["id"]),
        status=status,
        price_id=price_id_of_plan(plan),
        payql_subscription_id=sub.get("custom_id"),
        customer_reference=subscriber.get("payer_id"),
        current_period_start=epoch(last_payment.get("time")) or epoch(sub.get("start_time")),
        current_period_end=next_billing,
        trial_end=next_billing if status is SubscriptionStatus.TRIALING else None,
        canceled_at=changed if sub.get("status") == "CANCELLED" else None,
        ended_at=ended,
        latest_invoice=latest,
        updated=max(epoch(sub.get("update_time")) or 0, changed or 0),
        gateway_status=str(sub.get("status")),
    )


# --- sales (one billing cycle's payment each) ----------------------------------------------------------------
def sale_amount(sale: Mapping[str, Any]) -> Money:
    """A v1 amount `{total, currency}` as exact minor units."""
    raw = sale.get("amount") or {}
    return money({"currency_code": raw.get("currency"), "value": raw.get("total")})


_SALE_INVOICE_STATUSES: Final[Mapping[str, InvoiceStatus]] = {
    "completed": InvoiceStatus.PAID,
    "partially_refunded": InvoiceStatus.PAID,
    "refunded": InvoiceStatus.PAID,
}


def sale_invoice(sale: Mapping[str, Any]) -> InvoiceResult:
    """One cycle's sale as an invoice: PAID when the sale completed, else OPEN (denied, pending)."""
    state = str(sale.get("state") or "").lower()
    status = _SALE_INVOICE_STATUSES.get(state, InvoiceStatus.OPEN)
    amount = sale_amount(sale)
    return InvoiceResult(
        reference=str(sale["id"]),
        subscription_reference=str(sale.get("billing_agreement_id") or ""),
        status=status,
        amount_due=amount,
        amount_paid=amount.amount if status is InvoiceStatus.PAID else 0,
        billing_reason="subscription_cycle",
        attempt_count=1,
        payment_reference=f"{SALE_PREFIX}{sale['id']}",
        decline_code="generic_decline" if state == "denied" else None,
        created=epoch(sale.get("create_time")),
        payql_subscription_id=sale.get("custom") or None,
    )


def sale_amount_wire(amount: Money) -> dict[str, str]:
    """Our money as a v1 amount `{total, currency}`."""
    return {"total": amount.decimal_string(), "currency": amount.currency}


_SALE_PAYMENT_STATUSES: Final[Mapping[str, PaymentStatus]] = {
    "completed": PaymentStatus.PAID,
    "partially_refunded": PaymentStatus.PAID,
    "refunded": PaymentStatus.PAID,
    "pending": PaymentStatus.PROCESSING,
    "denied": PaymentStatus.FAILED,
}


def sale_payment_result(sale: Mapping[str, Any]) -> PaymentResult:
    """A sale read back as the payment of its invoice. A v1 sale names no refunded total: only a fully
    refunded one says how much (all of it); partial refunds are known from their own answers and events."""
    state = str(sale.get("state") or "").lower()
    status = _SALE_PAYMENT_STATUSES.get(state, PaymentStatus.PENDING)
    amount = sale_amount(sale)
    paid = amount.amount if status is PaymentStatus.PAID else 0
    return PaymentResult(
        reference=f"{SALE_PREFIX}{sale['id']}",
        status=status,
        amount=amount,
        created=epoch(sale.get("create_time")),
        amount_authorized=paid,
        amount_captured=paid,
        amount_refunded=paid if state == "refunded" else 0,
        gateway_status=state,
        decline_code="generic_decline" if status is PaymentStatus.FAILED else None,
    )


def sale_refund_result(refund: Mapping[str, Any]) -> RefundResult:
    state = str(refund.get("state") or "").upper()
    return RefundResult(
        reference=str(refund["id"]),
        payment_reference=f"{SALE_PREFIX}{refund['sale_id']}",
        status=refund_status(state),
        amount=sale_amount(refund),
        gateway_status=state,
    )


def _to_read_back(sale: Mapping[str, Any]) -> SubscriptionResult:
    """Only which subscription a sale belongs to: never applied as it is (`stale_possible` makes it re-read)."""
    return SubscriptionResult(
        reference=str(sale["billing_agreement_id"]),
        status=SubscriptionStatus.INCOMPLETE,
        price_id=None,
        payql_subscription_id=sale.get("custom") or None,
    )


# --- events --------------------------------------------------------------------------------------------------
def is_billing_event(event_type: str) -> bool:
    return (
        event_type in SUBSCRIPTION_EVENTS
        or event_type == PAYMENT_FAILED_EVENT
        or event_type in SALE_EVENTS
        or event_type in SALE_REFUND_EVENTS
    )


def billing_effects(event: VerifiedEvent) -> list[EventEffect]:
    """What a verified billing event says; all are re-read before use (`stale_possible=True`)."""
    kind = event.event_type
    resource = event.payload.get("resource")
    if not isinstance(resource, dict):
        return [EventIgnored(f"{kind} event {event.event_id} carries no resource")]
    try:
        if kind in SUBSCRIPTION_EVENTS:
            return [SubscriptionObserved(subscription_result(resource), stale_possible=True)]
        if kind == PAYMENT_FAILED_EVENT:
            invoice = outstanding_invoice(resource)
            if invoice is None:
                return [EventIgnored(f"{kind} event {event.event_id} names no failed payment")]
            # PayPal sends no BILLING.SUBSCRIPTION.UPDATED when a cycle fails: this event is also the only word
            # that the subscription now owes (PAST_DUE).
            return [
                SubscriptionObserved(subscription_result(resource), stale_possible=True),
                InvoiceObserved(invoice, event="payment_failed", stale_possible=True),
            ]
        if kind in SALE_EVENTS:
            if not resource.get("billing_agreement_id"):
                return [EventIgnored(f"{kind} event {event.event_id} is a sale outside any subscription")]
            if kind == "PAYMENT.SALE.PENDING":
                return [EventIgnored(f"{kind} event {event.event_id}: the sale's outcome follows")]
            if kind == "PAYMENT.SALE.DENIED":
                # A denied cycle is owed as the subscription's outstanding balance, the one invoice dunning
                # collects (BILLING.SUBSCRIPTION.PAYMENT.FAILED); the sale is not a second debt. The
                # subscription is read back, with that balance.
                return [SubscriptionObserved(_to_read_back(resource), stale_possible=True)]
            # The subscription is read back too: a sale that collected an outstanding balance ends PAST_DUE, and
            # PayPal announces that with nothing else.
            return [
                InvoiceObserved(sale_invoice(resource), event="paid"),
                SubscriptionObserved(_to_read_back(resource), stale_possible=True),
            ]
        return [RefundObserved(sale_refund_result(resource))]
    except (KeyError, ValueError, TypeError) as exc:
        return [EventIgnored(f"{kind} event {event.event_id} carries a malformed resource: {exc!r}")]
