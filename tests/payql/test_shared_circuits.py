"""Circuits shared between instances through Redis (a throwaway redis-server): a circuit one instance
opens from its own calls opens the others' at their next exchange; a probe that closes it clears it for
everyone; a circuit opened because another said so is never re-published."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateways.health import BreakerPolicy, CircuitState, LocalHealthBoard
from payql.shared_circuits import sync_circuits
from tests.jobs.conftest import RedisServer
from tests.payql.redis_servers import redis_server

__all__ = ["redis_server"]

GATEWAYS = ("alpha", "beta")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


def instance(clock: Clock) -> LocalHealthBoard:
    return LocalHealthBoard(BreakerPolicy(consecutive_failures=2, open_seconds=30), clock)


async def exchange(redis: Redis, *boards: LocalHealthBoard) -> None:
    for board in boards:
        await sync_circuits(board, redis, "test:", GATEWAYS)


async def test_a_circuit_opened_on_one_instance_opens_on_the_others(redis: Redis) -> None:
    clock = Clock()
    first, second = instance(clock), instance(clock)
    for _ in range(2):
        first.record("alpha", ok=False, seconds=0.1)

    await exchange(redis, first, second)

    assert second.view("alpha").state is CircuitState.OPEN
    assert not second.available("alpha")
    assert second.view("beta").state is CircuitState.CLOSED


async def test_a_probe_that_closes_the_circuit_clears_it_for_every_instance(redis: Redis) -> None:
    clock = Clock()
    first, second, third = instance(clock), instance(clock), instance(clock)
    for _ in range(2):
        first.record("alpha", ok=False, seconds=0.1)
    await exchange(redis, first, second)
    clock.now += 30
    assert first.allows("alpha")
    first.record("alpha", ok=True, seconds=0.1)

    await exchange(redis, first, second, third)

    assert first.view("alpha").state is CircuitState.CLOSED
    assert third.view("alpha").state is CircuitState.CLOSED  # nothing left in Redis to open it
    # The second, opened by the first's word, probes on its own after the open period; it never
    # re-published what it only heard.
    assert second.view("alpha").state is CircuitState.OPEN
    assert await redis.exists("test:alpha") == 0
