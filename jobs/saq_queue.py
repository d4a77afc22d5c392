"""The Redis-backed queue: saq over Redis, consumed by `payql worker` processes (`jobs.worker`).

It behaves like the embedded `InProcessQueue`:

- One waiting job per key. saq refuses a key while its job is queued, scheduled or running. A
  key whose job is already *running* gets one rerun queued under `<key>#rerun`, because the
  in-process queue frees a key once its run starts. So a job can queue its own retry under its own key.
- No saq-level retries (saq's `retries=1` means a single attempt). PayQL job functions record
  their own failure in the database and schedule their own retry. The database is the truth:
  the sweeper job re-enqueues work that Redis lost (a restart, a FLUSHALL, a crashed worker).
- One run may take `JobSpec.timeout_seconds`, rounded up to whole seconds (saq's unit).
- Every job has a heartbeat (`jobs.heartbeat`): a job whose worker died is taken back about a
  heartbeat and two sweeps later, not only once its timeout has passed.
- A delay is rounded up to the whole second, and the worker looks for due jobs every second,
  so a delayed job starts up to about two seconds late, never early.
- `enqueue` does not raise when Redis is unreachable. It logs the error and drops the job,
  which the sweeper finds again.
- `enqueue_many` queues several jobs and sends PUBLISHes of the caller's in one round trip (what a
  committed transaction announces and enqueues): saq's own enqueue script, sent by its hash in a
  pipeline. A key that is held (a job waiting or running) is then offered again as `enqueue` offers it.

Job kwargs must be JSON values (a job carries ids, not objects).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq import Job, Status
from saq.job import TERMINAL_STATUSES
from saq.queue.redis import RedisQueue
from saq.types import Context
from saq.utils import now

from jobs.heartbeat import beating
from jobs.queue import TRACE_CONTEXT_ARGUMENT, JobOffer, JobSpec
from payql.redis_pool import bounded_redis

logger = logging.getLogger(__name__)

RERUN_SUFFIX = "#rerun"
ONE_ATTEMPT = 1  # saq's `retries` counts attempts: 1 is one run and no retry
SOCKET_TIMEOUT_SECONDS = 5.0  # the worker's blocking dequeue must wait for less than this
# Enough for a worker's concurrent dequeues and updates plus saq's one pub/sub listener.
SAQ_MAX_CONNECTIONS = 50
# How long a running job's record may go untouched before a sweep counts the job as its dead worker's.
JOB_HEARTBEAT_SECONDS = 30

SaqFunction = Callable[..., Awaitable[None]]

# saq 0.26.4's enqueue (`RedisQueue._enqueue`), sent by `enqueue_many` by its hash inside a pipeline: a job
# is queued unless its key is incomplete (waiting, scheduled or running) or an abort marker blocks it.
# KEYS: incomplete, the job's id, queued, its abort marker; ARGV: the job's record, its scheduled time.
_SAQ_ENQUEUE = """
if not redis.call('ZSCORE', KEYS[1], KEYS[2]) and redis.call('EXISTS', KEYS[4]) == 0 then
    redis.call('SET', KEYS[2], ARGV[1])
    redis.call('ZADD', KEYS[1], ARGV[2], KEYS[2])
    if ARGV[2] == '0' then redis.call('RPUSH', KEYS[3], KEYS[2]) end
    return 1
else
    return nil
