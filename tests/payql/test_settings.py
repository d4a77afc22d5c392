"""Settings from the environment: sane defaults, one clear error per bad variable, and production
refuses development secrets, the sandbox gateway and SQLite."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from db.encryption import decode_key, generate_key
from gateways.paypal.settings import PayPalSettings
from gateways.stripe.settings import StripeSettings
from payql.data_keys import load_data_keys
from payql.settings import (
    Environment,
    Settings,
    SettingsError,
    load_settings,
)
from tests.testkit import sandbox_settings


def stripe_settings(settings: Settings) -> StripeSettings:
    found = settings.gateway("stripe")
    assert isinstance(found, StripeSettings)
    return found


def paypal_settings(settings: Settings) -> PayPalSettings:
    found = settings.gateway("paypal")
    assert isinstance(found, PayPalSettings)
    return found


VENDOR_ALIASES = ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "PAYPAL_CLIENT_ID", "PAYPAL_CLIENT_SECRET")
GOOD_SECRET = "k3y-" + "x" * 40
POSTGRES_URL = "postgres://payql:pw@db.internal:5432/payql"
DATA_KEY, OLD_DATA_KEY, INDEX_KEY = generate_key(), generate_key(), generate_key()


@pytest.fixture(autouse=True)
def empty_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PAYQL_") or name.upper() in VENDOR_ALIASES:
            monkeypatch.delenv(name)


def production(monkeypatch: pytest.MonkeyPatch, **overrides: str | None) -> None:
    """A production environment that is valid unless `overrides` break it (None unsets a variable)."""
    values = {
        "PAYQL_ENVIRONMENT": "production",
        "PAYQL_JWT_SECRET": GOOD_SECRET,
        "PAYQL_GATEWAYS": "stripe",
        "PAYQL_DATABASE_URL": POSTGRES_URL,
        "PAYQL_SMTP_HOST": "smtp.example.com",
        "PAYQL_STRIPE_SECRET_KEY": "sk_live_payql",
        "PAYQL_STRIPE_WEBHOOK_SECRETS": "whsec_live",
        "PAYQL_DATA_KEYS": f"{DATA_KEY},{OLD_DATA_KEY}",
        "PAYQL_DATA_INDEX_KEY": INDEX_KEY,
        "PAYQL_REDIS_URL": "redis://cache.internal:6379/0",
    } | overrides
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def settings_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    return str(caught.value)


def test_defaults_work_with_no_environment() -> None:
    settings = load_settings()
    assert settings.environment is Environment.DEVELOPMENT
    assert not settings.is_production
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.database_url.startswith("sqlite://")
    assert settings.redis_url is None
    assert settings.gateways == ["sandbox"]
    assert settings.cors_origins == ["http://localhost:5173", "http://127.0.0.1:5173"]
    # Development's secrets are made per installation (payql/installation_secrets.py), never defaults.
    assert settings.jwt_secret is None
    assert sandbox_settings(settings).webhook_secrets == []
    assert stripe_settings(settings).secret_key is None
    assert settings.idempotency_ttl_seconds == 24 * 3600


def test_values_come_from_payql_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYQL_PORT", "9100")
    monkeypatch.setenv("PAYQL_REDIS_URL", "redis://cache:6379/2")
    monkeypatch.setenv("PAYQL_IDEMPOTENCY_LEASE_SECONDS", "2.5")
    settings = load_settings()
    assert settings.port == 9100
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.idempotency_lease_seconds == 2.5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PAYQL_PORT", "abc"),
        ("PAYQL_PORT", "0"),
        ("PAYQL_PORT", "70000"),
        ("PAYQL_ENVIRONMENT", "staging"),
        ("PAYQL_IDEMPOTENCY_TTL_SECONDS", "5"),
        ("PAYQL_IDEMPOTENCY_LEASE_SECONDS", "-1"),
        ("PAYQL_GRAPHQL_MAX_DEPTH", "deep"),
        ("PAYQL_GRAPHQL_MAX_TOKENS", "10"),
        ("PAYQL_SANDBOX_TOKENIZE_RATE_LIMIT", "lots"),
        ("PAYQL_PAYMENT_RATE_LIMIT", "60 a minute"),
        ("PAYQL_ROUTING", "USD:stripe"),
        ("PAYQL_ROUTING", "USD sandbox"),
        ("PAYQL_CIRCUIT_FAILURE_RATE", "2"),
        ("PAYQL_GATEWAY_RETRY_ATTEMPTS", "0"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    message = settings_error(monkeypatch, **{variable: value})
    assert variable in message
    assert message.count("PAYQL_") == 1, message


def test_every_bad_variable_is_named_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    message = settings_error(monkeypatch, PAYQL_PORT="abc", PAYQL_GRAPHQL_MAX_ALIASES="0")
    assert "PAYQL_PORT" in message
    assert "PAYQL_GRAPHQL_MAX_ALIASES" in message


def test_settings_error_does_not_chain_the_pydantic_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYQL_PORT", "abc")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_production_with_development_defaults_names_each_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    message = settings_error(monkeypatch, PAYQL_ENVIRONMENT="production")
    assert "PAYQL_JWT_SECRET" in message
    assert "PAYQL_GATEWAYS" in message
    assert "PAYQL_DATABASE_URL" in message
    assert "PAYQL_SMTP_HOST" in message


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"PAYQL_JWT_SECRET": "payql-development-only-jwt-secret-change-me"}, "PAYQL_JWT_SECRET"),
        ({"PAYQL_JWT_SECRET": "short-secret"}, "PAYQL_JWT_SECRET"),
        ({"PAYQL_GATEWAYS": "stripe,sandbox"}, "PAYQL_GATEWAYS"),
        ({"PAYQL_GATEWAYS": "sandbox"}, "PAYQL_GATEWAYS"),
        ({"PAYQL_DATABASE_URL": "sqlite://data/payql.sqlite3"}, "PAYQL_DATABASE_URL"),
        ({"PAYQL_DATABASE_URL": "sqlite://:memory:"}, "PAYQL_DATABASE_URL"),
        ({"PAYQL_SMTP_HOST": None}, "PAYQL_SMTP_HOST"),
        ({"PAYQL_DATA_KEYS": None}, "PAYQL_DATA_KEYS"),
        ({"PAYQL_DATA_INDEX_KEY": None}, "PAYQL_DATA_INDEX_KEY"),
    ],
)
def test_production_refuses_one_development_setting(
    monkeypatch: pytest.MonkeyPatch, override: dict[str, str | None], variable: str
) -> None:
    production(monkeypatch, **override)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert variable in message
    others = {
        "PAYQL_JWT_SECRET",
        "PAYQL_GATEWAYS",
        "PAYQL_DATABASE_URL",
        "PAYQL_SMTP_HOST",
        "PAYQL_DATA_KEYS:",
        "PAYQL_DATA_INDEX_KEY",
    } - {variable, f"{variable}:"}
    assert not any(other in message for other in others), message


def test_production_with_real_settings_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch)
    settings = load_settings()
    assert settings.is_production
    assert settings.gateways == ["stripe"]
    keys = load_data_keys(settings)
    assert keys.keys == (decode_key(DATA_KEY), decode_key(OLD_DATA_KEY)) and keys.index_key == decode_key(INDEX_KEY)


def test_production_refuses_to_start_without_data_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch, PAYQL_DATA_KEYS=None, PAYQL_DATA_INDEX_KEY=None)
    message = settings_error(monkeypatch)
    assert "PAYQL_DATA_KEYS: production encrypts personal data" in message
    assert "PAYQL_DATA_INDEX_KEY: production needs the blind index key" in message


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("PAYQL_DATA_KEYS", "not base64!", "key 1: not base64"),
        ("PAYQL_DATA_KEYS", f"{DATA_KEY},c2hvcnQ=", "key 2: a key is 32 bytes of base64, this one is 5"),
        ("PAYQL_DATA_KEYS", " , ", "empty"),
        ("PAYQL_DATA_INDEX_KEY", f"{INDEX_KEY},{DATA_KEY}", "one key only"),
    ],
)
def test_a_malformed_data_key_is_named_but_never_shown(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    message = settings_error(monkeypatch, **{variable: value})
    assert f"{variable}: {problem}" in message
    assert DATA_KEY not in message and INDEX_KEY not in message


def test_development_without_data_keys_generates_them_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PAYQL_DATA_KEYS_FILE", str(tmp_path / "keys" / "data-keys"))
    first = load_data_keys(load_settings())
    assert stat.S_IMODE((tmp_path / "keys" / "data-keys").stat().st_mode) == 0o600
    assert load_data_keys(load_settings()) == first
    monkeypatch.setenv("PAYQL_DATA_KEYS", DATA_KEY)
    given = load_data_keys(load_settings())
    assert given.keys == (decode_key(DATA_KEY),) and given.index_key == first.index_key


def test_production_accepts_a_jwks_url_instead_of_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch)
    monkeypatch.delenv("PAYQL_JWT_SECRET")
    monkeypatch.setenv("PAYQL_JWT_JWKS_URL", "https://id.example/.well-known/jwks.json")
    assert load_settings().is_production


def test_production_is_checked_for_settings_built_in_code_too() -> None:
    with pytest.raises(ValueError, match="PAYQL_GATEWAYS"):
        Settings(
            environment="production",
            jwt_secret=GOOD_SECRET,
            database_url=POSTGRES_URL,
            smtp_host="smtp.example.com",
            redis_url="redis://cache.internal:6379/0",
        )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://a.example,https://b.example", ["https://a.example", "https://b.example"]),
        (" https://a.example , https://b.example ,, ", ["https://a.example", "https://b.example"]),
        ("https://only.example", ["https://only.example"]),
        ("", []),
    ],
)
def test_cors_origins_are_comma_separated(monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]) -> None:
    monkeypatch.setenv("PAYQL_CORS_ORIGINS", raw)
    assert load_settings().cors_origins == expected


def test_other_list_settings_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYQL_GATEWAYS", "stripe, paypal")
    monkeypatch.setenv("PAYQL_SANDBOX_WEBHOOK_SECRETS", "whsec_new,whsec_old")
    monkeypatch.setenv("PAYQL_STRIPE_SECRET_KEY", "sk_test_payql")
    monkeypatch.setenv("PAYQL_STRIPE_WEBHOOK_SECRETS", "whsec_a, whsec_b")
    monkeypatch.setenv("PAYQL_PAYPAL_CLIENT_ID", "client")
    monkeypatch.setenv("PAYQL_PAYPAL_CLIENT_SECRET", "secret")
    monkeypatch.setenv("PAYQL_PAYPAL_WEBHOOK_IDS", "WH-1,WH-2")
    settings = load_settings()
    assert settings.gateways == ["stripe", "paypal"]
    assert sandbox_settings(settings).webhook_secrets == ["whsec_new", "whsec_old"]
    assert stripe_settings(settings).webhook_secrets == ["whsec_a", "whsec_b"]
    assert paypal_settings(settings).webhook_ids == ["WH-1", "WH-2"]


def test_stripe_secret_key_accepts_the_vendor_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_vendor_name")
    monkeypatch.setenv("STRIPE_PUBLISHABLE_KEY", "pk_test_vendor_name")
    settings = load_settings()
    stripe = stripe_settings(settings)
    assert stripe.secret_key is not None
    assert stripe.secret_key.get_secret_value() == "sk_test_vendor_name"
    assert stripe.publishable_key == "pk_test_vendor_name"
    assert "sk_test_vendor_name" not in repr(settings)


def test_the_payql_name_wins_over_the_vendor_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_vendor_name")
    monkeypatch.setenv("PAYQL_STRIPE_SECRET_KEY", "sk_test_payql_name")
    stripe = stripe_settings(load_settings())
    assert stripe.secret_key is not None
    assert stripe.secret_key.get_secret_value() == "sk_test_payql_name"


def test_production_needs_redis_to_share_state_between_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch, PAYQL_REDIS_URL=None)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "PAYQL_REDIS_URL: production shares subscriptions, rate limits and jobs" in str(caught.value)


def test_production_refuses_in_process_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch, PAYQL_JOB_QUEUE="in-process")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "PAYQL_JOB_QUEUE: production runs jobs from Redis" in str(caught.value)
    production(monkeypatch, PAYQL_JOB_QUEUE=None)
    assert load_settings().effective_job_queue == "redis"


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().trusted_proxies == []
    monkeypatch.setenv("PAYQL_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")
    assert load_settings().trusted_proxies == ["10.0.0.0/8", "127.0.0.1", "::1"]
    message = settings_error(monkeypatch, PAYQL_TRUSTED_PROXIES="10.0.0.0/8,*")
    assert "PAYQL_TRUSTED_PROXIES: '*' is not an IP address or network" in message
