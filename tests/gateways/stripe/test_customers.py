"""A shopper's Stripe customer is created on first use, with a key derived from our customer, and
remembered: later payments name it and no second one is made. The real SDK talks HTTP to recorded answers."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest

from db.models import Customer, Order
from domain.statuses import CaptureMethod
from gateways.registry import GatewayRegistry
from gateways.stripe.adapter import StripeGateway
from payql.wiring import Services
from resolvers.charging import PaymentChoice
from resolvers.checkout import CartItem, CheckoutRequest, checkout
from resolvers.context import Caller, Deps, Principal
from tests.gateways.stripe.recorded_stripe import RecordedStripe, recorded
from tests.gateways.stripe.servers import Answer, serve
from tests.testkit import make_price, new_key


@pytest.fixture
async def stripe_deps(services: Services) -> AsyncIterator[tuple[RecordedStripe, Deps]]:
    server = RecordedStripe()
    async with serve(server) as base_url:
        stripe = StripeGateway("sk_test_customers", webhook_secrets=["whsec_x"], base_url=base_url, timeout=5)
        yield server, dataclasses.replace(services.deps, gateways=GatewayRegistry([stripe]))
        await stripe.aclose()


async def test_the_stripe_customer_is_created_once_and_named_on_every_payment(
    stripe_deps: tuple[RecordedStripe, Deps],
) -> None:
    server, deps = stripe_deps
    stripe_customer = f"cus_{uuid.uuid4().hex[:14]}"
    server.on("POST", "/v1/customers", recorded("customer", id=stripe_customer))
    server.on(
        "POST",
        "/v1/payment_intents",
        lambda _: Answer.json(200, recorded("payment_intent", id=f"pi_{uuid.uuid4().hex[:24]}", status="succeeded")),
    )
    subject = f"customer-{uuid.uuid4().hex[:10]}"
    who = Caller(Principal(subject, email=f"{subject}@example.com"))
    price = await make_price(700, "USD")
    choice = PaymentChoice("stripe", "pm_card_visa", CaptureMethod.AUTOMATIC)

    for _ in range(2):
        outcome = await checkout(deps, who, CheckoutRequest([CartItem(str(price.id), 1)], choice, new_key()))
        assert outcome.errors == []

    [created] = server.sent("POST", "/v1/customers")
    ours = await Customer.get(external_id=subject)
    assert created.form["metadata[payql_customer_id]"] == str(ours.id)
    assert created.form["email"] == f"{subject}@example.com"
    assert created.headers["idempotency-key"].startswith(f"payql-customer-{ours.id}-")
    assert ours.gateway_references == {"stripe": stripe_customer}
    intents = server.sent("POST", "/v1/payment_intents")
    assert [sent.form["customer"] for sent in intents] == [stripe_customer, stripe_customer]
    assert await Order.filter(customer_id=ours.id).count() == 2
