"""`payql worker`: run the jobs queued by `SaqJobQueue`, and the periodic jobs from cron entries.

Why the sweep is replaced (saq 0.26.4, `RedisQueue.sweep` and `Worker.process`):

A worker takes a job in two steps, and the two are not atomic. First `dequeue` moves the job id
from the `queued` list to the `active` list (BLMOVE) and reads the job. Then `Worker.process`
writes the job back with status ACTIVE. Between the two steps the job sits in `active` with
status QUEUED.

`sweep` reads every job in `active`. It treats any job whose stored status is not ACTIVE (or
that has run past its timeout, or whose record is older than its heartbeat: `jobs.heartbeat`) as
abandoned by a dead worker. It aborts that job: status
ABORTING, plus an abort marker that blocks the key for 5 s. It waits up to 5 s for the job to
end, then retries it (if `retries > attempts`) or marks it ABORTED. It cannot tell "abandoned"
apart from "being taken right now".

A worker sweeps as soon as it starts: the upkeep loop sweeps before its first sleep. At the same
moment its `concurrency` process tasks take their first jobs, and the jobs queued before the
worker started are exactly the ones being taken. So the start-up sweep catches some of them in
that window. Depending on the interleaving, such a job is
- marked ABORTED although it ran;
- cancelled mid-run by the worker's abort check (every second it cancels running jobs whose
  stored status is ABORTING), and not run again with our single attempt;
- run twice (the sweep's retry);
- or left ABORTING.
Later sweeps can hit the same race, only more rarely (saq issue #277).

The guard (`WorkerRedisQueue.sweep`): a job in `active` that looks abandoned is swept only if
the previous sweep saw the very same record there. saq's sweep lock keeps sweeps at least
`lock` seconds apart, so that job has sat unchanged for that long and no worker is in the middle
of taking it. The first sightings are stored in Redis (`saq:<name>:sweep_suspects`), so the
check works across workers and restarts. Jobs that really were abandoned are still recovered
by saq's own steps, one sweep later.

The second guard (`WorkerRedisQueue.dequeue`): when Redis is unreachable, saq's process tasks
fail to dequeue at once and start again at once, which spins a CPU for as long as the outage
lasts. Each failed dequeue now pauses for a second first. The redis client reconnects by itself
once the server is back (an empty dataset after a restart loses the queued jobs; the sweeper
re-enqueues their work from the database).

A job's start is not announced (`WorkerRedisQueue.notify`): saq publishes every status change on
the job's channel, and only a job's end is ever waited for (`Job.refresh(until_complete=…)`, the
sweep's wait for an aborted job). The PUBLISH for each job becoming ACTIVE was about 5% of a
worker's CPU while it drained a backlog, and no one read it.

Fewer round trips a job (`WorkerRedisQueue.dequeue`, `_finish`): saq takes a job in two (BLMOVE,
then GET its record) and ends it in two (its transaction, then the PUBLISH of its end). The end and
its PUBLISH are now one script (`_FINISH`): one reply to read where a transaction has six. Over a
backlog, a job is taken by one script (LMOVE and GET, atomic, so no window between the two either),
which also tells whether more are queued; once none are, the worker waits in BLMOVE again, as saq
does, because a worker that keeps up with its queue finds it empty at nearly every take and the
script would only add a round trip to each (measured: BLMOVE after 8 takes in 10 during
`bench.checkout --jobs worker`). The record's GET after a BLMOVE reads the queue's length in the
same round trip, so a worker that falls behind finds out. A job took the worker 5 round trips
(BLMOVE, GET, the ACTIVE record, the end, its PUBLISH); now 3 over a backlog, 4 as jobs arrive.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT
from saq import CronJob, Job, Status, Worker
from saq.job import TERMINAL_STATUSES
from saq.queue.redis import RedisQueue
from saq.types import Context, PartialTimersDict

from jobs.queue import JobSpec
from jobs.saq_queue import (
    JOB_HEARTBEAT_SECONDS,
    ONE_ATTEMPT,
    SaqFunction,
    redis_client,
    saq_function,
    saq_timeout,
)

logger = logging.getLogger(__name__)

LifecycleHook = Callable[[], Awaitable[None]]

# How long one blocking dequeue waits. It stays under the client's socket timeout
# (SOCKET_TIMEOUT_SECONDS): with saq's default (0, wait forever) every idle dequeue ends in a
# client-side timeout, and a job the server moved to `active` just then would be stranded there.
DEQUEUE_TIMEOUT_SECONDS = 1.0
REDIS_DOWN_PAUSE_SECONDS = 1.0

# saq's own sweep script, except that it answers nil (not an empty list) while another sweep holds the lock.
_SNAPSHOT_ACTIVE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return false
end
redis.call('SETEX', KEYS[1], ARGV[1], 1)
local id_jobs = {}
for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    id_jobs[i] = {v, redis.call('GET', v)}
end
return id_jobs
"""


# A job already queued, taken as saq's BLMOVE and GET take it, in one round trip: its id moved from
# `queued` to `active`, its record, and how many are still queued; nil when none is queued.
_TAKE_QUEUED = """
local job_id = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
if not job_id then
    return false
end
return {job_id, redis.call('GET', job_id), redis.call('LLEN', KEYS[1])}
"""


