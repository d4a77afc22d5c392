"""The gateway package contract: the catalog finds every package by its folder, each declares its settings
(own prefix), capabilities, verifier and public configuration, the declaration matches the protocols its adapter
implements, and the registry hands out only what is declared."""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

import gateways
from gateways import catalog
from gateways.base import PaymentGateway
from gateways.errors import NotSupported, WebhookRejected
from gateways.package import Capabilities, GatewaySettings
from gateways.registry import GatewayRegistry, observed_capabilities
from gateways.sandbox.package import SandboxPackage
from gateways.stripe_signature import sign
from gateways.types import WebhookDelivery


def _declared(name: str) -> ModuleType:
    """tests/gateways/<name>/package_expectations.py: what the package must declare, and enough settings for
    its factory to build the adapter without reaching a network. Each gateway's own test folder holds its file."""
    return importlib.import_module(f"tests.gateways.{name}.package_expectations")


EXPECTED: dict[str, Capabilities] = {name: _declared(name).EXPECTED for name in catalog.available()}
CONFIGURED: dict[str, dict[str, Any]] = {name: _declared(name).CONFIGURED for name in catalog.available()}
PROTOCOL_BACKED = ("billing", "hosted_checkout", "customer_directory", "test_clock", "shopper_return")
BASE_URL = "https://pay.example.test"


def settings_of(name: str) -> GatewaySettings:
    return catalog.package(name).settings_type(**CONFIGURED[name])


@pytest.fixture(params=sorted(EXPECTED))
async def built(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, PaymentGateway]]:
    name: str = request.param
    prepared = catalog.package(name).prepare(settings_of(name), public_base_url=BASE_URL, background=False)
    adapter = await prepared.open()
    yield name, adapter
    await adapter.aclose()
    await prepared.aclose()


def test_the_catalog_finds_every_package_folder() -> None:
    folders = sorted(path.parent.name for path in Path(gateways.__path__[0]).glob("*/package.py"))
    assert list(catalog.available()) == folders == sorted(EXPECTED)
    for name in folders:
        assert catalog.package(name).name == name


def test_an_unknown_name_is_not_a_package() -> None:
    with pytest.raises(catalog.UnknownGatewayPackage):
        catalog.package("no_such_gateway")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_package_declares_its_capabilities(name: str) -> None:
    assert catalog.package(name).capabilities == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_package_reads_its_own_prefixed_variables(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_type = catalog.package(name).settings_type
    assert settings_type.model_config.get("env_prefix") == f"PAYQL_{name.upper()}_"
    field = next(iter(CONFIGURED[name]))
    assert settings_type.variable(field) == f"PAYQL_{name.upper()}_{field.upper()}"


async def test_the_adapter_implements_exactly_the_declared_protocols(built: tuple[str, PaymentGateway]) -> None:
    name, adapter = built
    assert adapter.name == name
    observed = observed_capabilities(adapter)
    declared = catalog.package(name).capabilities
    assert {f: getattr(observed, f) for f in PROTOCOL_BACKED} == {f: getattr(declared, f) for f in PROTOCOL_BACKED}


async def test_the_registry_reports_the_declared_capabilities(built: tuple[str, PaymentGateway]) -> None:
    name, adapter = built
    registry = GatewayRegistry([adapter])
    assert registry.capabilities(name) == EXPECTED[name]
    if EXPECTED[name].billing:
        assert registry.billing(name) is adapter
    else:  # a gateway without a billing engine is refused as such, never handed out
        with pytest.raises(NotSupported):
            registry.billing(name)


async def test_a_capability_a_package_does_not_declare_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    prepared = catalog.package("sandbox").prepare(settings_of("sandbox"), public_base_url=BASE_URL, background=False)
    adapter = await prepared.open()
    try:
        without = dataclasses.replace(SandboxPackage.capabilities, billing=False, test_clock=False)
        monkeypatch.setattr(SandboxPackage, "capabilities", without)
        registry = GatewayRegistry([adapter])
        with pytest.raises(NotSupported):
            registry.billing("sandbox")
        assert not registry.options()[0].capabilities.test_clock
    finally:
        await adapter.aclose()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_public_configuration_serves_the_sdk_and_holds_no_secret(name: str) -> None:
    package = catalog.package(name)
    settings = settings_of(name)
    public = package.public_config(settings, public_base_url=BASE_URL)
    tokenization = package.capabilities.client_tokenization
    assert tokenization is not None and set(tokenization.config_keys) <= set(public)
    secrets = [value.get_secret_value() for value in dict(settings).values() if isinstance(value, SecretStr)]
    secrets += [secret for secret in dict(settings).get("webhook_secrets", [])]
    assert not any(secret in value for secret in secrets for value in public.values())


@pytest.mark.parametrize("name", ["sandbox", "stripe"])
async def test_a_stripe_scheme_verifier_takes_its_own_signature_only(name: str) -> None:
    verifier = catalog.package(name).webhook_verifier(settings_of(name))
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded", "created": 1, "data": {"object": {}}}'
    now = int(time.time())
    signed = WebhookDelivery({"Stripe-Signature": sign("whsec_packages_test", now, body)}, body, now)
    assert (await verifier.verify_webhook(signed)).event_id == "evt_1"
    forged = WebhookDelivery({"Stripe-Signature": sign("whsec_someone_else", now, body)}, body, now)
    with pytest.raises(WebhookRejected):
        await verifier.verify_webhook(forged)


async def test_the_paypal_verifier_refuses_an_unsigned_delivery() -> None:
    verifier = catalog.package("paypal").webhook_verifier(settings_of("paypal"))
    with pytest.raises(WebhookRejected):
        await verifier.verify_webhook(WebhookDelivery({}, b"{}", int(time.time())))


def test_only_the_sandbox_is_development_only() -> None:
    assert [name for name in catalog.available() if catalog.package(name).development_only] == ["sandbox"]


async def test_payment_options_show_each_gateway_with_its_public_configuration(
    http: httpx.AsyncClient, server: str
) -> None:
    query = """{ paymentOptions { gateway publicConfig { name value }
        capabilities { billing hostedCheckout testClock clientTokenization { sdk configKeys } } } }"""
    response = await http.post("/graphql", json={"query": query})  # no token: all of it is public

    assert response.json() == {
        "data": {
            "paymentOptions": [
                {
                    "gateway": "sandbox",
                    "publicConfig": [{"name": "tokensUrl", "value": f"{server}/sandbox/tokens"}],
                    "capabilities": {
                        "billing": True,
                        "hostedCheckout": False,
                        "testClock": True,
                        "clientTokenization": {"sdk": "payql-sandbox", "configKeys": ["tokensUrl"]},
                    },
                }
            ]
        }
    }


async def test_stripe_publishable_key_is_a_deprecated_alias(http: httpx.AsyncClient) -> None:
    query = '{ __type(name: "Query") { fields(includeDeprecated: true) { name isDeprecated deprecationReason } } }'
    fields = (await http.post("/graphql", json={"query": query})).json()["data"]["__type"]["fields"]
    [alias] = [field for field in fields if field["name"] == "stripePublishableKey"]
    assert alias["isDeprecated"] and "paymentOptions" in alias["deprecationReason"]
