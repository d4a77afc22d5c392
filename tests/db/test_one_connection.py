"""`one_connection()`: a block's statements share one pooled connection, taken at the first and given
back at the end, whatever ends the block; transactions in it run on that connection; other tasks
never use it. On SQLite the block changes nothing, and its statements and transactions work as
anywhere."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from tortoise import connections
from tortoise.backends.asyncpg.client import TransactionWrapper

from db.models import Customer
from db.one_connection import HeldConnection, one_connection
from db.transaction import transaction
from payql.retry_later import is_exhaustion
from tests.backends import Backend
from tests.database_held import assert_nothing_held, every_pooled_connection, is_sqlite, within_bound

pytestmark = pytest.mark.usefixtures("server")

BACKEND_PID = "SELECT pg_backend_pid() AS pid"


def pool_or_skip() -> asyncpg.Pool:
    client = connections.get("default")
    if is_sqlite(client):
        pytest.skip("the connection pool is PostgreSQL's; proven with PAYQL_TEST_BACKEND=servers")
    pool: asyncpg.Pool = client._pool
    return pool


async def backend_pid() -> int:
    rows = await connections.get("default").execute_query_dict(BACKEND_PID)
    return int(rows[0]["pid"])


async def assert_every_pooled_connection_is_free_now() -> None:
    """Without waiting for anything to finish: every connection in the pool can run a statement at
    once, outside any transaction (none was given back mid-statement or mid-transaction)."""
    client = connections.get("default")
    if is_sqlite(client):
        return
    async with every_pooled_connection(client._pool) as taken:
        for connection in taken:
            assert not connection.is_in_transaction(), "a connection was given back inside a transaction"
            assert await connection.fetchval("SELECT 1") == 1


def marker() -> str:
    return f"one-connection-{uuid.uuid4().hex}"


async def test_the_statements_and_transactions_of_a_block_run_on_one_connection() -> None:
    pool_or_skip()
    async with one_connection():
        first = await backend_pid()
        assert await backend_pid() == first
        async with transaction():
            assert await backend_pid() == first
            async with transaction():  # a savepoint
                assert await backend_pid() == first
        assert await backend_pid() == first
        async with one_connection():  # a block in a block changes nothing
            assert await backend_pid() == first
    await assert_nothing_held()


async def test_the_connection_is_taken_at_the_first_statement_and_goes_back_when_the_block_ends() -> None:
    pool_or_skip()
    async with one_connection():
        held = connections.get("default")
        assert isinstance(held, HeldConnection)
        assert held._connection is None, "nothing is taken before the first statement"
        first = await backend_pid()
        assert held._connection is not None
    assert held._connection is None
    # Every pooled connection can be taken, the block's among them: it went back to the pool.
    async with every_pooled_connection(connections.get("default")._pool) as taken:
        pids = [await connection.fetchval("SELECT pg_backend_pid()") for connection in taken]
        assert first in pids
    await assert_nothing_held()


async def test_a_task_started_in_the_block_runs_on_another_connection() -> None:
    pool_or_skip()
    async with one_connection():
        held = await backend_pid()
        # The task sees the block's client (it copied the context) and must not use its connection.
        assert await asyncio.create_task(backend_pid()) != held
        async with transaction():
            assert await backend_pid() == held
        name = marker()

        async def create_in_a_transaction() -> None:
            async with transaction():
                await Customer.create(external_id=name)

        await asyncio.create_task(create_in_a_transaction())
        assert await Customer.filter(external_id=name).exists()
        assert await backend_pid() == held
    await assert_nothing_held()


async def test_what_a_block_commits_stays_and_what_its_failed_transaction_wrote_does_not() -> None:
    kept, rolled_back = marker(), marker()
    async with one_connection():
        async with transaction():
            await Customer.create(external_id=kept)
        with pytest.raises(RuntimeError):
            async with transaction():
                await Customer.create(external_id=rolled_back)
                raise RuntimeError("the transaction fails")
        # The block goes on after the failed transaction, on the same connection.
        assert await Customer.filter(external_id=kept).exists()
        assert not await Customer.filter(external_id=rolled_back).exists()
        customer, created = await Customer.get_or_create(external_id=marker())  # tortoise's own transaction
        assert created and customer.id is not None
    assert await Customer.filter(external_id=kept).exists()
    assert not await Customer.filter(external_id=rolled_back).exists()
    await assert_nothing_held()


async def test_a_block_that_raises_gives_its_connection_back() -> None:
    with pytest.raises(RuntimeError):
        async with one_connection():
            await Customer.create(external_id=marker())
            raise RuntimeError("the block fails")
    await assert_nothing_held()


async def test_a_block_cancelled_in_a_statement_or_in_its_transaction_gives_its_connection_back() -> None:
    client = connections.get("default")
    name = marker()
    started = asyncio.Event()

    async def slow_statement() -> None:
        async with one_connection():
            await Customer.create(external_id=f"{name}-before")
            started.set()
            await connections.get("default").execute_query("SELECT pg_sleep(30)")

    async def in_a_transaction() -> None:
        async with one_connection(), transaction():
            await Customer.create(external_id=f"{name}-in")
            started.set()
            await asyncio.Event().wait()

    # SQLite has no statement that waits; its transaction's wait stands for both.
    for work in [in_a_transaction] if is_sqlite(client) else [in_a_transaction, slow_statement]:
        started.clear()
        task = asyncio.create_task(work())
        await within_bound(started.wait(), "the block reaching its wait")
        task.cancel()
        await within_bound(asyncio.wait([task]), "the cancelled block ending")
        assert task.cancelled()
        await assert_nothing_held()
    assert not await Customer.filter(external_id=f"{name}-in").exists(), "a cancelled transaction committed"


def cancellation_turns() -> Iterator[int]:
    """Loop turns to let a block run before cancelling it: every count up to 200, then a tenth more each
    time. A block ends after a number of turns that grows with how long its database takes to answer
    (on a loaded machine, thousands), and while it waits for an answer, one turn more is no new point."""
    turns = 0
    while turns < CANCELLATION_TURNS_BOUND:
        yield turns
        turns = turns + 1 if turns < 200 else turns + turns // 10


CANCELLATION_TURNS_BOUND = 1_000_000


async def test_a_transaction_cancelled_while_it_opens_on_the_blocks_connection_leaves_nothing_open() -> None:
    name = marker()
    for turns in cancellation_turns():
        progress: list[str] = []

        async def block(turns_seen: int = turns, progress: list[str] = progress) -> None:
            async with one_connection():
                await connections.get("default").execute_query("SELECT 1")
                async with transaction():
                    await Customer.create(external_id=f"{name}-{turns_seen}")
                    progress.append("body done")

        task = asyncio.create_task(block())
        for _ in range(turns):
            await asyncio.sleep(0)
        ended_first = task.done()
        task.cancel()
        await within_bound(asyncio.wait([task]), "the cancelled block ending")
        await assert_every_pooled_connection_is_free_now()
        await assert_nothing_held()
        committed = await Customer.filter(external_id=f"{name}-{turns}").exists()
        assert committed == bool(progress), "a cancelled transaction committed part of its work, or lost it"
        if ended_first:
            return
    raise AssertionError(f"the block did not end within {CANCELLATION_TURNS_BOUND} loop turns")


async def test_a_caller_cancelled_while_its_transaction_opens_on_the_blocks_connection_waits_for_the_begin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its block gives the connection back as the caller leaves: never with a BEGIN still on the way."""
    pool_or_skip()
    beginning, go_on = asyncio.Event(), asyncio.Event()
    begin = TransactionWrapper.begin

    async def slow_begin(self: TransactionWrapper) -> None:
        beginning.set()
        await go_on.wait()
        await begin(self)

    monkeypatch.setattr(TransactionWrapper, "begin", slow_begin)
    name = marker()

    async def block() -> None:
        async with one_connection():
            await connections.get("default").execute_query("SELECT 1")
            async with transaction():
                await Customer.create(external_id=name)

    task = asyncio.create_task(block())
    await within_bound(beginning.wait(), "the transaction beginning")
    task.cancel()
    for _ in range(50):
        await asyncio.sleep(0)
    waited = not task.done()
    go_on.set()
    assert waited, "the caller left while its BEGIN was on the way"
    await within_bound(asyncio.wait([task]), "the cancelled block ending")
    assert task.cancelled()
    await assert_every_pooled_connection_is_free_now()
    await assert_nothing_held()
    assert not await Customer.filter(external_id=name).exists()


