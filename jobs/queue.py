"""The job queue contract: enqueue a named job with a dedupe key, now or after a delay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

JobFunction = Callable[..., Awaitable[None]]
# One job to queue now: its name, its key and its arguments (`JobQueue.enqueue`'s).
JobOffer = tuple[str, str, dict[str, Any]]

# A job argument a queue may add: the enqueuing trace's W3C headers, for the run to continue it.
TRACE_CONTEXT_ARGUMENT = "_trace_context"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One kind of job: its function and how long one run may take."""

    name: str
    function: JobFunction
    timeout_seconds: float = 60.0


class JobQueue(Protocol):
    async def enqueue(self, job: str, *, key: str, delay_seconds: float = 0.0, **kwargs: Any) -> None:
        """Queue `job(**kwargs)`. A job with the same `key` already queued is not queued twice.

        Delivery is at least once; a job may also be lost (Redis restart): the sweeper re-finds
        its work in the database.
        """
        ...

    async def start(self) -> None:
        """Start consuming (in-process queue) or just connect (saq: `payql worker` consumes)."""
        ...

    async def aclose(self) -> None: ...
