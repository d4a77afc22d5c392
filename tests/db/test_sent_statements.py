"""`db.sent_statements`: a written-out statement runs where tortoise would run it (the transaction's
connection under its lock, a `one_connection()` block's, the pool's) and fails as tortoise fails it,
on both dialects."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError, OperationalError

from db import sent_statements
from db.models import Product
from db.one_connection import one_connection
from db.placeholders import for_connection
from db.transaction import transaction
from tests.database_held import assert_nothing_held, is_sqlite

pytestmark = pytest.mark.usefixtures("server")

INSERT = 'INSERT INTO "products" ("id", "name", "description", "active", "created_at") VALUES ($1, $2, $3, $4, $5)'
NAME_OF = 'SELECT "name", "active" FROM "products" WHERE "id" = $1'
BACKEND_PID = "SELECT pg_backend_pid()"


def sql(statement: str) -> str:
    return for_connection(statement, connections.get("default"))


async def insert_product(name: str) -> str:
    product_id = str(uuid.uuid4())
    product = Product(id=product_id, name=name)
    created = Product._meta.fields_map["created_at"].to_db_value(None, product)
    await sent_statements.execute(connections.get("default"), sql(INSERT), [product_id, name, "", True, created])
    return product_id


async def test_rows_come_back_by_column_name_and_a_value_is_none_without_a_row() -> None:
    name = f"sent-{uuid.uuid4().hex}"
    product_id = await insert_product(name)
    client = connections.get("default")
    rows = await sent_statements.fetch(client, sql(NAME_OF), [product_id])
    assert [(row["name"], bool(row["active"])) for row in rows] == [(name, True)]
    assert await sent_statements.fetch_value(client, sql(NAME_OF), [product_id]) == name
    assert await sent_statements.fetch_value(client, sql(NAME_OF), [str(uuid.uuid4())]) is None
    assert (await Product.get(id=product_id)).name == name


async def test_a_unique_violation_is_tortoises_integrity_error_and_the_transaction_keeps_nothing() -> None:
    product_id = await insert_product("first")
    other_id = str(uuid.uuid4())
    with pytest.raises(IntegrityError):
        async with transaction() as connection:
            created = Product._meta.fields_map["created_at"].to_db_value(None, Product())
            await sent_statements.execute(connection, sql(INSERT), [other_id, "kept?", "", True, created])
            await sent_statements.execute(connection, sql(INSERT), [product_id, "again", "", True, created])
    assert not await Product.filter(id=other_id).exists()
    await assert_nothing_held()


async def test_a_statement_the_database_refuses_is_tortoises_operational_error() -> None:
    with pytest.raises(OperationalError):
        await sent_statements.fetch(connections.get("default"), "SELECT no_such_column FROM products", [])
    await assert_nothing_held()


async def test_an_error_tortoise_lets_through_is_asyncpgs_own() -> None:
    client = connections.get("default")
    if is_sqlite(client):
        pytest.skip("asyncpg's errors are PostgreSQL's; proven with PAYQL_TEST_BACKEND=servers")
    with pytest.raises(asyncpg.QueryCanceledError):
        async with transaction() as connection:
            await sent_statements.execute(connection, "SET LOCAL statement_timeout = 1", [])
            await sent_statements.fetch(connection, "SELECT pg_sleep($1::float)", [1.0])
    await assert_nothing_held()


async def test_statements_of_many_tasks_in_one_transaction_take_its_connection_in_turn() -> None:
    # asyncpg refuses a second statement on a connection while one runs: the transaction's lock,
    # taken as tortoise takes it, is what keeps them in turn.
    names = [f"turn-{uuid.uuid4().hex}" for _ in range(20)]
    async with transaction():
        ids = await asyncio.gather(*(insert_product(name) for name in names))
        client = connections.get("default")
        found = await asyncio.gather(*(sent_statements.fetch_value(client, sql(NAME_OF), [i]) for i in ids))
    assert found == names
    assert await Product.filter(id__in=ids).count() == len(names)
    await assert_nothing_held()


async def test_a_blocks_statements_run_on_its_connection_and_another_tasks_on_the_pool() -> None:
    client = connections.get("default")
    if is_sqlite(client):
        pytest.skip("the connection pool is PostgreSQL's; proven with PAYQL_TEST_BACKEND=servers")
    async with one_connection():
        held = connections.get("default")
        first = await sent_statements.fetch_value(held, BACKEND_PID, [])
        assert await sent_statements.fetch_value(held, BACKEND_PID, []) == first
        async with transaction() as connection:
            assert await sent_statements.fetch_value(connection, BACKEND_PID, []) == first
        # Another task: the block's connection is never shared, so its statement takes its own.
        other = await asyncio.create_task(sent_statements.fetch_value(held, BACKEND_PID, []))
        assert other != first
    await assert_nothing_held()
