"""Several instances starting together run `payql migrate` at once: the PostgreSQL advisory lock
makes them migrate once, and every one of them exits 0."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.backends import Backend
from tests.db.test_migrations import fresh_database
from tests.processes import cli
from tests.testkit import TEST_DATA_KEY_ENV

__all__ = ["fresh_database"]  # a fixture, used by name


async def test_concurrent_migrates_apply_each_migration_once(backend: Backend, fresh_database: str) -> None:
    if not backend.is_postgres:
        pytest.skip("the advisory lock is PostgreSQL's; proven with PAYQL_TEST_BACKEND=servers")
    env = {"PAYQL_ENVIRONMENT": "development", "PAYQL_DATABASE_URL": fresh_database} | TEST_DATA_KEY_ENV
    results = await asyncio.gather(*(cli(env, "migrate", check=False) for _ in range(3)))
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    connection = await asyncpg.connect(fresh_database.replace("postgres://", "postgresql://", 1))
    try:
        names = [row["name"] for row in await connection.fetch("SELECT name FROM tortoise_migrations")]
    finally:
        await connection.close()
    assert names and len(names) == len(set(names))
