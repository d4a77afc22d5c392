"""Sharing gateway circuits between PayQL instances through Redis.

Each instance keeps its own breaker (`gateways.health.LocalHealthBoard`); `sync_circuits` runs every
`PAYQL_CIRCUIT_SYNC_SECONDS` and exchanges what matters: a circuit this instance opened from its own
calls is published (one key per gateway, expiring after the open period); a published key opens the
circuit of every other instance; a half-open probe that closed the circuit removes the key. Only
circuit state crosses Redis, never a payment. A Redis failure leaves every instance with its own
breaker (logged), and never fails a payment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateways.health import LocalHealthBoard

logger = logging.getLogger(__name__)


async def sync_circuits(board: LocalHealthBoard, redis: Redis, prefix: str, gateways: Sequence[str]) -> None:
    """One exchange of every gateway's circuit with the other instances."""
    open_ms = max(1, int(board.policy.open_seconds * 1000))
    for gateway in gateways:
        key = f"{prefix}circuit:{gateway}"
        if board.take_recovered(gateway):
            await redis.delete(key)
        elif board.opened_here(gateway):
            await redis.set(key, "open", px=open_ms, nx=True)
        elif await redis.exists(key):
            board.force_open(gateway)


class CircuitSync:
    """The loop running `sync_circuits` in the background of a server process."""

    def __init__(
        self, board: LocalHealthBoard, redis: Redis, prefix: str, gateways: Sequence[str], interval: float
    ) -> None:
        self._args = (board, redis, prefix, tuple(gateways))
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="payql-circuit-sync")

    async def _run(self) -> None:
        while True:
            try:
                await sync_circuits(*self._args)
            except RedisError:
                logger.warning("could not share gateway circuits through Redis; each instance keeps its own")
            await asyncio.sleep(self._interval)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
