"""The checkout floor with its receipts in a worker (`bench.checkout --jobs worker`): the floor pushes
each receipt on a Redis list before it answers, and `bench.checkout_floor_worker` runs its statements,
so the receipt ends SENT as PayQL's does in `payql worker`."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from bench import checkout_floor, checkout_floor_worker
from bench.floor_pool import open_floor_pool
from db.models import OutboxMessage, OutboxStatus
from payql.wiring import Services
from tests.backends import Backend
from tests.bench.test_checkout_floor import floor_request
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, settle


async def test_a_queued_receipt_is_sent_by_the_floors_worker(
    shopper: Shopper, services: Services, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not backend.is_postgres or backend.redis_url is None:
        pytest.skip("the floor is asyncpg on PostgreSQL with a Redis list; proven with PAYQL_TEST_BACKEND=servers")
    price = await make_price(2500)
    # The shopper's first checkout makes the customer the floor charges as.
    assert (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]["userErrors"] == []
    await settle(services)
    key = f"payql-test:{uuid.uuid4().hex}:floor-receipts"
    monkeypatch.setenv("FLOOR_CUSTOMER", shopper.subject)
    monkeypatch.setenv("FLOOR_RECEIPT_QUEUE", key)
    pool = await open_floor_pool(backend.database_url)
    redis = Redis.from_url(backend.redis_url, decode_responses=True)
    monkeypatch.setitem(checkout_floor.state, "pool", pool)
    monkeypatch.setitem(checkout_floor.queue, "redis", redis)
    try:
        answer = await checkout_floor.checkout(floor_request(str(price.id)))
        order_id = json.loads(bytes(answer.body))["order"]["id"]
        # Queued, not run: nothing detached in the floor's process, one entry on the list.
        assert not checkout_floor.receipts
        assert await redis.llen(key) == 1
        message = await OutboxMessage.get(dedupe_key=f"receipt:{order_id}")
        assert message.status == OutboxStatus.PENDING

        consumer = asyncio.create_task(checkout_floor_worker.consume(redis, key))
        try:
            async with asyncio.timeout(30):
                while (await OutboxMessage.get(id=message.id)).status != OutboxStatus.SENT:
                    await asyncio.sleep(0.02)
        finally:
            consumer.cancel()
        assert await redis.llen(key) == 0
    finally:
        await redis.delete(key)
        await redis.aclose()
        await pool.close()


async def test_the_floors_worker_outwaits_a_quiet_list(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """A round of the other side pushes nothing for longer than redis-py's socket timeout: the worker's
    waits on the list must each end first, or its next read times out and the worker dies."""
    if backend.redis_url is None:
        pytest.skip("the floor's worker waits on a Redis list; proven with PAYQL_TEST_BACKEND=servers")
    key = f"payql-test:{uuid.uuid4().hex}:floor-receipts"
    # Scaled down: a socket timeout of 0.5 s where redis-py's default is 5 s, waits of 0.2 s where the
    # worker's are 1 s.
    monkeypatch.setattr(checkout_floor_worker, "WAIT_SECONDS", 0.2)
    redis = Redis.from_url(backend.redis_url, decode_responses=True, socket_timeout=0.5)
    quiet_waits = 0
    brpop = redis.brpop

    async def counted_brpop(*args: Any, **kwargs: Any) -> Any:
        nonlocal quiet_waits
        result = await brpop(*args, **kwargs)
        quiet_waits += result is None
        if quiet_waits == 5:
            await redis.lpush(key, f"7 {uuid.uuid4()}")
        return result

    class Taken(Exception):
        """The pushed receipt reached the worker: it ends the consumer's loop here."""

    async def receipt(message_id: int, order_id: uuid.UUID) -> None:
        raise Taken(message_id)

    monkeypatch.setattr(redis, "brpop", counted_brpop)
    monkeypatch.setattr(checkout_floor, "receipt", receipt)
    try:
        # Five quiet waits (a second, twice the socket timeout), then the pushed receipt is taken; a
        # wait that outlasted the socket would end the consumer with redis-py's TimeoutError instead.
        with pytest.raises(Taken) as ended:
            await asyncio.wait_for(checkout_floor_worker.consume(redis, key), 30)
        assert ended.value.args == (7,)
        assert quiet_waits >= 5
    finally:
        await redis.delete(key)
        await redis.aclose()
