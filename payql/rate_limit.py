"""Rate limits with the `limits` library, and the `Retry-After` a refused request is answered with.

One storage per process: memory for the embedded default, Redis in production so every limit holds
across instances. Each limiter counts one kind of request per key (a principal, a client IP).
A refusal notes how long the caller should wait; `RetryAfterMiddleware` turns that note into the
HTTP response's `Retry-After` header, so a field-level RATE_LIMITED error carries it too.
The callers (the GraphQL view, the use cases) decide which requests count; nothing here reads them.
"""

from __future__ import annotations

import math
import time
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payql.metrics import RATE_LIMITED


def limits_storage(redis: Redis | None, prefix: str) -> Storage:
    """Redis when configured (shares the app's connection pool, so closing the app closes its
    connections too), else this process's memory."""
    if redis is None:
        return MemoryStorage()
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix=prefix + "ratelimit",
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # limits types **options too narrowly
    )


class KeyedRateLimiter:
    """One limit ("60/minute") over one namespace of keys, in a moving window."""

    def __init__(self, limit: str, storage: Storage, namespace: str) -> None:
        self._limit = parse(limit)
        self._namespace = namespace
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, key: str) -> bool:
        """Count one request for `key`; False (and a Retry-After noted) when it is over its limit."""
        wait = await self.wait_before(key)
        if wait is None:
            return True
        note_retry_after(wait)
        return False

    async def wait_before(self, key: str) -> int | None:
        """Count one request for `key`: None when allowed, else whole seconds (at least 1) to wait."""
        if await self._limiter.hit(self._limit, self._namespace, key):
            return None
        RATE_LIMITED.labels(limit=self._namespace).inc()
        stats = await self._limiter.get_window_stats(self._limit, self._namespace, key)
        return max(1, math.ceil(stats.reset_time - time.time()))


class PaymentRateLimiter(KeyedRateLimiter):
    """Payment mutations per principal."""

    def __init__(self, limit: str, redis: Redis | None, prefix: str, storage: Storage | None = None) -> None:
        super().__init__(limit, storage or limits_storage(redis, prefix), "payments")


class Authentication(StrEnum):
    NONE = "none"  # no credentials: an anonymous request
    FAILED = "failed"  # credentials that did not verify (bad, expired or malformed token)
    VERIFIED = "verified"


class ClientIpLimits:
    """Per client IP: anonymous requests, and failed authentications (counted apart and stricter,
    so guessing tokens is slow). A verified caller is limited per principal elsewhere, not here."""

    def __init__(self, anonymous: str, failed_authentication: str, storage: Storage) -> None:
        self.anonymous = KeyedRateLimiter(anonymous, storage, "anonymous-ip")
        self.failed_authentication = KeyedRateLimiter(failed_authentication, storage, "failed-auth-ip")

    async def wait_before(self, client_ip: str | None, authentication: Authentication) -> int | None:
        """Count one request: None when admitted, else whole seconds the client should wait."""
        key = client_ip or "unknown"
        if authentication is Authentication.NONE:
            return await self.anonymous.wait_before(key)
        if authentication is Authentication.FAILED:
            return await self.failed_authentication.wait_before(key)
        return None


@dataclass
class RetryAfterNote:
    """The longest wait any limiter asked for while serving one HTTP request."""

    seconds: int | None = None

    def add(self, seconds: int) -> None:
        self.seconds = max(self.seconds or 0, seconds)


# Holds a mutable note rather than a value: resolvers run in tasks that copy the context, and a
# copy still points at the same note.
_request_note: ContextVar[RetryAfterNote | None] = ContextVar("payql_retry_after", default=None)


def note_retry_after(seconds: int) -> None:
    """Ask for `Retry-After: seconds` on the current HTTP response (no-op outside one)."""
    note = _request_note.get()
    if note is not None:
        note.add(seconds)


class RetryAfterMiddleware:
    """Pure ASGI: adds `Retry-After` to an HTTP response when a limiter refused something during
    the request and the response does not carry one already. Websockets pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        note = RetryAfterNote()
        token = _request_note.set(note)

        async def send_with_retry_after(message: Message) -> None:
            if message["type"] == "http.response.start" and note.seconds is not None:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    headers.append((b"retry-after", str(note.seconds).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_retry_after)
        finally:
            _request_note.reset(token)
