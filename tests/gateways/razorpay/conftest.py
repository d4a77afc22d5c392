"""One Razorpay emulator per test (uvicorn on a random local port), a `RazorpayGateway` pointed at it, and the
shopper's part in Checkout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateways.razorpay.adapter import RazorpayGateway
from payql.wiring import Services
from tests.razorpay_emulator import RazorpayEmulator, running_emulator
from tests.testkit import settle


@pytest.fixture
async def emulator() -> AsyncIterator[RazorpayEmulator]:
    async with running_emulator() as running:
        yield running


def make_gateway(emulator: RazorpayEmulator, **overrides: Any) -> RazorpayGateway:
    options: dict[str, Any] = {
        "webhook_secrets": [emulator.webhook_secret],
        "base_url": emulator.base_url,
        "timeout": 5,
    }
    options.update(overrides)
    return RazorpayGateway(emulator.key_id, emulator.key_secret, **options)


@pytest.fixture
async def gateway(emulator: RazorpayEmulator) -> AsyncIterator[RazorpayGateway]:
    gw = make_gateway(emulator)
    yield gw
    await gw.aclose()


async def pay_in_checkout(
    emulator: RazorpayEmulator, order_id: str, *, decline_reason: str | None = None
) -> dict[str, Any]:
    """The shopper pays the order in Checkout (the emulator's test-only endpoint); answers what Checkout hands
    the SPA: the signed ids on success, the `payment.failed` error otherwise."""
    body = {"decline_reason": decline_reason} if decline_reason else {}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emulator.base_url}/emulator/orders/{order_id}/pay", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def failure_values(handed: dict[str, Any]) -> dict[str, str]:
    """What the SPA sends back after Checkout's `payment.failed`: the ids of its error's metadata, unsigned."""
    metadata = handed["error"]["metadata"]
    return {"razorpay_payment_id": metadata["payment_id"], "razorpay_order_id": metadata["order_id"]}


@pytest.fixture
async def razorpay_in_payql(
    emulator: RazorpayEmulator, services: Services, server: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RazorpayGateway]:
    """The running PayQL server with a Razorpay gateway pointed at the emulator, whose webhooks reach it."""
    gateway = make_gateway(emulator)
    # The session's server was configured with the sandbox only; add Razorpay for this test.
    monkeypatch.setitem(services.deps.gateways._gateways, "razorpay", gateway)
    emulator.webhook_url = f"{server}/webhooks/razorpay"
    yield gateway
    await emulator.drain()
    await settle(services)
    await gateway.aclose()
