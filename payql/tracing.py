"""OpenTelemetry spans for PayQL's own work (gateway calls, jobs, webhook processing).

Without an SDK configured (`payql.telemetry`), the API's tracer is a no-op and a span costs
next to nothing. Attributes are ids and names only: never a card number, an email or an amount.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

_tracer = trace.get_tracer("payql")


@contextmanager
def span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None, *, parent: Context | None = None
) -> Iterator[trace.Span]:
    """A span around the block, a child of `parent` (by default the current span); an exception
    is recorded on it."""
    with _tracer.start_as_current_span(name, context=parent, attributes=attributes) as current:
        yield current


def current_trace_context() -> dict[str, str]:
    """The current trace as W3C `traceparent`/`tracestate` headers; empty outside a recorded trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def trace_context_from(carrier: Mapping[str, str]) -> Context:
    return propagate.extract(carrier)
