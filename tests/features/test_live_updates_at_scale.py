"""A thousand live orderStatus subscriptions on one process over real websockets: with Redis they
share one pub/sub connection, every order is watched once however many subscribe to it, and one
payment reaches every subscriber of its order."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from contextlib import AsyncExitStack
from typing import Any

import pytest
from redis.asyncio import Redis

from payql.pubsub import RedisBroker
from payql.wiring import Services
from resolvers.order_status import order_channel
from tests.backends import Backend
from tests.testkit import CHECKOUT, PAY_ORDER, Shopper, checkout_input, make_price, new_key
from tests.wsclient import GraphQLWebSocket, graphql_ws

ORDERS = 10
SOCKETS = 10
SUBSCRIPTIONS_PER_ORDER_PER_SOCKET = 10  # 10 orders x 10 sockets x 10 = 1,000 subscriptions
SUBSCRIPTIONS = ORDERS * SOCKETS * SUBSCRIPTIONS_PER_ORDER_PER_SOCKET
WAIT = 60.0
ORDER_STATUS = "subscription($id: ID!) { orderStatus(orderId: $id) { id status } }"


class SocketReader:
    """Reads one websocket's messages, grouped by operation, until every operation completed."""

    def __init__(self, ws: GraphQLWebSocket) -> None:
        self.ws = ws
        self.operations: dict[str, str] = {}  # operation id -> order id
        self.statuses: dict[str, list[str]] = defaultdict(list)
        self.errors: list[dict[str, Any]] = []
        self.completed: set[str] = set()
        self.first_seen: set[str] = set()
        self.progress = asyncio.Event()

    async def subscribe(self, order_id: str) -> None:
        operation_id = uuid.uuid4().hex
        self.operations[operation_id] = order_id
        payload = {"query": ORDER_STATUS, "variables": {"id": order_id}}
        await self.ws.connection.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))

    async def run(self) -> None:
        while len(self.completed) + len(self.errors) < len(self.operations):
            message = await self.ws.receive()
            operation_id = str(message.get("id"))
            if message["type"] == "next" and not message["payload"].get("errors"):
                self.statuses[operation_id].append(message["payload"]["data"]["orderStatus"]["status"])
                self.first_seen.add(operation_id)
            elif message["type"] == "complete":
                self.completed.add(operation_id)
            elif message["type"] in ("next", "error"):
                self.errors.append(message)
            self.progress.set()


async def wait_for(readers: list[SocketReader], condition: Any) -> None:
    async def poll() -> None:
        while not condition():
            for reader in readers:
                reader.progress.clear()
            await asyncio.wait([asyncio.create_task(reader.progress.wait()) for reader in readers], timeout=1)

    await asyncio.wait_for(poll(), WAIT)


async def pending_order(shopper: Shopper) -> str:
    """An order that stays PENDING (its card was declined) until it is paid."""
    price = await make_price(1200)
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    order_id: str = declined["order"]["id"]
    return order_id


async def pubsub_connections(redis_url: str, name: str) -> int:
    admin = Redis.from_url(redis_url)
    try:
        return sum(1 for client in await admin.client_list() if client.get("name") == name)
    finally:
        await admin.aclose()


async def test_a_thousand_order_subscriptions_on_one_process(
    services: Services, backend: Backend, server: str, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.live_slots, "_cap", SUBSCRIPTIONS)
    orders = [await pending_order(shopper) for _ in range(ORDERS)]
    async with AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(graphql_ws(server, shopper.token)) for _ in range(SOCKETS)]
        readers = [SocketReader(ws) for ws in sockets]
        for reader in readers:
            for order_id in orders:
                for _ in range(SUBSCRIPTIONS_PER_ORDER_PER_SOCKET):
                    await reader.subscribe(order_id)
        tasks = [asyncio.create_task(reader.run()) for reader in readers]
        try:
            await wait_for(readers, lambda: sum(len(r.first_seen) + len(r.errors) for r in readers) >= SUBSCRIPTIONS)
            assert [error for reader in readers for error in reader.errors] == []

            watches = [services.live_streams.watching(order_channel(order_id)) for order_id in orders]
            assert all(watch is not None for watch in watches)  # one watch per order, not per subscriber
            if isinstance(services.broker, RedisBroker):
                assert backend.redis_url is not None
                assert await pubsub_connections(backend.redis_url, services.broker.client_name) == 1

            for order_id in orders:
                paid = await shopper.data(
                    PAY_ORDER,
                    {"input": {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}},
                )
                assert paid["payOrder"]["order"]["status"] == "PAID"
            await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    for reader in readers:
        assert reader.errors == []
        assert reader.completed == set(reader.operations)
        for operation_id in reader.operations:
            statuses = reader.statuses[operation_id]
            assert statuses[0] == "PENDING"
            assert statuses[-1] == "PAID"
    # Each order was read once per change for all its 100 subscribers together, never per subscriber.
    reads = [watch.reads for watch in watches if watch is not None]
    assert max(reads) < SOCKETS * SUBSCRIPTIONS_PER_ORDER_PER_SOCKET // 4, reads
