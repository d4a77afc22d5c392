"""Per-principal rate limits on payment mutations, with the `limits` library.

Memory storage for the embedded default; Redis in production so the limit holds across instances.
"""

from __future__ import annotations

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


class PaymentRateLimiter:
    def __init__(self, limit: str, redis_url: str | None, prefix: str) -> None:
        self._limit = parse(limit)
        self._storage: Storage = (
            RedisStorage(redis_url, implementation="redispy", key_prefix=prefix + "ratelimit")
            if redis_url
            else MemoryStorage()
        )
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def hit(self, principal_key: str) -> bool:
        """Count one payment mutation; False when the principal is over its limit."""
        return await self._limiter.hit(self._limit, "payments", principal_key)
