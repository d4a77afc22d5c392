"""SaqJobQueue against a real Redis: it behaves like the in-process queue."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from saq import Status

from jobs.queue import JobSpec
from jobs.saq_queue import JOB_HEARTBEAT_SECONDS, RERUN_SUFFIX, SaqJobQueue, redis_client
from tests.jobs.conftest import RedisServer
from tests.jobs.saqkit import (
    NAME,
    SAQ_SETEX_DEPRECATION,
    RoundTrips,
    Runs,
    next_message,
    recording_specs,
    running_worker,
    wait_for_status,
)

pytestmark = [SAQ_SETEX_DEPRECATION]


async def test_a_worker_runs_an_enqueued_job_with_its_kwargs(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs
) -> None:
    async with running_worker(redis_server.url, specs):
        # `status`, `meta` and `timeout` are also saq Job fields: they must reach the function as kwargs.
        await queue.enqueue("record", key="webhook:1", event_row_id=1, status="raw", meta={"a": 1}, timeout=3)
        [run] = await runs.wait_for("record")
        await wait_for_status(queue.saq_queue, "webhook:1", Status.COMPLETE)
    assert run.kwargs == {"event_row_id": 1, "status": "raw", "meta": {"a": 1}, "timeout": 3}
    job = await queue.saq_queue.job("webhook:1")
    assert job is not None
    assert (job.function, job.attempts, job.retries) == ("record", 1, 1)  # one attempt, no saq retry
    assert job.timeout == 60  # the JobSpec's timeout_seconds
    assert job.heartbeat == JOB_HEARTBEAT_SECONDS


async def test_keys_live_under_the_queue_name(queue: SaqJobQueue) -> None:
    await queue.enqueue("record", key="k", n=1)
    keys = await queue.saq_queue.redis.keys("*")
    assert keys
    assert all(key.startswith((f"saq:{NAME}:".encode(), f"saq:job:{NAME}:".encode())) for key in keys), keys


async def test_a_key_queued_twice_while_waiting_runs_once(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs
) -> None:
    await queue.enqueue("record", key="outbox:7", n=1)
    await queue.enqueue("record", key="outbox:7", n=2)
    await queue.enqueue("record", key="after", n=3)
    # A single process task takes jobs in queue order: once `after` ran, every copy of outbox:7 has.
    async with running_worker(redis_server.url, specs, concurrency=1):
        await runs.wait_for("record", n=3)
    assert [run.kwargs["n"] for run in runs.of("record")] == [1, 3]


async def test_a_delayed_job_waits_for_its_delay(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs
) -> None:
    async with running_worker(redis_server.url, specs):
        enqueued_at = time.monotonic()
        await queue.enqueue("record", key="later", delay_seconds=2, n=1)
        [run] = await runs.wait_for("record")
    assert run.at - enqueued_at >= 1.5  # never early: the delay is rounded up to whole seconds


async def test_an_enqueue_while_the_key_runs_queues_one_rerun(redis_server: RedisServer, runs: Runs) -> None:
    """As in the in-process queue, a started job frees its key, so a job can schedule its own retry."""
    retry_queue: list[SaqJobQueue] = []

    async def flaky(attempt: int) -> None:
        runs.record("flaky", {"attempt": attempt})
        if attempt == 1:
            await retry_queue[0].enqueue("flaky", key="webhook:5", delay_seconds=1, attempt=2)
            await retry_queue[0].enqueue("flaky", key="webhook:5", delay_seconds=1, attempt=3)  # one rerun waits

    specs = [JobSpec("flaky", flaky), *recording_specs(runs)]
    queue = SaqJobQueue(redis_server.url, specs, name=NAME)
    retry_queue.append(queue)
    try:
        async with running_worker(redis_server.url, specs, concurrency=1):
            await queue.enqueue("flaky", key="webhook:5", attempt=1)
            await runs.wait_for("flaky", attempt=2)
            await queue.enqueue("record", key="after", n=1)
            await runs.wait_for("record", n=1)
        assert [run.kwargs["attempt"] for run in runs.of("flaky")] == [1, 2]
        await wait_for_status(queue.saq_queue, "webhook:5", Status.COMPLETE)
        await wait_for_status(queue.saq_queue, "webhook:5" + RERUN_SUFFIX, Status.COMPLETE)
    finally:
        await queue.aclose()


async def test_a_failing_job_is_not_retried_by_saq_and_the_worker_goes_on(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs
) -> None:
    async with running_worker(redis_server.url, specs, concurrency=1):
        await queue.enqueue("boom", key="boom:1")
        await wait_for_status(queue.saq_queue, "boom:1", Status.FAILED)  # terminal: no retry follows
        await queue.enqueue("record", key="after", n=1)
        await runs.wait_for("record", n=1)
    assert len(runs.of("boom")) == 1
    job = await queue.saq_queue.job("boom:1")
    assert job is not None
    assert job.attempts == 1
    assert "RuntimeError: boom" in (job.error or "")


async def test_a_job_past_its_timeout_is_cancelled_and_failed(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs
) -> None:
    async with running_worker(redis_server.url, specs):
        await queue.enqueue("overrun", key="overrun:1")
        await wait_for_status(queue.saq_queue, "overrun:1", Status.FAILED)
    assert len(runs.of("overrun")) == 1
    assert runs.of("overrun-finished") == []


async def test_enqueue_after_aclose_is_ignored(redis_server: RedisServer, specs: list[JobSpec]) -> None:
    queue = SaqJobQueue(redis_server.url, specs, name=NAME)
    await queue.start()
    await queue.aclose()
    await queue.enqueue("record", key="late")


async def test_jobs_and_announcements_go_in_one_round_trip_and_the_jobs_run(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a committed transaction queues and announces: one round trip while the keys are free."""
    listener = redis_client(redis_server.url).pubsub()
    try:
        await listener.subscribe("orders:1")
        round_trips = RoundTrips(monkeypatch)
        with round_trips.during() as sending:
            await queue.enqueue_many(
                [("record", "outbox:1", {"n": 1}), ("record", "outbox:2", {"n": 2, "status": "raw"})],
                publish=[("orders:1", '{"channel": "orders:1"}')],
            )
        assert sending == [1]
        assert await next_message(listener) == b'{"channel": "orders:1"}'
        async with running_worker(redis_server.url, specs):
            await runs.wait_for("record", count=2)
            await wait_for_status(queue.saq_queue, "outbox:2", Status.COMPLETE)
        ran = sorted((run.kwargs["n"], run.kwargs.get("status")) for run in runs.of("record"))
        assert ran == [(1, None), (2, "raw")]
        job = await queue.saq_queue.job("outbox:1")
        assert job is not None
        assert (job.attempts, job.retries, job.timeout, job.heartbeat) == (1, 1, 60, JOB_HEARTBEAT_SECONDS)
    finally:
        await listener.aclose()


