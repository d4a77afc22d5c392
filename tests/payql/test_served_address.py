"""The public base URL a `payql serve` process advertises: derived from the served address in
development when unset, kept when set, and questioned only when it names this machine's wrong port."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from payql.served_address import advertised_url
from payql.settings import Settings
from tests.payql.test_cli import cli_env
from tests.payql.test_serve_warnings import GOOD_SECRET
from tests.ports import free_port
from tests.processes import PayQLProcess
from tests.testkit import TEST_DATA_INDEX_KEY, TEST_DATA_KEY


def production(**changes: object) -> Settings:
    base: dict[str, object] = {
        "environment": "production",
        "redis_url": "redis://cache.internal:6379/0",
        "jwt_secret": GOOD_SECRET,
        "gateways": ["stripe"],
        "gateway_settings": {"stripe": {"secret_key": "sk_live_x", "webhook_secrets": ["whsec_live"]}},
        "database_url": "postgres://payql@db/payql",
        "smtp_host": "smtp.example.com",
        "data_keys": TEST_DATA_KEY,
        "data_index_key": TEST_DATA_INDEX_KEY,
    }
    return Settings(**(base | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 9000, "http://127.0.0.1:9000"),
        ("0.0.0.0", 9000, "http://127.0.0.1:9000"),
        ("::", 8001, "http://127.0.0.1:8001"),
        ("::1", 8002, "http://[::1]:8002"),
        ("shop.local", 8003, "http://shop.local:8003"),
    ],
)
def test_development_without_a_public_url_advertises_the_served_address(host: str, port: int, expected: str) -> None:
    assert advertised_url(Settings(environment="development"), host, port).public_base_url == expected


def test_a_public_url_that_is_set_is_kept() -> None:
    settings = Settings(environment="development", public_base_url="https://pay.example.com")
    assert advertised_url(settings, "127.0.0.1", 9000).public_base_url == "https://pay.example.com"
    assert advertised_url(settings, "127.0.0.1", 9000).warning is None


@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_public_url_naming_this_machine_on_another_port_is_warned_about(environment: str) -> None:
    url = "http://127.0.0.1:8000"
    settings = (
        Settings(environment="development", public_base_url=url)
        if environment == "development"
        else production(public_base_url=url)
    )
    advertised = advertised_url(settings, "0.0.0.0", 9000)
    assert advertised.public_base_url == url
    assert advertised.warning is not None and "9000" in advertised.warning and url in advertised.warning
    assert advertised_url(settings, "0.0.0.0", 8000).warning is None


def test_production_behind_a_proxy_is_not_questioned() -> None:
    advertised = advertised_url(production(public_base_url="https://pay.example.com"), "0.0.0.0", 8000)
    assert advertised.public_base_url == "https://pay.example.com" and advertised.warning is None


@pytest.mark.timeout(120)
async def test_serve_on_another_port_advertises_that_port(server_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(server_settings) | {
        "PAYQL_SANDBOX_STATE_PATH": str(tmp_path / "sandbox.sqlite3"),
        "PAYQL_SANDBOX_DELIVER_WEBHOOKS": "false",
        # This process shares the test server's database: no periodic job of its own may touch it.
        "PAYQL_SWEEP_INTERVAL_SECONDS": "0",
        "PAYQL_RECONCILE_INTERVAL_SECONDS": "0",
        "PAYQL_DUNNING_INTERVAL_SECONDS": "0",
        "PAYQL_DISPUTE_CHECK_INTERVAL_SECONDS": "0",
    }
    assert "PAYQL_PUBLIC_BASE_URL" not in env
    process = PayQLProcess(env, tmp_path / "serve.log", "serve", "--port", str(port))
    process.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        await process.wait_healthy(base_url)
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            answer = await client.post(
                "/graphql", json={"query": "{ paymentOptions { gateway publicConfig { name value } } }"}
            )
    finally:
        process.stop()
    [sandbox] = [option for option in answer.json()["data"]["paymentOptions"] if option["gateway"] == "sandbox"]
    assert {"name": "tokensUrl", "value": f"{base_url}/sandbox/tokens"} in sandbox["publicConfig"], process.log()
