"""The GraphQL work limits: defaults, values from the environment, and refused values named."""

from __future__ import annotations

import os

import pytest

from payql.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def empty_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PAYQL_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.graphql_max_fields, settings.graphql_max_cost, settings.graphql_default_list_size) == (
        1000,
        50_000,
        10,
    )


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYQL_GRAPHQL_MAX_FIELDS", "400")
    monkeypatch.setenv("PAYQL_GRAPHQL_MAX_COST", "20000")
    monkeypatch.setenv("PAYQL_GRAPHQL_DEFAULT_LIST_SIZE", "25")
    settings = load_settings()
    assert (settings.graphql_max_fields, settings.graphql_max_cost, settings.graphql_default_list_size) == (
        400,
        20_000,
        25,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PAYQL_GRAPHQL_MAX_FIELDS", "0"),
        ("PAYQL_GRAPHQL_MAX_FIELDS", "1000000"),  # validation work grows with it: capped
        ("PAYQL_GRAPHQL_MAX_COST", "10"),
        ("PAYQL_GRAPHQL_MAX_COST", "many"),
        ("PAYQL_GRAPHQL_DEFAULT_LIST_SIZE", "0"),
    ],
)
def test_a_bad_limit_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert variable in str(caught.value)