async def test_a_held_key_in_a_batch_is_offered_as_enqueue_offers_it(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs
) -> None:
    """A key already waiting keeps its one waiting job; the rest of the batch is queued all the same."""
    await queue.enqueue("record", key="outbox:7", n=1)
    await queue.enqueue_many([("record", "outbox:7", {"n": 2}), ("record", "after", {"n": 3})])
    async with running_worker(redis_server.url, specs, concurrency=1):
        await runs.wait_for("record", n=3)
    assert [run.kwargs["n"] for run in runs.of("record")] == [1, 3]


async def test_a_running_key_in_a_batch_gets_its_one_rerun(redis_server: RedisServer, runs: Runs) -> None:
    """As `enqueue`: a key whose job is running queues one rerun under the next key."""
    release = asyncio.Event()

    async def gate(n: int) -> None:
        runs.record("gate", {"n": n})
        if n == 1:
            await release.wait()

    specs = [JobSpec("gate", gate), *recording_specs(runs)]
    queue = SaqJobQueue(redis_server.url, specs, name=NAME)
    await queue.start()
    try:
        async with running_worker(redis_server.url, specs):
            await queue.enqueue("gate", key="outbox:9", n=1)
            await runs.wait_for("gate", n=1)
            await queue.enqueue_many([("gate", "outbox:9", {"n": 2})])
            release.set()
            await runs.wait_for("gate", n=2)
            await wait_for_status(queue.saq_queue, "outbox:9" + RERUN_SUFFIX, Status.COMPLETE)
    finally:
        await queue.aclose()
    assert [run.kwargs["n"] for run in runs.of("gate")] == [1, 2]


async def test_a_batch_after_redis_lost_its_scripts_is_queued_and_loads_the_script(
    redis_server: RedisServer, queue: SaqJobQueue, specs: list[JobSpec], runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    await queue.saq_queue.redis.script_flush()
    await queue.enqueue_many([("record", "first", {"n": 1})])
    round_trips = RoundTrips(monkeypatch)
    with round_trips.during() as sending:
        await queue.enqueue_many([("record", "second", {"n": 2})])
    assert sending == [1]
    async with running_worker(redis_server.url, specs):
        await runs.wait_for("record", count=2)
    assert sorted(run.kwargs["n"] for run in runs.of("record")) == [1, 2]


async def test_a_batch_for_an_unreachable_redis_is_logged_not_raised(
    redis_server: RedisServer, queue: SaqJobQueue, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server.stop()
    try:
        with caplog.at_level(logging.ERROR, logger="jobs.saq_queue"):
            await queue.enqueue_many([("record", "lost", {"n": 1})], publish=[("orders:1", "{}")])
    finally:
        redis_server.start()  # the queue's own close needs it
    assert "not queued, Redis is unreachable" in caplog.text
    assert "lost" in caplog.text


async def test_a_burst_of_batches_keeps_within_saqs_bound_on_its_clients_operations(
    redis_server: RedisServer, queue: SaqJobQueue
) -> None:
    """saq runs at most 20 operations of its client at once; a burst of commits' batches waits its turn
    within that bound instead of opening the pool's every connection (and, past it, waiting on a timeout)."""
    await asyncio.gather(*(queue.enqueue_many([("record", f"burst:{n}", {"n": n})]) for n in range(100)))
    clients = await queue.saq_queue.redis.client_list()
    assert 1 <= len([client for client in clients if client["name"] == "payql-jobs"]) <= 20
    assert await queue.saq_queue.redis.llen(queue.saq_queue.namespace("queued")) == 100
