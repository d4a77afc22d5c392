"""`SquareBilling`: the `gateways.billing.BillingGateway` verbs over Square's Subscriptions API (mixed into
`SquareGateway`), with plans in the Catalog, the card on file from the Cards API and each period billed as an
invoice (Invoices API). Wire mapping in `billing_transformers.py`.

- Plans: a PayQL price becomes a SUBSCRIPTION_PLAN and one SUBSCRIPTION_PLAN_VARIATION on first use (found again
  by the variation's name, else upserted with idempotency keys derived from that name, so concurrent first uses
  make one). Square cadences cover daily, weekly, fortnightly, 30/60/90 days, 1/2/3/4/6 months and 1/2 years.
- create: the Square customer (CreateCustomer, our customer id as `reference_id`, idempotency key derived from
  it), the card on file (CreateCard from the Web Payments SDK token, with verifyBuyer's verification token when the
  SPA sends one; a declined card is `PaymentDeclined` and no subscription is made), then CreateSubscription with
  our idempotency key, in UTC. A trial is a later `start_date`. Square then bills each period itself: an invoice
  charged to the card on file (`invoice.payment_made` or `invoice.scheduled_charge_failed`), whose payment carries
  the invoice's `order_id`.
- An invoice's charges are the payments on its order, read with ListPayments from the invoice's creation (until it
  was paid, for a paid one; Square links no payment to an invoice otherwise): the paying one is our payment
  reference, the failed ones its attempts.
  `pay_invoice` (our dunning) charges the card on file with CreatePayment on the invoice's order.
- A plan change is SwapPlan, which Square applies from the next billing date without proration: AT_PERIOD_END and
  NONE are accepted, IMMEDIATE is `NotSupported`. Cancel is CancelSubscription, which Square only schedules for
  the end of the paid period: cancelling now is `NotSupported`. Pausing (Square pauses from a billing date, not
  now) and metered prices do not exist here: `NotSupported`.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Final

from domain.statuses import InvoiceStatus
from gateways.errors import InvalidGatewayRequest, NotSupported, PaymentDeclined
from gateways.square.billing_transformers import (
    cadence_of,
    invoice_result,
    plan_object,
    price_id_of,
    subscription_result,
    today,
    variation_cadence,
    variation_matches,
    variation_name,
    variation_object,
)
from gateways.square.client import NO_RETRIES, square_key
from gateways.square.errors import translated
from gateways.square.transformers import parse_payment_method
from gateways.square.wire import mapped, part, wire
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

# Square's subscriptions count dates in their timezone; ours are UTC so a date is its UTC midnight.
TIMEZONE: Final = "UTC"
# The ListPayments window for an invoice's charges is widened by this on each side (clocks differ).
_SLACK: Final = timedelta(minutes=5)


class SquareBilling:
    _square: Any  # square.AsyncSquare
    _location_id: str
    # our price's variation name → variation id; variation id → (our price id or None, cadence)
    _variation_ids: dict[str, str]
    _variations: dict[str, tuple[str | None, str | None]]

    _payments_between: Callable[[str, str | None], Awaitable[list[dict[str, Any]]]]

    async def billing_now(self, reference: str) -> int:
        """Real time: Square's sandbox has no test clocks."""
        return int(time.time())

    # --- subscriptions -------------------------------------------------------------------------------------
    async def create_subscription(self, request: SubscriptionRequest) -> SubscriptionResult:
        variation_id = await self._variation_id(request.price)
        customer_id = request.gateway_customer or await self._customer(request.customer_id, request.customer_email)
        card_id = await self._card(customer_id, request.payment_method, request.idempotency_key)
        start = today() + timedelta(days=request.trial_days) if request.trial_days else None
        answer = await translated(
            self._square.subscriptions.create(
                idempotency_key=square_key(request.idempotency_key),
                location_id=self._location_id,
                plan_variation_id=variation_id,
                customer_id=customer_id,
                card_id=card_id,
                start_date=start.isoformat() if start else None,
                timezone=TIMEZONE,
                request_options=NO_RETRIES,
            )
        )
        return await self._result(part(answer, "subscription", None))

    async def retrieve_subscription(self, reference: str) -> SubscriptionResult:
        return await self._result(await self._subscription(reference))

    async def retrieve_invoice(self, reference: str) -> InvoiceResult:
        invoice, subscription = await self._invoice_of_subscription(reference)
        return await self._invoice(invoice, subscription)

    async def cancel_subscription(
        self, reference: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        if not at_period_end:
            raise NotSupported(
                "Square ends a subscription at the end of its paid period, not at once.",
                detail="square: CancelSubscription schedules a CANCEL action for the charged-through date; "
                "cancel at the period end (and refund the period if needed)",
                reference=reference,
            )
        subscription = await self._subscription(reference)
        if subscription.get("canceled_date") or subscription.get("status") in ("CANCELED", "DEACTIVATED"):
            return await self._result(subscription)  # a repeat: Square refuses a second CANCEL
        answer = await translated(
            self._square.subscriptions.cancel(subscription_id=reference, request_options=NO_RETRIES),
            reference=reference,
        )
        part(answer, "subscription", reference)
        return await self.retrieve_subscription(reference)

    async def preview_plan_change(self, reference: str, price: PlanPrice) -> ProrationPreview:
        """Nothing now (Square swaps plans from the next billing date); the new price from then."""
        current = await self.retrieve_subscription(reference)
        return ProrationPreview.from_next_period(price, current.current_period_end, int(time.time()))

    async def change_plan(self, request: PlanChangeRequest) -> SubscriptionResult:
        if request.proration is ProrationMode.IMMEDIATE:
            raise NotSupported(
                "Square changes a subscription's plan from its next billing date, without proration.",
                detail="square: SwapPlan takes effect at the next billing date; use proration NONE or AT_PERIOD_END",
                reference=request.reference,
            )
        variation_id = await self._variation_id(request.price)
        answer = await translated(
            self._square.subscriptions.swap_plan(
                subscription_id=request.reference, new_plan_variation_id=variation_id, request_options=NO_RETRIES
            ),
            reference=request.reference,
        )
        part(answer, "subscription", request.reference)
        return await self.retrieve_subscription(request.reference)

    async def pause_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        raise NotSupported(
            "Square pauses a subscription from a billing date, not at once.",
            detail="square: PauseSubscription takes effect at the next billing date at the earliest",
            reference=reference,
        )

    async def resume_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        raise NotSupported("Square subscriptions are not paused through PayQL.", reference=reference)

    async def report_usage(self, report: UsageReport) -> str:
        raise NotSupported(
            "Square subscriptions cannot meter usage.",
            detail="square: a plan variation's phases bill a fixed price per cadence",
            reference=report.reference,
        )

    async def pay_invoice(self, reference: str, *, idempotency_key: str) -> InvoiceResult:
        """Charge the card on file for what the invoice still owes (CreatePayment on the invoice's order). A
        decline is the invoice, still OPEN, with one more attempt and its decline code."""
        square_invoice, subscription = await self._invoice_of_subscription(reference)
        invoice = await self._invoice(square_invoice, subscription)
        if invoice.status is not InvoiceStatus.OPEN:
            return invoice
        card_id = subscription.get("card_id")
        if not isinstance(card_id, str) or not card_id:
            raise InvalidGatewayRequest("The subscription has no card on file to charge.", reference=reference)
        owed = square_invoice.get("next_payment_amount_money") or {
            "amount": invoice.amount_due.amount - invoice.amount_paid,
            "currency": invoice.amount_due.currency,
        }
        # A decline leaves its FAILED payment on the order: the invoice read below counts it as an attempt.
        with contextlib.suppress(PaymentDeclined):
            await translated(
                self._square.payments.create(
                    source_id=card_id,
                    idempotency_key=square_key(idempotency_key),
                    amount_money=owed,
                    order_id=square_invoice.get("order_id"),
                    customer_id=subscription.get("customer_id"),
                    location_id=self._location_id,
                    autocomplete=True,
                    request_options=NO_RETRIES,
                ),
                reference=reference,
            )
        return await self.retrieve_invoice(reference)

    async def update_default_payment_method(
        self, reference: str, payment_method: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        subscription = await self._subscription(reference)
        card_id = await self._card(str(subscription.get("customer_id")), payment_method, idempotency_key)
        await translated(
            self._square.subscriptions.update(
                subscription_id=reference, subscription={"card_id": card_id}, request_options=NO_RETRIES
            ),
            reference=reference,
        )
        return await self.retrieve_subscription(reference)

    # --- plumbing ------------------------------------------------------------------------------------------
    async def _subscription(self, reference: str) -> dict[str, Any]:
        answer = await translated(
            self._square.subscriptions.get(subscription_id=reference, include="actions", request_options=NO_RETRIES),
            reference=reference,
        )
        return part(answer, "subscription", reference)

    async def _invoice_of_subscription(self, reference: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The invoice `reference` and its subscription, as wire JSON."""
        answer = await translated(
            self._square.invoices.get(invoice_id=reference, request_options=NO_RETRIES), reference=reference
        )
        invoice = part(answer, "invoice", reference)
        subscription_id = invoice.get("subscription_id")
        if not isinstance(subscription_id, str) or not subscription_id:
            raise InvalidGatewayRequest("This invoice does not bill a subscription.", reference=reference)
        return invoice, await self._subscription(subscription_id)

    async def _result(self, subscription: dict[str, Any]) -> SubscriptionResult:
        reference = str(subscription.get("id"))
        price_id, cadence = await self._variation(str(subscription.get("plan_variation_id")))
        swaps = [a for a in subscription.get("actions") or [] if a.get("type") == "SWAP_PLAN"]
        pending = (await self._variation(str(swaps[-1].get("new_plan_variation_id"))))[0] if swaps else None
        invoice_ids = subscription.get("invoice_ids") or []
        latest = None
        if invoice_ids:
            answer = await translated(
                self._square.invoices.get(invoice_id=invoice_ids[0], request_options=NO_RETRIES), reference=reference
            )
            latest = await self._invoice(part(answer, "invoice", reference), subscription)
        return mapped(
            lambda s: subscription_result(
                s, price_id=price_id, cadence=cadence, latest_invoice=latest, pending_price_id=pending
            ),
            subscription,
            reference,
        )

    async def _invoice(self, invoice: dict[str, Any], subscription: dict[str, Any]) -> InvoiceResult:
        reference = str(invoice.get("id"))
        _, cadence = await self._variation(str(subscription.get("plan_variation_id")))
        invoice_ids = subscription.get("invoice_ids") or []
        first = bool(invoice_ids) and invoice_ids[-1] == reference
        payments: list[dict[str, Any]] = []
        order_id, created, updated = invoice.get("order_id"), invoice.get("created_at"), invoice.get("updated_at")
        if order_id and isinstance(created, str):
            # A paid invoice's charges all came before it was marked paid; an open one's may still be coming.
            end = _shifted(updated, _SLACK) if invoice.get("status") == "PAID" and isinstance(updated, str) else None
            window = await self._payments_between(_shifted(created, -_SLACK), end)
            payments = [p for p in window if p.get("order_id") == order_id]
        return mapped(lambda i: invoice_result(i, first=first, cadence=cadence, payments=payments), invoice, reference)

    async def _variation(self, variation_id: str) -> tuple[str | None, str | None]:
        """Our price id (None when the variation is not ours) and the cadence of a plan variation."""
        if variation_id not in self._variations:
            answer = await translated(
                self._square.catalog.object.get(object_id=variation_id, request_options=NO_RETRIES),
                reference=variation_id,
            )
            variation = part(answer, "object", variation_id)
            data = variation.get("subscription_plan_variation_data") or {}
            self._variations[variation_id] = (price_id_of(data.get("name")), variation_cadence(variation))
        return self._variations[variation_id]

    async def _variation_id(self, price: PlanPrice) -> str:
        cadence = cadence_of(price)
        if price.metered or cadence is None:
            raise NotSupported(
                "Square cannot bill this price.",
                detail=f"price {price.price_id}: every {price.interval_count} {price.interval}, metered="
                f"{price.metered}; Square plan variations bill fixed prices on its cadences",
            )
        name = variation_name(price, cadence)
        if name in self._variation_ids:
            return self._variation_ids[name]
        found = await translated(
            self._square.catalog.search(
                object_types=["SUBSCRIPTION_PLAN_VARIATION"],
                query={"exact_query": {"attribute_name": "name", "attribute_value": name}},
                request_options=NO_RETRIES,
            )
        )
        objects = wire(found).get("objects") or []
        variation = next((o for o in objects if variation_matches(o, price, cadence)), None)
        if variation is None:
            # Keys derived from the variation's name: concurrent first uses make one plan and one variation.
            digest = hashlib.sha256(name.encode()).hexdigest()[:40]
            plan = await translated(
                self._square.catalog.object.upsert(
                    idempotency_key=f"plan-{digest}", object=plan_object(price), request_options=NO_RETRIES
                )
            )
            plan_id = str(part(plan, "catalog_object", None)["id"])
            made = await translated(
                self._square.catalog.object.upsert(
                    idempotency_key=f"variation-{digest}",
                    object=variation_object(price, cadence, plan_id),
                    request_options=NO_RETRIES,
                )
            )
            variation = part(made, "catalog_object", None)
        variation_id = str(variation["id"])
        self._variation_ids[name] = variation_id
        self._variations[variation_id] = (price.price_id, cadence)
        return variation_id

    async def _customer(self, customer_id: str, email: str | None) -> str:
        """Square's customer for ours, made once (the key is derived from our customer id)."""
        digest = hashlib.sha256(customer_id.encode()).hexdigest()[:40]
        answer = await translated(
            self._square.customers.create(
                idempotency_key=f"cust-{digest}",
                reference_id=customer_id[:100],
                email_address=email,
                # Square wants a name, email or phone: the reference alone does not make a customer.
                company_name=None if email else f"PayQL customer {customer_id}"[:500],
                request_options=NO_RETRIES,
            )
        )
        return str(part(answer, "customer", None)["id"])

    async def _card(self, customer_id: str, payment_method: str, idempotency_key: str) -> str:
        """The card on file from the SPA's payment method (a Web Payments SDK token, with verifyBuyer's token for a
        verified buyer); a card the issuer declines, or that needs verification, raises `PaymentDeclined`."""
        source = parse_payment_method(payment_method)
        answer = await translated(
            self._square.cards.create(
                idempotency_key=square_key(f"{idempotency_key}:card"),
                source_id=source.source_id,
                verification_token=source.verification_token,
                card={"customer_id": customer_id},
                request_options=NO_RETRIES,
            )
        )
        return str(part(answer, "card", None)["id"])


def _shifted(rfc3339: str, by: timedelta) -> str:
    moment = datetime.fromisoformat(rfc3339.replace("Z", "+00:00")) + by
    return moment.isoformat().replace("+00:00", "Z")
