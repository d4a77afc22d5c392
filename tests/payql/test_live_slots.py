"""Live-subscription slots shared through Redis: a pool with no connection to give is "busy, retry
shortly" in the use cases' own terms (a subscription's errors never reach the operation-level
rewrite of `payql.retry_later`), and any other Redis failure still propagates as it is. Slots given
back while Redis does not answer hold a shutdown up for a moment only."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from payql import live_slots
from payql.live_slots import RedisLiveSlots
from payql.retry_later import BUSY_MESSAGE, OUTAGE_MESSAGE
from resolvers.errors import ErrorCode, UseCaseError


class FailingScripts:
    """Stands in for a Redis client whose every script call fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def register_script(self, _: str) -> Any:
        async def run(**_: Any) -> Any:
            raise self.error

        return run


def slots_failing_with(error: Exception) -> RedisLiveSlots:
    return RedisLiveSlots(5, cast(Redis, FailingScripts(error)), "test:")


async def test_a_starved_pool_refuses_the_slot_as_busy() -> None:
    slots = slots_failing_with(RedisConnectionError("No connection available."))
    with pytest.raises(UseCaseError) as refused:
        async with slots.hold("customer:a"):
            pytest.fail("a slot was held without Redis")
    assert refused.value.code is ErrorCode.RATE_LIMITED and refused.value.message == BUSY_MESSAGE


async def test_a_redis_that_is_down_refuses_the_slot_as_unavailable_not_busy() -> None:
    down = RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    with pytest.raises(UseCaseError) as refused:
        async with slots_failing_with(down).hold("customer:a"):
            pytest.fail("a slot was held without Redis")
    assert refused.value.code is ErrorCode.SERVICE_UNAVAILABLE and refused.value.message == OUTAGE_MESSAGE


async def test_a_bug_in_taking_a_slot_is_not_told_as_busy_or_unavailable() -> None:
    with pytest.raises(ValueError, match="a bug"):
        async with slots_failing_with(ValueError("a bug")).hold("customer:a"):
            pytest.fail("a slot was held without Redis")


class SilentRedis:
    """Stands in for a Redis client that takes every slot and never answers a pipeline."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[str, ...]]] = []

    def register_script(self, _: str) -> Any:
        async def take(**_: Any) -> int:
            return 1

        return take

    def pipeline(self, transaction: bool = True) -> Any:
        return SilentPipeline(self.sent)


class SilentPipeline:
    def __init__(self, sent: list[tuple[str, tuple[str, ...]]]) -> None:
        self.sent = sent

    async def __aenter__(self) -> SilentPipeline:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    def zrem(self, key: str, *slots: str) -> None:
        self.sent.append((key, slots))

    async def execute(self) -> None:
        await asyncio.Event().wait()


async def test_a_redis_that_never_answers_holds_the_shutdown_up_for_a_moment_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live_slots, "RELEASE_AT_SHUTDOWN_SECONDS", 0.05)
    redis = SilentRedis()
    slots = RedisLiveSlots(5, cast(Redis, redis), "test:")
    taken, ending = asyncio.Event(), asyncio.Event()

    async def subscription() -> None:
        async with slots.hold("customer:a") as held:
            assert held
            taken.set()
            await ending.wait()

    task = asyncio.create_task(subscription())
    await taken.wait()
    ending.set()
    # Its slot is in the batch being sent, which Redis never answers.
    while not redis.sent:
        await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await slots.aclose()
        # The subscription's end waited on that batch: it ends too, its slot left to lapse.
        await task
    assert [key for key, _ in redis.sent] == ["test:live-subscriptions:customer:a"]
