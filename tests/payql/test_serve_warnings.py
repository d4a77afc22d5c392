"""`payql serve` says loudly, at start-up, that a development server is not fit to deploy, and louder
still when it listens beyond loopback; production says nothing of the kind."""

from __future__ import annotations

import logging

import pytest

from payql import cli
from payql.settings import Settings
from tests.testkit import TEST_DATA_INDEX_KEY, TEST_DATA_KEY

GOOD_SECRET = "k3y-" + "x" * 40


def warnings_at_start(caplog: pytest.LogCaptureFixture, settings: Settings, host: str) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="payql"):
        cli._warn_if_development(settings, host)
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_development_on_loopback_warns_once(caplog: pytest.LogCaptureFixture, host: str) -> None:
    messages = warnings_at_start(caplog, Settings(environment="development"), host)
    assert len(messages) == 1 and "DEVELOPMENT MODE" in messages[0] and "Never deploy" in messages[0]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "payql.example"])
def test_development_beyond_loopback_warns_louder(caplog: pytest.LogCaptureFixture, host: str) -> None:
    messages = warnings_at_start(caplog, Settings(environment="development"), host)
    assert len(messages) == 2 and "NON-LOOPBACK" in messages[1] and host in messages[1]


def test_production_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    production = Settings(
        environment="production",
        redis_url="redis://cache.internal:6379/0",
        jwt_secret=GOOD_SECRET,
        gateways=["stripe"],
        gateway_settings={"stripe": {"secret_key": "sk_live_x", "webhook_secrets": ["whsec_live"]}},
        database_url="postgres://payql@db/payql",
        smtp_host="smtp.example.com",
        data_keys=TEST_DATA_KEY,
        data_index_key=TEST_DATA_INDEX_KEY,
    )
    assert warnings_at_start(caplog, production, "0.0.0.0") == []
