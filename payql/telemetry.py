"""OpenTelemetry wiring: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; then spans go to that OTLP
(HTTP) collector, with the database (asyncpg), Redis and outgoing HTTP (httpx: the gateways'
clients) instrumented.

The app's own spans (GraphQL execution, gateway calls, jobs) are always in place and cost next to
nothing while no SDK is installed; `enable_tracing` installs one once per process. The HTTP server's
span is made only once one is installed (`ServerSpansWhenTracing`).
The exporter reads the standard OTEL_EXPORTER_OTLP_* variables itself (headers, timeouts).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator

from payql import tracing

logger = logging.getLogger(__name__)

_provider: TracerProvider | None = None


class ServerSpansWhenTracing(OpenTelemetryMiddleware):
    """OpenTelemetry's ASGI middleware (the request's server span, the parent of every other span),
    passed straight through while no SDK is installed: its span would record nothing, and making it
    cost about 2% of a checkout's CPU."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not tracing.sdk_installed():
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class OsRandomIds(IdGenerator):
    """Trace and span ids from the operating system's randomness. OpenTelemetry's default draws
    from the global `random` module, whose sequence belongs to the application (a seeded simulation,
    a property-based test) and must not shift because a span was recorded."""

    def generate_span_id(self) -> int:
        return secrets.randbits(64) or 1  # 0 is the invalid id

    def generate_trace_id(self) -> int:
        return secrets.randbits(128) or 1


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
        _provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}), id_generator=OsRandomIds())
        trace.set_tracer_provider(_provider)
    _provider.add_span_processor(processor)
    instrumentors = (AsyncPGInstrumentor(), RedisInstrumentor(), HTTPXClientInstrumentor())  # type: ignore[no-untyped-call]
    for instrumentor in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
    return _provider
