"""`StripeBilling`: the `BillingGateway` verbs over Stripe Billing, mixed into `StripeGateway`.

Choices, each for a reason:

- **Catalog in step.** A Stripe Price is found by `lookup_key` = our price id (its metadata also carries
  `payql_price_id`); if none matches our amount, currency and interval, a new one is created and takes the
  lookup key over (`transfer_lookup_key`), so a repriced plan never bills at the old amount. Its Product is
  created with our product id as its Stripe id (`payql_<id>`), so it is found by a plain read.
- **Metered usage through Billing Meters.** The pinned API version has no usage records (removed in
  2025-03-31.basil): a metered Price needs a Meter. One meter per metered price, its `event_name`
  `payql_usage_<price id>`, sum aggregation; usage is a meter event with our idempotency key as its
  `identifier` (Stripe deduplicates identifiers for at least 24 hours) and as the request's key.
- **`payment_behavior=allow_incomplete`.** The customer already gave us a payment method (Elements), so
  the first invoice is charged at once: paid → ACTIVE; declined → INCOMPLETE with the decline code;
  3-D Secure → INCOMPLETE with `next_action` CONFIRM_WITH_SDK and the invoice's client secret.
  (`default_incomplete` would never try the charge and always leave the confirmation to the browser.)
- **Plan changes.** IMMEDIATE is `proration_behavior=always_invoice` (the difference is invoiced and
  charged now), NONE is `none`. AT_PERIOD_END goes through a subscription schedule: the current phase
  ends at the period end, the next one has the new price; the pending price is kept in the subscription's
  metadata (`payql_pending_price_id`), which the next phase's metadata clears when it starts.
- **Pause** is `pause_collection` with `behavior=void` (no invoices are collected while paused);
  resume clears it, or resumes a subscription Stripe itself paused (a trial that ended without a method).
- **`updated`**: Stripe has no last-modified field. A read answers with the time of the read (it is the
  truth as of then); a webhook with its event's `created`. PayQL re-reads stale-possible events anyway.
- **`billing_now`** is the frozen time of the subscription's test clock when it has one, else real time.

Every mutating call carries an idempotency key derived from the one the caller gave (one suffix per call).
Like the rest of the adapter, nothing here touches PayQL's database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any, Final

import stripe
from stripe.params import (
    CustomerCreateParams,
    InvoiceCreatePreviewParams,
    PriceCreateParams,
    SubscriptionCreateParams,
    SubscriptionResumeParams,
    SubscriptionUpdateParams,
)

from domain.money import Money
from gateways.errors import GatewayUnavailable, PaymentDeclined
from gateways.stripe.billing_transformers import (
    PAYQL_CUSTOMER_ID,
    PAYQL_PENDING_PRICE_ID,
    PAYQL_PRICE_ID,
    PAYQL_PRODUCT_ID,
    PAYQL_SUBSCRIPTION_ID,
    invoice_payment_intent,
    invoice_result,
    subscription_result,
)
from gateways.stripe.errors import gateway_error, translated
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

# What every subscription answer carries: the latest invoice, its payments and its client secret.
SUBSCRIPTION_EXPAND: Final = ["latest_invoice.payments", "latest_invoice.confirmation_secret"]
INVOICE_EXPAND: Final = ["payments", "confirmation_secret"]
METER_PAYLOAD_CUSTOMER: Final = "stripe_customer_id"
METER_PAYLOAD_VALUE: Final = "value"
# Stripe leaves a paused subscription's invoices void: nothing is owed for a paused period.
PAUSE_BEHAVIOR: Final = "void"


def meter_event_name(price_id: str) -> str:
    """The meter (and its events) for one of our metered prices."""
    return f"payql_usage_{price_id}"


def stripe_product_id(product_id: str) -> str:
    return f"payql_{product_id}"


class StripeBilling:
    """The Billing half of `StripeGateway`; it only needs the gateway's SDK client."""

    _stripe: stripe.StripeClient

    async def billing_now(self, reference: str) -> int:
        subscription = await translated(
            self._stripe.v1.subscriptions.retrieve_async(reference, {"expand": ["test_clock"]}), reference=reference
        )
        clock = subscription.to_dict().get("test_clock")
        if isinstance(clock, dict) and isinstance(clock.get("frozen_time"), int):
            return int(clock["frozen_time"])
        return int(time.time())

    async def create_subscription(self, request: SubscriptionRequest) -> SubscriptionResult:
        key = request.idempotency_key
        price = await self._stripe_price(request.price)
        customer = request.gateway_customer or await self.ensure_customer(request.customer_id, request.customer_email)
        await self._attach(request.payment_method, customer, f"{key}-attach")
        params: SubscriptionCreateParams = {
            "customer": customer,
            "items": [{"price": price}],
            "default_payment_method": request.payment_method,
            "payment_behavior": "allow_incomplete",
            "metadata": {PAYQL_SUBSCRIPTION_ID: request.payql_subscription_id, PAYQL_CUSTOMER_ID: request.customer_id},
            "expand": SUBSCRIPTION_EXPAND,
        }
        if request.trial_days > 0:
            params["trial_period_days"] = request.trial_days
        subscription = await translated(
            self._stripe.v1.subscriptions.create_async(params, {"idempotency_key": f"{key}-subscription"})
        )
        return await self._subscription(subscription)

    async def retrieve_subscription(self, reference: str) -> SubscriptionResult:
        subscription = await translated(
            self._stripe.v1.subscriptions.retrieve_async(reference, {"expand": SUBSCRIPTION_EXPAND}),
            reference=reference,
        )
        return await self._subscription(subscription)

    async def retrieve_invoice(self, reference: str) -> InvoiceResult:
        invoice = await translated(
            self._stripe.v1.invoices.retrieve_async(reference, {"expand": INVOICE_EXPAND}), reference=reference
        )
        return await self._invoice(invoice.to_dict())

    async def preview_plan_change(self, reference: str, price: PlanPrice) -> ProrationPreview:
        """Two previews: the proration invoice a change now would create, and the renewal after it.

        The subscription is not touched; the new plan's Stripe Price is created if it does not exist yet
        (catalog sync, idempotent), since a preview needs one.
        """
        item = await self._item_id(reference)
        new_price = await self._stripe_price(price)
        now = int(time.time())

        async def preview(proration: str) -> dict[str, Any]:
            params: InvoiceCreatePreviewParams = {
                "subscription": reference,
                "subscription_details": {
                    "items": [{"id": item, "price": new_price}],
                    "proration_behavior": proration,
                    "proration_date": now,
                },
            }
            invoice = await translated(self._stripe.v1.invoices.create_preview_async(params), reference=reference)
            return invoice.to_dict()

        immediate = await preview("always_invoice")
        renewal = await preview("none")
        currency = str(renewal["currency"])
        at = renewal.get("next_payment_attempt") or renewal.get("period_end") or now
        return ProrationPreview(
            amount_due_now=Money(int(immediate.get("amount_due") or 0), currency),
            next_invoice_amount=Money(int(renewal.get("amount_due") or 0), currency),
            next_invoice_at=int(at),
        )

    async def change_plan(self, request: PlanChangeRequest) -> SubscriptionResult:
        if request.proration is ProrationMode.AT_PERIOD_END:
            return await self._change_at_period_end(request)
        item = await self._item_id(request.reference)
        params: SubscriptionUpdateParams = {
            "items": [{"id": item, "price": await self._stripe_price(request.price)}],
            "proration_behavior": "always_invoice" if request.proration is ProrationMode.IMMEDIATE else "none",
            "payment_behavior": "allow_incomplete",
            "metadata": {PAYQL_PENDING_PRICE_ID: ""},
            "expand": SUBSCRIPTION_EXPAND,
        }
        return await self._update(request.reference, params, request.idempotency_key)

    async def cancel_subscription(
        self, reference: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        if at_period_end:
            return await self._update(
                reference, {"cancel_at_period_end": True, "expand": SUBSCRIPTION_EXPAND}, idempotency_key
            )
        subscription = await translated(
            self._stripe.v1.subscriptions.cancel_async(
                reference, {"expand": SUBSCRIPTION_EXPAND}, {"idempotency_key": idempotency_key}
            ),
            reference=reference,
        )
        return await self._subscription(subscription)

    async def pause_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        params: SubscriptionUpdateParams = {
            "pause_collection": {"behavior": PAUSE_BEHAVIOR},
            "expand": SUBSCRIPTION_EXPAND,
        }
        return await self._update(reference, params, idempotency_key)

    async def resume_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        current = await translated(self._stripe.v1.subscriptions.retrieve_async(reference), reference=reference)
        if current.status == "paused":
            params: SubscriptionResumeParams = {"expand": SUBSCRIPTION_EXPAND}
            resumed = await translated(
                self._stripe.v1.subscriptions.resume_async(reference, params, {"idempotency_key": idempotency_key}),
                reference=reference,
            )
            return await self._subscription(resumed)
        return await self._update(reference, {"pause_collection": "", "expand": SUBSCRIPTION_EXPAND}, idempotency_key)

    async def report_usage(self, report: UsageReport) -> str:
        subscription = await translated(
            self._stripe.v1.subscriptions.retrieve_async(report.reference), reference=report.reference
        )
        customer = subscription.customer if isinstance(subscription.customer, str) else subscription.customer.id
        event = await translated(
            self._stripe.v1.billing.meter_events.create_async(
                {
                    "event_name": meter_event_name(report.price_id),
                    "payload": {METER_PAYLOAD_CUSTOMER: customer, METER_PAYLOAD_VALUE: str(report.quantity)},
                    "identifier": report.idempotency_key,
                    "timestamp": report.timestamp,
                },
                {"idempotency_key": report.idempotency_key},
            ),
            reference=report.reference,
        )
        return event.identifier

    async def pay_invoice(self, reference: str, *, idempotency_key: str) -> InvoiceResult:
        try:
            invoice = await translated(
                self._stripe.v1.invoices.pay_async(
                    reference, {"expand": INVOICE_EXPAND}, {"idempotency_key": idempotency_key}
                ),
                reference=reference,
            )
        except PaymentDeclined as declined:
            # A declined retry is an answer, not a failure: the invoice stays open with the reason
            # (or with the customer's next action, when the bank asks for 3-D Secure).
            unpaid = await self.retrieve_invoice(reference)
            if unpaid.next_action is not None or unpaid.decline_code is not None:
                return unpaid
            return dataclasses.replace(unpaid, decline_code=declined.decline_code)
        return await self._invoice(invoice.to_dict())

    async def update_default_payment_method(
        self, reference: str, payment_method: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        subscription = await translated(self._stripe.v1.subscriptions.retrieve_async(reference), reference=reference)
        customer = subscription.customer if isinstance(subscription.customer, str) else subscription.customer.id
        await self._attach(payment_method, customer, f"{idempotency_key}-attach")
        return await self._update(
            reference, {"default_payment_method": payment_method, "expand": SUBSCRIPTION_EXPAND}, idempotency_key
        )

    # -- helpers ----------------------------------------------------------------------------------

    async def _update(self, reference: str, params: SubscriptionUpdateParams, key: str) -> SubscriptionResult:
        subscription = await translated(
            self._stripe.v1.subscriptions.update_async(reference, params, {"idempotency_key": key}),
            reference=reference,
        )
        return await self._subscription(subscription)

    async def _change_at_period_end(self, request: PlanChangeRequest) -> SubscriptionResult:
        key = request.idempotency_key
        current = await translated(
            self._stripe.v1.subscriptions.retrieve_async(request.reference), reference=request.reference
        )
        current_dict = current.to_dict()
        items = current_dict["items"]["data"]
        current_price = items[0]["price"]["id"]
        period_end = int(items[0]["current_period_end"])
        new_price = await self._stripe_price(request.price)
        schedule_id = current_dict.get("schedule")
        if isinstance(schedule_id, dict):
            schedule_id = schedule_id.get("id")
        if not isinstance(schedule_id, str) or not schedule_id:
            schedule = await translated(
                self._stripe.v1.subscription_schedules.create_async(
                    {"from_subscription": request.reference}, {"idempotency_key": f"{key}-schedule"}
                ),
                reference=request.reference,
            )
            schedule_id = schedule.id
        else:
            schedule = await translated(
                self._stripe.v1.subscription_schedules.retrieve_async(schedule_id), reference=request.reference
            )
        phase_start = schedule.to_dict().get("current_phase", {}).get("start_date") or int(time.time())
        await translated(
            self._stripe.v1.subscription_schedules.update_async(
                schedule_id,
                {
                    "end_behavior": "release",
                    "proration_behavior": "none",
                    "phases": [
                        {
                            "items": [{"price": current_price}],
                            "start_date": int(phase_start),
                            "end_date": period_end,
                        },
                        {
                            "items": [{"price": new_price}],
                            "duration": {
                                "interval": _interval(request.price),
                                "interval_count": request.price.interval_count,
                            },
                            # Entering this phase unsets the pending price on the subscription.
                            "metadata": {PAYQL_PENDING_PRICE_ID: ""},
                        },
                    ],
                },
                {"idempotency_key": f"{key}-phases"},
            ),
            reference=request.reference,
        )
        params: SubscriptionUpdateParams = {
            "metadata": {PAYQL_PENDING_PRICE_ID: request.price.price_id},
            "expand": SUBSCRIPTION_EXPAND,
        }
        return await self._update(request.reference, params, f"{key}-pending")

    async def _subscription(self, subscription: stripe.Subscription) -> SubscriptionResult:
        read_at = int(time.time())
        obj = subscription.to_dict()
        intent = await self._open_invoice_intent(obj.get("latest_invoice"))
        try:
            return subscription_result(obj, updated=read_at, intent=intent)
        except (KeyError, TypeError, ValueError) as exc:
            raise _unreadable(exc, obj.get("id")) from exc

    async def _invoice(self, invoice: dict[str, Any]) -> InvoiceResult:
        intent = await self._open_invoice_intent(invoice)
        try:
            return invoice_result(invoice, intent=intent)
        except (KeyError, TypeError, ValueError) as exc:
            raise _unreadable(exc, invoice.get("id")) from exc

    async def _open_invoice_intent(self, invoice: object) -> dict[str, Any] | None:
        """The PaymentIntent of an open invoice (its decline or next action), read when it has one."""
        if not isinstance(invoice, dict) or invoice.get("status") != "open":
            return None
        reference = invoice_payment_intent(invoice)
        if reference is None:
            return None
        intent = await translated(self._stripe.v1.payment_intents.retrieve_async(reference), reference=reference)
        return intent.to_dict()

    async def _item_id(self, reference: str) -> str:
        subscription = await translated(self._stripe.v1.subscriptions.retrieve_async(reference), reference=reference)
        return str(subscription.to_dict()["items"]["data"][0]["id"])

    async def ensure_customer(self, customer_id: str, email: str | None) -> str:
        """The Stripe customer for our customer, created on first use (`gateways.customers`)."""
        params: CustomerCreateParams = {"metadata": {PAYQL_CUSTOMER_ID: customer_id}}
        if email:
            params["email"] = email
        # One key per customer and email: concurrent first purchases share one Stripe customer.
        digest = hashlib.sha256((email or "").encode()).hexdigest()[:16]
        key = f"payql-customer-{customer_id}-{digest}"
        customer = await translated(self._stripe.v1.customers.create_async(params, {"idempotency_key": key}))
        return customer.id

    async def _attach(self, payment_method: str, customer: str, key: str) -> None:
        await translated(
            self._stripe.v1.payment_methods.attach_async(
                payment_method, {"customer": customer}, {"idempotency_key": key}
            )
        )

    async def _stripe_price(self, plan: PlanPrice) -> str:
        """The Stripe Price for our plan price, created (with its product, and meter) when missing or stale."""
        found = await translated(
            self._stripe.v1.prices.list_async({"lookup_keys": [plan.price_id], "active": True, "limit": 1})
        )
        for existing in found.data:
            if _same_price(existing.to_dict(), plan):
                return existing.id
        product = await self._stripe_product(plan)
        recurring: dict[str, Any] = {"interval": _interval(plan), "interval_count": plan.interval_count}
        if plan.metered:
            recurring["usage_type"] = "metered"
            recurring["meter"] = await self._meter(plan)
        params: PriceCreateParams = {
            "currency": plan.unit_amount.currency.lower(),
            "unit_amount": plan.unit_amount.amount,
            "product": product,
            "lookup_key": plan.price_id,
            "transfer_lookup_key": True,
            "recurring": recurring,  # type: ignore[typeddict-item]  # built above from the same keys
            "metadata": {PAYQL_PRICE_ID: plan.price_id, PAYQL_PRODUCT_ID: plan.product_id},
        }
        key = (
            f"payql-price-{plan.price_id}-{plan.unit_amount.amount}{plan.unit_amount.currency}"
            f"-{plan.interval_count}{plan.interval}-{'metered' if plan.metered else 'licensed'}"
        )
        price = await translated(self._stripe.v1.prices.create_async(params, {"idempotency_key": key}))
        return price.id

    async def _stripe_product(self, plan: PlanPrice) -> str:
        product_id = stripe_product_id(plan.product_id)
        try:
            existing = await self._stripe.v1.products.retrieve_async(product_id)
            return existing.id
        except stripe.InvalidRequestError as missing:
            if missing.code != "resource_missing":
                raise gateway_error(missing, reference=product_id) from missing
        except stripe.StripeError as failed:
            raise gateway_error(failed, reference=product_id) from failed
        created = await translated(
            self._stripe.v1.products.create_async(
                {"id": product_id, "name": plan.product_name, "metadata": {PAYQL_PRODUCT_ID: plan.product_id}},
                {"idempotency_key": f"payql-product-{plan.product_id}"},
            )
        )
        return created.id

    async def _meter(self, plan: PlanPrice) -> str:
        event_name = meter_event_name(plan.price_id)

        async def active_meters() -> list[stripe.billing.Meter]:
            first = await self._stripe.v1.billing.meters.list_async({"status": "active", "limit": 100})
            return [meter async for meter in first.auto_paging_iter()]

        for meter in await translated(active_meters()):
            if meter.event_name == event_name:
                return meter.id
        created = await translated(
            self._stripe.v1.billing.meters.create_async(
                {
                    "display_name": f"{plan.product_name} usage"[:250],
                    "event_name": event_name,
                    "default_aggregation": {"formula": "sum"},
                    "customer_mapping": {"event_payload_key": METER_PAYLOAD_CUSTOMER, "type": "by_id"},
                    "value_settings": {"event_payload_key": METER_PAYLOAD_VALUE},
                },
                {"idempotency_key": f"payql-meter-{plan.price_id}"},
            )
        )
        return created.id


def _interval(plan: PlanPrice) -> str:
    return plan.interval.lower()


def _same_price(price: dict[str, Any], plan: PlanPrice) -> bool:
    recurring = price.get("recurring") or {}
    return (
        price.get("unit_amount") == plan.unit_amount.amount
        and str(price.get("currency", "")).upper() == plan.unit_amount.currency
        and recurring.get("interval") == _interval(plan)
        and recurring.get("interval_count") == plan.interval_count
        and (recurring.get("usage_type") == "metered") == plan.metered
    )


def _unreadable(exc: Exception, reference: object) -> GatewayUnavailable:
    return GatewayUnavailable(
        "The payment provider gave an answer we could not read.",
        detail=f"unreadable Stripe billing object ({exc!r}); read it back",
        reference=reference if isinstance(reference, str) else None,
    )