# A job's end as saq's `_finish` writes it (off `active` and `incomplete`; its record kept for its ttl in
# seconds, without expiry when 0, deleted when negative) and announced on its channel, atomically, as
# one command: its one reply costs the client half the CPU of a transaction's six (MULTI, four QUEUED,
# EXEC). KEYS: active, incomplete, the job's id; ARGV: its record, its ttl, its status.
_FINISH = """
redis.call('LREM', KEYS[1], 1, KEYS[3])
redis.call('ZREM', KEYS[2], KEYS[3])
local ttl = tonumber(ARGV[2])
if ttl < 0 then
    redis.call('DEL', KEYS[3])
elseif ttl == 0 then
    redis.call('SET', KEYS[3], ARGV[1])
else
    redis.call('SET', KEYS[3], ARGV[1], 'EX', ttl)
end
redis.call('PUBLISH', KEYS[3], ARGV[3])
"""


class WorkerRedisQueue(RedisQueue):
    """saq's Redis queue for workers: the sweep leaves alone a job a worker may be taking right
    now, a dequeue during a Redis outage pauses instead of spinning, only a job's end is
    announced on its channel, a job is ended in one round trip, and over a backlog taken in one."""

    _snapshot_script: AsyncScript | None = None
    _take_script: AsyncScript | None = None
    _finish_script: AsyncScript | None = None
    # Whether jobs were left queued when the last one was taken: then the next is taken by script.
    _backlog = True
    _redis_down = False

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:  # noqa: ASYNC109 - saq's signature
        try:
            job = await self._take(timeout, poll_interval)
        except (RedisConnectionError, RedisTimeoutError) as error:
            if not self._redis_down:
                logger.error("queue %s: Redis is unreachable, retrying every second: %s", self.name, error)
                self._redis_down = True
            await asyncio.sleep(REDIS_DOWN_PAUSE_SECONDS)
            return None
        if self._redis_down:
            logger.warning("queue %s: Redis is reachable again", self.name)
            self._redis_down = False
        return job

    async def _take(self, timeout: float, poll_interval: float) -> Job | None:  # noqa: ASYNC109 - saq's signature
        """The next job, as saq's dequeue takes it (its id moved from `queued` to `active`, then its
        record read), or None when none came within `timeout` or its record is gone (saq answers None
        then too, and the sweep clears its id from `active`)."""
        if await self.version() < (6, 2, 0):
            return await super().dequeue(timeout, poll_interval)  # no LMOVE: BRPOPLPUSH, then GET
        if self._backlog:
            if self._take_script is None:
                self._take_script = self.redis.register_script(_TAKE_QUEUED)
            async with self._op_sem:
                taken = await self._take_script(keys=[self._queued, self._active], client=self.redis)
            if taken is not None:
                self._backlog = taken[2] > 0
                return self.deserialize(taken[1])
        # Redis takes a timeout in fractions of a second (6.0 and later), as saq's own call passes it.
        job_id = await self.redis.blmove(self._queued, self._active, timeout, "LEFT", "RIGHT")  # type: ignore[arg-type]
        if job_id is None:
            return None
        async with self._op_sem, self.redis.pipeline(transaction=False) as pipe:
            pipe.get(job_id)
            pipe.llen(self._queued)
            record, queued = await pipe.execute()
        self._backlog = queued > 0
        return self.deserialize(record)

    async def notify(self, job: Job) -> None:
        if job.status in TERMINAL_STATUSES:
            await super().notify(job)

    async def _finish(self, job: Job, status: Status, *, result: object = None, error: str | None = None) -> None:
        """saq's end of a job, with its announcement (a job's end, the one status `notify` publishes),
        in one script."""
        if self._finish_script is None:
            self._finish_script = self.redis.register_script(_FINISH)
        record = self.serialize(job) if job.ttl >= 0 else ""
        await self._finish_script(
            keys=[self._active, self._incomplete, job.id], args=[record, job.ttl, job.status], client=self.redis
        )

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        if self._snapshot_script is None:
            self._snapshot_script = self.redis.register_script(_SNAPSHOT_ACTIVE)
        snapshot = await self._snapshot_script(
            keys=[self.namespace("sweep"), self.namespace("active")], args=[lock], client=self.redis
        )
        if snapshot is None:
            return []  # another sweep ran less than `lock` seconds ago
        suspects_key = self.namespace("sweep_suspects")
        seen_before = await self.redis.hgetall(suspects_key)
        suspects: dict[EncodableT, EncodableT] = {}
        swept: list[str] = []
        for job_id, job_bytes in snapshot:
            job = self.deserialize(job_bytes)
            if job is not None and job.status == Status.ACTIVE and not job.stuck:
                continue
            if job is not None and seen_before.get(job_id) != job_bytes:
                suspects[job_id] = job_bytes  # perhaps being taken right now: judge it next sweep
                continue
            swept.append(job_id.decode())
            await self._sweep_job(job_id.decode(), job, abort)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(suspects_key)
            if suspects:
                pipe.hset(suspects_key, mapping=suspects)
                pipe.expire(suspects_key, 3 * lock)
            await pipe.execute()
        return swept

    async def _sweep_job(self, job_id: str, job: Job | None, abort: float) -> None:
        """What saq's sweep does with one abandoned job."""
        if job is None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lrem(self.namespace("active"), 0, job_id)
                pipe.zrem(self.namespace("incomplete"), job_id)
                await pipe.execute()
            logger.info("Sweeping missing job %s", job_id)
            return
        logger.info("Sweeping job %s", job.info())
        await self.abort(job, error=self.swept_error_message)
        try:
            await job.refresh(abort)
        except TimeoutError:
            logger.info("Could not abort job %s", job_id)
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
        else:
            await self.finish(job, Status.ABORTED, error=self.swept_error_message)


