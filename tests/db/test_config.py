"""The PostgreSQL pool's reset-free release (`db.config`): a connection goes back to the pool
without the reset round trip, and still never with a transaction open."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from tortoise import connections

from db.models import Customer
from tests.database_held import assert_nothing_held, is_sqlite


async def test_a_connection_given_back_mid_transaction_comes_back_rolled_back(server: str) -> None:
    client = connections.get("default")
    if is_sqlite(client):
        pytest.skip("the connection pool is PostgreSQL's; proven with PAYQL_TEST_BACKEND=servers")
    await client.execute_query("SELECT 1")  # the pool is made on first use
    pool: asyncpg.Pool = client._pool
    marker = f"given-back-{uuid.uuid4().hex}"
    sent: list[str] = []
    connection = await pool.acquire()
    connection.add_query_logger(lambda record: sent.append(record.query))
    await connection.execute("BEGIN")
    await connection.execute(
        "INSERT INTO customers (id, external_id, gateway_references, created_at) VALUES ($1, $2, '{}', now())",
        uuid.uuid4(),
        marker,
    )
    await pool.release(connection)

    assert sent[-1] == "ROLLBACK", "the open transaction was rolled back, and nothing else was sent"
    assert not await Customer.filter(external_id=marker).exists()
    await assert_nothing_held()
