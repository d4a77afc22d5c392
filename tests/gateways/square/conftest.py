"""One Square emulator per test (uvicorn on a random local port) and a `SquareGateway` pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateways.square.adapter import SquareGateway
from tests.square_emulator import SquareEmulator, running_emulator

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
