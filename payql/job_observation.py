"""What every job run carries, whichever queue runs it: its name and the ids it works on in every
log line, a span, and its outcome and duration in the metrics; for webhook events, the lag from
arrival to processing and the attempts it took. A run continues the trace that queued it when the
queue carried one (`TRACE_CONTEXT_ARGUMENT`).

The job functions themselves stay unaware of this; it wraps them once, where the queues are built
(`wiring`). A wrapper never swallows an error: the queue sees what it would have seen.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from db.models import WebhookEvent, WebhookStatus
from domain.log_context import log_scope
from jobs.queue import TRACE_CONTEXT_ARGUMENT, JobFunction, JobSpec
from payql.metrics import JOB_DURATION, JOB_RUNS, WEBHOOK_ATTEMPTS, WEBHOOK_LAG
from payql.tracing import span, trace_context_from

# Job keyword arguments that identify what a run works on, and their names in log lines.
_LOGGED_ARGUMENTS = {"event_row_id": "webhook_event_id", "message_id": "outbox_message_id"}
_DONE = (WebhookStatus.PROCESSED, WebhookStatus.IGNORED)


def observed(spec: JobSpec) -> JobSpec:
    function = spec.function

    @wraps(function)
    async def run(**kwargs: Any) -> None:
        carried = kwargs.pop(TRACE_CONTEXT_ARGUMENT, None)
        parent = trace_context_from(carried) if isinstance(carried, dict) else None
        ids = {_LOGGED_ARGUMENTS[name]: str(value) for name, value in kwargs.items() if name in _LOGGED_ARGUMENTS}
        event_row_id = kwargs.get("event_row_id") if spec.name == "process_webhook_event" else None
        before = await _webhook_status(event_row_id)
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
            JOB_RUNS.labels(job=spec.name, outcome=outcome).inc()
            JOB_DURATION.labels(job=spec.name).observe(time.perf_counter() - started)
        if event_row_id is not None and before not in (*_DONE, WebhookStatus.DEAD):
            await _observe_webhook(int(event_row_id))

    wrapped: JobFunction = run
    return JobSpec(spec.name, wrapped, spec.timeout_seconds)


def observed_specs(specs: list[JobSpec]) -> list[JobSpec]:
    return [observed(spec) for spec in specs]


async def _webhook_status(event_row_id: object) -> WebhookStatus | None:
    if event_row_id is None:
        return None
    row = await WebhookEvent.filter(id=int(str(event_row_id))).only("id", "status").first()
    return None if row is None else WebhookStatus(row.status)


async def _observe_webhook(event_row_id: int) -> None:
    """An event that became PROCESSED, IGNORED or DEAD in this run: its lag and attempts."""
    query = WebhookEvent.filter(id=event_row_id).only(
        "id", "gateway", "status", "attempts", "received_at", "processed_at"
    )
    row = await query.first()
    if row is None:
        return
    status = WebhookStatus(row.status)
    if status in _DONE:
        applied = row.processed_at or datetime.now(UTC)
        WEBHOOK_LAG.labels(gateway=row.gateway).observe((applied - row.received_at).total_seconds())
    if status in (*_DONE, WebhookStatus.DEAD):
        WEBHOOK_ATTEMPTS.labels(gateway=row.gateway, status=str(status)).observe(row.attempts)
