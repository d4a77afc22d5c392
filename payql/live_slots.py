"""Caps on live subscriptions per holder (a principal, or an anonymous client's IP), across connections.

Without Redis one process serves every websocket, so counting in memory is the whole truth. With
Redis, each holder has a sorted set of slot leases shared by every instance: a slot is taken
atomically (a Lua script drops expired leases, counts, adds), renewed while held and removed on
release; a crashed instance's leases lapse after `LEASE_SECONDS`. Releases are given back together:
every slot released while a batch is in flight goes in the next one, one pipeline for them all, so
thousands of sockets closing at once (a deploy, a network blip) need one pooled connection, not one
each. Nothing here knows GraphQL.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Final

from redis.asyncio import Redis

from payql.metrics import LIVE_SUBSCRIPTIONS
from payql.retry_later import unavailability
from resolvers.errors import UseCaseError

logger = logging.getLogger(__name__)

LEASE_SECONDS: Final = 60.0
RELEASE_AT_SHUTDOWN_SECONDS: Final = 2.0

# KEYS[1] the holder's set; ARGV: now, cap, lease seconds, slot id. 1 when the slot was taken.
_TAKE_SLOT: Final = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 1)
return 1
"""


class ProcessLiveSlots:
    """The cap within this process (the embedded default: one process serves every websocket)."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._held: Counter[str] = Counter()

    @asynccontextmanager
    async def hold(self, holder: str) -> AsyncIterator[bool]:
        if self._held[holder] >= self._cap:
            yield False
            return
        self._held[holder] += 1
        LIVE_SUBSCRIPTIONS.inc()
        try:
            yield True
        finally:
            LIVE_SUBSCRIPTIONS.dec()
            self._held[holder] -= 1
            if self._held[holder] <= 0:
                del self._held[holder]

    async def aclose(self) -> None:
        """Nothing to release: the counts die with the process."""


class RedisLiveSlots:
    """The cap across every instance sharing the Redis prefix."""

    def __init__(self, cap: int, redis: Redis, prefix: str, *, lease_seconds: float = LEASE_SECONDS) -> None:
        self._cap = cap
        self._lease_seconds = lease_seconds
        self._redis = redis
        self._prefix = prefix + "live-subscriptions:"
        self._take = redis.register_script(_TAKE_SLOT)
        self._held: dict[str, str] = {}  # slot id -> the holder's key
        self._renewer: asyncio.Task[None] | None = None
        self._releasing: dict[str, list[str]] = {}  # the holder's key -> slots for the next batch
        self._released: asyncio.Future[None] | None = None  # done when the next batch is
        self._releaser: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def hold(self, holder: str) -> AsyncIterator[bool]:
        key, slot = self._prefix + holder, uuid.uuid4().hex
        try:
            taken = await self._take(keys=[key], args=[time.time(), self._cap, self._lease_seconds, slot])
        except Exception as error:
            # A subscription's errors bypass the operation-level rewrite (`payql.retry_later`): say
            # "busy" or "unavailable" here, in the use cases' own terms, rather than let it be masked.
            unavailable = unavailability(error)
            if unavailable is not None:
                raise UseCaseError(unavailable.code, unavailable.message) from error
            raise
        if not taken:
            yield False
            return
        self._held[slot] = key
        LIVE_SUBSCRIPTIONS.inc()
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_while_held())
        try:
            yield True
        finally:
            LIVE_SUBSCRIPTIONS.dec()
            del self._held[slot]
            # Shielded: a cancelled subscription must still give its slot back.
            await asyncio.shield(self._give_back(key, slot))

    def _give_back(self, key: str, slot: str) -> asyncio.Future[None]:
        """Puts the slot in the next batch of releases; done once that batch was sent. Each slot
        given back with a command of its own waited for a pooled connection behind every other
        one: with thousands at once, on a loop kept busy by their teardown, past the pool's wait, and
        the slot stayed counted against its holder until its lease ran out."""
        self._releasing.setdefault(key, []).append(slot)
        if self._released is None:
            self._released = asyncio.get_running_loop().create_future()
        released = self._released
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.create_task(self._release_batches())
        return released

    async def _release_batches(self) -> None:
        while self._releasing:
            batch, self._releasing = self._releasing, {}
            released, self._released = self._released, None
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, slots in batch.items():
                        pipe.zrem(key, *slots)
                    await pipe.execute()
            except Exception:
                # Not the subscriptions' failure: they have ended. Their leases, no longer renewed, lapse.
                count = sum(len(slots) for slots in batch.values())
                logger.warning(
                    "could not give back %d live subscription slots; they lapse in %s s",
                    count,
                    self._lease_seconds,
                    exc_info=True,
                )
            finally:
                if released is not None and not released.done():
                    released.set_result(None)

    async def _renew_while_held(self) -> None:
        while self._held:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                expiry = time.time() + self._lease_seconds
                async with self._redis.pipeline(transaction=False) as pipe:
                    for slot, key in list(self._held.items()):
                        pipe.zadd(key, {slot: expiry}, xx=True)
                    await pipe.execute()
            except Exception:
                logger.exception("could not renew live subscription leases; they lapse in %s s", self._lease_seconds)

    async def aclose(self) -> None:
        if self._releaser is not None:
            # Slots being given back are given back, their holders would wait out the leases; but a
            # Redis that does not answer does not hold the shutdown up for its retries.
            done, _ = await asyncio.wait({self._releaser}, timeout=RELEASE_AT_SHUTDOWN_SECONDS)
            if not done:
                self._releaser.cancel()
                with suppress(asyncio.CancelledError):
                    await self._releaser
        if self._renewer is not None:
            self._renewer.cancel()
            with suppress(asyncio.CancelledError):
                await self._renewer


def build_live_slots(cap: int, redis: Redis | None, prefix: str) -> ProcessLiveSlots | RedisLiveSlots:
    return RedisLiveSlots(cap, redis, prefix) if redis is not None else ProcessLiveSlots(cap)
