"""`RazorpayBilling`: the `BillingGateway` verbs over Razorpay Plans and Subscriptions.

A PayQL price becomes a Razorpay plan on first use (found again by its notes, or created; plans never change,
so a changed price gets a new plan). A subscription is created `created` and the shopper authenticates it in
Razorpay Checkout, opened with the subscription id (the authentication invoice's CONFIRM_WITH_SDK next action);
Razorpay then charges each cycle itself and tells us by webhooks (subscription.*, invoice.paid), which the
pipeline re-reads here. A trial is a later `start_at`. What Razorpay cannot do, `NotSupported`: a prorated
change now (changes apply from the next cycle), metered usage, retrying a cycle's charge on our schedule
(Razorpay retries by itself), and changing the card from the server (the shopper authenticates a new one).

Creating a subscription moves no money, and only the one whose id the SPA gets is authenticated, so a repeat
after a lost answer at worst leaves an unauthenticated subscription that expires at Razorpay.
"""

from __future__ import annotations

import time
from typing import Any

from gateways.errors import InvalidGatewayRequest, NotSupported
from gateways.razorpay.billing_transformers import (
    AUTHENTICATION_SUFFIX,
    PAYQL_SUBSCRIPTION_ID,
    TOTAL_COUNTS,
    authentication_invoice,
    invoice_result,
    period_of,
    plan_matches,
    plan_request,
    subscription_result,
)
from gateways.razorpay.calls import RazorpayCalls, mapped
from gateways.razorpay.transformers import IDEMPOTENCY_NOTE, notes_of
from gateways.types import (
    InvoiceResult,
    PlanChangeRequest,
    PlanPrice,
    ProrationMode,
    ProrationPreview,
    SubscriptionRequest,
    SubscriptionResult,
    UsageReport,
)

DAY = 86_400


