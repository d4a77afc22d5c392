"""Failover between different providers, on the running server, with their real SDKs over HTTP: Stripe on a
localstripe of this test's own, which the test stops to make it unreachable, and PayPal on its emulator.

A card token belongs to the gateway that issued it (`gateways/payment_method_carry.py`). With Stripe down, a
routed checkout whose Stripe token PayPal cannot take becomes a PayPal payment whose approval redirect is
already created; where the next gateway needs a token of its own, the SPA is told to collect one there and
no payment is made on it; a token that only the second gateway knows goes there first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from db.models import Order, Payment
from gateways.health import LocalHealthBoard
from gateways.payment_method_carry import COLLECTED_BY_GATEWAY
from gateways.registry import GatewayRegistry
from gateways.routing import RoutingTable
from gateways.sandbox.processor import SandboxProcessor
from gateways.stripe.adapter import StripeGateway
from gateways.stripe.client import StripeApi
from payql.wiring import Services
from tests.gateways.paypal.conftest import approve, make_gateway
from tests.gateways.stripe.conftest import CARD_OK, SECRET_KEY, WEBHOOK_SECRET, card_payment_method, running_localstripe
from tests.paypal_emulator import PayPalEmulator, running_emulator
from tests.testkit import COMPLETE, ORDER_FIELDS, Shopper, checkout_input, make_price, new_key, settle

ROUTED_PAYLOAD = f"""
  order {{ {ORDER_FIELDS} }}
  payment {{ id status gateway }}
  nextAction {{ type gateway redirectUrl }}
  userErrors {{ code field message }}
"""
CHECKOUT = f"mutation($input: CheckoutInput!) {{ checkout(input: $input) {{ {ROUTED_PAYLOAD} }} }}"
PAY_ORDER = f"mutation($input: PayOrderInput!) {{ payOrder(input: $input) {{ {ROUTED_PAYLOAD} }} }}"


@dataclass
class Providers:
    stripe_token: str
    paypal: PayPalEmulator
    registry: GatewayRegistry
    stripe_stopped: bool = False


@pytest.fixture
async def providers(
    services: Services, server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Providers]:
    """Stripe (on its own localstripe, stopped at once: the token was made while it ran) and PayPal joined to
    the running server's registry, each circuit fresh."""
    await settle(services)
    registry: GatewayRegistry = services.deps.gateways
    monkeypatch.setattr(registry, "health", LocalHealthBoard())
    async with running_emulator() as paypal_emulator:
        paypal_emulator.webhook_url = f"{server}/webhooks/paypal"
        paypal = make_gateway(paypal_emulator)
        async with running_localstripe(tmp_path) as localstripe:
            stripe = StripeGateway(SECRET_KEY, webhook_secrets=[WEBHOOK_SECRET], base_url=localstripe, timeout=5)
            api = StripeApi(SECRET_KEY, base_url=localstripe, timeout=5)
            token = await card_payment_method(api, CARD_OK)
            await api.aclose()
        # localstripe has stopped: its port refuses connections, as an unreachable Stripe does.
        monkeypatch.setitem(registry._gateways, "stripe", stripe)
        monkeypatch.setitem(registry._gateways, "paypal", paypal)
        try:
            yield Providers(token, paypal_emulator, registry)
        finally:
            await paypal_emulator.drain()
            await settle(services)
            await stripe.aclose()
            await paypal.aclose()


def route(providers: Providers, monkeypatch: pytest.MonkeyPatch, rule: str) -> None:
    monkeypatch.setattr(providers.registry, "routing", RoutingTable.parse(rule, providers.registry.names()))


def routed(price: Any, payment_method: str) -> dict[str, Any]:
    """A checkout that leaves the gateway to the routing policy."""
    values = {key: value for key, value in checkout_input(price, payment_method).items() if key != "gateway"}
    return {"input": values}


async def attempts(order_id: str) -> list[tuple[str, str, str]]:
    payments = await Payment.filter(order_id=order_id).order_by("created_at")
    return [(p.gateway, str(p.status), p.payment_method) for p in payments]


