"""Which backing services a test run uses, chosen by PAYQL_TEST_BACKEND.

`embedded` (the default): a SQLite file in a temporary folder, in-memory pub/sub and rate limits.
`servers`: a fresh PostgreSQL database and a private Redis key prefix on the servers named by
PAYQL_TEST_POSTGRES_URL and PAYQL_TEST_REDIS_URL; a missing server fails the run, never skips it.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str
    redis_url: str | None
    redis_prefix: str
    admin_postgres_url: str | None = None
    database_name: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgres")


def backend_name() -> str:
    return os.environ.get("PAYQL_TEST_BACKEND", "embedded")


async def create_backend(tmp: Path) -> Backend:
    run_id = uuid.uuid4().hex[:12]
    if backend_name() != "servers":
        return Backend("embedded", f"sqlite://{tmp / 'payql.sqlite3'}", None, f"payql_test_{run_id}:")
    admin_url = os.environ.get("PAYQL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    redis_url = os.environ.get("PAYQL_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    database = f"payql_test_{run_id}"
    connection = await asyncpg.connect(admin_url.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.ping()
    finally:
        await client.aclose()
    base, _, _ = admin_url.rpartition("/")
    return Backend(
        "servers",
        f"{base}/{database}",
        redis_url,
        f"payql_test_{run_id}:",
        admin_postgres_url=admin_url,
        database_name=database,
    )


async def destroy_backend(backend: Backend) -> None:
    if backend.admin_postgres_url and backend.database_name:
        connection = await asyncpg.connect(backend.admin_postgres_url.replace("postgres://", "postgresql://", 1))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{backend.database_name}" WITH (FORCE)')
        finally:
            await connection.close()
    if backend.redis_url:
        client = aioredis.Redis.from_url(backend.redis_url)
        try:
            # The prefix's own keys, and saq's for the job queue named after it (its list, its jobs).
            for pattern in (backend.redis_prefix, f"saq:{backend.redis_prefix}", f"saq:job:{backend.redis_prefix}"):
                keys = [key async for key in client.scan_iter(match=pattern + "*")]
                if keys:
                    await client.delete(*keys)
        finally:
            await client.aclose()
