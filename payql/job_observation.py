"""What every job run carries, whichever queue runs it: its name and the ids it works on in every
log line, a span, and its outcome and duration in the metrics (a webhook event's lag and attempts are
recorded where it becomes final, in `webhooks.store`, without reading it again). A run continues the
trace that queued it when the queue carried one (`TRACE_CONTEXT_ARGUMENT`).

The job functions themselves stay unaware of this; it wraps them once, where the queues are built
(`wiring`). A wrapper never swallows an error: the queue sees what it would have seen.
"""

from __future__ import annotations

import asyncio
import time
from functools import wraps
from typing import Any

from domain.log_context import log_scope
from jobs.queue import TRACE_CONTEXT_ARGUMENT, JobFunction, JobSpec
from payql.metrics import JOB_DURATION, JOB_RUNS, labelled
from payql.tracing import span, trace_context_from

# Job keyword arguments that identify what a run works on, and their names in log lines.
_LOGGED_ARGUMENTS = {
    "event_row_id": "webhook_event_id",
    "event_row_ids": "webhook_event_ids",
    "message_id": "outbox_message_id",
}


def _logged(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def observed(spec: JobSpec) -> JobSpec:
    function = spec.function

    @wraps(function)
    async def run(**kwargs: Any) -> None:
        carried = kwargs.pop(TRACE_CONTEXT_ARGUMENT, None)
        parent = trace_context_from(carried) if isinstance(carried, dict) else None
        ids = {_LOGGED_ARGUMENTS[name]: _logged(value) for name, value in kwargs.items() if name in _LOGGED_ARGUMENTS}
        started = time.perf_counter()
        outcome = "ok"
        try:
            with (
                log_scope(job=spec.name, **ids),
                span(f"job {spec.name}", {"payql.job": spec.name, **ids}, parent=parent),
            ):
                await function(**kwargs)
        except asyncio.CancelledError:
            outcome = "cancelled"  # a timeout or a shutdown
            raise
        except BaseException:
            outcome = "failed"
            raise
        finally:
            labelled(JOB_RUNS, spec.name, outcome).inc()
            labelled(JOB_DURATION, spec.name).observe(time.perf_counter() - started)

    wrapped: JobFunction = run
    return JobSpec(spec.name, wrapped, spec.timeout_seconds)


def observed_specs(specs: list[JobSpec]) -> list[JobSpec]:
    return [observed(spec) for spec in specs]
