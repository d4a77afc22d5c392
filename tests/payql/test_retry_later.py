"""A shared pool with no connection to give is answered "busy, retry shortly" (RATE_LIMITED, or 503
before GraphQL) with Retry-After, and an unreachable Redis "unavailable, retry shortly"
(SERVICE_UNAVAILABLE, or 503), never "Unexpected error." or a bare 500; any other failure is still masked."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
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
from redis.asyncio.sentinel import MasterNotFoundError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

from payql.retry_later import BUSY, BUSY_MESSAGE, OUTAGE, OUTAGE_MESSAGE, is_exhaustion, unavailability
from payql.wiring import Services
from tests.backends import Backend
from tests.ports import free_port
from tests.processes import PayQLProcess, cli, payql_environment
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
    # A Redis that is down is an outage (below), not a busy pool; a bug is neither.
    assert not is_exhaustion(RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."))
    assert not is_exhaustion(ValueError("No connection available."))


def test_an_unreachable_redis_is_an_outage_and_a_starved_pool_or_a_bug_is_not() -> None:
    refused = RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    assert unavailability(refused) is OUTAGE
    assert unavailability(RedisTimeoutError("Timeout reading from socket")) is OUTAGE
    assert unavailability(MasterNotFoundError("No master found for 'payql'")) is OUTAGE
    wrapped = RuntimeError("rate limiter failed")
    wrapped.__cause__ = refused
    assert unavailability(wrapped) is OUTAGE
    assert unavailability(RedisConnectionError("No connection available.")) is BUSY
    assert unavailability(MaxConnectionsError("Too many connections")) is BUSY
    assert unavailability(ValueError("Error 111 connecting")) is None


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


async def test_redis_down_inside_a_mutation_answers_service_unavailable_with_retry_after(
    services: Services, shopper: Shopper, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def down(_: str) -> bool:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(services.deps.rate_limiter, "hit", down)
    response = await post_checkout(shopper, checkout_input(await make_price(700)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert error_codes(body) == ["SERVICE_UNAVAILABLE"], body
    assert body["errors"][0]["message"] == OUTAGE_MESSAGE
    assert int(response.headers["retry-after"]) == OUTAGE.retry_after_seconds
    assert graphql_log(caplog) == [
        (logging.WARNING, "busy in operation - at checkout, answered SERVICE_UNAVAILABLE: ConnectionError")
    ]


async def test_redis_down_before_graphql_answers_503_service_unavailable_with_retry_after(
    services: Services, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*_: object) -> int | None:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(services.ip_limits, "wait_before", down)
    response = await http.post("/graphql", json={"query": "{ gateways }"})
    assert response.status_code == 503
    assert error_codes(response.json()) == ["SERVICE_UNAVAILABLE"]
    assert int(response.headers["retry-after"]) == OUTAGE.retry_after_seconds


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


async def test_a_server_whose_redis_is_down_answers_503_service_unavailable_not_a_bare_500(tmp_path: Path) -> None:
    """The whole path, nothing patched: a `payql serve` whose Redis port has nothing listening. Its
    client-IP limit fails before GraphQL; a plain-text 500 came back before."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = payql_environment(f"sqlite://{tmp_path / 'payql.sqlite3'}", tmp_path) | {
        "PAYQL_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "PAYQL_JOB_QUEUE": "in-process",
        "PAYQL_PORT": str(port),
        "PAYQL_PUBLIC_BASE_URL": base_url,
    }
    await cli(env, "migrate")
    server = PayQLProcess(env, tmp_path / "serve.log", "serve")
    server.start()
    try:
        await server.wait_healthy(base_url, path="/healthz")
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            response = await client.post("/graphql", json={"query": "{ gateways }"})
    finally:
        server.stop()
    assert response.status_code == 503, response.text
    assert error_codes(response.json()) == ["SERVICE_UNAVAILABLE"]
    assert int(response.headers["retry-after"]) == OUTAGE.retry_after_seconds
    assert "Traceback" not in server.log()
