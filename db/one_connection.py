"""`one_connection()`: the statements of a block share one pooled PostgreSQL connection, taken at the
block's first statement and given back as the block ends, instead of one taken and given back per
statement.

Outside a transaction, every statement takes a connection from the pool and gives it back: about
40 µs of Python each time (the pool's give-back runs in a task of its own), paid by every read and
autocommit write. A stretch of work that runs several statements in a row and waits on nothing
else (a checkout's price and customer reads and its first transaction; an email's claim and its
template's reads) takes one connection instead. A transaction in the block runs on that connection
(BEGIN … COMMIT on it), as cancellation-safe as anywhere (`db.transaction`).

Only the task that opened the block uses the connection. A task it starts (an after-commit job, a
`gather`) runs its statements as if outside the block: the connection is never shared between tasks,
nor used past the block.

On SQLite (one connection already), inside a transaction or inside another block, it changes nothing.

Never in a block: a wait that can be long (a gateway call, a mailer, a sleep). The connection is
held meanwhile, and a pool of a few connections serves every request of the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from tortoise import connections
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    ConnectionWrapper,
    PoolConnectionWrapper,
    TransactionalDBClient,
    TransactionContext,
)
from tortoise.exceptions import TransactionManagementError

# What asyncpg says when a connection is given back whose holder its own clean-up already freed.
_FREE_HOLDER = "called on a free connection holder"


class HeldConnection(TransactionWrapper):
    """The pooled client as its owner task sees it inside `one_connection()`: every statement on one
    connection, taken from the pool at the first. Other tasks get the pool, as outside the block."""

    def __init__(self, pooled: AsyncpgDBClient) -> None:
        super().__init__(pooled)
        self._owner = asyncio.current_task()

    def owned_here(self) -> bool:
        return asyncio.current_task() is self._owner

    async def take(self) -> asyncpg.Connection:
        """The held connection, taken from the pool if the block has not taken it yet."""
        if self._connection is None:
            # The pool is made at its first use, as tortoise's own wrapper makes it.
            await PoolConnectionWrapper(self._parent, self._parent._pool_init_lock).ensure_connection()
            self._connection = await self._pool_of_parent().acquire()
        return self._connection

    async def give_back(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            # The pool rolls back a transaction a cancellation left open before anyone else gets it.
            await self._pool_of_parent().release(connection)
        except asyncpg.InternalClientError as error:
            # PostgreSQL ended the connection while the block held it (a terminated backend, a restart):
            # asyncpg's clean-up already took its holder back, and there is nothing left to give. Raising
            # here would hide the block's own error (the ended connection), which is answered "busy".
            if _FREE_HOLDER not in str(error):
                raise

    def _pool_of_parent(self) -> asyncpg.Pool:
        pool = self._parent._pool
        if pool is None:
            raise RuntimeError("the pooled client has no pool yet")
        return pool

    # Another task's statements go to the pool: the two context managers share one protocol.
    def acquire_connection(  # type: ignore[override]
        self,
    ) -> ConnectionWrapper[asyncpg.Connection] | PoolConnectionWrapper[asyncpg.Connection]:
        if not self.owned_here():
            return self._parent.acquire_connection()
        return _OnHeldConnection(self._lock, self)

    def _in_transaction(self) -> TransactionContext:
        if not self.owned_here():
            return self._parent._in_transaction()
        return HeldTransactionContext(self)

    async def execute_many(self, query: str, values: list[Any]) -> None:
        # As the pool's client does it: all rows or none, in a transaction of their own.
        await AsyncpgDBClient.execute_many(self, query, values)


class _OnHeldConnection(ConnectionWrapper[asyncpg.Connection]):
    """One statement's turn on the held connection (taken at the first)."""

    client: HeldConnection

    async def __aenter__(self) -> asyncpg.Connection:
        await self._lock.acquire()
        try:
            self.connection = await self.client.take()
        except BaseException:
            self._lock.release()
            raise
        return self.connection


class HeldTransactionContext(TransactionContext):
    """A transaction on the held connection: BEGIN and COMMIT on it, the connection kept after. How
    `db.transaction` and tortoise's own `in_transaction` (its `get_or_create`) open one in a block."""

    __slots__ = ("client", "held", "token")

    def __init__(self, held: HeldConnection) -> None:
        self.held = held
        self.client = TransactionWrapper(held._parent)

    async def connect(self) -> None:
        self.client._connection = await self.held.take()

    async def __aenter__(self) -> TransactionalDBClient:
        await self.connect()
        await self.client.begin()
        self.token = connections.set(self.client.connection_name, self.client)
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            if not self.client._finalized:
                if exc_type is None:
                    await self.client.commit()
                elif exc_type is not TransactionManagementError:
                    await self.client.rollback()
        finally:
            connections.reset(self.token)


@asynccontextmanager
async def one_connection(connection_name: str = "default") -> AsyncIterator[None]:
    """Run the block's statements on one pooled connection (see the module docstring)."""
    current = connections.get(connection_name)
    if not isinstance(current, AsyncpgDBClient) or isinstance(current, TransactionWrapper):
        yield
        return
    held = HeldConnection(current)
    token = connections.set(connection_name, held)
    try:
        yield
    finally:
        connections.reset(token)
        await held.give_back()
