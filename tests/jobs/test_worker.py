"""The saq worker against a real Redis: the sweep guard, cron entries, a Redis restart, FLUSHALL."""

from __future__ import annotations

import asyncio

import pytest
from saq import Job, Status
from saq.queue.redis import RedisQueue
from saq.utils import now

from jobs.queue import JobSpec
from jobs.saq_queue import JOB_HEARTBEAT_SECONDS, SaqJobQueue, redis_client
from jobs.worker import WorkerRedisQueue, build_worker
from tests.jobs.conftest import RedisServer
from tests.jobs.saqkit import (
    NAME,
    SAQ_SETEX_DEPRECATION,
    RoundTrips,
    Runs,
    next_message,
    running_worker,
    wait_for_status,
)

pytestmark = [SAQ_SETEX_DEPRECATION]


async def test_jobs_queued_before_the_worker_started_all_run_once(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs
) -> None:
    """The start-up sweep races the first dequeues; unguarded, some of these jobs are aborted,
    cancelled mid-run or run twice. Each job outlives the worker's 1 s abort check."""
    keys = [f"early:{n}" for n in range(30)]
    for n, key in enumerate(keys):
        await queue.enqueue("slow", key=key, seconds=1.5, n=n)
    async with running_worker(redis_server.url, specs, concurrency=len(keys)):
        await runs.wait_for("slow", count=len(keys), timeout=60)
        for key in keys:
            await wait_for_status(queue.saq_queue, key, Status.COMPLETE)
    assert sorted(run.kwargs["n"] for run in runs.of("slow")) == list(range(len(keys)))
    for job in await queue.saq_queue.jobs(keys):
        assert job is not None
        assert (job.status, job.error, job.attempts) == (Status.COMPLETE, None, 1)


async def take_without_marking_active(queue: RedisQueue) -> None:
    """A worker's first dequeue step: the job id moves to `active`, its record still says QUEUED."""
    await queue.redis.lmove(queue.namespace("queued"), queue.namespace("active"), "LEFT", "RIGHT")


async def release_sweep_lock(queue: RedisQueue) -> None:
    """As if `lock` seconds had passed since the last sweep."""
    await queue.redis.delete(queue.namespace("sweep"))


async def test_plain_saq_sweep_aborts_a_job_being_taken(redis_server: RedisServer) -> None:
    """The problem the guard exists for. Should this fail after a saq upgrade, saq no longer
    sweeps a job mid-dequeue and `WorkerRedisQueue` may go."""
    queue = RedisQueue(redis_client(redis_server.url), name=NAME)
    try:
        await queue.enqueue(Job("record", key="k", retries=1))
        await take_without_marking_active(queue)
        assert await queue.sweep(lock=60, abort=0.1) == [f"saq:job:{NAME}:k"]
    finally:
        await queue.disconnect()


async def test_the_guarded_sweep_leaves_a_job_being_taken(redis_server: RedisServer) -> None:
    queue = WorkerRedisQueue(redis_client(redis_server.url), name=NAME)
    try:
        await queue.enqueue(Job("record", key="k", retries=1))
        await take_without_marking_active(queue)
        assert await queue.sweep(lock=60, abort=0.1) == []
        job = await queue.job("k")
        assert job is not None
        assert job.status == Status.QUEUED
        assert job.error is None
        await job.update(status=Status.ACTIVE, started=now())  # the worker's second step
        await release_sweep_lock(queue)
        assert await queue.sweep(lock=60, abort=0.1) == []
        assert await queue.count("active") == 1
        assert await queue.redis.exists(queue.namespace("sweep_suspects")) == 0
    finally:
        await queue.disconnect()


async def test_the_guarded_sweep_requeues_a_job_abandoned_mid_dequeue(
    redis_server: RedisServer, specs: list[JobSpec], runs: Runs
) -> None:
    """A worker died between its two dequeue steps: the next sweep but one puts the job back."""
    queue = WorkerRedisQueue(redis_client(redis_server.url), name=NAME)
    try:
        await queue.enqueue(Job("record", key="k", kwargs={"n": 1}, retries=1))
        await take_without_marking_active(queue)
        assert await queue.sweep(lock=60, abort=0.1) == []
        await release_sweep_lock(queue)
        assert await queue.sweep(lock=60, abort=0.1) == [f"saq:job:{NAME}:k"]
        assert (await queue.count("active"), await queue.count("queued")) == (0, 1)
        await wait_for_status(queue, "k", Status.QUEUED)
        async with running_worker(redis_server.url, specs):
            await runs.wait_for("record", n=1)
            await wait_for_status(queue, "k", Status.COMPLETE)
    finally:
        await queue.disconnect()


