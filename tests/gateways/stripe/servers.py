"""Tiny ASGI servers the Stripe tests run with uvicorn in the test loop: a webhook receiver and a
scripted stand-in for Stripe's API that answers in Stripe's error shape."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from gateways.types import WebhookDelivery
from tests.asgi_server import serving

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@asynccontextmanager
async def serve(app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> AsyncIterator[str]:
    """Serve `app` on a free local port for the duration of the block; yields its base URL."""
    async with serving(app) as base_url:
        yield base_url


async def _read(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def _answer(send: Send, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


class WebhookReceiver:
    """Stores every POST exactly as it arrived (headers lower-cased, raw body)."""

    def __init__(self) -> None:
        self.deliveries: list[WebhookDelivery] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read(receive)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        self.deliveries.append(WebhookDelivery(headers=headers, body=body, received_at=int(time.time())))
        await _answer(send, 200, b"{}")

    def events_about(self, object_id: str) -> list[WebhookDelivery]:
        return [d for d in self.deliveries if json.loads(d.body)["data"]["object"].get("id") == object_id]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class Answer:
    status: int
    body: bytes
    delay: float = 0.0
    content_type: bytes = b"application/json"

    @classmethod
    def json(cls, status: int, value: object, delay: float = 0.0) -> Answer:
        return cls(status, json.dumps(value).encode(), delay)


@dataclass
class ScriptedStripe:
    """Answers each request with the next scripted `Answer` and records what the SDK sent."""

    answers: list[Answer] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read(receive)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        query = scope["query_string"].decode()
        form = dict(parse_qsl(body.decode() if scope["method"] == "POST" else query))
        self.requests.append(RecordedRequest(scope["method"], scope["path"], headers, form))
        answer = self.answers.pop(0) if self.answers else Answer.json(500, {"error": {"type": "api_error"}})
        if answer.delay:
            await asyncio.sleep(answer.delay)
        await _answer(send, answer.status, answer.body, answer.content_type)
