"""The capacity settings: pool sizes, waits, in-flight and queue limits refuse nonsense at start-up,
naming the variable."""

from __future__ import annotations

import pytest

from payql.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("variable", "refused", "accepted"),
    [
        ("PAYQL_REDIS_MAX_CONNECTIONS", "1", "20"),
        ("PAYQL_REDIS_POOL_TIMEOUT_SECONDS", "0", "0.5"),
        ("PAYQL_MAX_IN_FLIGHT_REQUESTS", "0", "64"),
        ("PAYQL_LIVE_UPDATE_QUEUE_SIZE", "0", "8"),
    ],
)
def test_a_capacity_setting_out_of_range_fails_start_up_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, refused: str, accepted: str
) -> None:
    monkeypatch.setenv(variable, refused)
    with pytest.raises(SettingsError, match=variable):
        load_settings()
    monkeypatch.setenv(variable, accepted)
    field = variable.removeprefix("PAYQL_").lower()
    assert str(getattr(load_settings(), field)) == accepted
