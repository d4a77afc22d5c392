"""Stripe's public configuration: the publishable key from settings to the SPA's GraphQL query, and the
hosted Checkout expiry from settings to the adapter."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from gateways.registry import GatewayRegistry
from gateways.stripe.adapter import StripeGateway
from payql.settings import SettingsError, load_settings
from payql.wiring import Services, build_gateways
from resolvers.gateway_keys import stripe_publishable_key

QUERY = "{ stripePublishableKey }"


@pytest.mark.parametrize("variable", ["STRIPE_PUBLISHABLE_KEY", "PAYQL_STRIPE_PUBLISHABLE_KEY"])
async def test_the_publishable_key_and_checkout_expiry_reach_the_adapter(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("PAYQL_GATEWAYS", "stripe")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_payql")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_payql")
    monkeypatch.setenv(variable, "pk_test_payql")
    monkeypatch.setenv("PAYQL_STRIPE_CHECKOUT_EXPIRY_SECONDS", "3600")
    registry = await build_gateways(load_settings(), None)
    try:
        stripe = registry.get("stripe")
        assert isinstance(stripe, StripeGateway)
        assert stripe.publishable_key == "pk_test_payql"
        assert stripe._checkout_expiry_seconds == 3600
    finally:
        await registry.aclose()


@pytest.mark.parametrize("seconds", ["1799", "86401"])
def test_a_checkout_expiry_stripe_would_refuse_fails_at_start(monkeypatch: pytest.MonkeyPatch, seconds: str) -> None:
    monkeypatch.setenv("PAYQL_STRIPE_CHECKOUT_EXPIRY_SECONDS", seconds)

    with pytest.raises(SettingsError, match="PAYQL_STRIPE_CHECKOUT_EXPIRY_SECONDS"):
        load_settings()


async def test_the_publishable_key_is_read_from_the_configured_stripe_gateway(services: Services) -> None:
    stripe = StripeGateway("sk_test_x", webhook_secrets=[], publishable_key="pk_test_shop")
    deps = dataclasses.replace(services.deps, gateways=GatewayRegistry([stripe]))
    try:
        assert stripe_publishable_key(deps) == "pk_test_shop"
        assert stripe_publishable_key(services.deps) is None  # the test server runs the sandbox only
    finally:
        await stripe.aclose()


async def test_anyone_may_ask_for_the_publishable_key(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json={"query": QUERY})  # no token: the key is public

    assert response.json() == {"data": {"stripePublishableKey": None}}
