"""`transaction()`: a database transaction that no cancellation can leave open; use it, never
tortoise's `in_transaction` (ruff bans that).

Tortoise opens a transaction in several awaits: take the SQLite lock or a pooled PostgreSQL
connection, then send BEGIN. A task cancelled between them never gives the lock or the connection
back, and on SQLite every later query then waits forever. Here the opening (take + BEGIN) and the
closing (COMMIT or ROLLBACK + give back) each run in a task of their own that the caller's
cancellation cannot interrupt:
- cancelled while opening, the caller leaves at once; the transaction, once open, rolls itself
  back and gives its lock or connection back (`wait_abandoned` waits for that). A savepoint is
  the exception: it opens on the caller's connection, so the caller waits for it, then rolls it back;
- cancelled in its body, the caller rolls back, gives back, and only then re-raises;
- cancelled while closing, the caller waits for the close to end, then re-raises.

Built on tortoise's own pieces (its transaction clients and their lock, pool and savepoints);
inside a transaction, a nested one is a savepoint, as with tortoise; inside a `one_connection()`
block, it runs on the block's connection (`db.one_connection`).

Never here: application queries, or waiting on anything but the database.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import (
    BaseDBAsyncClient,
    NestedTransactionContext,
    TransactionalDBClient,
    TransactionContextPooled,
)
from tortoise.backends.sqlite.client import SqliteTransactionContext
from tortoise.exceptions import TransactionManagementError

from db.one_connection import HeldTransactionContext

logger = logging.getLogger(__name__)

# Transactions whose caller was cancelled while they opened, until they are open and rolled back:
# kept so that their tasks are not garbage-collected mid-way and so that shutdown (and tests) can
# wait for them.
_abandoned: set[asyncio.Task[None]] = set()


class _Transaction:
    """One transaction of one of four kinds: a SQLite one (the client's lock), a pooled one
    (PostgreSQL: a connection from the pool), one on the connection a `one_connection()` block holds,
    or a savepoint inside an open transaction."""

    def __init__(self, current: BaseDBAsyncClient) -> None:
        self.context = current._in_transaction()
        if isinstance(self.context, SqliteTransactionContext):
            self.client: TransactionalDBClient = self.context.connection
        elif isinstance(self.context, TransactionContextPooled | NestedTransactionContext | HeldTransactionContext):
            self.client = self.context.client
        else:
            raise TypeError(f"No cancellation-safe transaction for {type(self.context).__name__}")
        self.is_savepoint = isinstance(self.context, NestedTransactionContext)
        # Neither takes a connection of its own: they run on one their caller goes on using.
        self.on_callers_connection = self.is_savepoint or isinstance(self.context, HeldTransactionContext)

    async def open(self) -> None:
        """Take the lock or the connection, then BEGIN; on any failure, give back what was taken."""
        context = self.context
        if isinstance(context, NestedTransactionContext):
            await self.client.savepoint()
            return
        if isinstance(context, SqliteTransactionContext):
            await context._trxlock.acquire()
        elif isinstance(context, TransactionContextPooled):
            await context.ensure_connection()
            self.client._connection = await self.client._parent._pool.acquire()
        elif isinstance(context, HeldTransactionContext):
            await context.connect()
        try:
            if isinstance(context, SqliteTransactionContext):
                await context.ensure_connection()
                await _begin_immediate(self.client)
            else:
                await self.client.begin()
        except BaseException:
            await self._give_back()
            raise

    async def close(self, failed: type[BaseException] | None) -> None:
        """COMMIT (or ROLLBACK when `failed`), then give the lock or the connection back, whatever
        the COMMIT or ROLLBACK did."""
        try:
            if not self.client._finalized:
                if failed is None:
                    try:
                        await (self.client.release_savepoint() if self.is_savepoint else self.client.commit())
                    except BaseException:
                        # A failed COMMIT can leave the transaction open on SQLite's one connection,
                        # where the next BEGIN would commit it.
                        with suppress(Exception):
                            await (self.client.savepoint_rollback() if self.is_savepoint else self.client.rollback())
                        raise
                # A transaction the database already ended cannot be rolled back (as in tortoise).
                elif failed is not TransactionManagementError:
                    await (self.client.savepoint_rollback() if self.is_savepoint else self.client.rollback())
        finally:
            await self._give_back()

    async def _give_back(self) -> None:
        context = self.context
        if isinstance(context, SqliteTransactionContext):
            context._trxlock.release()
        elif isinstance(context, TransactionContextPooled):
            # The pool resets the connection (rolling back anything left open) as it takes it back.
            await self.client._parent._pool.release(self.client._connection)


async def _begin_immediate(client: TransactionalDBClient) -> None:
    """BEGIN IMMEDIATE where tortoise sends BEGIN: the transaction takes SQLite's write lock as it
    opens, waiting for another process's writer (the busy timeout) if one holds it. A deferred BEGIN
    takes it at the first write instead, and in WAL mode that write fails at once with "database is
    locked" when another process (`payql worker` beside `payql serve`) committed since the
    transaction's first read: its snapshot is stale, and SQLite does not wait."""
    connection = client._connection
    try:
        await connection.commit()
        await connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        raise TransactionManagementError(error) from error


async def _through(task: asyncio.Task[None]) -> asyncio.CancelledError | None:
    """Wait for `task` to end, whatever cancels the caller meanwhile; returns that cancellation."""
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as error:
            cancelled = error
        except Exception:  # noqa: S110 - the task's own failure: the caller reads it from the task
            pass
    return cancelled


async def _to_the_end(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` to its end even if the caller is cancelled meanwhile; then re-raise that."""
    task = asyncio.ensure_future(work)
    cancelled = await _through(task)
    if cancelled is not None:
        # The work's own failure is logged, not lost: the cancellation is what the caller sees.
        if task.exception() is not None:
            logger.error("Closing a cancelled transaction failed", exc_info=task.exception())
        raise cancelled
    task.result()


def _close_once_open(opening: asyncio.Task[None], transaction: _Transaction) -> None:
    """The caller left while its transaction opened: roll it back as soon as it is open."""

    def opened(task: asyncio.Task[None]) -> None:
        _abandoned.discard(task)
        if task.cancelled() or task.exception() is not None:
            return  # `open` gave back what it had taken
        closing = asyncio.ensure_future(transaction.close(asyncio.CancelledError))
        _abandoned.add(closing)
        closing.add_done_callback(_closed)

    _abandoned.add(opening)
    opening.add_done_callback(opened)


def _closed(task: asyncio.Task[None]) -> None:
    _abandoned.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("Rolling back an abandoned transaction failed", exc_info=task.exception())


async def wait_abandoned() -> None:
    """Wait until every transaction whose caller was cancelled while it opened is rolled back and
    has given back its lock or connection."""
    while _abandoned:
        await asyncio.wait(set(_abandoned))


@asynccontextmanager
async def transaction(connection_name: str = "default") -> AsyncIterator[TransactionalDBClient]:
    """A transaction on `connection_name` (a savepoint when one is open already): committed when
    the block ends, rolled back when it raises or is cancelled."""
    current = connections.get(connection_name)
    transaction = _Transaction(current)
    opening = asyncio.ensure_future(transaction.open())
    try:
        await asyncio.shield(opening)
    except asyncio.CancelledError:
        if transaction.on_callers_connection:
            # A savepoint, or a transaction on the connection a block holds, opens on the caller's
            # own connection, which the caller is about to roll back or give back: that waits
            # until the SAVEPOINT or BEGIN is through.
            await _through(opening)
        if opening.done():
            if not opening.cancelled() and opening.exception() is None:
                await _to_the_end(transaction.close(asyncio.CancelledError))
        else:
            _close_once_open(opening, transaction)
        raise
    # In the caller's own context (as tortoise does), so that its queries in the block use the
    # transaction; a savepoint keeps using the open transaction's client.
    token = None if transaction.is_savepoint else connections.set(connection_name, transaction.client)
    try:
        yield transaction.client
    except BaseException as error:
        connections.reset(token)
        await _to_the_end(transaction.close(type(error)))
        raise
    connections.reset(token)
    await _to_the_end(transaction.close(None))
