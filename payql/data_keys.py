"""The process's data keys: `PAYQL_DATA_KEYS` and `PAYQL_DATA_INDEX_KEY`, or, in development, a
per-installation file (`PAYQL_DATA_KEYS_FILE`, default data/data-keys, mode 0600) generated on first
use, so a fresh checkout encrypts without any set-up.

Never in production: settings refuse to start there without both variables. Never print or log a key.
"""

from __future__ import annotations

from pathlib import Path

from db.encryption import DataKeys, generate_key
from payql.installation_secrets import refuse_if_others_can_read, write_private_once
from payql.settings import Settings, SettingsError

KEYS_NAME = "PAYQL_DATA_KEYS"
INDEX_NAME = "PAYQL_DATA_INDEX_KEY"


def load_data_keys(settings: Settings) -> DataKeys:
    keys = settings.data_keys.get_secret_value() if settings.data_keys else None
    index_key = settings.data_index_key.get_secret_value() if settings.data_index_key else None
    if keys is None or index_key is None:
        if settings.is_production:
            raise SettingsError(f"{KEYS_NAME} and {INDEX_NAME} are required in production")
        stored = development_keys(settings.data_keys_file)
        keys = keys or stored[KEYS_NAME]
        index_key = index_key or stored[INDEX_NAME]
    return DataKeys.parse(keys, index_key)


def development_keys(path: Path) -> dict[str, str]:
    """The installation's generated keys, written once (atomically, readable by the owner only)."""
    if not path.exists():
        write_private_once(path, f"{KEYS_NAME}={generate_key()}\n{INDEX_NAME}={generate_key()}\n")
    refuse_if_others_can_read(path)
    values = dict(
        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    missing = {KEYS_NAME, INDEX_NAME} - set(values)
    if missing:
        raise SettingsError(f"{path}: no {', '.join(sorted(missing))} line; delete the file only if no data uses it")
    return {name: values[name].strip() for name in (KEYS_NAME, INDEX_NAME)}
