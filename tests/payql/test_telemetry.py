"""The HTTP server's span: made once an SDK is installed, and the request passed straight through
(nothing wrapped, no span) while none is."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import ProxyTracerProvider, SpanKind

from payql.telemetry import ServerSpansWhenTracing

SCOPE = {
    "type": "http",
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/graphql",
    "raw_path": b"/graphql",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"payql.test")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


class Inner:
    """The app behind the middleware: answers 200 and keeps the callables it was handed."""

    def __init__(self) -> None:
        self.handed: tuple[Any, Any] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.handed = (receive, send)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


class Sent(list[dict[str, Any]]):
    """The server's send: keeps every message."""

    async def __call__(self, message: dict[str, Any]) -> None:
        self.append(message)


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"{}", "more_body": False}


def recording_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def test_without_an_sdk_the_request_passes_straight_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", ProxyTracerProvider)
    provider, exporter = recording_provider()
    inner, sent = Inner(), Sent()

    await ServerSpansWhenTracing(inner, tracer_provider=provider)(dict(SCOPE), receive, sent)
    assert inner.handed is not None and inner.handed[0] is receive and inner.handed[1] is sent
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert exporter.get_finished_spans() == ()


async def test_with_an_sdk_the_request_has_its_server_span(monkeypatch: pytest.MonkeyPatch) -> None:
    provider, exporter = recording_provider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    inner, sent = Inner(), Sent()

    await ServerSpansWhenTracing(inner, tracer_provider=provider)(dict(SCOPE), receive, sent)
    assert inner.handed is not None and inner.handed[1] is not sent  # its send records the status
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    (server,) = [span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER]
    assert server.name.startswith("POST")
