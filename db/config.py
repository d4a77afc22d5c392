"""The Tortoise configuration and connection lifecycle, built from a database URL."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise

from db.encryption import DataKeys, install_data_keys

MODEL_MODULES = ["db.models", "db.merchant_models"]
APP_LABEL = "models"


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
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