async def test_a_job_a_dead_worker_held_is_run_after_two_sweeps_of_the_configured_period(
    redis_server: RedisServer, specs: list[JobSpec], runs: Runs
) -> None:
    """The worker sweeps on its own: at start-up, then every `sweep_seconds` (60 by default, so the
    second sweep would come after this test's wait)."""
    queue = WorkerRedisQueue(redis_client(redis_server.url), name=NAME)
    try:
        await queue.enqueue(Job("record", key="k", kwargs={"n": 2}, retries=1))
        await take_without_marking_active(queue)  # and then that worker died
        async with running_worker(redis_server.url, specs, sweep_seconds=1):
            await runs.wait_for("record", n=2, timeout=20)
            await wait_for_status(queue, "k", Status.COMPLETE)
    finally:
        await queue.disconnect()


async def test_a_cron_entry_runs_its_job(redis_server: RedisServer, specs: list[JobSpec], runs: Runs) -> None:
    async with running_worker(redis_server.url, specs, cron=[("record", "* * * * * *")]) as worker:
        await runs.wait_for("record", count=2, timeout=30)  # every second
        job = await worker.queue.job("cron:record")
        assert job is not None
        assert (job.retries, job.timeout, job.heartbeat) == (1, 60, JOB_HEARTBEAT_SECONDS)


def test_a_cron_entry_naming_an_unknown_job_is_refused(redis_server: RedisServer, specs: list[JobSpec]) -> None:
    with pytest.raises(ValueError, match="unknown job 'nope'"):
        build_worker(redis_server.url, specs, cron=[("nope", "* * * * *")])


async def test_after_a_redis_restart_enqueue_works_again(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs
) -> None:
    async with running_worker(redis_server.url, specs):
        await queue.enqueue("record", key="before", n=1)
        await runs.wait_for("record", n=1)

        redis_server.stop()
        await queue.enqueue("record", key="during", n=2)  # logged and dropped: the sweeper finds it

        redis_server.start()  # same port, empty dataset
        await queue.enqueue("record", key="after", n=3)
        await runs.wait_for("record", n=3, timeout=60)
    assert [run.kwargs["n"] for run in runs.of("record")] == [1, 3]


async def test_a_dequeue_while_redis_is_down_pauses_and_finds_nothing(redis_server: RedisServer) -> None:
    """saq starts a process task again as soon as one returns: raising here would spin a CPU."""
    queue = WorkerRedisQueue(redis_client(redis_server.url), name=NAME)
    try:
        redis_server.stop()
        assert await asyncio.wait_for(queue.dequeue(timeout=1), 30) is None
        redis_server.start()
        await queue.enqueue(Job("record", key="k", retries=1))
        job = await asyncio.wait_for(queue.dequeue(timeout=1), 30)
        assert job is not None
        assert job.key == "k"
    finally:
        await queue.disconnect()


async def test_flushall_loses_queued_jobs_and_the_same_key_can_be_queued_again(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs
) -> None:
    """Redis is not the truth: the sweeper re-enqueues, from the database, the work a flush lost."""
    await queue.enqueue("record", key="outbox:9", n=1)
    redis_server.flushall()
    assert await queue.saq_queue.job("outbox:9") is None
    await queue.enqueue("record", key="marker", n=2)
    async with running_worker(redis_server.url, specs, concurrency=1):
        await runs.wait_for("record", n=2)
        assert runs.of("record", n=1) == []  # lost with the flush
        await queue.enqueue("record", key="outbox:9", n=1)  # what the sweeper does
        await runs.wait_for("record", n=1)


async def test_a_worker_announces_a_job_s_end_and_not_its_start(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs
) -> None:
    """Only a job's end is waited for (`Job.refresh(until_complete=…)`); its start is not published."""
    listener = redis_client(redis_server.url).pubsub()
    await listener.subscribe(queue.saq_queue.job_id("announced"))
    try:
        await queue.enqueue("record", key="announced", n=7)
        job = await queue.saq_queue.job("announced")
        assert job is not None
        async with running_worker(redis_server.url, specs):
            await job.refresh(until_complete=30)
        assert job.status == Status.COMPLETE
        announced: list[bytes] = []
        async with asyncio.timeout(30):
            while b"complete" not in announced:
                message = await listener.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is not None:
                    announced.append(message["data"])
        assert announced == [b"complete"]
    finally:
        await listener.aclose()


