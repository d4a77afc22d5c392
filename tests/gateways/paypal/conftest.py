"""One PayPal emulator per test (uvicorn on a random local port) and a `PayPalGateway` pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateways.paypal import PayPalGateway
from payql.wiring import Services
from tests.paypal_emulator import PayPalEmulator, running_emulator
from tests.testkit import settle


@pytest.fixture
async def emulator() -> AsyncIterator[PayPalEmulator]:
    async with running_emulator() as running:
        yield running


def make_gateway(emulator: PayPalEmulator, **overrides: object) -> PayPalGateway:
    options: dict[str, object] = {
        "webhook_id": emulator.webhook_id,
        "base_url": emulator.base_url,
        "cert_host_allowlist": ("127.0.0.1",),
        "allow_http_cert_url": True,
        "webhook_trusted_roots": emulator.signer.ca_pem(),
        "timeout": 2,
    }
    options.update(overrides)
    return PayPalGateway(emulator.client_id, emulator.client_secret, **options)  # type: ignore[arg-type]


@pytest.fixture
async def gateway(emulator: PayPalEmulator) -> AsyncIterator[PayPalGateway]:
    gw = make_gateway(emulator)
    yield gw
    await gw.aclose()


async def approve(emulator: PayPalEmulator, order_id: str) -> None:
    """The buyer approves on PayPal's page (the emulator's test-only endpoint)."""
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emulator.base_url}/emulator/orders/{order_id}/approve")
    assert response.status_code == 200, response.text


@pytest.fixture
async def paypal_in_payql(
    emulator: PayPalEmulator, services: Services, server: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[PayPalGateway]:
    """The running PayQL server with a PayPal gateway pointed at the emulator, whose webhooks reach it."""
    gateway = make_gateway(emulator)
    # The session's server was configured with the sandbox only; add PayPal for this test.
    monkeypatch.setitem(services.deps.gateways._gateways, "paypal", gateway)
    emulator.webhook_url = f"{server}/webhooks/paypal"
    yield gateway
    await emulator.drain()
    await settle(services)
    await gateway.aclose()
