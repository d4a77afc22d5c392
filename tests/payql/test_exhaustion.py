"""A shared pool with no connection to give is answered "busy, retry shortly" (RATE_LIMITED, or 503
before GraphQL) with Retry-After, never "Unexpected error."; any other failure is still masked."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from asyncpg.exceptions import (
    AdminShutdownError,
    ConnectionDoesNotExistError,
    InterfaceError,
    InternalClientError,
    TooManyConnectionsError,
)
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError

from payql.exhaustion import BUSY_MESSAGE, is_exhaustion
from payql.wiring import Services
from tests.backends import Backend
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price

BURST = 20
POOL_WAIT_SECONDS = 0.05


def test_only_a_pool_with_nothing_to_give_counts_as_exhaustion() -> None:
    assert is_exhaustion(RedisConnectionError("No connection available."))
    assert is_exhaustion(MaxConnectionsError("Too many connections"))
    assert is_exhaustion(TooManyConnectionsError("sorry, too many clients already"))
    # PostgreSQL ended the connection under the request: the transaction rolled back, a retry is safe.
    ended = ConnectionDoesNotExistError("connection was closed in the middle of operation")
    assert is_exhaustion(ended)
    assert is_exhaustion(AdminShutdownError("terminating connection due to administrator command"))
    assert is_exhaustion(InterfaceError("cannot call Transaction.rollback(): the underlying connection is closed"))
    assert not is_exhaustion(InterfaceError("cannot perform operation: another operation is in progress"))
    # A pooled connection PostgreSQL ended while it sat idle: its next query finds the FATAL error unread.
    assert is_exhaustion(InternalClientError("cannot switch to state 12; another operation (2) is in progress"))
    assert not is_exhaustion(InternalClientError("cannot switch to state 12; another operation (15) is in progress"))
    wrapped = RuntimeError("rate limiter failed")
    wrapped.__cause__ = RedisConnectionError("No connection available.")
    assert is_exhaustion(wrapped)
    # A Redis that is down, or a bug, is not a reason to tell the client to retry.
    assert not is_exhaustion(RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."))
    assert not is_exhaustion(ValueError("No connection available."))


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def post_checkout(shopper: Shopper, input_: dict[str, Any]) -> httpx.Response:
    return await shopper.http.post(
        "/graphql",
        json={"query": CHECKOUT, "variables": {"input": input_}},
        headers={"authorization": f"Bearer {shopper.token}"},
    )


def assert_busy(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text  # a field error, not a refused request
    body = response.json()
    assert error_codes(body) == ["RATE_LIMITED"], body
    assert body["errors"][0]["message"] == BUSY_MESSAGE
    assert int(response.headers["retry-after"]) >= 1


async def test_a_pool_timeout_inside_a_mutation_answers_rate_limited_with_retry_after(
    services: Services, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def starved(_: str) -> bool:
        raise RedisConnectionError("No connection available.")

    monkeypatch.setattr(services.deps.rate_limiter, "hit", starved)
    assert_busy(await post_checkout(shopper, checkout_input(await make_price(700))))


def graphql_log(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(record.levelno, record.getMessage()) for record in caplog.records if record.name == "payql.graphql"]


async def test_a_database_connection_ended_mid_mutation_answers_rate_limited_with_retry_after(
    services: Services, shopper: Shopper, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def ended(_: str) -> bool:
        raise ConnectionDoesNotExistError("connection was closed in the middle of operation")

    monkeypatch.setattr(services.deps.rate_limiter, "hit", ended)
    assert_busy(await post_checkout(shopper, checkout_input(await make_price(700))))
    # An operator's failover event, logged as one warning line, not as a defect with its traceback.
    assert graphql_log(caplog) == [
        (logging.WARNING, "busy in operation - at checkout, answered RATE_LIMITED: ConnectionDoesNotExistError")
    ]


async def test_an_unexpected_failure_is_still_masked(
    services: Services, shopper: Shopper, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(_: str) -> bool:
        raise RuntimeError("a bug")

    monkeypatch.setattr(services.deps.rate_limiter, "hit", broken)
    response = await post_checkout(shopper, checkout_input(await make_price(700)))
    assert response.json()["errors"][0]["message"] == "Unexpected error."
    assert "retry-after" not in response.headers
    assert graphql_log(caplog) == [(logging.ERROR, "unexpected error in operation - at checkout: a bug")]


async def test_a_pool_timeout_before_graphql_answers_503_with_retry_after(
    services: Services, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def starved(*_: object) -> int | None:
        raise RedisConnectionError("No connection available.")

    monkeypatch.setattr(services.ip_limits, "wait_before", starved)
    origin = "https://shop.example"  # allowed by the test server's CORS settings
    response = await http.post("/graphql", json={"query": "{ gateways }"}, headers={"origin": origin})
    assert response.status_code == 503
    assert error_codes(response.json()) == ["RATE_LIMITED"]
    assert int(response.headers["retry-after"]) >= 1
    # Inside the CORS and security headers: a browser can read the 503 and its Retry-After.
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_burst_on_a_starved_redis_pool_answers_rate_limited_never_unexpected_error(
    services: Services, backend: Backend, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend.redis_url is None:
        pytest.skip("the embedded backend has no Redis pool; PAYQL_TEST_BACKEND=servers starves the real one")
    assert services.redis is not None
    pool = services.redis.connection_pool
    assert isinstance(pool, BlockingConnectionPool)
    # Shrink the pool to what it holds now and take every connection: nothing is left to give.
    monkeypatch.setattr(pool, "timeout", POOL_WAIT_SECONDS)
    opened = len(pool._available_connections) + len(pool._in_use_connections)
    monkeypatch.setattr(pool, "max_connections", max(1, opened))
    held: list[AbstractConnection] = []
    try:
        while pool.can_get_connection():
            held.append(await pool.get_connection())  # type: ignore[no-untyped-call]
        price = await make_price(900)
        answers = await asyncio.gather(*(post_checkout(shopper, checkout_input(price)) for _ in range(BURST)))
        for answer in answers:
            assert_busy(answer)
    finally:
        for connection in held:
            await pool.release(connection)
    served = await post_checkout(shopper, checkout_input(await make_price(900)))
    assert served.json()["data"]["checkout"]["userErrors"] == []
