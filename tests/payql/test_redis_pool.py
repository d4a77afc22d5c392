"""The bounded, blocking Redis pool: a burst waits for a connection instead of opening one per
command or failing; past the wait, the error is one that `payql.exhaustion` recognizes."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

from payql.exhaustion import is_exhaustion
from payql.redis_pool import bounded_redis
from payql.wiring import Services
from tests.backends import Backend
from tests.jobs.conftest import RedisServer
from tests.payql.redis_servers import connections_named, redis_server

__all__ = ["redis_server"]

POOL_SIZE = 4
BURST = 300  # three times redis-py's default cap of 100 connections


async def test_a_burst_is_served_through_at_most_the_pool_s_connections(redis_server: RedisServer) -> None:
    client = bounded_redis(redis_server.url, max_connections=POOL_SIZE, wait_seconds=30, client_name="burst-test")
    try:
        await asyncio.gather(*(client.incr("counter") for _ in range(BURST)))
        assert int(await client.get("counter") or 0) == BURST
        assert 1 <= await connections_named(redis_server.url, "burst-test") <= POOL_SIZE
    finally:
        await client.aclose()


async def test_a_pool_with_no_free_connection_fails_as_exhaustion_after_its_wait(redis_server: RedisServer) -> None:
    client = bounded_redis(redis_server.url, max_connections=1, wait_seconds=0.05, client_name="starved-test")
    pool = client.connection_pool
    held = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(RedisConnectionError) as refused:
            await client.ping()
        assert is_exhaustion(refused.value)
    finally:
        await pool.release(held)
    assert await client.ping()  # the connection given back serves the next command
    await client.aclose()


async def test_the_app_s_redis_client_uses_the_configured_bounded_pool(services: Services, backend: Backend) -> None:
    if backend.redis_url is None:
        pytest.skip("the embedded backend has no Redis; PAYQL_TEST_BACKEND=servers checks the app's pool")
    assert services.redis is not None
    pool = services.redis.connection_pool
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.max_connections == services.settings.redis_max_connections
    assert pool.timeout == services.settings.redis_pool_timeout_seconds


async def test_a_command_after_a_redis_restart_reconnects_instead_of_failing(redis_server: RedisServer) -> None:
    """Every pooled connection is a dead socket after a restart; the next commands reconnect and succeed."""
    client = bounded_redis(redis_server.url, max_connections=POOL_SIZE, wait_seconds=5, client_name="restart-test")
    try:
        await asyncio.gather(*(client.incr("counter") for _ in range(POOL_SIZE * 4)))
        await asyncio.to_thread(redis_server.restart)
        results = await asyncio.gather(*(client.incr("after") for _ in range(POOL_SIZE * 4)))
        assert sorted(results) == list(range(1, POOL_SIZE * 4 + 1))
    finally:
        await client.aclose()