class RazorpayBilling(RazorpayCalls):
    # Razorpay plan id → plan, and our price id → its plan id: plans never change once made.
    _plans: dict[str, dict[str, Any]]
    _plan_ids: dict[str, str]

    async def billing_now(self, reference: str) -> int:
        """Real time: Razorpay has no test clocks."""
        return int(time.time())

    async def _plan_id(self, price: PlanPrice) -> str:
        if price.price_id in self._plan_ids and plan_matches(self._plans[self._plan_ids[price.price_id]], price):
            return self._plan_ids[price.price_id]
        plans = await self._items(lambda sdk, q: sdk.plan.all(q), {})
        plan = next((found for found in plans if plan_matches(found, price)), None)
        if plan is None:
            body = plan_request(price)
            plan = await self._json(lambda sdk: sdk.plan.create(data=body))
        self._plans[str(plan["id"])] = plan
        self._plan_ids[price.price_id] = str(plan["id"])
        return str(plan["id"])

    async def _plan(self, plan_id: str) -> dict[str, Any]:
        if plan_id not in self._plans:
            self._plans[plan_id] = await self._json(lambda sdk: sdk.plan.fetch(plan_id), plan_id)
        return self._plans[plan_id]

    async def create_subscription(self, request: SubscriptionRequest) -> SubscriptionResult:
        """`created` (INCOMPLETE) with the authentication invoice the SPA opens Checkout for."""
        if request.price.metered:
            raise NotSupported(
                "Razorpay subscriptions cannot bill metered prices.",
                detail=f"price {request.price.price_id} is metered; Razorpay plans bill fixed amounts",
            )
        plan_id = await self._plan_id(request.price)
        body: dict[str, Any] = {
            "plan_id": plan_id,
            "total_count": TOTAL_COUNTS[period_of(request.price)],
            "quantity": 1,
            "customer_notify": False,  # PayQL sends its own mail
            "notes": {
                PAYQL_SUBSCRIPTION_ID: request.payql_subscription_id,
                IDEMPOTENCY_NOTE: request.idempotency_key[:256],
            },
        }
        if request.trial_days:
            body["start_at"] = int(time.time()) + request.trial_days * DAY
        sub = await self._json(lambda sdk: sdk.subscription.create(data=body))
        return await self._result(sub)

    async def _subscription(self, reference: str) -> dict[str, Any]:
        return await self._json(lambda sdk: sdk.subscription.fetch(reference), reference)

    async def _result(self, sub: dict[str, Any]) -> SubscriptionResult:
        reference = str(sub.get("id"))
        plan = await self._plan(str(sub.get("plan_id")))
        invoices = await self._items(lambda sdk, q: sdk.invoice.all(q), {"subscription_id": reference})
        unpaid = [i for i in invoices if i.get("status") == "issued"]
        failed = None
        if unpaid:
            newest_unpaid = max(unpaid, key=lambda i: int(i.get("created_at") or 0))
            if newest_unpaid.get("payment_id"):
                failed = await self._json(lambda sdk: sdk.payment.fetch(newest_unpaid["payment_id"]), reference)
        pending_plan = None
        if sub.get("has_scheduled_changes"):
            scheduled = await self._json(lambda sdk: sdk.subscription.pending_update(reference), reference)
            pending_plan = await self._plan(str(scheduled.get("plan_id")))
        return mapped(
            lambda s: subscription_result(s, plan, invoices=invoices, failed_payment=failed, pending_plan=pending_plan),
            sub,
            reference,
        )

    async def retrieve_subscription(self, reference: str) -> SubscriptionResult:
        return await self._result(await self._subscription(reference))

    async def retrieve_invoice(self, reference: str) -> InvoiceResult:
        if reference.endswith(AUTHENTICATION_SUFFIX):
            sub = await self._subscription(reference.removesuffix(AUTHENTICATION_SUFFIX))
            plan = await self._plan(str(sub.get("plan_id")))
            return mapped(lambda s: authentication_invoice(s, plan), sub, reference)
        invoice = await self._json(lambda sdk: sdk.invoice.fetch(reference), reference)
        sub = await self._subscription(str(invoice.get("subscription_id")))
        failed = None
        if invoice.get("status") == "issued" and invoice.get("payment_id"):
            failed = await self._json(lambda sdk: sdk.payment.fetch(invoice["payment_id"]), reference)
        payql_subscription_id = notes_of(sub).get(PAYQL_SUBSCRIPTION_ID)
        return mapped(
            lambda i: invoice_result(i, payql_subscription_id=payql_subscription_id, failed_payment=failed),
            invoice,
            reference,
        )

    async def _transition(self, reference: str, action: str, reached: frozenset[str], body: dict[str, Any]) -> None:
        """pause / resume / cancel: a repeat Razorpay refuses (already there) is answered with the state read."""
        calls = {
            "pause": lambda sdk: sdk.subscription.pause(reference, body),
            "resume": lambda sdk: sdk.subscription.resume(reference, body),
            "cancel": lambda sdk: sdk.subscription.cancel(reference, body),
        }
        try:
            await self._json(calls[action], reference)
        except InvalidGatewayRequest:
            if (await self._subscription(reference)).get("status") not in reached:
                raise

    async def cancel_subscription(
        self, reference: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        ended = frozenset({"cancelled", "completed", "expired"})
        await self._transition(reference, "cancel", ended, {"cancel_at_cycle_end": 1 if at_period_end else 0})
        return await self.retrieve_subscription(reference)

    async def pause_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        await self._transition(reference, "pause", frozenset({"paused"}), {"pause_at": "now"})
        return await self.retrieve_subscription(reference)

    async def resume_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        await self._transition(reference, "resume", frozenset({"active"}), {"resume_at": "now"})
        return await self.retrieve_subscription(reference)

    async def preview_plan_change(self, reference: str, price: PlanPrice) -> ProrationPreview:
        """Nothing now (the change is scheduled for the cycle end); the new price from the next cycle."""
        current = await self.retrieve_subscription(reference)
        return ProrationPreview.from_next_period(price, current.current_period_end, int(time.time()))

    async def change_plan(self, request: PlanChangeRequest) -> SubscriptionResult:
        """Switch to the price's plan from the next cycle (`schedule_change_at: cycle_end`)."""
        if request.proration is ProrationMode.IMMEDIATE:
            raise NotSupported(
                "Razorpay applies a plan change from the next cycle, without proration.",
                detail="razorpay: use proration NONE or AT_PERIOD_END",
                reference=request.reference,
            )
        plan_id = await self._plan_id(request.price)
        body = {"plan_id": plan_id, "schedule_change_at": "cycle_end", "customer_notify": False}
        await self._json(lambda sdk: sdk.subscription.edit(request.reference, body), request.reference)
        return await self.retrieve_subscription(request.reference)

    async def report_usage(self, report: UsageReport) -> str:
        raise NotSupported(
            "Razorpay subscriptions cannot meter usage.",
            detail="razorpay plans bill a fixed amount per cycle",
            reference=report.reference,
        )

    async def pay_invoice(self, reference: str, *, idempotency_key: str) -> InvoiceResult:
        raise NotSupported(
            "Razorpay retries a subscription's charge by itself.",
            detail="razorpay has no call to charge a subscription invoice on demand; it retries a failed cycle on "
            "its own schedule and then halts the subscription",
            reference=reference,
        )

    async def update_default_payment_method(
        self, reference: str, payment_method: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        raise NotSupported(
            "The shopper changes the card of a Razorpay subscription in Checkout.",
            detail="razorpay has no server call to change a subscription's card",
            reference=reference,
        )
