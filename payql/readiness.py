"""`Readiness`: the /readyz probe, whether this process's database, and Redis when configured, answer.

Probes that arrive while a check runs wait for that check and share its answer: a flood of /readyz
costs the database and Redis one check at a time per process. The probe is unauthenticated, outside
the client-address limits and never shed (a load balancer must reach it), so without this a flood of
probes would queue their `SELECT 1`s on the database pool in front of the requests that move money.

Never here: an answer kept past the check that made it (the next probe after a check ends starts a
new one), or a probe's cancellation reaching the shared check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise import connections

READINESS_TIMEOUT_SECONDS = 3.0


class Readiness:
    def __init__(self, redis: Callable[[], Redis | None]) -> None:
        self._redis = redis
        self._running: asyncio.Future[dict[str, str]] | None = None

    async def endpoint(self, _: Request) -> JSONResponse:
        """200 when every service answers within `READINESS_TIMEOUT_SECONDS`; 503 naming each that
        does not, and how: "timeout" when it did not answer in time (busy, or its pool held by a
        burst of requests), "unreachable" when it refused or failed."""
        checks = await self.check()
        if any(value != "ok" for value in checks.values()):
            return JSONResponse({"status": "unavailable", **checks}, status_code=503)
        return JSONResponse({"status": "ok", **checks})

    async def check(self) -> dict[str, str]:
        """Each service's state, from the check running now, or from a new one when none is."""
        if self._running is None:
            running = self._running = asyncio.ensure_future(self._check_each())
            running.add_done_callback(self._forget)
        # A probe whose client left is cancelled here; the check goes on for the others.
        return dict(await asyncio.shield(self._running))

    def _forget(self, done: asyncio.Future[dict[str, str]]) -> None:
        if self._running is done:
            self._running = None

    async def _check_each(self) -> dict[str, str]:
        checks = {"database": await _state(lambda: connections.get("default").execute_query("SELECT 1"))}
        redis = self._redis()
        if redis is not None:
            checks["redis"] = await _state(redis.ping)
        return checks


async def _state(ask: Callable[[], Awaitable[object]]) -> str:
    """What asking a service says of it. Nothing escapes: a probe answers 503, never 500, even while
    the database's connections are being closed at shutdown."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await ask()
    except (TimeoutError, RedisTimeoutError):
        return "timeout"
    except Exception:
        return "unreachable"
    return "ok"
