"""A change made at the billing gateway whose follow-up read goes unanswered (the sync reads the gateway's
clock and the invoice's payment): the shopper is told GATEWAY_UNAVAILABLE, never "Unexpected error.", and the
same key finishes the job without a second subscription. The chaos campaign found it: a sandbox timeout on
that read answered "Unexpected error." to a `createSubscription`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from db.models import Subscription
from gateways.errors import GatewayUnavailable
from payql.wiring import Services
from tests.features.subscriptions.kit import recurring_price, subscribe
from tests.testkit import Shopper, new_key, sandbox_webhooks_held


@pytest.fixture
async def quiet(services: Services) -> AsyncIterator[None]:
    """No other work reads the sandbox meanwhile: earlier work finished, this test's webhooks held until the end."""
    async with sandbox_webhooks_held(services):
        yield


def time_out_first_clock_read(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync's first read of the gateway's clock goes unanswered, as the adapter reports a timeout (the
    processor's own armed fault would hit whichever sandbox call came next, e.g. a webhook's read-back)."""
    gateway: Any = services.deps.gateways.get("sandbox")
    original = gateway.billing_now
    answered = False

    async def billing_now(reference: str) -> int:
        nonlocal answered
        if not answered:
            answered = True
            raise GatewayUnavailable("The payment provider did not answer in time.", detail="test: clock read lost")
        return int(await original(reference))

    monkeypatch.setattr(gateway, "billing_now", billing_now)


async def test_a_subscription_whose_sync_goes_unanswered_is_unavailable_then_finished_by_the_same_key(
    shopper: Shopper, services: Services, quiet: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    price = await recurring_price(1_500)
    time_out_first_clock_read(services, monkeypatch)
    key = new_key()

    first = await subscribe(shopper, price, key=key)

    assert [error["code"] for error in first["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    again = await subscribe(shopper, price, key=key)
    assert again["userErrors"] == []
    assert again["subscription"]["status"] == "ACTIVE"
    assert again["subscription"]["id"] == first["subscription"]["id"]
    mirrored = await Subscription.filter(price_id=price.id)
    assert len(mirrored) == 1 and mirrored[0].gateway_reference
