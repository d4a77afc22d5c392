"""Apply the migrations in `db/migrations` to a database URL (what `payql migrate` runs)."""

from __future__ import annotations

from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate

from db.config import tortoise_config


async def apply_migrations(database_url: str) -> None:
    """Bring the schema up to the latest migration; safe to run on every start."""
    try:
        await migrate(config=tortoise_config(database_url))
    finally:
        await Tortoise.close_connections()
