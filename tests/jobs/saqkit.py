"""Test jobs that record their runs, a saq worker running as a task in the test loop, a count of
the Redis round trips a block's task makes, and the next message a pub/sub connection receives."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio.client import Pipeline, PubSub, Redis
from saq import Status, Worker
from saq.queue import Queue

from jobs.queue import JobSpec
from jobs.saq_queue import JOB_HEARTBEAT_SECONDS
from jobs.worker import build_worker

NAME = "payql-test"

# saq 0.26.4 writes with `setex` (job records, abort markers, worker stats), which redis-py 8.1
# deprecates. Raised as an error, the warning breaks saq's own writes mid-job. Only that warning,
# only from saq's Redis queue, is ignored; test modules apply it with `pytestmark`.
SAQ_SETEX_DEPRECATION = pytest.mark.filterwarnings(
    r"ignore:Call to deprecated setex\.:DeprecationWarning:saq\.queue\.redis"
)


@dataclass
class Run:
    job: str
    kwargs: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class Runs:
    """Every run of the test jobs, in order."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def record(self, job: str, kwargs: dict[str, Any]) -> None:
        self.runs.append(Run(job, kwargs))

    def of(self, job: str, **match: Any) -> list[Run]:
        return [run for run in self.runs if run.job == job and all(run.kwargs.get(k) == v for k, v in match.items())]

    async def wait_for(self, job: str, count: int = 1, timeout: float = 30.0, **match: Any) -> list[Run]:
        await wait_until(lambda: len(self.of(job, **match)) >= count, timeout)
        return self.of(job, **match)


async def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def wait_for_status(queue: Queue, key: str, status: Status, timeout: float = 30.0) -> None:
    """Wait until saq's record of the job under `key` has `status`."""
    seen: list[Status | None] = []

    async def poll() -> None:
        while True:
            job = await queue.job(key)
            seen.append(None if job is None else job.status)
            if seen[-1] == status:
                return
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"job {key} is {seen[-1] if seen else None}, not {status}") from None


def recording_specs(runs: Runs) -> list[JobSpec]:
    """`record` records its kwargs; `slow` sleeps `seconds` first; `boom` records then raises;
    `overrun` sleeps past its 1 s timeout."""

    async def record(**kwargs: Any) -> None:
        runs.record("record", kwargs)

    async def slow(seconds: float, **kwargs: Any) -> None:
        await asyncio.sleep(seconds)
        runs.record("slow", kwargs)

    async def boom(**kwargs: Any) -> None:
        runs.record("boom", kwargs)
        raise RuntimeError("boom")

    async def overrun(**kwargs: Any) -> None:
        runs.record("overrun", kwargs)
        await asyncio.sleep(60)
        runs.record("overrun-finished", kwargs)

    return [
        JobSpec("record", record),
        JobSpec("slow", slow),
        JobSpec("boom", boom),
        JobSpec("overrun", overrun, timeout_seconds=1),
    ]


@asynccontextmanager
async def running_worker(
    redis_url: str,
    specs: list[JobSpec],
    *,
    concurrency: int = 10,
    cron: Sequence[tuple[str, str]] = (),
    sweep_seconds: int = 60,
    heartbeat_seconds: int = JOB_HEARTBEAT_SECONDS,
) -> AsyncIterator[Worker[Any]]:
    worker = build_worker(
        redis_url,
        specs,
        cron=cron,
        concurrency=concurrency,
        name=NAME,
        sweep_seconds=sweep_seconds,
        heartbeat_seconds=heartbeat_seconds,
    )
    worker.SIGNALS = []  # leave SIGINT and SIGTERM to pytest
    await worker.queue.connect()
    task = asyncio.create_task(worker.start(), name="saq-worker")
    try:
        yield worker
        assert not task.done(), "the worker stopped on its own"
    finally:
        await worker.stop()
        await asyncio.wait_for(task, 30)
        await worker.queue.disconnect()


async def next_message(listener: PubSub) -> bytes:
    """The data of the next message a subscribed pub/sub connection receives (30 s at most)."""
    async with asyncio.timeout(30):
        while True:
            message = await listener.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is not None:
                data: bytes = message["data"]
                return data


class RoundTrips:
    """The requests a block's own task makes to Redis through every client in this process (with
    `client_name`, through the clients of that name only): one a command, one a pipeline.

    Counted where a client sends a request, not on the socket: a new connection's handshake and an
    idle one's health-check PING are the pool's, made whenever the block's request finds no connection
    ready (another task holding the only one, say). Requests of other tasks are not the block's: a
    server in the test process may be queuing a late webhook's job on a client of the same name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, client_name: str | None = None) -> None:
        self._watched: dict[asyncio.Task[Any], int] = {}
        self._client_name = client_name
        execute_command: Callable[..., Awaitable[Any]] = Redis.execute_command  # untyped in redis-py
        execute_pipeline = Pipeline.execute

        async def command(client: Redis, *args: Any, **options: Any) -> Any:
            self._count(client)
            return await execute_command(client, *args, **options)

        async def pipeline(pipe: Pipeline, raise_on_error: bool = True) -> list[Any]:
            if pipe.command_stack:  # an empty pipeline sends nothing
                self._count(pipe)
            return await execute_pipeline(pipe, raise_on_error)

        monkeypatch.setattr(Redis, "execute_command", command)
        monkeypatch.setattr(Pipeline, "execute", pipeline)

    def _count(self, client: Redis) -> None:
        task = asyncio.current_task()
        if task is None or task not in self._watched:
            return
        if (
            self._client_name is None
            or client.connection_pool.connection_kwargs.get("client_name") == self._client_name
        ):
            self._watched[task] += 1

    @contextlib.contextmanager
    def during(self) -> Iterator[list[int]]:
        """The block's round trips, in the list's one item once the block ends."""
        task = asyncio.current_task()
        assert task is not None, "RoundTrips.during() counts a task's requests: enter it in one"
        self._watched[task], counted = 0, [0]
        try:
            yield counted
        finally:
            counted[0] = self._watched.pop(task)
