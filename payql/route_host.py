"""What the app lends a gateway package's HTTP routes (`gateways.package.RouteHost`): staff means a token the
app's TokenVerifier accepts with the admin role, and rate limits are per client address with the `limits` library.

The package applies these decisions on its own routes; this module names no gateway.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from gateways.package import RouteHost
from payql.auth import TokenVerifier


class ClientRateLimiter:
    """A moving-window limit per client address, in memory (a development gateway lives in one process's state)."""

    def __init__(self, limit: str, namespace: str) -> None:
        self._limit = parse(limit)
        self._namespace = namespace
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def retry_after(self, client: str) -> int | None:
        """Count one request; None when it is allowed, else the whole seconds until one will be."""
        if await self._limiter.hit(self._limit, self._namespace, client):
            return None
        stats = await self._limiter.get_window_stats(self._limit, self._namespace, client)
        return max(1, math.ceil(stats.reset_time - time.time()))


def route_host(tokens: Callable[[], TokenVerifier]) -> RouteHost:
    """`tokens` is looked up per request: the verifier is built with the services, after the routes."""

    def is_staff(authorization: str | None) -> bool:
        principal = tokens().principal_from_header(authorization)
        return principal is not None and principal.is_admin

    def rate_limiter(limit: str, namespace: str) -> Callable[[str], Awaitable[int | None]]:
        return ClientRateLimiter(limit, namespace).retry_after

    return RouteHost(is_staff=is_staff, rate_limiter=rate_limiter)
