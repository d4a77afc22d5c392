"""A running job's heartbeat against a real Redis: a dead worker's job comes back after its heartbeat,
not its timeout; a live one longer than its heartbeat is left alone; a beat never undoes a job's end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from saq import Job, Status
from saq.queue.redis import RedisQueue
from saq.utils import now

from jobs.heartbeat import beating, touch_if_active
from jobs.queue import JobSpec
from jobs.saq_queue import SaqJobQueue, redis_client
from jobs.worker import WorkerRedisQueue, build_worker
from tests.jobs.conftest import RedisServer
from tests.jobs.saqkit import NAME, SAQ_SETEX_DEPRECATION, Runs, running_worker, wait_for_status

pytestmark = [SAQ_SETEX_DEPRECATION]

# The recording jobs' timeout is 60 s: every wait below ends well before it.
WAIT_SECONDS = 20


async def take_and_die(queue: RedisQueue) -> Job:
    """What a worker does as it takes a job (saq's `Worker.process`), and then nothing: it was killed."""
    for _ in range(50):
        job = await queue.dequeue(timeout=0.2)
        if job is not None:
            job.started = now()
            job.attempts += 1
            job.worker_id = "killed"
            await job.update(status=Status.ACTIVE)
            return job
        await queue.schedule(lock=1)  # a cron job waits in `incomplete` until due
    raise AssertionError("nothing to take")


async def test_a_periodic_job_a_dead_worker_held_runs_again_after_its_heartbeat_not_its_timeout(
    redis_server: RedisServer, specs: list[JobSpec], runs: Runs
) -> None:
    """`cron:record` is refused to every later schedule while its dead run sits in `active`."""
    cron = [("record", "* * * * * *")]
    dead = build_worker(redis_server.url, specs, cron=cron, name=NAME, heartbeat_seconds=1)
    await dead.queue.connect()
    try:
        await dead.schedule()  # as the dead worker's scheduler did, before it was killed mid-run
        held = await take_and_die(dead.queue)
        assert (held.key, held.timeout) == ("cron:record", 60)
        async with running_worker(redis_server.url, specs, cron=cron, sweep_seconds=1, heartbeat_seconds=1):
            await runs.wait_for("record", timeout=WAIT_SECONDS)
    finally:
        await dead.queue.disconnect()


async def test_a_queued_job_a_dead_worker_held_is_swept_after_its_heartbeat_and_its_key_freed(
    redis_server: RedisServer, specs: list[JobSpec], runs: Runs
) -> None:
    queue = SaqJobQueue(redis_server.url, specs, name=NAME, heartbeat_seconds=1)
    taker = WorkerRedisQueue(redis_client(redis_server.url), name=NAME)
    try:
        await queue.enqueue("record", key="k", n=1)
        await take_and_die(taker)
        async with running_worker(redis_server.url, specs, sweep_seconds=1):
            await wait_for_status(queue.saq_queue, "k", Status.ABORTED, timeout=WAIT_SECONDS)
            await queue.enqueue("record", key="k", n=2)
            await runs.wait_for("record", n=2, timeout=WAIT_SECONDS)
        assert runs.of("record", n=1) == []
    finally:
        await taker.disconnect()
        await queue.aclose()


async def test_a_live_job_longer_than_its_heartbeat_is_neither_swept_nor_run_twice(
    redis_server: RedisServer, specs: list[JobSpec], runs: Runs
) -> None:
    """Four seconds of work, a heartbeat of one and a sweep every second: without its beats, the
    second sweep that saw the same record would abort it mid-run."""
    queue = SaqJobQueue(redis_server.url, specs, name=NAME, heartbeat_seconds=1)
    try:
        await queue.enqueue("slow", key="k", seconds=4, n=1)
        async with running_worker(redis_server.url, specs, sweep_seconds=1):
            await wait_for_status(queue.saq_queue, "k", Status.COMPLETE, timeout=WAIT_SECONDS)
        job = await queue.saq_queue.job("k")
        assert job is not None
        assert (job.attempts, job.error) == (1, None)
        assert len(runs.of("slow", n=1)) == 1
    finally:
        await queue.aclose()


@pytest.fixture
async def saq_queue(redis_server: RedisServer) -> AsyncIterator[RedisQueue]:
    queue = RedisQueue(redis_client(redis_server.url), name=NAME)
    yield queue
    await queue.disconnect()


async def active_job(queue: RedisQueue) -> Job:
    job = await queue.enqueue(Job("record", key="k", retries=1, heartbeat=30))
    assert job is not None
    return await take_and_die(queue)


async def test_a_beat_stamps_an_active_job(saq_queue: RedisQueue) -> None:
    job = await active_job(saq_queue)
    before = job.touched
    await asyncio.sleep(0.01)  # a later millisecond for the stamp to differ
    assert await touch_if_active(saq_queue, job.id)
    stored = await saq_queue.job("k")
    assert stored is not None
    assert stored.touched > before
    assert (stored.status, stored.attempts, stored.worker_id) == (Status.ACTIVE, 1, "killed")


async def test_a_beat_leaves_an_ended_job_as_it_is(saq_queue: RedisQueue) -> None:
    job = await active_job(saq_queue)
    await job.finish(Status.COMPLETE)
    stored_before = await saq_queue.redis.get(job.id)
    assert not await touch_if_active(saq_queue, job.id)
    assert await saq_queue.redis.get(job.id) == stored_before


async def test_an_end_written_between_a_beats_read_and_its_write_is_kept(
    redis_server: RedisServer, saq_queue: RedisQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker writes the job's end (on a connection of its own) while the beat holds the ACTIVE
    record it has just read."""
    job = await active_job(saq_queue)
    read = saq_queue.deserialize
    worker_connection = redis.Redis.from_url(redis_server.url)

    def read_then_the_job_ends(payload: Any, status: Any = None) -> Job | None:
        stored = read(payload, status)
        ended = read(payload, status)
        assert ended is not None
        ended.status = Status.COMPLETE
        worker_connection.set(job.id, saq_queue.serialize(ended))
        return stored

    monkeypatch.setattr(saq_queue, "deserialize", read_then_the_job_ends)
    try:
        assert not await touch_if_active(saq_queue, job.id)
    finally:
        worker_connection.close()
    monkeypatch.undo()
    stored = await saq_queue.job("k")
    assert stored is not None
    assert stored.status == Status.COMPLETE


async def test_a_job_that_ends_within_a_third_of_its_heartbeat_starts_no_beat(saq_queue: RedisQueue) -> None:
    job = await active_job(saq_queue)
    tasks_before = asyncio.all_tasks()
    async with beating(job):
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == tasks_before
    stored = await saq_queue.redis.get(job.id)
    assert saq_queue.deserialize(stored) == job
