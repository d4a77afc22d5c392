"""Wiring the gateways: the call limits from settings guard every adapter the registry hands out."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from gateways.call_guard import CallLimits
from gateways.errors import GatewayTimeout
from gateways.sandbox.package import PreparedSandbox
from payql.settings import Settings
from payql.wiring import Services, build_gateways, prepare_gateways
from resolvers.order_status import order_channel
from tests.testkit import CHECKOUT, PAY_ORDER, TEST_WEBHOOK_SECRET, Shopper, checkout_input, make_price, new_key


async def test_the_call_limits_from_settings_guard_every_adapter(tmp_path: Path) -> None:
    settings = Settings(
        gateways=["sandbox"],
        gateway_settings={
            "sandbox": {"webhook_secrets": [TEST_WEBHOOK_SECRET], "state_path": tmp_path / "sandbox.sqlite3"}
        },
        gateway_call_timeout_seconds=0.05,
        gateway_max_concurrent_calls=3,
        gateway_request_deadline_seconds=7,
    )
    prepared = prepare_gateways(settings, background=False)
    registry = await build_gateways(settings, prepared)
    sandbox = prepared["sandbox"]
    assert isinstance(sandbox, PreparedSandbox)
    try:
        assert registry.guard.limits == CallLimits(
            call_timeout_seconds=0.05, max_concurrent_calls=3, request_deadline_seconds=7
        )
        # A held answer is cut by the timeout from settings.
        sandbox.processor.arm_fault("hold", 1)
        with pytest.raises(GatewayTimeout):
            await registry.get("sandbox").retrieve("pi_sbx_unknown")
    finally:
        sandbox.processor.clear_faults()
        await registry.aclose()


async def test_an_order_is_announced_only_once_someone_can_know_it(
    shopper: Shopper, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction that creates an order announces nothing: no one has its id before that
    request answers. Every change after it is announced on the order's channel."""
    published: list[str] = []

    async def record(channel: str, message: dict[str, Any]) -> None:
        published.append(channel)

    monkeypatch.setattr(services.broker, "publish", record)
    price = await make_price(1200)
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    channel = order_channel(UUID(declined["order"]["id"]))
    # Made PENDING and PROCESSING in one transaction, unheard; PENDING again as the payment failed.
    assert published == [channel]

    retry = {"orderId": declined["order"]["id"], "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}
    paid = (await shopper.data(PAY_ORDER, {"input": retry}))["payOrder"]
    assert paid["order"]["status"] == "PAID"
    # A payment made for a known order is heard: PROCESSING, then PAID.
    assert published == [channel, channel, channel]