def _without_context(hook: LifecycleHook) -> Callable[[Context], Awaitable[None]]:
    async def call(ctx: Context) -> None:
        await hook()

    return call


def build_worker(
    redis_url: str,
    jobs: list[JobSpec],
    *,
    cron: Sequence[tuple[str, str]] = (),
    concurrency: int = 10,
    startup: LifecycleHook | None = None,
    shutdown: LifecycleHook | None = None,
    name: str = "payql",
    worker_id: str | None = None,
    sweep_seconds: int = 60,
    heartbeat_seconds: int = JOB_HEARTBEAT_SECONDS,
) -> Worker[Context]:
    """A saq worker for the jobs queued by `SaqJobQueue(redis_url, jobs, name=name)`.

    Every 10 seconds saq writes the worker's info under `worker_id` with an 11-second lifetime:
    the heartbeat that `worker_is_alive` reads.

    `cron` entries are (job name, cron expression), evaluated in UTC; a 6th field counts seconds.
    A periodic job is queued under the key `cron:<job name>`, so only one waits at a time across
    all workers. `startup`/`shutdown` run once around the worker's life (open and close the
    database there).

    Every `sweep_seconds` one worker sweeps the `active` list (saq's sweep lock keeps sweeps that far
    apart across workers): a job a dead worker held is taken back on the second sweep that finds it
    once its heartbeat (`heartbeat_seconds`, as `SaqJobQueue`'s jobs have) has lapsed.
    """
    specs = {spec.name: spec for spec in jobs}
    functions: dict[str, SaqFunction] = {spec.name: saq_function(spec) for spec in jobs}
    cron_jobs: list[CronJob[Context]] = []
    for job_name, expression in cron:
        if job_name not in specs:
            raise ValueError(f"cron entry {expression!r} names an unknown job {job_name!r}")
        cron_jobs.append(
            CronJob(
                functions[job_name],
                cron=expression,
                unique=True,
                timeout=saq_timeout(specs[job_name]),
                retries=ONE_ATTEMPT,
                heartbeat=heartbeat_seconds,
            )
        )
    return Worker(
        WorkerRedisQueue(redis_client(redis_url, client_name="payql-worker"), name=name),
        functions=list(functions.items()),
        cron_jobs=cron_jobs,
        concurrency=concurrency,
        startup=_without_context(startup) if startup else None,
        shutdown=_without_context(shutdown) if shutdown else None,
        dequeue_timeout=DEQUEUE_TIMEOUT_SECONDS,
        id=worker_id,
        # saq's PartialTimersDict inherits TimersDict's required keys; saq itself fills in the rest.
        timers=cast(PartialTimersDict, {"sweep": sweep_seconds}),
    )


async def run_worker(
    redis_url: str,
    jobs: list[JobSpec],
    *,
    cron: Sequence[tuple[str, str]] = (),
    concurrency: int = 10,
    startup: LifecycleHook | None = None,
    shutdown: LifecycleHook | None = None,
    name: str = "payql",
    worker_id: str | None = None,
    sweep_seconds: int = 60,
    heartbeat_seconds: int = JOB_HEARTBEAT_SECONDS,
) -> None:
    """Work until SIGINT/SIGTERM or cancellation. Jobs still running then are put back in the queue."""
    worker = build_worker(
        redis_url,
        jobs,
        cron=cron,
        concurrency=concurrency,
        startup=startup,
        shutdown=shutdown,
        name=name,
        worker_id=worker_id,
        sweep_seconds=sweep_seconds,
        heartbeat_seconds=heartbeat_seconds,
    )
    await worker.queue.connect()
    try:
        await worker.start()
    finally:
        await worker.queue.disconnect()


def default_worker_id() -> str:
    """One worker per host (a container's hostname is its own), so a health check run inside the
    container finds the heartbeat of the worker beside it. saq splits its keys on ':'."""
    return socket.gethostname().replace(":", "-")


async def worker_is_alive(redis_url: str, *, name: str, worker_id: str) -> bool:
    """Whether the worker `worker_id` wrote its heartbeat within its lifetime (a container health check)."""
    queue = RedisQueue(redis_client(redis_url), name=name)
    try:
        info = await queue.info()
    finally:
        await queue.disconnect()
    return worker_id in info["workers"]
