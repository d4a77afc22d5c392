"""The in-process queue: a job that overruns its time is cancelled and logged, a failing job is
logged, and neither stops the jobs after it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from jobs.in_process import InProcessQueue
from jobs.queue import JobSpec


async def test_a_job_past_its_time_is_cancelled_and_a_failing_job_logged_and_the_next_jobs_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cancelled = asyncio.Event()
    ran: list[str] = []

    async def overrun() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fail() -> None:
        raise RuntimeError("the job fails")

    async def note(what: str) -> None:
        ran.append(what)

    queue = InProcessQueue(
        [JobSpec("overrun", overrun, timeout_seconds=0.05), JobSpec("fail", fail), JobSpec("note", note)]
    )
    with caplog.at_level(logging.ERROR, logger="jobs.in_process"):
        await queue.enqueue("overrun", key="overrun")
        await queue.enqueue("fail", key="fail")
        # Bounded, so an overrun that is never cut short fails here instead of hanging.
        await asyncio.wait_for(queue.drain(), timeout=10)
        await queue.enqueue("note", key="note", what="after")
        await asyncio.wait_for(queue.drain(), timeout=10)
    assert cancelled.is_set()
    assert ran == ["after"]
    failures = sorted(record.getMessage() for record in caplog.records)
    assert failures == ["job fail failed", "job overrun failed"]
    await queue.aclose()
