"""Enabling Stripe or PayPal is configuration only: settings name what is missing, and the
registry builds each adapter from its credentials."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateways.errors import WebhookRejected
from gateways.stripe_signature import sign
from gateways.types import WebhookDelivery
from payql.settings import Settings, SettingsError, load_settings
from payql.wiring import ConfigurationError, build_gateways, prepare_gateways

FIXTURE = Path(__file__).parents[1] / "fixtures" / "stripe" / "payment_intent.succeeded.json"


@pytest.mark.parametrize(
    ("gateways", "missing"),
    [
        ("sandbox,stripe", ["PAYQL_STRIPE_SECRET_KEY", "PAYQL_STRIPE_WEBHOOK_SECRETS"]),
        ("paypal", ["PAYQL_PAYPAL_CLIENT_ID/PAYQL_PAYPAL_CLIENT_SECRET", "PAYQL_PAYPAL_WEBHOOK_IDS"]),
        ("sandbox,no_such_gateway", ["PAYQL_GATEWAYS"]),
    ],
)
def test_an_enabled_gateway_without_credentials_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, gateways: str, missing: list[str]
) -> None:
    monkeypatch.setenv("PAYQL_GATEWAYS", gateways)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    for variable in missing:
        assert f"  {variable}:" in str(refused.value)


async def test_stripe_is_built_from_its_vendor_named_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYQL_GATEWAYS", "stripe")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_payql")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_new,whsec_old")
    settings = load_settings()
    registry = await build_gateways(settings)
    try:
        assert registry.names() == ["stripe"]
        stripe = registry.get("stripe")
        body = FIXTURE.read_bytes()
        for secret in ("whsec_new", "whsec_old"):
            now = int(time.time())
            delivery = WebhookDelivery({"stripe-signature": sign(secret, now, body)}, body, now)
            assert (await stripe.verify_webhook(delivery)).event_type == "payment_intent.succeeded"
        forged = WebhookDelivery(
            {"stripe-signature": sign("whsec_other", int(time.time()), body)}, body, int(time.time())
        )
        with pytest.raises(WebhookRejected):
            await stripe.verify_webhook(forged)
    finally:
        await registry.aclose()


async def test_paypal_is_built_from_its_credentials() -> None:
    settings = Settings(
        gateways=["paypal"],
        gateway_settings={"paypal": {"client_id": "client", "client_secret": "secret", "webhook_ids": ["WH-1"]}},
    )
    registry = await build_gateways(settings)
    try:
        assert registry.get("paypal").name == "paypal"
    finally:
        await registry.aclose()


def test_the_sandbox_without_a_signing_secret_is_refused_with_its_variable_named() -> None:
    with pytest.raises(ConfigurationError, match="PAYQL_SANDBOX_WEBHOOK_SECRETS"):
        prepare_gateways(Settings(gateways=["sandbox"]))


async def test_an_instance_reads_its_own_variables_and_runs_under_its_own_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAYQL_GATEWAYS", "sandbox,sandbox_backup")
    monkeypatch.setenv("PAYQL_SANDBOX_STATE_PATH", str(tmp_path / "primary.sqlite3"))
    monkeypatch.setenv("PAYQL_SANDBOX_WEBHOOK_SECRETS", "whsec_primary")
    monkeypatch.setenv("PAYQL_SANDBOX_BACKUP_STATE_PATH", str(tmp_path / "backup.sqlite3"))
    monkeypatch.setenv("PAYQL_SANDBOX_BACKUP_WEBHOOK_SECRETS", "whsec_backup")
    settings = load_settings()
    assert settings.gateway("sandbox_backup").webhook_secrets == ["whsec_backup"]  # type: ignore[attr-defined]
    registry = await build_gateways(settings)
    try:
        assert registry.names() == ["sandbox", "sandbox_backup"]
        assert registry.get("sandbox_backup").name == "sandbox_backup"
        assert registry.capabilities("sandbox_backup") == registry.capabilities("sandbox")
        [option] = [option for option in registry.options() if option.gateway == "sandbox_backup"]
        assert option.public_config["tokensUrl"].endswith("/sandbox_backup/tokens")
    finally:
        await registry.aclose()
    assert (tmp_path / "backup.sqlite3").exists() and (tmp_path / "primary.sqlite3").exists()


def test_an_instance_without_its_signing_secret_is_refused_with_its_own_variable_named() -> None:
    settings = Settings(
        gateways=["sandbox", "sandbox_backup"], gateway_settings={"sandbox": {"webhook_secrets": ["x"]}}
    )
    with pytest.raises(ConfigurationError, match="PAYQL_SANDBOX_BACKUP_WEBHOOK_SECRETS"):
        prepare_gateways(settings)


@pytest.mark.parametrize(
    ("gateways", "refused"),
    [
        ("sandbox,stripe_backup", "stripe_backup (the stripe package runs one instance only)"),
        ("sandbox_Backup", "unknown gateway(s) sandbox_Backup"),
        ("sandbox_", "unknown gateway(s) sandbox_"),
        ("sandbox_a__b", "unknown gateway(s) sandbox_a__b"),
        ("sandbox_" + "x" * 25, "unknown gateway(s) sandbox_xxx"),
        ("sandbox,sandbox", "a gateway is named twice"),
    ],
)
def test_a_gateway_that_is_no_package_nor_instance_of_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, gateways: str, refused: str
) -> None:
    monkeypatch.setenv("PAYQL_GATEWAYS", gateways)
    with pytest.raises(SettingsError, match="PAYQL_GATEWAYS") as error:
        load_settings()
    assert refused in str(error.value)
