"""The Tortoise configuration and connection lifecycle, built from a database URL.

On PostgreSQL the pool gives a connection back without asyncpg's reset query (`pg_advisory_unlock_all;
CLOSE ALL; UNLISTEN *; RESET ALL`): one round trip per checkout of a pooled connection, about a dozen
per payment, to undo session state PayQL never sets. asyncpg still rolls back a transaction left open
(a cancelled request) before any reset, so a connection never goes back to the pool mid-transaction.
Never here, nor on a pooled connection anywhere: `SET` (use `SET LOCAL`), `LISTEN`, advisory locks,
cursors held open past their transaction. The migration lock uses a connection of its own
(`db.migrate`) for that reason. The same rules let PayQL run behind PgBouncer in transaction mode
(`tests/deploy/test_pgbouncer.py`).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url

from db.encryption import DataKeys, install_data_keys

MODEL_MODULES = ["db.models", "db.merchant_models"]
APP_LABEL = "models"
_ASYNCPG_ENGINE = "tortoise.backends.asyncpg"


async def keep_session(_: asyncpg.Connection) -> None:
    """The pool's reset: nothing to undo (see the module docstring); asyncpg rolled back already."""


def connection_config(database_url: str) -> str | dict[str, Any]:
    """The URL as Tortoise reads it, plus, on PostgreSQL, the pool's reset-free release."""
    expanded = expand_db_url(database_url)
    if expanded["engine"] != _ASYNCPG_ENGINE:
        return database_url
    expanded["credentials"]["reset"] = keep_session
    return expanded


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": connection_config(database_url)},
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "db.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def open_database(database_url: str, data_keys: DataKeys) -> None:
    """Connect, with the keys that seal and open the personal data columns installed first."""
    install_data_keys(data_keys)
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()
