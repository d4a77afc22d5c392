"""Subscribing through Stripe Billing end to end: the subscription use case, the Stripe adapter talking HTTP
to recorded answers, and PayQL's mirror of the subscription, its invoice and the customer remembered."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from db.models import Customer, Invoice, Subscription
from domain.statuses import InvoiceStatus, SubscriptionStatus
from gateways.registry import GatewayRegistry
from gateways.stripe.adapter import StripeGateway
from payql.wiring import Services
from resolvers.context import Caller, Deps, Principal
from resolvers.subscriptions import CreateSubscriptionRequest, create_subscription
from tests.features.subscriptions.kit import recurring_price
from tests.gateways.stripe.recorded_stripe import RecordedStripe, listed, missing, recorded
from tests.gateways.stripe.servers import Answer, RecordedRequest, serve
from tests.testkit import new_key

DAY = 86_400


@pytest.fixture
async def stripe_deps(services: Services) -> AsyncIterator[tuple[RecordedStripe, Deps]]:
    server = RecordedStripe()
    async with serve(server) as base_url:
        stripe = StripeGateway("sk_test_recorded_billing", webhook_secrets=["whsec_x"], base_url=base_url, timeout=5)
        yield server, dataclasses.replace(services.deps, gateways=GatewayRegistry([stripe]))
        await stripe.aclose()


async def test_a_stripe_subscription_is_mirrored_and_its_customer_remembered(
    stripe_deps: tuple[RecordedStripe, Deps],
) -> None:
    server, deps = stripe_deps
    price = await recurring_price(1500, currency="EUR")
    subject = f"customer-{uuid.uuid4().hex[:10]}"
    caller = Caller(Principal(subject, email=f"{subject}@example.com"))
    suffix = uuid.uuid4().hex[:12]
    sub_id, intent_id, customer_id = f"sub_{suffix}", f"pi_{suffix}", f"cus_{suffix}"
    stripe_price = recorded("price", metadata={"payql_price_id": str(price.id)}, lookup_key=str(price.id))
    start = int(time.time())
    state: dict[str, Any] = {}

    def subscription_answer(sent: RecordedRequest) -> Answer:
        if sent.method == "POST":
            state["metadata"] = {key[9:-1]: value for key, value in sent.form.items() if key.startswith("metadata[")}
        item = {
            **recorded("subscription")["items"]["data"][0],
            "price": stripe_price,
            "current_period_start": start,
            "current_period_end": start + 30 * DAY,
        }
        invoice = recorded(
            "invoice",
            id=f"in_{suffix}",
            status="paid",
            amount_paid=1500,
            billing_reason="subscription_create",
            created=start,
            lines={
                "data": [
                    {**recorded("invoice")["lines"]["data"][0], "period": {"start": start, "end": start + 30 * DAY}}
                ]
            },
            parent={"subscription_details": {"subscription": sub_id, "metadata": state["metadata"]}},
            payments=listed(
                {
                    "object": "invoice_payment",
                    "is_default": True,
                    "payment": {"type": "payment_intent", "payment_intent": intent_id},
                }
            ),
        )
        body = recorded(
            "subscription",
            id=sub_id,
            customer=customer_id,
            metadata=state["metadata"],
            items={"data": [item]},
            latest_invoice=invoice,
            start_date=start,
            created=start,
        )
        return Answer.json(200, body)

    server.on("GET", "/v1/prices", listed())
    server.on("GET", "/v1/products/.+", missing())
    server.on("POST", "/v1/products", recorded("product"))
    server.on("POST", "/v1/prices", stripe_price)
    server.on("POST", "/v1/customers", recorded("customer", id=customer_id))
    server.on("POST", "/v1/payment_methods/[^/]+/attach", recorded("payment_method"))
    server.on("POST", "/v1/subscriptions", subscription_answer)
    server.on("GET", f"/v1/subscriptions/{sub_id}", subscription_answer)
    paid = recorded("payment_intent", id=intent_id, amount=1500, amount_received=1500, currency="eur", metadata={})
    server.on("GET", f"/v1/payment_intents/{intent_id}", paid)

    outcome = await create_subscription(
        deps,
        caller,
        CreateSubscriptionRequest(str(price.id), "stripe", "pm_1RecordedMethod01", idempotency_key=new_key()),
    )

    assert outcome.errors == []
    subscription = await Subscription.get(id=outcome.subscription_id)
    assert subscription.status is SubscriptionStatus.ACTIVE
    assert subscription.gateway_reference == sub_id
    assert state["metadata"]["payql_subscription_id"] == str(subscription.id)
    invoices = await Invoice.filter(subscription_id=subscription.id)
    assert [invoice.status for invoice in invoices] == [InvoiceStatus.PAID]
    customer = await Customer.get(external_id=subject)
    assert customer_id in str(customer.gateway_references)
    sent = server.only("POST", "/v1/prices").form
    assert (sent["lookup_key"], sent["unit_amount"], sent["currency"]) == (str(price.id), "1500", "eur")
