"""Whether the database is held: the SQLite lock, or a pooled PostgreSQL connection, that nobody
gives back, or a transaction left open; and the database held on purpose for a block. Shared by the
cancellation, transaction and readiness tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from db.transaction import wait_abandoned

# A bound on waits that end at once when nothing leaked; reaching it means a frozen database.
BOUND_SECONDS = 10


def is_sqlite(client: BaseDBAsyncClient) -> bool:
    return client.capabilities.dialect == "sqlite"


async def within_bound(awaitable: Awaitable[Any], what: str, seconds: float = BOUND_SECONDS) -> Any:
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {seconds}s: the database is held") from None


async def assert_nothing_held() -> None:
    """The lock (SQLite) or every pooled connection (PostgreSQL) can be taken, and none is inside
    a transaction. On PostgreSQL this also opens every connection the pool may hold."""
    await within_bound(wait_abandoned(), "rolling back abandoned transactions")
    client = connections.get("default")
    await within_bound(client.execute_query("SELECT 1"), "a query")
    if is_sqlite(client):
        assert not client._connection._conn.in_transaction, "a transaction was left open"
        return
    async with every_pooled_connection(client._pool) as taken:
        assert not any(connection.is_in_transaction() for connection in taken), "a transaction was left open"


@asynccontextmanager
async def every_pooled_connection(pool: asyncpg.Pool) -> AsyncIterator[list[asyncpg.Connection]]:
    """Every connection the pool may hold, taken (each within the bound) and given back after the block."""
    taken: list[asyncpg.Connection] = []
    try:
        for _ in range(pool.get_max_size()):
            taken.append(await within_bound(pool.acquire(), "taking every pooled connection"))
        yield taken
    finally:
        for connection in taken:
            await pool.release(connection)


@asynccontextmanager
async def holding_the_database() -> AsyncIterator[None]:
    """The SQLite lock, or every pooled connection, taken for the block: the database as a burst of
    requests leaves it."""
    client = connections.get("default")
    await client.execute_query("SELECT 1")  # the pool is made on first use
    if is_sqlite(client):
        async with client._lock:
            yield
        return
    async with every_pooled_connection(client._pool):
        yield


async def until_blocked_on_a_lock_or(database_url: str, got_through: asyncio.Event) -> None:
    """Return once a backend of this database waits on a row lock, or `got_through` is set (the
    second writer was not blocked): the moment a race test lets its first writer go on."""
    connection = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        while not got_through.is_set():
            waiting = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting:
                return
            await asyncio.sleep(0.01)
    finally:
        await connection.close()
