"""Apply the migrations in `db/migrations` to a database URL (what `payql migrate` runs).

On PostgreSQL the run holds an advisory lock, so several instances starting together migrate once:
the first applies, the others wait and then find nothing to do. Never apply a migration outside
that lock.

The lock is a transaction's (`pg_try_advisory_xact_lock`), in a transaction held open on its own
connection for the whole run, not a session's: behind PgBouncer in transaction mode a session lock
is taken on one server connection and its unlock may run on another, leaving the lock held on a
pooled connection and the next run waiting for it. A transaction keeps its server connection, and
ends its lock however it ends (a crash closes the connection and PostgreSQL rolls back). A run
that finds the lock taken ends its transaction and tries again shortly, rather than wait inside it:
waiting runs would each hold a server connection, and with as many of them as PgBouncer's pool has
connections, the run holding the lock would find none left to migrate with. That connection
prepares no named statements either, which transaction pooling cannot keep.
"""

from __future__ import annotations

import asyncio

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api.migrate import migrate

from db.config import tortoise_config

# Any constant shared by every PayQL version; "PayQLmig" in ASCII.
MIGRATION_LOCK_KEY = 0x5061_7951_4C6D_6967
# How long a run that found the lock taken waits before it tries again (a migration takes seconds).
LOCK_RETRY_SECONDS = 0.2


async def apply_migrations(database_url: str) -> None:
    """Bring the schema up to the latest migration; safe to run on every start, and at once from
    several processes."""
    if not database_url.startswith(("postgres://", "postgresql://", "asyncpg://", "psycopg://")):
        await _migrate(database_url)  # SQLite: one process owns the file
        return
    lock_holder = await _connect(database_url)
    try:
        while True:
            async with lock_holder.transaction():
                if await lock_holder.fetchval("SELECT pg_try_advisory_xact_lock($1)", MIGRATION_LOCK_KEY):
                    await _migrate(database_url)
                    return
            await asyncio.sleep(LOCK_RETRY_SECONDS)
    finally:
        await lock_holder.close()


async def _migrate(database_url: str) -> None:
    try:
        await migrate(config=tortoise_config(database_url))
    finally:
        await Tortoise.close_connections()


async def _connect(database_url: str) -> asyncpg.Connection:
    """A plain connection with the same credentials Tortoise reads from the URL, without asyncpg's
    cache of named prepared statements (it runs one statement)."""
    credentials = expand_db_url(database_url)["credentials"]
    return await asyncpg.connect(
        host=credentials.get("host"),
        port=credentials.get("port"),
        user=credentials.get("user"),
        password=credentials.get("password"),
        database=credentials.get("database"),
        ssl=credentials.get("ssl"),
        statement_cache_size=0,
    )