async def test_a_connection_postgresql_ends_while_a_block_holds_it_is_answered_busy_and_the_pool_serves_on(
    backend: Backend,
) -> None:
    """`pg_terminate_backend` between two of the block's statements (the chaos campaign's fault): the next
    statement fails with an error `payql.retry_later` answers "busy, retry" (it was "Unexpected error."),
    the block ends with that error, and the pool serves the next request."""
    pool_or_skip()
    assert backend.admin_postgres_url is not None
    admin = await asyncpg.connect(backend.admin_postgres_url.replace("postgres://", "postgresql://", 1))
    try:
        with pytest.raises(asyncpg.InterfaceError) as raised:
            async with one_connection():
                pid = await backend_pid()
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
                ended = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1"
                while not await admin.fetchval(ended, pid):
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)  # asyncpg reads the server's goodbye
                await backend_pid()
    finally:
        await admin.close()
    assert is_exhaustion(raised.value)
    assert await backend_pid() > 0
    await assert_every_pooled_connection_is_free_now()


class RefusingPool:
    """A pool whose give-back is refused with `message`, as asyncpg's is for a holder it already freed."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.refused: list[asyncpg.pool.PoolConnectionProxy] = []

    async def release(self, connection: asyncpg.pool.PoolConnectionProxy) -> None:
        self.refused.append(connection)
        raise asyncpg.InternalClientError(self.message)


async def test_giving_back_a_connection_asyncpg_already_took_back_is_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asyncpg refuses to release a holder its own clean-up freed after the server ended the connection
    (seen once in the chaos campaign); the block's end must not turn that into an error of its own.
    Any other refusal still raises. The refused connections are given back for real afterwards."""
    await connections.get("default").execute_query("SELECT 1")  # the pool is made at the first use
    pool = pool_or_skip()
    freed = RefusingPool("PoolConnectionHolder.release() called on a free connection holder")
    other = RefusingPool("something else")
    try:
        async with one_connection():
            await backend_pid()
            monkeypatch.setattr(HeldConnection, "_pool_of_parent", lambda _: freed)
        monkeypatch.undo()
        with pytest.raises(asyncpg.InternalClientError, match="something else"):
            async with one_connection():
                await backend_pid()
                monkeypatch.setattr(HeldConnection, "_pool_of_parent", lambda _: other)
    finally:
        monkeypatch.undo()
        for connection in [*freed.refused, *other.refused]:
            await pool.release(connection)
    assert len(freed.refused) == len(other.refused) == 1
    await assert_every_pooled_connection_is_free_now()
