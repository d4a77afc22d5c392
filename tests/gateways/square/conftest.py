"""One Square emulator per test (uvicorn on a random local port), a `SquareGateway` pointed at it, and the
running PayQL server with that gateway added (`square_in_payql`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateways.square.adapter import SquareGateway
from payql.wiring import Services
from tests.square_emulator import SquareEmulator, running_emulator
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, settle

NONCE_OK = "cnon:card-nonce-ok"
NONCE_DECLINED = "cnon:card-nonce-declined"


@pytest.fixture
async def emulator() -> AsyncIterator[SquareEmulator]:
    async with running_emulator() as running:
        yield running


def make_gateway(emulator: SquareEmulator, currency: str = "USD", **overrides: object) -> SquareGateway:
    """A gateway for the emulator's merchant taking `currency` (a Square account takes its country's currency)."""
    merchant = emulator.merchant(currency)
    options: dict[str, object] = {
        "location_id": merchant.location_id,
        "webhook_signature_keys": [emulator.signature_key],
        "notification_url": "https://pay.example.test/webhooks/square",
        "base_url": emulator.base_url,
        "timeout": 5,
    }
    options.update(overrides)
    return SquareGateway(merchant.access_token, **options)  # type: ignore[arg-type]


@pytest.fixture
async def gateway(emulator: SquareEmulator) -> AsyncIterator[SquareGateway]:
    gw = make_gateway(emulator)
    yield gw
    await gw.aclose()


@pytest.fixture
async def square_in_payql(
    emulator: SquareEmulator, services: Services, server: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SquareGateway]:
    endpoint = f"{server}/webhooks/square"
    gateway = make_gateway(emulator, notification_url=endpoint)
    # The session's server was configured with the sandbox only; add Square for this test.
    monkeypatch.setitem(services.deps.gateways._gateways, "square", gateway)
    emulator.webhook_url = emulator.notification_url = endpoint
    yield gateway
    await emulator.drain()
    await settle(services)
    await gateway.aclose()


async def checkout(shopper: Shopper, token: str, *, key: str | None = None, manual: bool = False) -> dict[str, Any]:
    price = await make_price(4_250)
    variables = {
        "input": checkout_input(price, token, key=key, capture_method="MANUAL" if manual else "AUTOMATIC")
        | {"gateway": "square"}
    }
    result: dict[str, Any] = (await shopper.data(CHECKOUT, variables))["checkout"]
    return result
