"""Shared-resource exhaustion answered as "busy, retry shortly", never as "Unexpected error.".

When every pooled Redis connection stays busy past the pool's wait, when PostgreSQL has no
connection left, or when PostgreSQL ended the request's connection under it (an administrator's
`pg_terminate_backend`, a server restart or failover: the transaction rolled back, and a retry with the
same idempotency key finds whatever did commit), the request could not be served now but can be later:
a GraphQL field answers
RATE_LIMITED and the HTTP response carries `Retry-After`; outside GraphQL (the client-IP limit
checked before it, a webhook) the answer is 503 with `Retry-After`. Nothing here retries, and
nothing here turns any other failure (a bug, a Redis that is down) into a retry hint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Final

from asyncpg.exceptions import (
    AdminShutdownError,
    CannotConnectNowError,
    ConnectionDoesNotExistError,
    InterfaceError,
    InternalClientError,
    TooManyConnectionsError,
)
from graphql import GraphQLError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from payql.rate_limit import note_retry_after

RETRY_AFTER_SECONDS: Final = 1
BUSY_MESSAGE: Final = "The server is busy. Retry shortly."
# What redis-py's BlockingConnectionPool raises once its wait for a free connection runs out.
_REDIS_POOL_TIMEOUT: Final = "No connection available."
# What asyncpg says when a pooled connection is used after PostgreSQL ended it while it sat idle: the
# server's FATAL error left its protocol in ERROR_CONSUME (state 2) before the socket's end was seen.
_ENDED_WHILE_IDLE: Final = "another operation (2) is in progress"
# What asyncpg says of any call on a connection that is already closed (a rollback after the server
# ended it runs in a task of its own, so its error does not carry the ending as its context).
_CLOSED: Final = "the underlying connection is closed"
# An exception's causes are followed this far (a library may wrap the pool's error once or twice).
_CAUSE_DEPTH: Final = 4


def _causes(error: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = error
    for _ in range(_CAUSE_DEPTH):
        if current is None:
            return
        yield current
        current = current.__cause__ or current.__context__


def is_exhaustion(error: BaseException) -> bool:
    """True when `error` (or what it wraps) says a shared pool had no connection to give, or the database
    ended the connection the request was using."""
    for cause in _causes(error):
        if isinstance(cause, MaxConnectionsError | TooManyConnectionsError):
            return True
        if isinstance(cause, ConnectionDoesNotExistError | AdminShutdownError | CannotConnectNowError):
            return True
        if isinstance(cause, InternalClientError) and str(cause).endswith(_ENDED_WHILE_IDLE):
            return True
        if isinstance(cause, InterfaceError) and str(cause).endswith(_CLOSED):
            return True
        if isinstance(cause, RedisConnectionError) and str(cause) == _REDIS_POOL_TIMEOUT:
            return True
    return False


def busy_error(error: GraphQLError) -> GraphQLError:
    """The same field error, told as RATE_LIMITED, without the exception behind it."""
    return GraphQLError(
        BUSY_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "RATE_LIMITED"},
    )


class ExhaustionAsRateLimited(SchemaExtension):
    """Rewrites each field error caused by exhaustion before MaskErrors sees it (the app hands it to
    `build_schema(unmasked=…)`, which lists it after MaskErrors: extensions leave an operation in
    reverse order), and asks for Retry-After."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if not errors:
            return
        rewritten = [
            busy_error(error) if error.original_error is not None and is_exhaustion(error.original_error) else error
            for error in errors
        ]
        if any(new is not old for new, old in zip(rewritten, errors, strict=True)):
            note_retry_after(RETRY_AFTER_SECONDS)
            result.errors = rewritten  # type: ignore[union-attr]  # getattr above proved it has errors


def busy_response_body() -> bytes:
    return json.dumps({"errors": [{"message": BUSY_MESSAGE, "extensions": {"code": "RATE_LIMITED"}}]}).encode()


class ExhaustionMiddleware:
    """Pure ASGI: an HTTP request that fails on exhaustion before its response started is answered
    503 with Retry-After; any other exception, or one after the response started, propagates."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            if started or not is_exhaustion(error):
                raise
            body = busy_response_body()
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
