"""OpenTelemetry wiring: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; then spans go to that OTLP
(HTTP) collector, with the database (asyncpg), Redis and outgoing HTTP (httpx: the gateways'
clients) instrumented.

The app's own spans (HTTP server, GraphQL execution, gateway calls, jobs) are always in place and
cost next to nothing while no SDK is installed; `enable_tracing` installs one once per process.
The exporter reads the standard OTEL_EXPORTER_OTLP_* variables itself (headers, timeouts).
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

logger = logging.getLogger(__name__)

_provider: TracerProvider | None = None


def configure_tracing(otlp_endpoint: str | None, service_name: str) -> None:
    """Export spans to `otlp_endpoint` when it is set (the variable's value); nothing otherwise."""
    if not otlp_endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    enable_tracing(BatchSpanProcessor(OTLPSpanExporter()), service_name)
    logger.info("tracing: spans go to the OTLP collector at %s", otlp_endpoint)


def enable_tracing(processor: SpanProcessor, service_name: str = "payql") -> TracerProvider:
    """Install the SDK with `processor` (tests pass an in-memory one) and instrument the libraries.
    Once per process: OpenTelemetry refuses to replace its global provider."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
        trace.set_tracer_provider(_provider)
    _provider.add_span_processor(processor)
    instrumentors = (AsyncPGInstrumentor(), RedisInstrumentor(), HTTPXClientInstrumentor())  # type: ignore[no-untyped-call]
    for instrumentor in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
    return _provider
