"""Development data keys: generated once per installation, owner-only, refused when others can read them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from payql.data_keys import INDEX_NAME, KEYS_NAME, development_keys
from payql.settings import SettingsError


def test_the_keys_are_made_once_and_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data-keys"
    first = development_keys(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert development_keys(path) == first and set(first) == {KEYS_NAME, INDEX_NAME}


def test_a_keys_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data-keys"
    development_keys(path)
    path.chmod(0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        development_keys(path)
