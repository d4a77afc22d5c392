"""The fan-out floor (`bench/fanout_floor.py`): each change announced on its channel reaches every
connected socket with the order's status read once, from one loop, and a socket that cannot take its
frame (its client gone) does not keep the change from the others."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import pytest
from redis.asyncio import Redis

from bench import fanout_floor
from bench.floor_pool import open_floor_pool
from db.models import Order
from domain.statuses import OrderStatus
from payql.wiring import Services
from tests.backends import Backend
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, settle


class Subscriber:
    """A socket as the floor sees one: it keeps each frame sent to it, or fails like a client gone."""

    def __init__(self, gone: bool = False) -> None:
        self.gone = gone
        self.frames: asyncio.Queue[str] = asyncio.Queue()

    async def send_text(self, text: str) -> None:
        if self.gone:
            raise RuntimeError("the client is gone")
        self.frames.put_nowait(text)


async def test_a_change_reaches_every_socket_past_one_that_is_gone(
    shopper: Shopper, services: Services, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not backend.is_postgres or backend.redis_url is None:
        pytest.skip("the floor is asyncpg on PostgreSQL with Redis pub/sub; proven with PAYQL_TEST_BACKEND=servers")
    price = await make_price(2500)
    answer = await shopper.data(CHECKOUT, {"input": checkout_input(price)})
    order_id = answer["checkout"]["order"]["id"]
    await settle(services)
    channel = f"payql-test:{uuid.uuid4().hex}:order"
    monkeypatch.setenv("FLOOR_CHANNEL", channel)
    monkeypatch.setenv("FLOOR_ORDER_ID", order_id)
    pool = await open_floor_pool(backend.database_url)
    monkeypatch.setitem(fanout_floor.state, "pool", pool)
    # The socket that fails comes first in the loop's order, so that the others come after it.
    subscribers = [Subscriber(gone=True), Subscriber(), Subscriber()]
    monkeypatch.setattr(fanout_floor, "sockets", dict.fromkeys(subscribers))
    redis = Redis.from_url(backend.redis_url)
    broadcasting = asyncio.create_task(fanout_floor.broadcast_changes(redis))
    try:
        async with asyncio.timeout(30):
            # Subscribed once the channel counts a listener: no event to wait on in another client.
            while (await redis.pubsub_numsub(channel))[0][1] == 0:
                await asyncio.sleep(0.01)
            await Order.filter(id=order_id).update(status=OrderStatus.CANCELED)
            await redis.publish(channel, json.dumps({"channel": f"order:{order_id}"}))
            for subscriber in subscribers[1:]:
                assert json.loads(await subscriber.frames.get()) == {"status": "CANCELED"}
        assert not broadcasting.done()
    finally:
        broadcasting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await broadcasting
        await redis.aclose()
        await pool.close()
