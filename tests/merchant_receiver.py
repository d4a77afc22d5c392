"""A merchant's webhook receiver for the tests: a real HTTP server that records what PayQL posts and
verifies its signatures with a verifier written here from the documented scheme (the README's), not
with `payql.webhook_signing`, so a bug there cannot hide in both."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.asgi_server import serving

TOLERANCE_SECONDS = 300


def receiver_verifies(header: str, body: bytes, secret: str) -> bool:
    """The README's receiver-side check: some v1 equals HMAC-SHA256(secret, "<t>.<body>"), t is recent."""
    pairs = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [value for key, value in pairs if key == "t"]
    signatures = [value for key, value in pairs if key == "v1"]
    if len(timestamps) != 1 or not timestamps[0].isdigit() or abs(time.time() - int(timestamps[0])) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), timestamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document

    @property
    def signature(self) -> str:
        return self.headers.get("payql-signature", "")

    def verifies_with(self, secret: str) -> bool:
        return receiver_verifies(self.signature, self.body, secret)


@dataclass
class Receiver:
    """Records every request; `answer` decides the status of each (200 unless told otherwise)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    answer: Callable[[Received, list[Received]], int] = field(default=lambda _request, _before: 200)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        request = Received(headers, b"".join(chunks))
        before = list(self.requests)
        self.requests.append(request)
        status = self.answer(request, before)
        answer_headers = [(b"content-type", b"text/plain")]
        if 300 <= status < 400:  # a redirect to this same receiver: following it would show as a second request
            answer_headers.append((b"location", f"{self.url}/redirected".encode()))
        await send({"type": "http.response.start", "status": status, "headers": answer_headers})
        await send({"type": "http.response.body", "body": f"answered {status}".encode()})
        self._arrived.set()

    def of(self, object_id: str, event_type: str | None = None) -> list[Received]:
        return [
            r
            for r in self.requests
            if r.event.get("objectId") == object_id and (event_type is None or r.event["type"] == event_type)
        ]

    async def wait_for(self, check: Callable[[], bool], timeout: float = 30.0) -> None:
        async def poll() -> None:
            while True:
                self._arrived.clear()  # before the check: no await between them, so nothing is missed
                if check():
                    return
                await self._arrived.wait()

        await asyncio.wait_for(poll(), timeout)


@asynccontextmanager
async def receiving(path: str = "/payql-events") -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with serving(receiver) as base:
        receiver.url = base + path
        yield receiver
