"""`transaction()` under cancellation: wherever a cancellation lands (taking the SQLite lock or a
pooled connection, BEGIN, the body, a savepoint, COMMIT), the lock and every connection come back,
no transaction is left open, and nothing half-done is committed."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from tortoise import connections

from db.models import Customer
from db.transaction import transaction
from tests.database_held import assert_nothing_held, holding_the_database, is_sqlite, within_bound

# Loop turns before the cancellation; the sweep stops at the first transaction that ends first.
MAX_TURNS = 20_000

Opener = Callable[[], AbstractAsyncContextManager[Any]]


async def two_rows(opener: Opener, marker: str, progress: list[str]) -> None:
    """The transaction under test: two rows, the second in a savepoint."""
    async with opener() as connection:
        await Customer.create(external_id=f"{marker}-1", using_db=connection)
        async with opener() as savepoint:
            await Customer.create(external_id=f"{marker}-2", using_db=savepoint)
        progress.append("body done")


async def sweep_cancellations(opener: Opener) -> int:
    """Cancel `two_rows` after 0, 1, 2, … loop turns until it ends before its cancellation; after
    each, nothing is held and the rows are all there or none. Returns how many were cancelled."""
    for turns in range(MAX_TURNS):
        marker = f"cancel-{uuid.uuid4().hex}"
        progress: list[str] = []
        task = asyncio.create_task(two_rows(opener, marker, progress))
        for _ in range(turns):
            await asyncio.sleep(0)  # one loop turn: the cancellation lands at the next await point
        ended_first = task.done()
        task.cancel()
        await within_bound(asyncio.wait([task]), "the cancelled transaction ending")
        await assert_nothing_held()
        committed = await Customer.filter(external_id__startswith=marker).count()
        if progress:
            assert committed == 2  # the body ended: its COMMIT runs to the end
        else:
            assert task.cancelled()
            assert committed == 0, "a cancelled transaction committed part of its work"
        if ended_first:
            assert committed == 2
            return turns
    raise AssertionError(f"the transaction did not end within {MAX_TURNS} loop turns")


async def test_a_cancellation_at_any_await_point_leaves_nothing_held_and_nothing_committed(server: str) -> None:
    cancelled = await sweep_cancellations(transaction)

    assert cancelled > 3


async def test_a_cancellation_while_waiting_to_open_leaves_at_once_and_opens_nothing(server: str) -> None:
    marker = f"waiting-{uuid.uuid4().hex}"
    async with holding_the_database():
        task = asyncio.create_task(two_rows(transaction, marker, []))
        for _ in range(10):
            await asyncio.sleep(0)
        task.cancel()
        # Leaves while the lock or the pool is still taken: the caller is not held by them.
        await within_bound(asyncio.wait([task]), "the cancelled transaction ending")
        assert task.cancelled()

    await assert_nothing_held()
    assert await Customer.filter(external_id__startswith=marker).count() == 0


async def test_the_block_commits_or_rolls_back_as_tortoise_does(server: str) -> None:
    marker = f"plain-{uuid.uuid4().hex}"
    await two_rows(transaction, marker, [])

    try:
        async with transaction() as connection:
            await Customer.create(external_id=f"{marker}-refused", using_db=connection)
            raise LookupError
    except LookupError:
        pass

    assert await Customer.filter(external_id__startswith=marker).count() == 2
    await assert_nothing_held()


async def test_a_sqlite_transaction_takes_the_write_lock_as_it_opens_so_another_process_cannot_make_it_stale() -> None:
    """In WAL mode a transaction that read and then writes fails at once ("database is locked") if
    another process committed in between; holding the write lock from BEGIN makes the other process
    wait for it instead (`payql serve` and `payql worker` on one SQLite file)."""
    client = connections.get("default")
    if not is_sqlite(client):
        pytest.skip("SQLite's locking; PostgreSQL locks rows, proven by the row-lock tests")
    marker = f"immediate-{uuid.uuid4().hex}"
    # Another process's connection to the same file, which does not wait for a lock.
    other = sqlite3.connect(client.filename, timeout=0, isolation_level=None)
    try:
        async with transaction() as connection:
            assert not await Customer.filter(external_id=marker).exists()  # the transaction's snapshot
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            await Customer.create(external_id=marker, using_db=connection)
        # Committed: the other process writes in its turn.
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE customers SET external_id = ? WHERE external_id = ?", (f"{marker}-2", marker))
        other.execute("COMMIT")
    finally:
        other.close()
    assert await Customer.filter(external_id=f"{marker}-2").exists()
