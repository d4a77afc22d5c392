"""The deadline of the request a gateway call is made for: no call waits past it, no retry starts after it.

A use case opens one (`gateway_deadline(seconds)`) around the work of one GraphQL request; every gateway
call made inside it, in this task or a task it starts, reads it through a context variable, so neither the
resolvers in between nor the adapters pass it along. A nested deadline never extends the one around it.
Outside any deadline (jobs, reconciliation, webhooks) each call is bounded by its own timeout only.

Nothing here sleeps, performs I/O or decides what an expired deadline means for a payment.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# When the current request's gateway work must end, on the monotonic clock; None outside any request.
_ENDS_AT: ContextVar[float | None] = ContextVar("payql_gateway_deadline", default=None)


@contextmanager
def gateway_deadline(seconds: float) -> Iterator[None]:
    """Gateway calls made inside end within `seconds` from now (or by the enclosing deadline, if earlier)."""
    ends_at = time.monotonic() + seconds
    enclosing = _ENDS_AT.get()
    token = _ENDS_AT.set(ends_at if enclosing is None else min(enclosing, ends_at))
    try:
        yield
    finally:
        _ENDS_AT.reset(token)


def remaining() -> float | None:
    """Seconds left before the deadline (0 once it has passed), or None outside any deadline."""
    ends_at = _ENDS_AT.get()
    return None if ends_at is None else max(0.0, ends_at - time.monotonic())
