"""Shared-resource exhaustion answered as "busy, retry shortly", and an unreachable Redis as "unavailable,
retry shortly", never as "Unexpected error." or a bare 500.

When every pooled Redis connection stays busy past the pool's wait, when PostgreSQL has no
connection left, or when PostgreSQL ended the request's connection under it (an administrator's
`pg_terminate_backend`, a server restart or failover: the transaction rolled back, and a retry with the
same idempotency key finds whatever did commit), the request could not be served now but can be later:
a GraphQL field answers RATE_LIMITED and the HTTP response carries `Retry-After`; outside GraphQL (the
client-IP limit checked before it, a webhook) the answer is 503 with `Retry-After`.

When Redis cannot be reached at all (refused, timed out, no primary while Sentinel elects one), the
answer is the same shape with the code SERVICE_UNAVAILABLE and a longer `Retry-After`
(`OUTAGE_RETRY_AFTER_SECONDS`): a failover or a restart takes seconds, and the rate limits and live
slots a request needs are checked before anything moves, so a retry with the same idempotency key is
safe. Before, the client-IP limit's failure escaped as a plain-text 500 for every request.

Nothing here retries, and nothing here turns any other failure (a bug) into a retry hint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
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
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from payql.rate_limit import note_retry_after
from resolvers.errors import ErrorCode

RETRY_AFTER_SECONDS: Final = 1
BUSY_MESSAGE: Final = "The server is busy. Retry shortly."
OUTAGE_RETRY_AFTER_SECONDS: Final = 5
OUTAGE_MESSAGE: Final = "The service is temporarily unavailable. Retry shortly with the same idempotency key."
# What redis-py's BlockingConnectionPool raises once its wait for a free connection runs out.
_REDIS_POOL_TIMEOUT: Final = "No connection available."
# What asyncpg says when a pooled connection is used after PostgreSQL ended it while it sat idle: the
# server's FATAL error left its protocol in ERROR_CONSUME (state 2) before the socket's end was seen.
_ENDED_WHILE_IDLE: Final = "another operation (2) is in progress"
# What asyncpg says of any call on a connection that is already closed (a rollback after the server
# ended it runs in a task of its own, so its error does not carry the ending as its context).
_CLOSED: Final = "the underlying connection is closed"
# What asyncpg says of a statement on a connection a `one_connection()` block holds, after PostgreSQL
# ended it between two of the block's statements: asyncpg's clean-up gave it back to the pool.
_ENDED_WHILE_HELD: Final = "connection has been released back to the pool"
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
        if isinstance(cause, InterfaceError) and str(cause).endswith((_CLOSED, _ENDED_WHILE_HELD)):
            return True
        if isinstance(cause, RedisConnectionError) and str(cause) == _REDIS_POOL_TIMEOUT:
            return True
    return False


def is_redis_outage(error: BaseException) -> bool:
    """True when `error` (or what it wraps) says Redis could not be reached or did not answer in time,
    and not that its pool had nothing to give (`is_exhaustion`)."""
    if is_exhaustion(error):
        return False
    return any(isinstance(cause, RedisConnectionError | RedisTimeoutError) for cause in _causes(error))


@dataclass(frozen=True, slots=True)
class Unavailable:
    """How a request that cannot be served now, but can be later, is answered."""

    code: ErrorCode
    message: str
    retry_after_seconds: int

    async def send_503(self, send: Send) -> None:
        """The whole HTTP answer: 503, this error as a GraphQL error body, and Retry-After."""
        body = json.dumps({"errors": [{"message": self.message, "extensions": {"code": str(self.code)}}]}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(self.retry_after_seconds).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


BUSY: Final = Unavailable(ErrorCode.RATE_LIMITED, BUSY_MESSAGE, RETRY_AFTER_SECONDS)
OUTAGE: Final = Unavailable(ErrorCode.SERVICE_UNAVAILABLE, OUTAGE_MESSAGE, OUTAGE_RETRY_AFTER_SECONDS)


def unavailability(error: BaseException) -> Unavailable | None:
    """How `error` is answered if it says "not now, later": exhaustion as BUSY, an unreachable Redis as
    OUTAGE; None for anything else."""
    if is_exhaustion(error):
        return BUSY
    if is_redis_outage(error):
        return OUTAGE
    return None


def answered_code(error: BaseException) -> str | None:
    """The code `error` is answered with when it is not a defect (what the schema logs as a warning)."""
    found = unavailability(error)
    return str(found.code) if found is not None else None


def unavailable_error(error: GraphQLError, unavailable: Unavailable) -> GraphQLError:
    """The same field error, told as `unavailable`, without the exception behind it."""
    return GraphQLError(
        unavailable.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": str(unavailable.code)},
    )


class RetryLaterErrors(SchemaExtension):
    """Rewrites each field error caused by exhaustion (RATE_LIMITED) or an unreachable Redis
    (SERVICE_UNAVAILABLE) before MaskErrors sees it (the app hands it to `build_schema(unmasked=…)`,
    which lists it after MaskErrors: extensions leave an operation in reverse order), and asks for the
    longest Retry-After among them."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if not errors:
            return
        rewritten: list[GraphQLError] = []
        retry_after = 0
        for error in errors:
            unavailable = unavailability(error.original_error) if error.original_error is not None else None
            if unavailable is None:
                rewritten.append(error)
                continue
            rewritten.append(unavailable_error(error, unavailable))
            retry_after = max(retry_after, unavailable.retry_after_seconds)
        if retry_after:
            note_retry_after(retry_after)
            result.errors = rewritten  # type: ignore[union-attr]  # getattr above proved it has errors


class RetryLaterMiddleware:
    """Pure ASGI: an HTTP request that fails on exhaustion or an unreachable Redis before its response
    started is answered 503 with Retry-After; any other exception, or one after the response started,
    propagates."""

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
            unavailable = None if started else unavailability(error)
            if unavailable is None:
                raise
            await unavailable.send_503(send)
