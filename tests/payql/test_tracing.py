"""With tracing on (here an in-memory exporter; in production an OTLP collector), one checkout
yields one trace: the HTTP server span, the GraphQL execution, the gateway call and (on PostgreSQL)
the database queries share its trace id. Without it, a span is made only where it has a trace to
pass on."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, ProxyTracerProvider, SpanKind

from payql import tracing
from payql.telemetry import enable_tracing
from payql.tracing import current_trace_context, span, trace_context_from
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


def test_recording_spans_leaves_the_global_random_sequence_alone(exporter: InMemorySpanExporter) -> None:
    # OpenTelemetry's default ids come from the global `random` module: a span recorded by the
    # server thread would shift a seeded sequence, and made the webhook fuzzer's draws "flaky".
    tracer = trace.get_tracer("payql.tests")
    random.seed(2026)
    expected = [random.random() for _ in range(3)]
    random.seed(2026)
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner") as inner:
        assert inner.get_span_context().span_id != 0 and inner.get_span_context().trace_id != 0
    assert [random.random() for _ in range(3)] == expected


TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


@pytest.fixture
def without_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a process that never installed the SDK (this test process may have: it is global)."""
    monkeypatch.setattr(trace, "get_tracer_provider", ProxyTracerProvider)
    monkeypatch.setattr(tracing, "_tracer", trace.NoOpTracer())


@pytest.mark.usefixtures("without_sdk")
def test_without_an_sdk_or_a_trace_to_carry_a_span_makes_nothing_and_leaves_the_context_alone() -> None:
    before = otel_context.get_current()
    with span("gateway sandbox.charge", {"payql.gateway": "sandbox"}) as current:
        assert current is INVALID_SPAN
        assert otel_context.get_current() is before
        assert current_trace_context() == {}


@pytest.mark.usefixtures("without_sdk")
def test_without_an_sdk_a_span_passes_on_the_trace_of_its_parent() -> None:
    with span("job dispatch_outbox_message", parent=trace_context_from({"traceparent": TRACEPARENT})):
        assert TRACE_ID in current_trace_context()["traceparent"]


@pytest.mark.usefixtures("without_sdk")
def test_without_an_sdk_a_span_passes_on_the_current_trace_unless_its_parent_says_otherwise() -> None:
    token = otel_context.attach(trace_context_from({"traceparent": TRACEPARENT}))
    try:
        with span("gateway sandbox.charge"):
            assert TRACE_ID in current_trace_context()["traceparent"]
        # A job whose queued context carried no trace: none is passed on from inside it either.
        with span("job dispatch_outbox_message", parent=trace_context_from({})):
            assert current_trace_context() == {}
    finally:
        otel_context.detach(token)
