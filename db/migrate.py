"""Apply the migrations in `db/migrations` to a database URL (what `payql migrate` runs).

On PostgreSQL the run holds a session advisory lock, so several instances starting together
migrate once: the first applies, the others wait and then find nothing to do. Never apply a
migration outside that lock.
"""

from __future__ import annotations

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api.migrate import migrate

from db.config import tortoise_config

# Any constant shared by every PayQL version; "PayQLmig" in ASCII.
MIGRATION_LOCK_KEY = 0x5061_7951_4C6D_6967


async def apply_migrations(database_url: str) -> None:
    """Bring the schema up to the latest migration; safe to run on every start, and at once from
    several processes."""
    if not database_url.startswith(("postgres://", "postgresql://", "asyncpg://", "psycopg://")):
        await _migrate(database_url)  # SQLite: one process owns the file
        return
    lock_holder = await _connect(database_url)
    try:
        # Session-level: held until released or the connection ends, so a crash releases it too.
        await lock_holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            await _migrate(database_url)
        finally:
            await lock_holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await lock_holder.close()


async def _migrate(database_url: str) -> None:
    try:
        await migrate(config=tortoise_config(database_url))
    finally:
        await Tortoise.close_connections()


async def _connect(database_url: str) -> asyncpg.Connection:
    """A plain connection with the same credentials Tortoise reads from the URL."""
    credentials = expand_db_url(database_url)["credentials"]
    return await asyncpg.connect(
        host=credentials.get("host"),
        port=credentials.get("port"),
        user=credentials.get("user"),
        password=credentials.get("password"),
        database=credentials.get("database"),
        ssl=credentials.get("ssl"),
    )
