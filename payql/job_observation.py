"""What every job run carries, whichever queue runs it: its name and the ids it works on in every
log line written during the run.

The job functions themselves stay unaware of logging context; this wraps them once, where the
queues are built (`wiring`). A wrapper never swallows an error: the queue sees what it would
have seen.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from jobs.queue import JobFunction, JobSpec
from payql.request_context import log_scope

# Job keyword arguments that identify what a run works on, and their names in log lines.
_LOGGED_ARGUMENTS = {"event_row_id": "webhook_event_id", "message_id": "outbox_message_id"}


def observed(spec: JobSpec) -> JobSpec:
    function = spec.function

    @wraps(function)
    async def run(**kwargs: Any) -> None:
        ids = {_LOGGED_ARGUMENTS[name]: str(value) for name, value in kwargs.items() if name in _LOGGED_ARGUMENTS}
        with log_scope(job=spec.name, **ids):
            await function(**kwargs)

    wrapped: JobFunction = run
    return JobSpec(spec.name, wrapped, spec.timeout_seconds)


def observed_specs(specs: list[JobSpec]) -> list[JobSpec]:
    return [observed(spec) for spec in specs]