async def test_a_queued_job_is_taken_in_one_round_trip_and_ended_in_one_that_announces_it(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = WorkerRedisQueue(redis_client(redis_server.url), name=NAME)
    listener = redis_client(redis_server.url).pubsub()
    try:
        for n in range(2):
            await queue.enqueue(Job("record", key=f"k{n}", kwargs={"n": n}, retries=1))
        first = await queue.dequeue(timeout=1)  # the take's script is loaded on the first take
        assert first is not None
        await queue.finish(first, Status.COMPLETE)  # and the end's on the first end
        await listener.subscribe(queue.job_id("k1"))
        round_trips = RoundTrips(monkeypatch)
        with round_trips.during() as taking:
            job = await queue.dequeue(timeout=1)
        assert job is not None
        assert (job.key, job.status, taking) == ("k1", Status.QUEUED, [1])
        assert await queue.redis.lrange(queue.namespace("active"), 0, -1) == [job.id.encode()]
        with round_trips.during() as ending:
            await queue.finish(job, Status.COMPLETE)
        assert ending == [1]
        assert await next_message(listener) == b"complete"
        stored = await queue.job("k1")
        assert stored is not None
        assert stored.status == Status.COMPLETE
        assert await queue.redis.lrange(queue.namespace("active"), 0, -1) == []
        assert await queue.redis.zrange(queue.namespace("incomplete"), 0, -1) == []
        # Nothing queued: the take finds none and saq's BLMOVE waits, as before.
        assert await queue.dequeue(timeout=0.1) is None
    finally:
        await listener.aclose()
        await queue.disconnect()


@pytest.mark.parametrize("ttl", [-1, 0, 30])
async def test_a_jobs_end_leaves_what_saqs_own_end_leaves(redis_server: RedisServer, ttl: int) -> None:
    """saq's end (a transaction) and the worker's (a script) leave the same: the record kept for its
    ttl, without expiry when 0, deleted when negative; the id off `active` and `incomplete`."""
    ends: dict[str, tuple[object, ...]] = {}
    for kind, queue in (
        ("saq", RedisQueue(redis_client(redis_server.url), name=f"{NAME}-saq")),
        ("worker", WorkerRedisQueue(redis_client(redis_server.url), name=f"{NAME}-worker")),
    ):
        try:
            await queue.enqueue(Job("record", key="k", ttl=ttl, retries=1))
            job = await queue.dequeue(timeout=1)
            assert job is not None
            await queue.finish(job, Status.COMPLETE, result={"n": 1})
            stored = await queue.job("k")
            expiry = await queue.redis.ttl(job.id)
            ends[kind] = (
                None if stored is None else (stored.status, stored.result, stored.completed > 0),
                expiry if expiry < 0 else 0 < expiry <= ttl,
                await queue.redis.lrange(queue.namespace("active"), 0, -1),
                await queue.redis.zrange(queue.namespace("incomplete"), 0, -1),
            )
        finally:
            await queue.disconnect()
    assert ends["worker"] == ends["saq"]
    kept = None if ttl < 0 else (Status.COMPLETE, {"n": 1}, True)
    assert ends["worker"] == (kept, {-1: -2, 0: -1, 30: True}[ttl], [], [])


async def test_a_worker_keeping_up_waits_in_blmove_and_one_falling_behind_takes_by_script(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = WorkerRedisQueue(redis_client(redis_server.url), name=NAME)
    try:
        await queue.enqueue(Job("record", key="warm", retries=1))
        assert await queue.dequeue(timeout=1) is not None  # loads the script; the queue is empty after it
        round_trips = RoundTrips(monkeypatch)
        await queue.enqueue(Job("record", key="one", retries=1))
        with round_trips.during() as arriving:
            job = await queue.dequeue(timeout=1)
        # Kept up: BLMOVE, then the record with the queue's length; no script tried first.
        assert job is not None
        assert (job.key, arriving) == ("one", [2])
        for n in range(3):
            await queue.enqueue(Job("record", key=f"behind{n}", retries=1))
        with round_trips.during() as first:
            job = await queue.dequeue(timeout=1)
        assert job is not None
        assert (job.key, first) == ("behind0", [2])  # the length read with it: 2 more are queued
        with round_trips.during() as backlog:
            taken = [await queue.dequeue(timeout=1), await queue.dequeue(timeout=1)]
        assert [job.key for job in taken if job is not None] == ["behind1", "behind2"]
        assert backlog == [2]  # one script each
        active = await queue.redis.lrange(queue.namespace("active"), 0, -1)
        assert len(active) == 5
    finally:
        await queue.disconnect()