async def test_stripe_unreachable_fails_over_to_a_paypal_redirect_already_created(
    shopper: Shopper, providers: Providers, monkeypatch: pytest.MonkeyPatch
) -> None:
    route(providers, monkeypatch, "USD:stripe,paypal")
    price = await make_price(3_300)

    started = (await shopper.data(CHECKOUT, routed(price, providers.stripe_token)))["checkout"]

    assert started["userErrors"] == []
    assert started["payment"]["gateway"] == "paypal"
    assert started["order"]["status"] == "REQUIRES_ACTION"
    action = started["nextAction"]
    assert action["type"] == "REDIRECT" and action["redirectUrl"].startswith(providers.paypal.base_url)
    order_id = started["order"]["id"]
    assert await attempts(order_id) == [
        ("stripe", "FAILED", providers.stripe_token),
        ("paypal", "REQUIRES_ACTION", COLLECTED_BY_GATEWAY),
    ]

    # The buyer approves on PayPal; the SPA's completePayment captures once.
    paypal_order = (await Payment.get(id=started["payment"]["id"])).gateway_reference
    assert paypal_order
    await approve(providers.paypal, paypal_order)
    done = (await shopper.data(COMPLETE, {"input": {"paymentId": started["payment"]["id"]}}))["completePayment"]
    assert done["userErrors"] == [] and done["order"]["status"] == "PAID"
    assert [c for c in providers.paypal.ledger.captures.values() if c.order_id == paypal_order] != []
    assert len([c for c in providers.paypal.ledger.captures.values() if c.order_id == paypal_order]) == 1


async def test_a_next_gateway_that_needs_its_own_token_is_named_for_the_spa_to_collect_on(
    shopper: Shopper, providers: Providers, monkeypatch: pytest.MonkeyPatch
) -> None:
    route(providers, monkeypatch, "USD:stripe,sandbox,paypal")
    price = await make_price(3_400)
    key = new_key()
    variables = routed(price, providers.stripe_token)
    variables["input"]["idempotencyKey"] = key

    answered = (await shopper.data(CHECKOUT, variables))["checkout"]

    assert answered["nextAction"] == {"type": "COLLECT_PAYMENT_METHOD", "gateway": "sandbox", "redirectUrl": None}
    assert [error["code"] for error in answered["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    order_id = answered["order"]["id"]
    assert answered["order"]["status"] == "PENDING"
    # Nothing was sent to the sandbox or to PayPal: the Stripe token would mean nothing there.
    assert await attempts(order_id) == [("stripe", "FAILED", providers.stripe_token)]
    # The same key answers the same instruction, without another attempt.
    again = (await shopper.data(CHECKOUT, variables))["checkout"]
    assert again["nextAction"] == answered["nextAction"] and again["order"]["id"] == order_id
    assert len(await attempts(order_id)) == 1

    # The SPA tokenizes on the sandbox and pays the same order there.
    pay = {"orderId": order_id, "gateway": "sandbox", "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}
    paid = (await shopper.data(PAY_ORDER, {"input": pay}))["payOrder"]
    assert paid["userErrors"] == [] and paid["order"]["status"] == "PAID"
    assert (await Order.get(id=order_id)).status == "PAID"


async def test_a_token_only_a_later_gateway_knows_goes_there_first(
    shopper: Shopper, providers: Providers, sandbox: SandboxProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    route(providers, monkeypatch, "USD:stripe,sandbox")
    price = await make_price(3_500)
    # What the sandbox's tokenization page hands the SPA for a test card.
    sandbox_token = (await sandbox.tokenize_card("4242424242424242", 12, 2034, "123")).id

    paid = (await shopper.data(CHECKOUT, routed(price, sandbox_token)))["checkout"]

    assert paid["userErrors"] == [] and paid["order"]["status"] == "PAID"
    # Stripe, first in the policy, was never asked: the token is the sandbox's.
    assert await attempts(paid["order"]["id"]) == [("sandbox", "PAID", sandbox_token)]
