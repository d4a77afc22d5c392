"""`PayPalBilling`: the `gateways.billing.BillingGateway` verbs over PayPal Subscriptions v1 (mixed into
`PayPalGateway`). Wire mapping lives in `billing_transformers.py`; read its docstring for how plans, sales and
approvals map onto our prices and invoices.

Through the server SDK's subscriptions controller where it has one (plans, subscriptions, capture); catalog
products and the v1 sale read have no controller and go through `rest.py` with the same OAuth token.

What PayPal cannot do, and what we do instead:
- Approval: a new subscription is APPROVAL_PENDING (INCOMPLETE) until the buyer approves it on PayPal's page;
  the approve link is the approval invoice's REDIRECT `next_action`. BILLING.SUBSCRIPTION.ACTIVATED follows.
- Cancel at period end: PayPal only cancels now. Cancelling stops all future billing, so we cancel at once and
  answer `cancel_at_period_end=True` with `current_period_end` = the time already paid for (the next billing
  time read just before), which the mirror keeps access until.
- Pause/resume are suspend/activate. Plan changes are `revise` and take effect at the next billing cycle
  (PayPal never prorates), so only `ProrationMode.AT_PERIOD_END` is accepted; the buyer may have to approve the
  change (its link comes back as a `subscription_update` invoice's REDIRECT).
- `pay_invoice` captures the subscription's outstanding balance (what failed cycles left owing).
- Metered billing and changing the funding source from the merchant side do not exist: `NotSupported`.
- PayPal-Request-Id: products, plans, subscriptions and captures take one (derived from our entity or the
  caller's key). Suspend, activate, cancel and revise take none; they are idempotent by state here: a repeat
  that PayPal refuses as SUBSCRIPTION_STATUS_INVALID is read back and answered with the state reached.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from typing import Any

from domain.money import Money
from domain.statuses import InvoiceStatus, NextActionType
from gateways.errors import InvalidGatewayRequest, NotSupported, PaymentDeclined
from gateways.paypal.billing_periods import cycle_end, regular_frequency
from gateways.paypal.billing_transformers import (
    APPROVAL_SUFFIX,
    OUTSTANDING_MARK,
    SALE_PREFIX,
    approval_invoice,
    has_trial,
    outstanding_invoice,
    paypal_product_id,
    plan_matches,
    plan_request,
    product_request,
    regular_amount,
    sale_invoice,
    subscription_request,
    subscription_result,
)
from gateways.paypal.calls import PayPalCalls, mapped
from gateways.paypal.transformers import epoch, link, money, request_id
from gateways.types import (
    InvoiceResult,
    NextAction,
    PlanChangeRequest,
    PlanPrice,
    ProrationMode,
    ProrationPreview,
    SubscriptionRequest,
    SubscriptionResult,
    UsageReport,
)

_PREFER = "return=representation"
_PAGE_SIZE = 20


class PayPalBilling(PayPalCalls):
    # (our price id, trial days) → PayPal plan id, and PayPal plan id → plan: plans never change once made.
    _plan_ids: dict[tuple[str, int], str]
    _plans: dict[str, dict[str, Any]]

    async def billing_now(self, reference: str) -> int:
        """Real time: PayPal has no test clocks."""
        return int(time.time())

    # --- catalog ---------------------------------------------------------------------------------------------
    async def _ensure_product(self, price: PlanPrice) -> str:
        product_id = paypal_product_id(price)
        if await self._rest_or_none("GET", f"/v1/catalogs/products/{product_id}") is None:
            rid = request_id("product", price.product_id)
            await self._rest("POST", "/v1/catalogs/products", body=product_request(price), request_id=rid)
        return product_id

    async def _plan_id(self, price: PlanPrice, trial_days: int) -> str:
        """Find our plan for (price, trial days) among the product's plans, or create it."""
        key = (price.price_id, trial_days)
        if key in self._plan_ids:
            return self._plan_ids[key]
        product_id = await self._ensure_product(price)
        page = 1
        while True:
            options = {"product_id": product_id, "page_size": _PAGE_SIZE, "page": page, "total_required": True}
            listing = await self._json(functools.partial(_list_plans, options=options))
            for plan in listing.get("plans") or ():
                if plan_matches(plan, price, trial_days):
                    self._plan_ids[key] = str(plan["id"])
                    return self._plan_ids[key]
            if page >= int(listing.get("total_pages") or 1):
                break
            page += 1
        rid = request_id("plan", f"{price.price_id}:{trial_days}")
        body = plan_request(price, trial_days)
        plan = await self._json(
            lambda sdk: sdk.subscriptions.create_billing_plan(
                {"body": body, "paypal_request_id": rid, "prefer": _PREFER}
            ),
            request_id=rid,
        )
        self._plan_ids[key] = str(plan["id"])
        self._plans[str(plan["id"])] = plan
        return self._plan_ids[key]

    async def _plan(self, plan_id: str) -> dict[str, Any]:
        if plan_id not in self._plans:
            self._plans[plan_id] = await self._json(lambda sdk: sdk.subscriptions.get_billing_plan(plan_id))
        return self._plans[plan_id]

    # --- subscriptions ---------------------------------------------------------------------------------------
    async def create_subscription(self, request: SubscriptionRequest) -> SubscriptionResult:
        """APPROVAL_PENDING (INCOMPLETE) with the approve link as the approval invoice's REDIRECT."""
        if request.price.metered:
            raise NotSupported(
                "PayPal subscriptions cannot bill metered prices.",
                detail=f"price {request.price.price_id} is metered; PayPal plans bill fixed amounts only",
            )
        plan_id = await self._plan_id(request.price, request.trial_days)
        rid = request_id("subscription", request.idempotency_key)
        body = subscription_request(request, plan_id)
        sub = await self._json(
            lambda sdk: sdk.subscriptions.create_subscription(
                {"body": body, "paypal_request_id": rid, "prefer": _PREFER}
            ),
            request_id=rid,
        )
        plan = await self._plan(plan_id)
        return mapped(lambda s: subscription_result(s, plan=plan), sub, sub.get("id"))

    async def _subscription(self, reference: str) -> dict[str, Any]:
        return await self._json(lambda sdk: sdk.subscriptions.get_subscription({"id": reference}), reference)

    async def _result(self, sub: dict[str, Any]) -> SubscriptionResult:
        plan = await self._plan(str(sub.get("plan_id"))) if sub.get("plan_id") else None
        return mapped(lambda s: subscription_result(s, plan=plan), sub, sub.get("id"))

    async def retrieve_subscription(self, reference: str) -> SubscriptionResult:
        return await self._result(await self._subscription(reference))

    async def _transition(
        self, reference: str, action: str, reached: frozenset[str], body: dict[str, str]
    ) -> dict[str, Any]:
        """suspend / activate / cancel: a repeat PayPal refuses (already there) is answered with the state read back."""
        method: Callable[[Any], Any] = {
            "suspend": lambda sdk: sdk.subscriptions.suspend_subscription({"id": reference, "body": body}),
            "activate": lambda sdk: sdk.subscriptions.activate_subscription({"id": reference, "body": body}),
            "cancel": lambda sdk: sdk.subscriptions.cancel_subscription({"id": reference, "body": body}),
        }[action]
        try:
            await self._call(method, reference)
        except InvalidGatewayRequest:
            sub = await self._subscription(reference)
            if sub.get("status") in reached:
                return sub
            raise
        return await self._subscription(reference)

    async def cancel_subscription(
        self, reference: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        paid_through = None
        if at_period_end:
            before = await self._subscription(reference)
            paid_through = epoch((before.get("billing_info") or {}).get("next_billing_time"))
        reason = "Cancelled at the end of the paid period" if at_period_end else "Cancelled by the merchant"
        sub = await self._transition(reference, "cancel", frozenset({"CANCELLED", "EXPIRED"}), {"reason": reason})
        result = await self._result(sub)
        if not at_period_end:
            return result
        return dataclasses.replace(
            result, cancel_at_period_end=True, current_period_end=paid_through or result.current_period_end
        )

    async def pause_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        sub = await self._transition(reference, "suspend", frozenset({"SUSPENDED"}), {"reason": "Paused"})
        return await self._result(sub)

    async def resume_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        sub = await self._transition(reference, "activate", frozenset({"ACTIVE"}), {"reason": "Resumed"})
        return await self._result(sub)

    # --- plan changes ----------------------------------------------------------------------------------------
    async def preview_plan_change(self, reference: str, price: PlanPrice) -> ProrationPreview:
        """Nothing now (PayPal does not prorate); the new price from the next billing time."""
        current = await self.retrieve_subscription(reference)
        return ProrationPreview.from_next_period(price, current.current_period_end, int(time.time()))

    async def change_plan(self, request: PlanChangeRequest) -> SubscriptionResult:
        if request.proration is not ProrationMode.AT_PERIOD_END:
            raise NotSupported(
                "PayPal applies plan changes at the next billing cycle only.",
                detail=f"proration {request.proration} asked; PayPal's revise never prorates",
                reference=request.reference,
            )
        plan_id = await self._plan_id(request.price, 0)
        body = {"plan_id": plan_id}
        revised = await self._json(
            lambda sdk: sdk.subscriptions.revise_subscription({"id": request.reference, "body": body}),
            request.reference,
        )
        result = await self.retrieve_subscription(request.reference)
        approve = link(revised, "approve")
        if approve is None:
            return dataclasses.replace(result, pending_price_id=request.price.price_id)
        consent = InvoiceResult(
            reference=f"{request.reference}:revision:{plan_id}",
            subscription_reference=request.reference,
            status=InvoiceStatus.OPEN,
            amount_due=Money(0, request.price.unit_amount.currency),
            billing_reason="subscription_update",
            next_action=NextAction(NextActionType.REDIRECT, redirect_url=approve),
            payql_subscription_id=result.payql_subscription_id,
        )
        return dataclasses.replace(result, pending_price_id=request.price.price_id, latest_invoice=consent)

    # --- invoices --------------------------------------------------------------------------------------------
    async def retrieve_invoice(self, reference: str) -> InvoiceResult:
        if reference.endswith(APPROVAL_SUFFIX):
            sub = await self._subscription(reference.removesuffix(APPROVAL_SUFFIX))
            plan = await self._plan(str(sub.get("plan_id")))
            first = regular_amount(plan) or Money(0, "USD")
            first = Money(0, first.currency) if has_trial(plan) else first
            return mapped(lambda s: approval_invoice(s, first), sub, reference)
        if OUTSTANDING_MARK in reference:
            sub = await self._subscription(reference.split(OUTSTANDING_MARK, 1)[0])
            invoice = mapped(outstanding_invoice, sub, reference)
            if invoice is None:
                raise InvalidGatewayRequest("PayPal knows no such invoice.", detail=reference, reference=reference)
            return dataclasses.replace(invoice, reference=reference)
        sale = await self._rest("GET", f"/v1/payments/sale/{reference}", reference=reference)
        return await self._with_period(mapped(sale_invoice, sale, reference))

    async def _with_period(self, invoice: InvoiceResult) -> InvoiceResult:
        """A sale's invoice with the cycle it paid for (see `billing_periods.py`), from its subscription's plan."""
        if not invoice.subscription_reference or invoice.created is None:
            return invoice
        sub = await self._subscription(invoice.subscription_reference)
        frequency = regular_frequency(await self._plan(str(sub.get("plan_id")))) if sub.get("plan_id") else None
        if frequency is None:
            return invoice
        end = cycle_end(invoice.created, *frequency)
        return dataclasses.replace(invoice, period_start=invoice.created, period_end=end)

    async def pay_invoice(self, reference: str, *, idempotency_key: str) -> InvoiceResult:
        """Capture the subscription's outstanding balance; a decline leaves the invoice OPEN with its code."""
        if reference.endswith(APPROVAL_SUFFIX):
            raise InvalidGatewayRequest(
                "The buyer must approve the PayPal subscription first.",
                detail=f"{reference}: an approval is paid by the buyer on PayPal's page",
                reference=reference,
            )
        invoice = await self.retrieve_invoice(reference)
        if invoice.status is not InvoiceStatus.OPEN or not invoice.subscription_reference:
            return invoice
        sub_id = invoice.subscription_reference
        sub = await self._subscription(sub_id)
        balance = (sub.get("billing_info") or {}).get("outstanding_balance")
        if not balance or money(balance).amount <= 0:
            return invoice
        rid = request_id("capture-outstanding", idempotency_key)
        options = {
            "id": sub_id,
            "paypal_request_id": rid,
            "body": {"note": "Outstanding balance", "capture_type": "OUTSTANDING_BALANCE", "amount": balance},
        }
        try:
            answer = await self._call(lambda sdk: sdk.subscriptions.capture_subscription(options), sub_id, rid)
        except PaymentDeclined as declined:
            return dataclasses.replace(
                invoice, attempt_count=invoice.attempt_count + 1, decline_code=declined.decline_code
            )
        try:
            transaction = json.loads(answer.text or "")
        except ValueError:
            transaction = None
        if not isinstance(transaction, dict):
            # 202 Accepted (no body): PayPal collects asynchronously and PAYMENT.SALE.COMPLETED follows; read
            # where it stands now.
            return await self.retrieve_invoice(reference)
        paid = transaction.get("status") == "COMPLETED"
        return dataclasses.replace(
            invoice,
            status=InvoiceStatus.PAID if paid else InvoiceStatus.OPEN,
            amount_paid=money(balance).amount if paid else 0,
            attempt_count=invoice.attempt_count + 1,
            payment_reference=f"{SALE_PREFIX}{transaction.get('id')}" if paid else None,
            decline_code=None if paid else "generic_decline",
        )

    async def report_usage(self, report: UsageReport) -> str:
        raise NotSupported(
            "PayPal subscriptions cannot bill metered usage.",
            detail="PayPal billing plans charge fixed or tiered amounts per cycle; there is no usage record API",
            reference=report.reference,
        )

    async def update_default_payment_method(
        self, reference: str, payment_method: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        raise NotSupported(
            "The subscriber changes the PayPal funding source in their PayPal account.",
            detail="PayPal subscriptions have no merchant-side call to change the payment method",
            reference=reference,
        )


def _list_plans(sdk: Any, *, options: dict[str, Any]) -> Any:
    return sdk.subscriptions.list_billing_plans(options)
