"""A running saq job's heartbeat: its record's `touched` kept fresh while it runs, so a sweep can tell
the job of a dead worker from a live one long before the job's timeout.

Why: saq counts an ACTIVE job as stuck only past its timeout, unless the job has a heartbeat and its
record was not touched within it (`saq.Job.stuck`). A worker killed mid-job leaves the job ACTIVE in
`active`, and its key refused to every later enqueue: a periodic job (`cron:reconcile`, timeout
30 minutes) would not run again for the whole timeout. With a heartbeat, the job is stuck once its
record is `heartbeat` seconds old, and the guarded sweep (`jobs.worker.WorkerRedisQueue.sweep`) takes it
back on the next sweep that sees the same record again.

saq does not touch a running job itself. Here a beat touches the record every third of the heartbeat,
starting a third in, so a job that ends sooner costs one timer and no task. A beat writes only while the
stored record is still ACTIVE, in a WATCH transaction: the worker's own write of the job's end (or a
sweep's abort) between our read and our write makes the write fail, never undoes it. saq's
`Job.update()` reads the status and writes the record in two steps, and could.

Never write anything here but `touched`: the record is the worker's, and its status is saq's to set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError, WatchError
from saq import Job, Status
from saq.queue.redis import RedisQueue
from saq.utils import now

logger = logging.getLogger(__name__)

# A third of the heartbeat between two touches leaves two beats' slack for a slow event loop or Redis.
BEATS_PER_HEARTBEAT = 3


async def touch_if_active(queue: RedisQueue, job_id: str) -> bool:
    """Stamp the stored job's `touched` with the time now, if it is still ACTIVE; whether it was written."""
    async with queue.redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(job_id)
            stored = queue.deserialize(await pipe.get(job_id))
            if stored is None or stored.status != Status.ACTIVE:
                return False
            stored.touched = now()
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(job_id, queue.serialize(stored))
            await pipe.execute()
        except WatchError:
            return False  # the record changed meanwhile: the job ended or was aborted
    return True


@asynccontextmanager
async def beating(job: Job | None) -> AsyncIterator[None]:
    """Keep `job`'s record touched while the block runs (nothing for a job without a heartbeat)."""
    queue = job.queue if job is not None else None
    if job is None or not job.heartbeat or not isinstance(queue, RedisQueue):
        yield
        return
    interval = job.heartbeat / BEATS_PER_HEARTBEAT
    beats: list[asyncio.Task[None]] = []
    timer = asyncio.get_running_loop().call_later(
        interval, lambda: beats.append(asyncio.create_task(_beat(queue, job.id, interval)))
    )
    try:
        yield
    finally:
        timer.cancel()
        for task in beats:
            task.cancel()
            # `wait`, not `await task`: the beat's own cancellation must not be taken for this task's.
            await asyncio.wait([task])
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error


async def _beat(queue: RedisQueue, job_id: str, interval: float) -> None:
    warned = False
    while True:
        try:
            await touch_if_active(queue, job_id)
            warned = False
        except RedisError as error:
            # A live job may be swept if this lasts past its heartbeat; the job itself goes on.
            if not warned:
                logger.warning("job %s: heartbeat not written, Redis is unreachable: %s", job_id, error)
                warned = True
        await asyncio.sleep(interval)
