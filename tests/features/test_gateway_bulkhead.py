"""The bulkhead, on the running server: with the primary gateway's calls all taken by a slow one, the next
checkout is refused by our own bulkhead before anything is sent, fails over to the backup, and nothing is
charged twice; the slow checkout still ends paid on the primary, and the breaker never hears of the refusal.

The slow call is the sandbox's `hold` fault (the processor acts, then keeps its answer back until the test
releases it). The backup gateway and the routing policy come from tests/features/test_failover.py.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from gateways.health import CircuitState
from payql.wiring import Services
from tests.features.test_failover import Gateways, attempts, charges, routed_input
from tests.features.test_failover import gateways as gateways  # the fixture
from tests.testkit import CHECKOUT, Shopper, make_price, settle

# Long enough for any honest call on a busy machine; a held call never answers before its release.
PATIENT = 60.0


async def test_a_full_bulkhead_fails_the_next_checkout_over_to_the_backup_and_charges_nothing_twice(
    shopper: Shopper, gateways: Gateways, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = services.deps.gateways.guard
    monkeypatch.setattr(
        guard, "limits", dataclasses.replace(guard.limits, max_concurrent_calls=1, call_timeout_seconds=PATIENT)
    )
    held_before = gateways.primary.held_answers.held
    gateways.primary.arm_fault("hold", 1)
    slow = asyncio.create_task(shopper.data(CHECKOUT, routed_input(await make_price(6100))))
    await gateways.primary.held_answers.wait_until_held(held_before + 1)

    next_one = (await shopper.data(CHECKOUT, routed_input(await make_price(6200))))["checkout"]

    assert next_one["userErrors"] == []
    assert next_one["order"]["status"] == "PAID"
    order_id = next_one["order"]["id"]
    assert await attempts(order_id) == [("sandbox", "FAILED"), ("sandbox_backup", "PAID")]
    assert await charges(gateways.primary, order_id) == 0
    assert await charges(gateways.backup, order_id) == 1
    # Our own refusal says nothing of the primary's health.
    assert gateways.health.view("sandbox").state is CircuitState.CLOSED

    gateways.primary.held_answers.release()
    paid = (await slow)["checkout"]

    assert paid["userErrors"] == []
    slow_order = paid["order"]["id"]
    assert await attempts(slow_order) == [("sandbox", "PAID")]
    assert await charges(gateways.primary, slow_order) == 1
    assert await charges(gateways.backup, slow_order) == 0
    # The checkouts' webhooks read the payments back through the same bulkhead: let them finish first.
    await settle(services)
    assert guard.bulkhead.in_flight("sandbox") == 0
