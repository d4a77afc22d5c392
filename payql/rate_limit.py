"""Per-principal rate limits on payment mutations, with the `limits` library.

Memory storage for the embedded default; Redis in production so the limit holds across instances.
"""

from __future__ import annotations

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis


class PaymentRateLimiter:
    def __init__(self, limit: str, redis: Redis | None, prefix: str) -> None:
        self._limit = parse(limit)
        # Shares the app's Redis connection pool, so closing the app closes its connections too.
        self._storage: Storage = (
            RedisStorage(
                "async+redis://",
                implementation="redispy",
                key_prefix=prefix + "ratelimit",
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # limits types **options too narrowly
            )
            if redis is not None
            else MemoryStorage()
        )
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def hit(self, principal_key: str) -> bool:
        """Count one payment mutation; False when the principal is over its limit."""
        return await self._limiter.hit(self._limit, "payments", principal_key)
