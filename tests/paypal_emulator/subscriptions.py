"""The emulator's Catalog Products v1, Billing Plans and Subscriptions v1, and the v1 sales each billing cycle
makes, with PayPal's status rules and no HTTP in sight (routes are in `app.py`, JSON in `render_billing.py`).

Reproduces: products with a caller-chosen id (a repeated id → 422 DUPLICATE_RESOURCE_IDENTIFIER); plans with
TRIAL and REGULAR cycles, listed by product with paging; subscriptions APPROVAL_PENDING until the buyer approves
(test-only), then ACTIVE (BILLING.SUBSCRIPTION.ACTIVATED, and with no trial the first cycle's sale at once);
SUSPENDED/ACTIVE/CANCELLED through suspend/activate/cancel (a transition from the wrong status → 422
SUBSCRIPTION_STATUS_INVALID); EXPIRED (test-only); billing cycles on demand (test-only `bill`) that complete a
sale (PAYMENT.SALE.COMPLETED), or fail (BILLING.SUBSCRIPTION.PAYMENT.FAILED, the amount left outstanding,
suspended after `payment_failure_threshold` failures) or deny a sale (PAYMENT.SALE.DENIED); capture of the
outstanding balance; revise to another plan of the same product, applied when the buyer approves it (test-only);
sale refunds, full or partial (PAYMENT.SALE.REFUNDED; more than is left → 400 REFUND_EXCEEDED_TRANSACTION_AMOUNT,
a refunded sale → 400 TRANSACTION_ALREADY_REFUNDED, v1 error bodies).

Does not reproduce: real time passing (cycles are billed only when a test says so), setup fees, quantities,
tiered pricing, plan PATCH/deactivate/update-pricing, subscription PATCH, the transactions list, PayPal's own
retry schedule for failed cycles, and the approval of a revise being optional for some changes.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.paypal_emulator.errors import api_error, not_found, v1_error
from tests.paypal_emulator.ledger import Amount, new_id, now

_INTERVALS = {
    "DAY": timedelta(days=1),
    "WEEK": timedelta(weeks=1),
    "MONTH": timedelta(days=30),
    "YEAR": timedelta(days=365),
}

Emit = Callable[[str, Any], None]


def _prefixed(prefix: str, length: int = 12) -> str:
    return prefix + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def _later(interval: dict[str, Any]) -> str:
    span = _INTERVALS[str(interval.get("interval_unit"))] * int(interval.get("interval_count") or 1)
    return (datetime.now(UTC) + span).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Product:
    id: str
    name: str
    type: str
    description: str | None
    create_time: str = field(default_factory=now)


@dataclass
class Plan:
    id: str
    product_id: str
    name: str
    description: str | None
    billing_cycles: list[dict[str, Any]]
    payment_preferences: dict[str, Any]
    status: str = "ACTIVE"
    create_time: str = field(default_factory=now)

    def cycle(self, tenure_type: str) -> dict[str, Any] | None:
        return next((c for c in self.billing_cycles if c.get("tenure_type") == tenure_type), None)

    @property
    def price(self) -> Amount:
        regular = self.cycle("REGULAR") or {}
        return Amount.parse((regular.get("pricing_scheme") or {}).get("fixed_price"), "/billing_cycles/pricing_scheme")


@dataclass
class Sale:
    id: str
    subscription_id: str
    amount: Amount
    state: str
    custom: str | None
    refunded: Decimal = Decimal(0)
    create_time: str = field(default_factory=now)
    update_time: str = field(default_factory=now)


@dataclass
class SaleRefund:
    id: str
    sale_id: str
    amount: Amount
    state: str = "completed"
    create_time: str = field(default_factory=now)


@dataclass
class Subscription:
    id: str
    plan_id: str
    custom_id: str | None
    email: str | None
    status: str = "APPROVAL_PENDING"
    payer_id: str | None = None
    trial_done: int = 0
    cycles_done: int = 0
    failed_payments_count: int = 0
    outstanding: Decimal = Decimal(0)
    last_payment: tuple[Amount, str] | None = None
    last_failed: tuple[Amount, str] | None = None
    next_billing_time: str | None = None
    pending_plan_id: str | None = None
    status_change_note: str | None = None
    start_time: str = field(default_factory=now)
    create_time: str = field(default_factory=now)
    update_time: str = field(default_factory=now)
    status_update_time: str = field(default_factory=now)


class Billing:
    """Products, plans, subscriptions and sales; `emit(event_type, obj)` announces what PayPal announces."""

    def __init__(self, emit: Emit) -> None:
        self.products: dict[str, Product] = {}
        self.plans: dict[str, Plan] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.sales: dict[str, Sale] = {}
        self.sale_refunds: dict[str, SaleRefund] = {}
        self._emit = emit

    # --- catalog and plans -----------------------------------------------------------------------------------
    def create_product(self, body: Any) -> Product:
        if not isinstance(body, dict) or not body.get("name"):
            raise api_error(400, "MISSING_REQUIRED_PARAMETER", field="/name")
        product_id = str(body.get("id") or _prefixed("PROD-", 17))
        if not 6 <= len(product_id) <= 50:
            raise api_error(400, "INVALID_PARAMETER_SYNTAX", field="/id", value=product_id)
        if product_id in self.products:
            raise api_error(422, "DUPLICATE_RESOURCE_IDENTIFIER", field="/id", value=product_id)
        product = Product(product_id, str(body["name"]), str(body.get("type") or "PHYSICAL"), body.get("description"))
        self.products[product.id] = product
        return product

    def product(self, product_id: str) -> Product:
        if product_id not in self.products:
            raise not_found("product_id", product_id)
        return self.products[product_id]

    def create_plan(self, body: Any) -> Plan:
        if not isinstance(body, dict):
            raise api_error(400, "MALFORMED_REQUEST_JSON")
        for required in ("product_id", "name", "billing_cycles", "payment_preferences"):
            if not body.get(required) and body.get(required) != {}:
                raise api_error(400, "MISSING_REQUIRED_PARAMETER", field=f"/{required}")
        if body["product_id"] not in self.products:
            raise api_error(422, "INVALID_PARAMETER_VALUE", field="/product_id", value=str(body["product_id"]))
        plan = Plan(
            _prefixed("P-", 24),
            str(body["product_id"]),
            str(body["name"]),
            body.get("description"),
            list(body["billing_cycles"]),
            dict(body["payment_preferences"]),
            str(body.get("status") or "ACTIVE"),
        )
        if plan.cycle("REGULAR") is None:
            raise api_error(422, "INVALID_PARAMETER_VALUE", field="/billing_cycles", value="no REGULAR cycle")
        _ = plan.price  # validates the regular price now, as PayPal does
        self.plans[plan.id] = plan
        return plan

    def plan(self, plan_id: str) -> Plan:
        if plan_id not in self.plans:
            raise not_found("plan_id", plan_id)
        return self.plans[plan_id]

    def list_plans(self, product_id: str | None, page_size: int, page: int) -> tuple[list[Plan], int, int]:
        plans = [p for p in self.plans.values() if product_id is None or p.product_id == product_id]
        pages = max((len(plans) + page_size - 1) // page_size, 1)
        return plans[(page - 1) * page_size : page * page_size], len(plans), pages

    # --- subscriptions ---------------------------------------------------------------------------------------
    def subscription(self, subscription_id: str) -> Subscription:
        if subscription_id not in self.subscriptions:
            raise not_found("subscription_id", subscription_id)
        return self.subscriptions[subscription_id]

    def create_subscription(self, body: Any) -> Subscription:
        if not isinstance(body, dict) or not body.get("plan_id"):
            raise api_error(400, "MISSING_REQUIRED_PARAMETER", field="/plan_id")
        plan = self.plans.get(str(body["plan_id"]))
        if plan is None or plan.status != "ACTIVE":
            raise api_error(422, "PLAN_NOT_ACTIVE" if plan else "INVALID_PARAMETER_VALUE", field="/plan_id")
        email = (body.get("subscriber") or {}).get("email_address")
        sub = Subscription(_prefixed("I-", 12), plan.id, body.get("custom_id"), email)
        self.subscriptions[sub.id] = sub
        self._emit("BILLING.SUBSCRIPTION.CREATED", sub)
        return sub

    def _status(self, sub: Subscription, status: str, note: str | None = None) -> None:
        sub.status, sub.status_change_note = status, note
        sub.status_update_time = sub.update_time = now()

    def approve(self, subscription_id: str) -> Subscription:
        """The buyer approves on PayPal's page (test-only): a new subscription starts, a revise takes effect."""
        sub = self.subscription(subscription_id)
        if sub.pending_plan_id is not None:
            sub.plan_id, sub.pending_plan_id, sub.update_time = sub.pending_plan_id, None, now()
            self._emit("BILLING.SUBSCRIPTION.UPDATED", sub)
            return sub
        if sub.status != "APPROVAL_PENDING":
            raise api_error(422, "SUBSCRIPTION_STATUS_INVALID")
        sub.payer_id = "QYR5Z8XDVJNXQ"
        self._status(sub, "ACTIVE")
        plan = self.plans[sub.plan_id]
        trial = plan.cycle("TRIAL")
        if trial is not None:
            sub.next_billing_time = _later(trial["frequency"])
            self._emit("BILLING.SUBSCRIPTION.ACTIVATED", sub)
        else:
            self._emit("BILLING.SUBSCRIPTION.ACTIVATED", sub)
            self._collect(sub, "completed")
        return sub

    def bill(self, subscription_id: str, outcome: str = "completed") -> Subscription:
        """One billing cycle now (test-only): `completed`, `failed` (no sale) or `denied` (a denied sale)."""
        sub = self.subscription(subscription_id)
        if sub.status != "ACTIVE":
            raise api_error(422, "SUBSCRIPTION_STATUS_INVALID")
        plan = self.plans[sub.plan_id]
        trial = plan.cycle("TRIAL")
        if trial is not None and sub.trial_done < int(trial.get("total_cycles") or 1):
            sub.trial_done += 1
            sub.update_time = now()
        self._collect(sub, outcome)
        return sub

    def _collect(self, sub: Subscription, outcome: str) -> None:
        plan = self.plans[sub.plan_id]
        price = plan.price
        regular = plan.cycle("REGULAR") or {}
        sub.next_billing_time = _later(regular["frequency"])
        sub.update_time = now()
        if outcome == "failed":
            self._failed(sub, plan, price)
            return
        sale = Sale(new_id(), sub.id, price, "denied" if outcome == "denied" else "completed", sub.custom_id)
        self.sales[sale.id] = sale
        if sale.state == "completed":
            sub.cycles_done += 1
            sub.last_payment = (price, sale.create_time)
            self._emit("PAYMENT.SALE.COMPLETED", sale)
        else:
            self._emit("PAYMENT.SALE.DENIED", sale)
            self._failed(sub, plan, price)

    def _failed(self, sub: Subscription, plan: Plan, price: Amount) -> None:
        sub.failed_payments_count += 1
        sub.outstanding += price.value
        sub.last_failed = (price, now())
        self._emit("BILLING.SUBSCRIPTION.PAYMENT.FAILED", sub)
        threshold = int(plan.payment_preferences.get("payment_failure_threshold") or 0)
        if threshold and sub.failed_payments_count >= threshold:
            self._status(sub, "SUSPENDED", "payment failure threshold reached")
            self._emit("BILLING.SUBSCRIPTION.SUSPENDED", sub)

    def _transition(self, subscription_id: str, body: Any, allowed: tuple[str, ...], to: str, event: str) -> None:
        sub = self.subscription(subscription_id)
        reason = body.get("reason") if isinstance(body, dict) else None
        if not reason and to != "ACTIVE":  # activate's reason is optional
            raise api_error(400, "MISSING_REQUIRED_PARAMETER", field="/reason")
        if sub.status not in allowed:
            raise api_error(422, "SUBSCRIPTION_STATUS_INVALID")
        self._status(sub, to, reason)
        self._emit(event, sub)

    def suspend(self, subscription_id: str, body: Any) -> None:
        self._transition(subscription_id, body, ("ACTIVE",), "SUSPENDED", "BILLING.SUBSCRIPTION.SUSPENDED")

    def activate(self, subscription_id: str, body: Any) -> None:
        self._transition(subscription_id, body, ("SUSPENDED",), "ACTIVE", "BILLING.SUBSCRIPTION.ACTIVATED")

    def cancel(self, subscription_id: str, body: Any) -> None:
        self._transition(subscription_id, body, ("ACTIVE", "SUSPENDED"), "CANCELLED", "BILLING.SUBSCRIPTION.CANCELLED")
        self.subscriptions[subscription_id].next_billing_time = None

    def expire(self, subscription_id: str) -> Subscription:
        """The last cycle of a plan with `total_cycles` ran (test-only)."""
        sub = self.subscription(subscription_id)
        if sub.status not in ("ACTIVE", "SUSPENDED"):
            raise api_error(422, "SUBSCRIPTION_STATUS_INVALID")
        self._status(sub, "EXPIRED")
        sub.next_billing_time = None
        self._emit("BILLING.SUBSCRIPTION.EXPIRED", sub)
        return sub

    def revise(self, subscription_id: str, body: Any) -> Subscription:
        sub = self.subscription(subscription_id)
        plan_id = str((body or {}).get("plan_id") or "")
        new = self.plans.get(plan_id)
        if new is None:
            raise api_error(422, "INVALID_PARAMETER_VALUE", field="/plan_id", value=plan_id)
        if sub.status not in ("ACTIVE", "SUSPENDED"):
            raise api_error(422, "SUBSCRIPTION_STATUS_INVALID")
        if new.product_id != self.plans[sub.plan_id].product_id:
            raise api_error(422, "INVALID_PARAMETER_VALUE", field="/plan_id", value="a plan of another product")
        sub.pending_plan_id = plan_id
        return sub

    def capture(self, subscription_id: str, body: Any, *, decline: str | None) -> Sale:
        sub = self.subscription(subscription_id)
        if not isinstance(body, dict) or body.get("capture_type") != "OUTSTANDING_BALANCE":
            raise api_error(400, "MISSING_REQUIRED_PARAMETER", field="/capture_type")
        amount = Amount.parse(body.get("amount"), "/amount")
        if sub.outstanding <= 0 or amount.value > sub.outstanding:
            raise api_error(422, "ZERO_OUTSTANDING_BALANCE" if sub.outstanding <= 0 else "INVALID_PARAMETER_VALUE")
        if decline is not None:
            raise api_error(422, decline)
        sale = Sale(new_id(), sub.id, amount, "completed", sub.custom_id)
        self.sales[sale.id] = sale
        sub.outstanding -= amount.value
        sub.last_payment = (amount, sale.create_time)
        if sub.outstanding <= 0:
            sub.failed_payments_count = 0
        sub.update_time = now()
        self._emit("PAYMENT.SALE.COMPLETED", sale)
        return sale

    # --- sales -----------------------------------------------------------------------------------------------
    def sale(self, sale_id: str) -> Sale:
        if sale_id not in self.sales:
            raise not_found("sale_id", sale_id)
        return self.sales[sale_id]

    def refund_sale(self, sale_id: str, body: Any) -> SaleRefund:
        """All of what is left (no amount) or part of it; v1 answers its refusals with a 400 named for the reason."""
        sale = self.sale(sale_id)
        if sale.state == "refunded":
            raise v1_error(400, "TRANSACTION_ALREADY_REFUNDED", "Refund transaction refused - already refunded.")
        if sale.state not in ("completed", "partially_refunded"):
            raise v1_error(400, "TRANSACTION_REFUSED", "The request was refused.")
        left = sale.amount.value - sale.refunded
        raw = body.get("amount") if isinstance(body, dict) else None
        value = left
        if raw is not None:
            if not isinstance(raw, dict) or raw.get("currency") != sale.amount.currency:
                raise v1_error(400, "VALIDATION_ERROR", "Invalid request - see details: amount/currency.")
            value = Amount.parse({"currency_code": raw["currency"], "value": str(raw.get("total"))}, "/amount").value
        if value > left:
            raise v1_error(
                400,
                "REFUND_EXCEEDED_TRANSACTION_AMOUNT",
                "Refund refused - the requested refund amount would exceed the amount of transaction being refunded.",
            )
        refund = SaleRefund(new_id(), sale.id, Amount(sale.amount.currency, value))
        self.sale_refunds[refund.id] = refund
        sale.refunded += value
        sale.state = "refunded" if sale.refunded >= sale.amount.value else "partially_refunded"
        sale.update_time = now()
        self._emit("PAYMENT.SALE.REFUNDED", refund)
        return refund
