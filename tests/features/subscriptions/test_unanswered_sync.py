"""A change made at the billing gateway whose follow-up read goes unanswered (the sync reads the gateway's
clock and the invoice's payment): the shopper is told GATEWAY_UNAVAILABLE, never "Unexpected error.", and the
same key finishes the job without a second subscription. The chaos campaign found it: a sandbox timeout on
that read answered "Unexpected error." to a `createSubscription`."""

from __future__ import annotations

from typing import Any

import pytest

from db.models import Subscription
from gateways.sandbox.processor import SandboxProcessor
from payql.wiring import Services
from tests.features.subscriptions.kit import recurring_price, subscribe
from tests.testkit import Shopper, new_key


def time_out_first_clock_read(services: Services, sandbox: SandboxProcessor, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox processor's own timeout fault, armed for exactly the sync's first read of the clock."""
    gateway: Any = services.deps.gateways.get("sandbox")
    original = gateway.billing_now
    armed = False

    async def billing_now(reference: str) -> int:
        nonlocal armed
        if not armed:
            armed = True
            sandbox.arm_fault("timeout", 1)
        return int(await original(reference))

    monkeypatch.setattr(gateway, "billing_now", billing_now)


async def test_a_subscription_whose_sync_goes_unanswered_is_unavailable_then_finished_by_the_same_key(
    shopper: Shopper, services: Services, sandbox: SandboxProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    price = await recurring_price(1_500)
    time_out_first_clock_read(services, sandbox, monkeypatch)
    key = new_key()

    first = await subscribe(shopper, price, key=key)

    assert [error["code"] for error in first["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    again = await subscribe(shopper, price, key=key)
    assert again["userErrors"] == []
    assert again["subscription"]["status"] == "ACTIVE"
    assert again["subscription"]["id"] == first["subscription"]["id"]
    mirrored = await Subscription.filter(price_id=price.id)
    assert len(mirrored) == 1 and mirrored[0].gateway_reference
