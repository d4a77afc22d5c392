"""Idempotency of our own API and the order-level guard against double charges."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from db.models import IdempotencyRecord, Order, Payment
from gateways.sandbox.processor import SandboxProcessor
from tests.testkit import CHECKOUT, PAY_ORDER, Shopper, checkout_input, make_price, new_key


async def sandbox_intents_for(processor: SandboxProcessor, order_id: str) -> list[str]:
    intents = await processor.list_payment_intents()
    return [i.id for i in intents if i.metadata.get("payql_order_id") == order_id]


async def test_fifty_concurrent_checkouts_with_one_key_charge_once(shopper: Shopper, sandbox: SandboxProcessor) -> None:
    price = await make_price(2500)
    variables = {"input": checkout_input(price, key=new_key())}
    bodies = await asyncio.gather(*(shopper.gql(CHECKOUT, variables) for _ in range(50)))
    assert all("errors" not in body for body in bodies), bodies[0]
    first = bodies[0]["data"]["checkout"]
    assert first["userErrors"] == [] and first["order"]["status"] == "PAID"
    assert all(body == bodies[0] for body in bodies)
    order_id = first["order"]["id"]
    customer_orders = await Order.filter(customer__external_id=shopper.subject).count()
    assert customer_orders == 1
    assert await Payment.filter(order_id=order_id).count() == 1
    assert len(await sandbox_intents_for(sandbox, order_id)) == 1


async def test_replay_returns_the_stored_response_without_a_new_charge(
    shopper: Shopper, sandbox: SandboxProcessor
) -> None:
    price = await make_price(700)
    variables = {"input": checkout_input(price)}
    first = (await shopper.data(CHECKOUT, variables))["checkout"]
    before = len(await sandbox.list_payment_intents())
    second = (await shopper.data(CHECKOUT, variables))["checkout"]
    assert second == first
    assert len(await sandbox.list_payment_intents()) == before


async def test_a_replayed_decline_is_the_same_decline(shopper: Shopper) -> None:
    price = await make_price(700)
    variables = {"input": checkout_input(price, "pm_card_chargeDeclinedInsufficientFunds")}
    first = (await shopper.data(CHECKOUT, variables))["checkout"]
    second = (await shopper.data(CHECKOUT, variables))["checkout"]
    assert first == second
    assert [e["code"] for e in second["userErrors"]] == ["INSUFFICIENT_FUNDS"]
    assert await Payment.filter(order_id=first["order"]["id"]).count() == 1


async def test_same_key_with_another_cart_is_an_idempotency_conflict(shopper: Shopper) -> None:
    price = await make_price(700)
    key = new_key()
    await shopper.data(CHECKOUT, {"input": checkout_input(price, key=key)})
    orders_before = await Order.filter(customer__external_id=shopper.subject).count()
    other = (await shopper.data(CHECKOUT, {"input": checkout_input(price, quantity=2, key=key)}))["checkout"]
    assert [(e["code"], e["field"]) for e in other["userErrors"]] == [("IDEMPOTENCY_CONFLICT", "idempotencyKey")]
    assert other["order"] is None
    assert await Order.filter(customer__external_id=shopper.subject).count() == orders_before


async def test_keys_are_scoped_to_the_caller(shopper: Shopper, other_shopper: Shopper) -> None:
    price = await make_price(700)
    key = new_key()
    mine = (await shopper.data(CHECKOUT, {"input": checkout_input(price, key=key)}))["checkout"]
    theirs = (await other_shopper.data(CHECKOUT, {"input": checkout_input(price, key=key)}))["checkout"]
    assert theirs["userErrors"] == []
    assert theirs["order"]["id"] != mine["order"]["id"]


async def test_invalid_input_does_not_burn_the_key(shopper: Shopper) -> None:
    price = await make_price(700)
    key = new_key()
    bad = (await shopper.data(CHECKOUT, {"input": checkout_input(price, quantity=0, key=key)}))["checkout"]
    assert [e["code"] for e in bad["userErrors"]] == ["INVALID_INPUT"]
    assert not await IdempotencyRecord.filter(key=key).exists()
    good = (
        await shopper.data(
            CHECKOUT,
            {
                "input": checkout_input(price, quantity=0, key=key)
                | {"items": [{"priceId": str(price.id), "quantity": 1}]}
            },
        )
    )["checkout"]
    assert good["userErrors"] == [] and good["order"]["status"] == "PAID"


async def test_missing_idempotency_key_is_refused(shopper: Shopper) -> None:
    price = await make_price(700)
    body = await shopper.gql(
        CHECKOUT, {"input": {k: v for k, v in checkout_input(price).items() if k != "idempotencyKey"}}
    )
    assert body["data"] is None and "idempotencyKey" in body["errors"][0]["message"]
    blank = (await shopper.data(CHECKOUT, {"input": checkout_input(price, key="   ")}))["checkout"]
    assert [e["code"] for e in blank["userErrors"]] == ["INVALID_INPUT"]


async def test_twenty_concurrent_pay_order_calls_charge_once(shopper: Shopper, sandbox: SandboxProcessor) -> None:
    price = await make_price(900)
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    order_id = declined["order"]["id"]
    attempts = [
        shopper.data(
            PAY_ORDER, {"input": {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}}
        )
        for _ in range(20)
    ]
    results = [r["payOrder"] for r in await asyncio.gather(*attempts)]
    succeeded = [r for r in results if not r["userErrors"]]
    refused = [r["userErrors"][0]["code"] for r in results if r["userErrors"]]
    assert len(succeeded) == 1
    assert set(refused) <= {"PAYMENT_IN_PROGRESS", "ALREADY_PAID"} and len(refused) == 19
    assert (await Order.get(id=order_id)).status == "PAID"
    statuses = sorted(await Payment.filter(order_id=order_id).values_list("status", flat=True))
    assert statuses == ["FAILED", "PAID"]
    # The declined attempt and the one successful attempt: two sandbox intents, one of them charged.
    intents = [await sandbox.retrieve(i) for i in await sandbox_intents_for(sandbox, order_id)]
    assert sorted(i.amount_received for i in intents) == [0, 900]


async def test_an_expired_key_is_forgotten_and_purged(shopper: Shopper, services) -> None:  # type: ignore[no-untyped-def]
    price = await make_price(700)
    key = new_key()
    first = (await shopper.data(CHECKOUT, {"input": checkout_input(price, key=key)}))["checkout"]
    past = datetime.now(UTC) - timedelta(seconds=1)
    await IdempotencyRecord.filter(key=key).update(expires_at=past)
    # Past its window the key is free: another cart with it is a new request, not a conflict.
    other = (await shopper.data(CHECKOUT, {"input": checkout_input(price, quantity=2, key=key)}))["checkout"]
    assert other["userErrors"] == [] and other["order"]["id"] != first["order"]["id"]
    await IdempotencyRecord.filter(key=key).update(expires_at=past)
    await services.jobs.sweep()
    assert not await IdempotencyRecord.filter(key=key).exists()
