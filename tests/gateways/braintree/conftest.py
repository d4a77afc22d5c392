"""One Braintree emulator per test (uvicorn on a random local port) and a `BraintreeGateway` pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateways.braintree.adapter import BraintreeGateway
from gateways.braintree.client import BraintreeClient
from tests.braintree_emulator import BraintreeEmulator, running_emulator


@pytest.fixture
async def emulator() -> AsyncIterator[BraintreeEmulator]:
    async with running_emulator() as running:
        yield running


def make_gateway(emulator: BraintreeEmulator, **overrides: Any) -> BraintreeGateway:
    client = BraintreeClient(
        emulator.merchant_id, emulator.public_key, emulator.private_key, api_base=emulator.base_url, timeout=5
    )
    options: dict[str, Any] = {
        "merchant_accounts": {currency: account for account, currency in emulator.merchant_accounts.items()},
        "webhook_keys": [(emulator.public_key, emulator.private_key)],
    }
    options.update(overrides)
    return BraintreeGateway(client, **options)


@pytest.fixture
async def gateway(emulator: BraintreeEmulator) -> AsyncIterator[BraintreeGateway]:
    gw = make_gateway(emulator)
    yield gw
    await gw.aclose()


async def settle(emulator: BraintreeEmulator, transaction_id: str) -> None:
    """The sandbox's settlement batch, through the SDK's own `testing.settle_transaction` (PUT .../settle)."""
    import anyio.to_thread

    sdk = emulator.sdk()
    await anyio.to_thread.run_sync(lambda: sdk.testing.settle_transaction(transaction_id))
