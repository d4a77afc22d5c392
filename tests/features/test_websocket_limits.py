"""Websockets: live subscriptions are capped per principal across connections (and, with Redis,
across instances); a socket stops serving when the token it was opened with expires."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from redis.asyncio import Redis

from payql.auth import mint_token
from payql.live_slots import RedisLiveSlots
from payql.redis_pool import bounded_redis
from payql.wiring import Services
from tests.backends import Backend
from tests.testkit import CHECKOUT, TEST_JWT_SECRET, Shopper, checkout_input, eventually, make_price
from tests.wsclient import GraphQLWebSocket, graphql_ws

ORDER_STATUS = "subscription($id: ID!) { orderStatus(orderId: $id) { id status } }"


async def open_order_id(shopper: Shopper) -> str:
    """An order that stays PENDING (its card was declined), so a subscription to it stays open."""
    price = await make_price(900)
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    order_id: str = declined["order"]["id"]
    return order_id


async def start(ws: GraphQLWebSocket, query: str, variables: dict[str, Any]) -> str:
    operation_id = uuid.uuid4().hex
    payload = {"query": query, "variables": variables}
    await ws.connection.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))
    return operation_id


async def next_message(ws: GraphQLWebSocket, operation_id: str) -> dict[str, Any]:
    async def wait() -> dict[str, Any]:
        while True:
            message = await ws.receive()
            if message.get("id") == operation_id:
                return message

    return await asyncio.wait_for(wait(), 10)


def is_update(message: dict[str, Any]) -> bool:
    """A `next` carrying data; a refusal can also arrive as a `next`, carrying errors."""
    return message["type"] == "next" and not message["payload"].get("errors") and bool(message["payload"]["data"])


def error_code(message: dict[str, Any]) -> str:
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    code: str = errors[0]["extensions"]["code"]
    return code


async def test_live_subscriptions_are_capped_per_principal_across_connections(
    services: Services, server: str, shopper: Shopper, other_shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.live_slots, "_cap", 2)
    order_id = await open_order_id(shopper)
    async with AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(graphql_ws(server, shopper.token)) for _ in range(3)]
        first, second = [await start(ws, ORDER_STATUS, {"id": order_id}) for ws in sockets[:2]]
        assert is_update(await next_message(sockets[0], first))
        assert is_update(await next_message(sockets[1], second))

        refused = await next_message(sockets[2], await start(sockets[2], ORDER_STATUS, {"id": order_id}))
        assert error_code(refused) == "RATE_LIMITED"

        other_order = await open_order_id(other_shopper)
        async with graphql_ws(server, other_shopper.token) as other:
            answer = await next_message(other, await start(other, ORDER_STATUS, {"id": other_order}))
            assert is_update(answer)  # another principal has its own slots

        # Closing a socket gives its slot back (as soon as the server notices the close).
        await sockets[0].connection.close()

        async def slot_is_free() -> bool:
            answer = await next_message(sockets[2], await start(sockets[2], ORDER_STATUS, {"id": order_id}))
            return is_update(answer)

        await eventually(slot_is_free, timeout=10)


@pytest.fixture
async def two_redis_clients(backend: Backend) -> AsyncIterator[tuple[Redis, Redis]]:
    if backend.redis_url is None:
        pytest.skip("the cap shared through Redis is proven with PAYQL_TEST_BACKEND=servers")
    first, second = Redis.from_url(backend.redis_url), Redis.from_url(backend.redis_url)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_two_instances_sharing_redis_share_the_cap(
    backend: Backend, two_redis_clients: tuple[Redis, Redis]
) -> None:
    prefix = f"{backend.redis_prefix}{uuid.uuid4().hex}:"
    one, two = (RedisLiveSlots(2, redis, prefix) for redis in two_redis_clients)
    try:
        async with one.hold("customer:alice") as a, two.hold("customer:alice") as b:
            assert (a, b) == (True, True)
            async with one.hold("customer:alice") as c, two.hold("customer:alice") as d:
                assert (c, d) == (False, False)
            async with two.hold("customer:bob") as bob:
                assert bob
        async with two.hold("customer:alice") as again:
            assert again  # released on exit, on both instances
    finally:
        await one.aclose()
        await two.aclose()


async def test_held_slots_are_renewed_and_a_crashed_instances_slots_lapse(
    backend: Backend, two_redis_clients: tuple[Redis, Redis]
) -> None:
    prefix = f"{backend.redis_prefix}{uuid.uuid4().hex}:"
    crashing, surviving = (RedisLiveSlots(1, redis, prefix, lease_seconds=1.0) for redis in two_redis_clients)
    key = f"{prefix}live-subscriptions:customer:carol"
    held = AsyncExitStack()
    try:
        assert await held.enter_async_context(crashing.hold("customer:carol"))
        [(_, first_expiry)] = await two_redis_clients[1].zrange(key, 0, -1, withscores=True)

        async def renewed_past_its_first_lease() -> bool:
            [(_, expiry)] = await two_redis_clients[1].zrange(key, 0, -1, withscores=True)
            return float(expiry) > float(first_expiry) + 1.0

        await eventually(renewed_past_its_first_lease, timeout=10)
        async with surviving.hold("customer:carol") as taken:
            assert not taken  # renewed, so still counted after its first lease ran out

        await crashing.aclose()  # the instance dies: no renewal, no release

        async def lapsed() -> bool:
            async with surviving.hold("customer:carol") as taken:
                return taken

        await eventually(lapsed, timeout=10)
    finally:
        await surviving.aclose()


async def test_many_subscriptions_ending_at_once_give_every_slot_back_through_a_starved_pool(
    backend: Backend,
) -> None:
    """5,000 sockets closing at once (a deploy, a network blip) end their subscriptions together, on a
    loop kept busy by their teardown. A slot given back through a pooled connection of its own waited
    for the pool behind every other one, past its wait, and stayed counted until its lease ran out."""
    if backend.redis_url is None:
        pytest.skip("slots shared through Redis are proven with PAYQL_TEST_BACKEND=servers")
    # One connection, given for 50 ms at most: the pool of a process that many releases contend for.
    redis = bounded_redis(backend.redis_url, max_connections=1, wait_seconds=0.05, client_name="payql-test-slots")
    prefix = f"{backend.redis_prefix}{uuid.uuid4().hex}:"
    slots = RedisLiveSlots(1_000, redis, prefix)
    key = f"{prefix}live-subscriptions:customer:dave"
    ending, held = asyncio.Event(), asyncio.Queue[bool]()

    async def subscription() -> None:
        async with slots.hold("customer:dave") as taken:
            held.put_nowait(taken)
            await ending.wait()
            # The subscription's own teardown, on the loop, before its slot is given back.
            time.sleep(0.005)

    tasks: list[asyncio.Task[None]] = []
    try:
        # Taken one after another: only their giving back is at once.
        for _ in range(300):
            tasks.append(asyncio.create_task(subscription()))
            assert await held.get()
        assert await redis.zcard(key) == 300
        ending.set()
        await asyncio.gather(*tasks)
        assert await redis.zcard(key) == 0
    finally:
        await slots.aclose()
        await redis.delete(key)
        await redis.aclose()


async def test_a_socket_stops_serving_when_its_token_expires(server: str, shopper: Shopper) -> None:
    order_id = await open_order_id(shopper)
    price = await make_price(300)
    short_lived = mint_token(TEST_JWT_SECRET, shopper.subject, ttl_seconds=2)
    async with graphql_ws(server, short_lived) as ws:
        watching = await start(ws, ORDER_STATUS, {"id": order_id})
        assert is_update(await next_message(ws, watching))
        ended = await next_message(ws, watching)  # arrives at the token's exp, not before
        assert ended["type"] == "error"
        assert error_code(ended) == "UNAUTHENTICATED"

        checkout = await start(ws, CHECKOUT, {"input": checkout_input(price)})
        refused = await next_message(ws, checkout)
        assert refused["type"] == "error"
        assert error_code(refused) == "UNAUTHENTICATED"
    orders = (await shopper.data("{ orders(first: 50) { edges { node { id } } } }"))["orders"]["edges"]
    assert len(orders) == 1  # only the declined one: the refused checkout created nothing
