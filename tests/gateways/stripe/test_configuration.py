"""Stripe's public configuration: the publishable key from settings to the SPA's GraphQL query (on paymentOptions,
and on the deprecated stripePublishableKey), and the hosted Checkout expiry from settings to the adapter."""

from __future__ import annotations

import httpx
import pytest

from gateways.stripe.adapter import StripeGateway
from payql.settings import Settings, SettingsError, load_settings
from payql.wiring import build_gateways

QUERY = "{ stripePublishableKey }"
STRIPE = {"secret_key": "sk_test_payql", "webhook_secrets": ["whsec_payql"]}


@pytest.mark.parametrize("variable", ["STRIPE_PUBLISHABLE_KEY", "PAYQL_STRIPE_PUBLISHABLE_KEY"])
async def test_the_publishable_key_and_checkout_expiry_reach_the_registry_and_adapter(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("PAYQL_GATEWAYS", "stripe")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_payql")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_payql")
    monkeypatch.setenv(variable, "pk_test_payql")
    monkeypatch.setenv("PAYQL_STRIPE_CHECKOUT_EXPIRY_SECONDS", "3600")
    registry = await build_gateways(load_settings())
    try:
        stripe = registry.get("stripe")
        assert isinstance(stripe, StripeGateway)
        assert stripe._checkout_expiry_seconds == 3600
        [option] = registry.options()
        assert option.gateway == "stripe" and dict(option.public_config) == {"publishableKey": "pk_test_payql"}
    finally:
        await registry.aclose()


@pytest.mark.parametrize("seconds", ["1799", "86401"])
def test_a_checkout_expiry_stripe_would_refuse_fails_at_start(monkeypatch: pytest.MonkeyPatch, seconds: str) -> None:
    monkeypatch.setenv("PAYQL_STRIPE_CHECKOUT_EXPIRY_SECONDS", seconds)

    with pytest.raises(SettingsError, match="PAYQL_STRIPE_CHECKOUT_EXPIRY_SECONDS"):
        load_settings()


async def test_without_a_publishable_key_stripe_publishes_nothing() -> None:
    registry = await build_gateways(Settings(gateways=["stripe"], gateway_settings={"stripe": STRIPE}))
    try:
        assert dict(registry.options()[0].public_config) == {}
    finally:
        await registry.aclose()


async def test_anyone_may_ask_for_the_publishable_key(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json={"query": QUERY})  # no token: the key is public

    assert response.json() == {"data": {"stripePublishableKey": None}}  # the test server runs the sandbox only
