"""A gateway that times out or fails mid-charge: the outcome is unknown, nothing is lost, and a
retry with the same idempotency key resumes the same payment instead of charging again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import pytest

from db.models import Order, Payment
from gateways.sandbox.processor import SandboxProcessor
from payql.wiring import Services
from tests.testkit import CHECKOUT, PAY_ORDER, Shopper, checkout_input, make_price, new_key, sandbox_deliverer, settle


@pytest.fixture
async def faults(sandbox: SandboxProcessor, services: Services) -> AsyncIterator[SandboxProcessor]:
    # An armed fault hits the next sandbox call, whoever makes it: let earlier tests' webhooks and
    # jobs finish first, or one of them takes the fault meant for this test.
    await settle(services)
    yield sandbox
    sandbox.clear_faults()


async def intents_for(sandbox: SandboxProcessor, order_id: str) -> list:  # type: ignore[type-arg]
    return [i for i in await sandbox.list_payment_intents() if i.metadata.get("payql_order_id") == order_id]


async def test_timeout_after_the_gateway_charged_is_resumed_with_the_same_key(
    shopper: Shopper, faults: SandboxProcessor
) -> None:
    price = await make_price(3100)
    variables = {"input": checkout_input(price)}
    faults.arm_fault("timeout", 1)
    first = (await shopper.data(CHECKOUT, variables))["checkout"]
    assert [e["code"] for e in first["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    order_id = first["order"]["id"]
    # The processor did charge; we do not know it yet, so the order stays in flight, never failed.
    assert first["payment"]["status"] == "PENDING"
    assert len(await intents_for(faults, order_id)) == 1

    retried = (await shopper.data(CHECKOUT, variables))["checkout"]
    assert retried["userErrors"] == []
    assert retried["order"]["id"] == order_id
    assert retried["order"]["status"] == "PAID"
    assert await Payment.filter(order_id=order_id).count() == 1
    charged = await intents_for(faults, order_id)
    assert len(charged) == 1 and charged[0].amount_received == 3100


async def test_a_retry_while_the_charge_is_still_pending_resumes_it_without_charging_again(
    shopper: Shopper, faults: SandboxProcessor, services: Services
) -> None:
    # Held webhooks: nothing tells PayQL the first charge went through, so the retry must call the
    # gateway again, with the key of the payment the first copy created.
    deliverer = sandbox_deliverer(services)
    assert deliverer is not None
    deliverer.switches.hold()
    try:
        price = await make_price(2700)
        variables = {"input": checkout_input(price)}
        faults.arm_fault("timeout", 1)
        first = (await shopper.data(CHECKOUT, variables))["checkout"]
        assert [e["code"] for e in first["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
        order_id, payment_id = first["order"]["id"], first["payment"]["id"]
        assert (await Payment.get(id=payment_id)).status == "PENDING"

        retried = (await shopper.data(CHECKOUT, variables))["checkout"]

        assert retried["userErrors"] == []
        assert (retried["order"]["id"], retried["payment"]["id"]) == (order_id, payment_id)
        assert retried["payment"]["status"] == "PAID"
        assert [p.id for p in await Payment.filter(order_id=order_id)] == [UUID(payment_id)]
        charged = await intents_for(faults, order_id)
        assert [(i.id, i.amount_received) for i in charged] == [
            (retried["order"]["payments"][0]["gatewayReference"], 2700)
        ]
    finally:
        deliverer.switches.reset()
    await settle(services)
    assert len(await intents_for(faults, order_id)) == 1


async def test_unavailable_before_charging_is_resumed_and_charges_once(
    shopper: Shopper, faults: SandboxProcessor
) -> None:
    price = await make_price(1300)
    variables = {"input": checkout_input(price)}
    faults.arm_fault("unavailable", 1)
    first = (await shopper.data(CHECKOUT, variables))["checkout"]
    assert [e["code"] for e in first["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    assert await intents_for(faults, first["order"]["id"]) == []
    retried = (await shopper.data(CHECKOUT, variables))["checkout"]
    assert retried["order"]["id"] == first["order"]["id"] and retried["order"]["status"] == "PAID"
    assert len(await intents_for(faults, first["order"]["id"])) == 1


async def test_an_order_with_an_unknown_outcome_cannot_be_paid_with_another_key(
    shopper: Shopper, faults: SandboxProcessor, services: Services
) -> None:
    # Hold the sandbox's webhooks: the success webhook would settle the order, which is the
    # point of webhooks but not of this test.
    deliverer = sandbox_deliverer(services)
    assert deliverer is not None
    deliverer.switches.hold()
    price = await make_price(1300)
    faults.arm_fault("timeout", 1)
    first = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    order_id = first["order"]["id"]
    other = (
        await shopper.data(
            PAY_ORDER, {"input": {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}}
        )
    )["payOrder"]
    assert [e["code"] for e in other["userErrors"]] == ["PAYMENT_IN_PROGRESS"]
    assert len(await intents_for(faults, order_id)) == 1
    assert (await Order.get(id=order_id)).status == "PROCESSING"
    deliverer.switches.reset()
    await settle(services)
    assert (await Order.get(id=order_id)).status == "PAID"
