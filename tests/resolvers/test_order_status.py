"""orderStatus over a real websocket: current state first, then each change, complete at a final state."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.gateways.sandbox_access import STAFF_HEADERS
from tests.testkit import CHECKOUT, COMPLETE, PAY_ORDER, Shopper, checkout_input, make_price, new_key
from tests.wsclient import graphql_ws

ORDER_STATUS = "subscription($id: ID!) { orderStatus(orderId: $id) { id status total { amount currency } } }"


async def collect(stream) -> list[dict]:  # type: ignore[no-untyped-def]
    return [message async for message in stream]


async def test_paying_an_order_is_observed_live_until_paid(shopper: Shopper, server: str) -> None:
    price = await make_price(1500)
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    order_id = declined["order"]["id"]
    async with graphql_ws(server, shopper.token) as ws:
        stream = ws.subscribe(ORDER_STATUS, {"id": order_id})
        # The stream subscribes before it reads: its first message means no later change is missed.
        first = await asyncio.wait_for(anext(stream), timeout=10)
        paid = (
            await shopper.data(
                PAY_ORDER,
                {"input": {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}},
            )
        )["payOrder"]
        assert paid["order"]["status"] == "PAID"
        messages = [first, *await asyncio.wait_for(collect(stream), timeout=10)]
    statuses = [m["payload"]["data"]["orderStatus"]["status"] for m in messages]
    assert statuses[0] == "PENDING"
    assert statuses[-1] == "PAID"
    assert "PROCESSING" in statuses
    assert all(m["type"] == "next" for m in messages)


async def test_three_d_secure_completion_is_pushed_to_the_subscriber(shopper: Shopper, server: str) -> None:
    price = await make_price(2100)
    started = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_authenticationRequired")}))[
        "checkout"
    ]
    async with graphql_ws(server, shopper.token) as ws:
        stream = ws.subscribe(ORDER_STATUS, {"id": started["order"]["id"]})
        first = await asyncio.wait_for(anext(stream), timeout=10)
        await shopper.http.post(
            started["nextAction"]["redirectUrl"], json={"outcome": "succeed"}, headers=STAFF_HEADERS
        )
        await shopper.data(COMPLETE, {"input": {"paymentId": started["payment"]["id"]}})
        messages = [first, *await asyncio.wait_for(collect(stream), timeout=10)]
    assert [m["payload"]["data"]["orderStatus"]["status"] for m in messages] == ["REQUIRES_ACTION", "PAID"]


async def test_a_final_order_emits_once_and_completes(shopper: Shopper, server: str) -> None:
    price = await make_price(100)
    paid = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    async with graphql_ws(server, shopper.token) as ws:
        messages = await asyncio.wait_for(collect(ws.subscribe(ORDER_STATUS, {"id": paid["order"]["id"]})), 10)
    assert [m["payload"]["data"]["orderStatus"]["status"] for m in messages] == ["PAID"]


async def test_a_customer_cannot_subscribe_to_another_customers_order(
    shopper: Shopper, other_shopper: Shopper, server: str
) -> None:
    price = await make_price(100)
    paid = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    async with graphql_ws(server, other_shopper.token) as ws:
        messages = await asyncio.wait_for(collect(ws.subscribe(ORDER_STATUS, {"id": paid["order"]["id"]})), 10)
    assert len(messages) == 1
    payload = messages[0]["payload"]
    errors = payload if messages[0]["type"] == "error" else payload["errors"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    assert "data" not in payload or not payload.get("data")


async def test_an_invalid_token_is_rejected_at_connection(server: str) -> None:
    with pytest.raises(ConnectionClosed) as refused:
        async with graphql_ws(server, "not-a-token"):
            pass
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 4403


async def test_websocket_from_an_origin_not_allowed_is_refused(shopper: Shopper, server: str) -> None:
    with pytest.raises(InvalidStatus):
        async with graphql_ws(server, shopper.token, origin="https://evil.example"):
            pass
    async with graphql_ws(server, shopper.token, origin="https://shop.example"):
        pass
