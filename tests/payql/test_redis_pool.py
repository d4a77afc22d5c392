"""The bounded, blocking Redis pool: a burst waits for a connection instead of opening one per
command or failing; past the wait, the error is one that `payql.retry_later` recognizes."""

from __future__ import annotations

import asyncio
import importlib.metadata

import pytest
import redis
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from payql.redis_pool import bounded_redis
from payql.retry_later import is_exhaustion
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


class RefusingProxy:
    """A TCP proxy to Redis that closes the first `refusals` connections at once, as a Redis that is
    restarting does, then forwards the rest; it counts the connections it saw."""

    def __init__(self, target_port: int, refusals: int) -> None:
        self.target_port = target_port
        self.refusals = refusals
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RefusingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections <= self.refusals:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)


async def test_a_command_rides_out_a_redis_that_refuses_connections_for_a_moment(redis_server: RedisServer) -> None:
    """Ten connections dropped at once (Redis restarting) still let the command through."""
    async with RefusingProxy(redis_server.port, refusals=10) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        client = bounded_redis(url, max_connections=POOL_SIZE, wait_seconds=5, client_name="refused-test")
        try:
            assert await client.incr("counter") == 1
            assert proxy.connections == 11
        finally:
            await client.aclose()


async def test_a_command_that_timed_out_is_not_sent_again() -> None:
    """A Redis that accepts but never answers: the command fails after one socket timeout, on one connection,
    rather than holding the request once per retry."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = bounded_redis(
        f"redis://127.0.0.1:{port}/0", max_connections=1, wait_seconds=5, client_name="silent", socket_timeout=0.2
    )
    try:
        with pytest.raises(RedisTimeoutError):
            await client.get("anything")
        assert len(accepted) == 1
    finally:
        await client.aclose()
        for writer in accepted:
            writer.close()
        server.close()


async def test_a_new_connection_names_the_library_s_version_without_reading_package_metadata(
    redis_server: RedisServer,
) -> None:
    """redis-py reads the installed packages' metadata for every new connection unless told the
    version: about 1.5 ms a connection while a burst grows the pool."""
    client = bounded_redis(redis_server.url, max_connections=POOL_SIZE, wait_seconds=5, client_name="version-test")

    def read_metadata(name: str) -> str:
        raise AssertionError(f"package metadata read for {name!r} on a new connection")

    try:
        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(importlib.metadata, "version", read_metadata)
            await asyncio.gather(*(client.incr("counter") for _ in range(POOL_SIZE * 4)))
        assert await connections_named(redis_server.url, "version-test") > 1  # the pool grew
        # What CLIENT SETINFO sends (Redis 7.2 and later show it as lib-ver): the installed version.
        pool = client.connection_pool
        versions = {c.driver_info.lib_version for c in pool._available_connections if c.driver_info}
        assert versions == {redis.__version__}
    finally:
        await client.aclose()
