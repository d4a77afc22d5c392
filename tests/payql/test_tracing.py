"""With tracing on (here an in-memory exporter; in production an OTLP collector), one checkout
yields one trace: the HTTP server span, the GraphQL execution, the gateway call and (on PostgreSQL)
the database queries share its trace id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from payql.telemetry import enable_tracing
from payql.wiring import Services
from tests.backends import Backend
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, settle


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    processor = SimpleSpanProcessor(memory)
    enable_tracing(processor)
    yield memory
    # The global provider cannot be removed: stop exporting, and stop patching the libraries.
    processor.shutdown()
    for instrumentor in (AsyncPGInstrumentor(), RedisInstrumentor(), HTTPXClientInstrumentor()):  # type: ignore[no-untyped-call]
        instrumentor.uninstrument()


def named(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


async def test_one_checkout_is_one_trace(exporter: InMemorySpanExporter, shopper: Shopper, backend: Backend) -> None:
    price = await make_price(990)
    exporter.clear()
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    assert result["payment"]["status"] == "PAID"
    spans = exporter.get_finished_spans()
    (operation,) = named(spans, "graphql mutation checkout")
    assert operation.context is not None
    trace_id = operation.context.trace_id
    in_trace = [span for span in spans if span.context is not None and span.context.trace_id == trace_id]
    (server,) = [span for span in in_trace if span.kind is SpanKind.SERVER and span.name == "POST /graphql"]
    (charge,) = named(tuple(in_trace), "gateway sandbox.charge")
    assert operation.parent is not None and charge.parent is not None
    ids = {span.context.span_id: span for span in in_trace if span.context is not None}
    assert ids[charge.parent.span_id] is operation or _descends(charge, operation, ids)
    assert _descends(operation, server, ids)
    # Everything else in the trace happened because of this request: within it, or in a job it queued.
    outside = [
        span.name
        for span in in_trace
        if span is not server and (span.parent is not None and span.parent.span_id in ids)
        if not _descends(span, server, ids)
    ]
    assert outside == []
    if backend.is_postgres:
        queries = [span for span in in_trace if span.attributes and span.attributes.get("db.system") == "postgresql"]
        assert any(_descends(query, operation, ids) for query in queries)
    assert "4242424242424242" not in repr([span.attributes for span in spans])


def _descends(span: ReadableSpan, ancestor: ReadableSpan, ids: dict[int, ReadableSpan]) -> bool:
    current = span
    while current.parent is not None and current.parent.span_id in ids:
        current = ids[current.parent.span_id]
        if current is ancestor:
            return True
    return False


async def test_a_webhook_is_processed_in_the_trace_that_received_it(
    exporter: InMemorySpanExporter, shopper: Shopper, services: Services
) -> None:
    price = await make_price(1990)
    await settle(services)
    exporter.clear()
    await shopper.data(CHECKOUT, {"input": checkout_input(price)})
    await settle(services)  # the sandbox posts its webhooks; a job (in-process or the worker) applies each
    spans = exporter.get_finished_spans()
    received = [span for span in spans if span.kind is SpanKind.SERVER and span.name == "POST /webhooks/{gateway}"]
    processed = named(spans, "job process_webhook_event")
    assert received and processed
    receiving_traces = {span.context.trace_id for span in received if span.context is not None}
    assert all(span.context is not None and span.context.trace_id in receiving_traces for span in processed)
