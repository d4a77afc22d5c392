"""The brokers: one Redis pub/sub connection per process whatever the number of subscribers,
re-subscribed after Redis restarts, and a bounded queue per subscriber."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from redis.asyncio import Redis

from payql.pubsub import Broker, InMemoryBroker, RedisBroker, SubscriberTooSlow
from payql.redis_pool import bounded_redis
from tests.jobs.conftest import RedisServer
from tests.payql.redis_servers import connections_named, redis_server

__all__ = ["redis_server"]

SUBSCRIBERS = 1000
WAIT = 10.0


async def next_message(messages: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(anext(messages), WAIT)


class RedisBrokerFixture:
    def __init__(self, server: RedisServer, queue_size: int) -> None:
        self.prefix = f"test-{uuid.uuid4().hex[:8]}:"
        self.publisher: Redis = bounded_redis(
            server.url, max_connections=4, wait_seconds=WAIT, client_name=f"{self.prefix}app"
        )
        self.broker = RedisBroker(self.publisher, server.url, self.prefix, queue_size=queue_size)

    async def aclose(self) -> None:
        await self.broker.aclose()
        await self.publisher.aclose()


@pytest.fixture
async def redis_broker(redis_server: RedisServer) -> AsyncIterator[RedisBrokerFixture]:
    fixture = RedisBrokerFixture(redis_server, queue_size=4)
    yield fixture
    await fixture.aclose()


async def test_a_thousand_subscribers_share_one_redis_pubsub_connection(
    redis_server: RedisServer, redis_broker: RedisBrokerFixture
) -> None:
    broker = redis_broker.broker
    async with AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(broker.subscribe(f"order:{n}")) for n in range(SUBSCRIBERS)]
        assert await connections_named(redis_server.url, broker.client_name) == 1
        for n in (0, SUBSCRIBERS // 2, SUBSCRIBERS - 1):
            await broker.publish(f"order:{n}", {"channel": f"order:{n}"})
            assert await next_message(streams[n]) == {"channel": f"order:{n}"}


async def test_every_local_subscriber_of_a_channel_hears_each_message(redis_broker: RedisBrokerFixture) -> None:
    broker = redis_broker.broker
    async with broker.subscribe("order:a") as first, broker.subscribe("order:a") as second:
        await broker.publish("order:a", {"n": 1})
        assert await next_message(first) == {"n": 1}
        assert await next_message(second) == {"n": 1}


async def test_after_a_redis_restart_subscribers_are_told_to_resync_and_hear_new_messages(
    redis_server: RedisServer, redis_broker: RedisBrokerFixture
) -> None:
    broker = redis_broker.broker
    async with broker.subscribe("order:r") as messages:
        redis_server.restart()
        # Whatever was published while Redis was away is lost: the subscriber must re-read.
        assert await next_message(messages) == {"channel": "order:r", "resync": True}
        await broker.publish("order:r", {"after": "restart"})
        assert await next_message(messages) == {"after": "restart"}
        assert await connections_named(redis_server.url, broker.client_name) == 1


async def test_a_slow_redis_subscriber_is_dropped_and_the_others_carry_on(redis_broker: RedisBrokerFixture) -> None:
    await assert_slow_subscriber_dropped(redis_broker.broker, queue_size=4)


async def test_a_slow_in_memory_subscriber_is_dropped_and_the_others_carry_on() -> None:
    await assert_slow_subscriber_dropped(InMemoryBroker(queue_size=4), queue_size=4)


async def assert_slow_subscriber_dropped(broker: Broker, queue_size: int) -> None:
    async with broker.subscribe("order:s") as slow, broker.subscribe("order:s") as reader:
        for n in range(queue_size + 1):
            await broker.publish("order:s", {"n": n})
            assert await next_message(reader) == {"n": n}
        # The slow one read nothing: its queue is full, so it is dropped rather than grown.
        with pytest.raises(SubscriberTooSlow):
            for _ in range(queue_size + 1):
                await next_message(slow)
        await broker.publish("order:s", {"n": "later"})
        assert await next_message(reader) == {"n": "later"}
