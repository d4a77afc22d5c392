"""The embedded default queue: jobs run as asyncio tasks in this process.

Failures are not retried here: job functions record their own failure in the database and
schedule their own retry, so the in-process and saq queues behave alike.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jobs.queue import JobSpec

logger = logging.getLogger(__name__)


class InProcessQueue:
    def __init__(self, jobs: list[JobSpec]) -> None:
        self._jobs = {job.name: job for job in jobs}
        self._waiting: set[str] = set()  # keys queued and not started yet
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def enqueue(self, job: str, *, key: str, delay_seconds: float = 0.0, **kwargs: Any) -> None:
        if self._closed or key in self._waiting:
            return
        spec = self._jobs[job]
        self._waiting.add(key)
        task = asyncio.create_task(self._run(spec, key, delay_seconds, kwargs), name=f"job:{key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, spec: JobSpec, key: str, delay_seconds: float, kwargs: dict[str, Any]) -> None:
        try:
            if delay_seconds > 0:
                await asyncio.sleep(delay_seconds)
        finally:
            # Once started, the key is free again: an enqueue during the run queues a rerun.
            self._waiting.discard(key)
        try:
            # In this task: `wait_for` would run the job in a task of its own, one more per job.
            async with asyncio.timeout(spec.timeout_seconds):
                await spec.function(**kwargs)
        except Exception:
            logger.exception("job %s failed", spec.name)

    async def start(self) -> None:
        return None

    def depth(self) -> int:
        """Jobs queued and not started yet (the queue-depth metric)."""
        return len(self._waiting)

    async def drain(self) -> None:
        """Wait until no job is queued or running (tests and orderly shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
