"""A throwaway `redis-server` for tests in tests/payql that count, restart or starve connections:
never the shared Redis. Missing `redis-server` fails the test with the reason, never skips it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.jobs.conftest import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is not on PATH: these tests run their own Redis (e.g. apt-get install redis-server)")
    server = RedisServer(executable, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def connections_named(url: str, name: str) -> int:
    """How many connections `CLIENT LIST` shows under `name`, asked over a connection of its own."""
    admin = Redis.from_url(url)
    try:
        clients = await admin.client_list()
    finally:
        await admin.aclose()
    return sum(1 for client in clients if client.get("name") == name)
