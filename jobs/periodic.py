"""Periodic jobs for the embedded default: the sweeper and reconciliation on timers in-process.

In production the same jobs are saq cron entries run by `payql worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from jobs.queue import JobQueue

logger = logging.getLogger(__name__)


class PeriodicJobs:
    def __init__(self, queue: JobQueue, schedule: dict[str, float]) -> None:
        self._queue = queue
        self._schedule = schedule
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for job, interval in self._schedule.items():
            if interval > 0:
                self._tasks.append(asyncio.create_task(self._every(job, interval), name=f"periodic:{job}"))

    async def _every(self, job: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self._queue.enqueue(job, key=f"periodic:{job}")
            except Exception:
                logger.exception("could not queue periodic job %s", job)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
