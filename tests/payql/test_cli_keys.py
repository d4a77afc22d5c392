"""`payql keys`: generate prints a fresh key; rotate re-seals a database under the current key and
exits 0 (again: nothing to do), 1 when a value opens with no listed key (listed, left untouched) and
2 on bad or missing keys; development generates its keys once, readable by the owner only.

Each test works on a database of its own, so the session's server keeps its keys and data.
"""

from __future__ import annotations

import base64
import stat
from pathlib import Path

from db.encryption import PREFIX, DataKeys, key_id
from tests.db.test_encrypted_fields import NEW_KEY, OLD_KEY, rows_child, sealed_values
from tests.db.test_migrations import child, fresh_database
from tests.processes import cli
from tests.testkit import TEST_DATA_INDEX_KEY

__all__ = ["fresh_database"]  # a fixture, used by name


def env_for(url: str, tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {
        "PAYQL_ENVIRONMENT": "development",
        "PAYQL_DATABASE_URL": url,
        "PAYQL_SANDBOX_STATE_PATH": str(tmp_path / "sandbox.sqlite3"),
        "PAYQL_DATA_KEYS_FILE": str(tmp_path / "data-keys"),
        "PAYQL_DATA_INDEX_KEY": TEST_DATA_INDEX_KEY,
    } | overrides


def id_of(key: str) -> str:
    return key_id(DataKeys.parse(key, TEST_DATA_INDEX_KEY).keys[0])


async def sealed_database(url: str) -> None:
    await child("migrate", url)
    await rows_child("seed", url, OLD_KEY)


async def test_generate_prints_a_new_32_byte_key(tmp_path: Path) -> None:
    env = env_for("sqlite://:memory:", tmp_path)
    first, second = [(await cli(env, "keys", "generate")).stdout.strip() for _ in range(2)]
    assert len(base64.urlsafe_b64decode(first)) == 32 and first != second


async def test_rotate_reseals_under_the_current_key_and_a_second_run_has_nothing_to_do(
    fresh_database: str, tmp_path: Path, server: str
) -> None:
    await sealed_database(fresh_database)
    env = env_for(fresh_database, tmp_path, PAYQL_DATA_KEYS=f"{NEW_KEY},{OLD_KEY}")

    first = await cli(env, "keys", "rotate", "--batch-size", "1")
    assert "customers.email: 1 re-sealed, 0 re-indexed, 0 unreadable" in first.stdout.splitlines()
    assert f"current key {id_of(NEW_KEY)}; keys in use: {id_of(NEW_KEY)}" in first.stdout
    stored = await sealed_values(fresh_database)
    assert {value[: len(PREFIX) + 8] for values in stored.values() for value in values} == {f"{PREFIX}{id_of(NEW_KEY)}"}

    again = await cli(env, "keys", "rotate")
    assert again.returncode == 0
    assert all(" 0 re-sealed, 0 re-indexed, 0 unreadable" in line for line in again.stdout.splitlines()[:-1])
    assert await sealed_values(fresh_database) == stored


async def test_rotate_without_the_key_that_sealed_a_value_lists_it_leaves_it_and_exits_1(
    fresh_database: str, tmp_path: Path, server: str
) -> None:
    await sealed_database(fresh_database)
    before = await sealed_values(fresh_database)
    result = await cli(env_for(fresh_database, tmp_path, PAYQL_DATA_KEYS=NEW_KEY), "keys", "rotate", check=False)
    assert result.returncode == 1
    assert "customers.email: 0 re-sealed, 0 re-indexed, 1 unreadable" in result.stdout.splitlines()
    assert any(line.startswith("unreadable\tcustomers.email\t") for line in result.stderr.splitlines())
    assert f"keys in use: {id_of(OLD_KEY)}" in result.stdout
    assert await sealed_values(fresh_database) == before


async def test_rotate_refuses_a_malformed_key_naming_the_variable_not_the_key(tmp_path: Path) -> None:
    env = env_for("sqlite://:memory:", tmp_path, PAYQL_DATA_KEYS=f"{NEW_KEY},c2hvcnQ=")
    result = await cli(env, "keys", "rotate", check=False)
    assert result.returncode == 2
    assert "PAYQL_DATA_KEYS: key 2: a key is 32 bytes of base64, this one is 5" in result.stderr
    assert NEW_KEY not in result.stderr + result.stdout


async def test_production_refuses_to_run_without_data_keys(tmp_path: Path) -> None:
    env = env_for("postgres://payql@db.internal/payql", tmp_path, PAYQL_ENVIRONMENT="production")
    result = await cli(env, "keys", "rotate", check=False)
    assert result.returncode == 2
    assert "PAYQL_DATA_KEYS: production encrypts personal data" in result.stderr
    assert not (tmp_path / "data-keys").exists()


async def test_development_generates_its_keys_once_for_the_owner_only(
    fresh_database: str, tmp_path: Path, server: str
) -> None:
    await child("migrate", fresh_database)
    env = env_for(fresh_database, tmp_path)
    del env["PAYQL_DATA_INDEX_KEY"]
    first = await cli(env, "keys", "rotate")
    key_file = tmp_path / "data-keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    generated = key_file.read_text()
    assert (await cli(env, "keys", "rotate")).stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    assert key_file.read_text() == generated
