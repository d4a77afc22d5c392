"""The process's data keys: `PAYQL_DATA_KEYS` and `PAYQL_DATA_INDEX_KEY`, or, in development, a
per-installation file (`PAYQL_DATA_KEYS_FILE`, default data/data-keys, mode 0600) generated on first
use, so a fresh checkout encrypts without any set-up.

Never in production: settings refuse to start there without both variables. Never print or log a key.
"""

from __future__ import annotations

import os
from pathlib import Path

from db.encryption import DataKeys, generate_key
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
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"{KEYS_NAME}={generate_key()}\n{INDEX_NAME}={generate_key()}\n")
        try:
            os.link(draft, path)  # fails if another process got there first: its keys win
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    values = dict(
        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    missing = {KEYS_NAME, INDEX_NAME} - set(values)
    if missing:
        raise SettingsError(f"{path}: no {', '.join(sorted(missing))} line; delete the file only if no data uses it")
    return {name: values[name].strip() for name in (KEYS_NAME, INDEX_NAME)}