end
"""


def redis_client(
    redis_url: str,
    *,
    max_connections: int = SAQ_MAX_CONNECTIONS,
    wait_seconds: float = SOCKET_TIMEOUT_SECONDS,
    client_name: str = "payql-jobs",
) -> aioredis.Redis:
    """A Redis client with explicit timeouts, so an unreachable Redis fails fast instead of hanging,
    over a bounded pool that makes a burst wait for a connection instead of failing (saq owns and
    closes this client, so it is not the web process's shared pool). `CLIENT LIST` names its
    connections `client_name`: "payql-jobs" where jobs are queued, "payql-worker" where they run."""
    return bounded_redis(
        redis_url,
        max_connections=max_connections,
        wait_seconds=wait_seconds,
        client_name=client_name,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
    )


def saq_function(spec: JobSpec) -> SaqFunction:
    """`spec.function(**kwargs)` in saq's `(ctx, **kwargs)` shape, named after the job, its heartbeat
    kept while it runs."""

    async def run(ctx: Context, **kwargs: Any) -> None:
        async with beating(ctx.get("job")):
            await spec.function(**kwargs)

    # saq names cron jobs (and functions registered without a name) by `__qualname__`.
    run.__name__ = run.__qualname__ = spec.name
    return run


def saq_timeout(spec: JobSpec) -> int:
    """saq counts timeouts in whole seconds, and 0 would disable the timeout."""
    return max(1, math.ceil(spec.timeout_seconds))


class SaqJobQueue:
    """Enqueue PayQL jobs on a saq queue in Redis. `name` prefixes every key (`saq:<name>:...`); each
    job's heartbeat is `heartbeat_seconds`."""

    def __init__(
        self,
        redis_url: str,
        jobs: list[JobSpec],
        *,
        name: str = "payql",
        trace_context: Callable[[], dict[str, str]] | None = None,
        heartbeat_seconds: int = JOB_HEARTBEAT_SECONDS,
    ) -> None:
        self._jobs = {job.name: job for job in jobs}
        self._heartbeat_seconds = heartbeat_seconds
        # The enqueuing request's trace, carried in the job's arguments to the worker (W3C headers);
        # the job functions' wrapper (`payql.job_observation`) takes it out again.
        self._trace_context = trace_context
        self._queue = RedisQueue(redis_client(redis_url), name=name)
        self._enqueue_sha = self._queue.redis.register_script(_SAQ_ENQUEUE).sha
        self._closed = False

    @property
    def heartbeat_seconds(self) -> int:
        """The heartbeat every job this queue enqueues has."""
        return self._heartbeat_seconds

    @property
    def saq_queue(self) -> RedisQueue:
        """The underlying saq queue (job records, counts), for tests and diagnostics."""
        return self._queue

    async def enqueue(self, job: str, *, key: str, delay_seconds: float = 0.0, **kwargs: Any) -> None:
        if self._closed:
            return
        spec, kwargs = self._carrying_trace(job, kwargs)
        scheduled = math.ceil(time.time() + delay_seconds) if delay_seconds > 0 else 0
        try:
            await self._offer(spec, key, scheduled, kwargs)
        except (RedisConnectionError, RedisTimeoutError) as error:
            logger.error("job %s (%s) not queued, Redis is unreachable: %s; the sweeper will find it", job, key, error)

    async def enqueue_many(self, jobs: Sequence[JobOffer], *, publish: Sequence[tuple[str, str]] = ()) -> None:
        """Queue each job as `enqueue` does (now, no delay) and PUBLISH each (channel, message) on this
        queue's Redis, in one round trip while every key is free. Never raises for an unreachable Redis:
        it logs, and the sweeper finds the jobs' work again."""
        offers = [] if self._closed else [(key, *self._carrying_trace(name, kwargs)) for name, key, kwargs in jobs]
        saq_jobs = [self._saq_job(spec, key, 0, kwargs) for key, spec, kwargs in offers]
        queue = self._queue
        try:
            # Within saq's own bound on its client's concurrent operations (its `_op_sem`, which its enqueue
            # takes too): a burst of commits waits its turn instead of running its pool dry.
            async with queue._op_sem, queue.redis.pipeline(transaction=False) as pipe:
                for saq_job in saq_jobs:
                    saq_job.queue, saq_job.queued, saq_job.status = queue, now(), Status.QUEUED
                    script_keys = (
                        queue.namespace("incomplete"),
                        saq_job.id,
                        queue.namespace("queued"),
                        saq_job.abort_id,
                    )
                    pipe.evalsha(self._enqueue_sha, len(script_keys), *script_keys, queue.serialize(saq_job), 0)
                for channel, message in publish:
                    pipe.publish(channel, message)
                answers = await pipe.execute(raise_on_error=False)
            if any(isinstance(answer, NoScriptError) for answer in answers):
                await queue.redis.script_load(_SAQ_ENQUEUE)  # Redis restarted or flushed its scripts
            for (key, spec, kwargs), answer in zip(offers, answers[: len(offers)], strict=True):
                if isinstance(answer, Exception) and not isinstance(answer, NoScriptError):
                    raise answer
                if answer != 1:  # the key is held, or the script was not loaded: offer it as `enqueue` does
                    await self._offer(spec, key, 0, kwargs)
        except (RedisConnectionError, RedisTimeoutError) as error:
            keys = [key for _, key, _ in jobs]
            logger.error("jobs %s not queued, Redis is unreachable: %s; the sweeper will find them", keys, error)

    def _carrying_trace(self, job: str, kwargs: dict[str, Any]) -> tuple[JobSpec, dict[str, Any]]:
        """The job's spec, and its arguments with the enqueuing trace added when there is one."""
        carried = self._trace_context() if self._trace_context is not None else {}
        return self._jobs[job], {**kwargs, TRACE_CONTEXT_ARGUMENT: carried} if carried else kwargs

    def _saq_job(self, spec: JobSpec, saq_key: str, scheduled: int, kwargs: dict[str, Any]) -> Job:
        # A Job, not `enqueue(name, **kwargs)`: saq would take kwargs named like Job fields
        # (`status`, `meta`, `timeout`...) as job settings instead of function arguments.
        return Job(
            function=spec.name,
            kwargs=dict(kwargs),
            key=saq_key,
            timeout=saq_timeout(spec),
            retries=ONE_ATTEMPT,
            scheduled=scheduled,
            heartbeat=self._heartbeat_seconds,
        )

    async def _offer(self, spec: JobSpec, key: str, scheduled: int, kwargs: dict[str, Any]) -> None:
        for saq_key in (key, key + RERUN_SUFFIX):
            for _ in range(2):
                saq_job = self._saq_job(spec, saq_key, scheduled, kwargs)
                if await self._queue.enqueue(saq_job) is not None:
                    return
                holder = await self._queue.job(saq_key)
                if holder is None or holder.status in TERMINAL_STATUSES:
                    continue  # it ended between the two calls: offer again
                if holder.status != Status.ACTIVE:
                    return  # already waiting: one waiting job per key
                break  # running: queue a rerun under the next key
        logger.info("job %s (%s) not queued: it is running and its rerun is running too", spec.name, key)

    async def start(self) -> None:
        """Connect only: `payql worker` processes consume. An unreachable Redis is logged, not fatal.
        The enqueue script is loaded here, so that the first `enqueue_many` is one round trip too."""
        await self._queue.connect()
        try:
            await self._queue.redis.script_load(_SAQ_ENQUEUE)
        except (RedisConnectionError, RedisTimeoutError) as error:
            logger.warning("Redis for the job queue %s is unreachable: %s", self._queue.name, error)

    async def aclose(self) -> None:
        self._closed = True
        await self._queue.disconnect()
