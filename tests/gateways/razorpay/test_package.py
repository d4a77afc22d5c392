"""The Razorpay package: its settings (PayQL's names and Razorpay's usual ones), what is missing when enabled,
the webhook verifier built from the settings alone, and the public configuration."""

from __future__ import annotations

import time

import pytest

from gateways.errors import WebhookRejected
from gateways.razorpay.package import PACKAGE
from gateways.razorpay.settings import RazorpaySettings
from gateways.types import WebhookDelivery
from tests.razorpay_emulator.app import sign_body


def test_settings_read_payql_and_razorpay_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAZORPAY_KEY_ID", "rzp_test_theirs")
    monkeypatch.setenv("RAZORPAY_KEY_SECRET", "secret-theirs")
    monkeypatch.setenv("PAYQL_RAZORPAY_WEBHOOK_SECRETS", "new-secret, old-secret")
    settings = RazorpaySettings()
    assert settings.key_id == "rzp_test_theirs" and settings.key_secret is not None
    assert settings.webhook_secrets == ["new-secret", "old-secret"]
    monkeypatch.setenv("PAYQL_RAZORPAY_KEY_ID", "rzp_test_ours")
    assert RazorpaySettings().key_id == "rzp_test_ours"
    assert settings.problems_when_enabled() == []


def test_what_is_missing_names_its_variables() -> None:
    problems = RazorpaySettings().problems_when_enabled()
    assert any(p.startswith("PAYQL_RAZORPAY_KEY_ID/PAYQL_RAZORPAY_KEY_SECRET") for p in problems)
    assert any(p.startswith("PAYQL_RAZORPAY_WEBHOOK_SECRETS") for p in problems)


async def test_the_verifier_takes_any_configured_secret_and_nothing_else() -> None:
    verifier = PACKAGE.webhook_verifier(RazorpaySettings(webhook_secrets=["new-secret", "old-secret"]))
    body = b'{"entity": "event", "event": "payment.captured", "payload": {}, "created_at": 1}'
    for secret in ("new-secret", "old-secret"):
        headers = {"X-Razorpay-Signature": sign_body(secret, body), "X-Razorpay-Event-Id": "evt_1"}
        assert (await verifier.verify_webhook(WebhookDelivery(headers, body, int(time.time())))).event_id == "evt_1"
    forged = {"X-Razorpay-Signature": sign_body("someone-else", body)}
    with pytest.raises(WebhookRejected):
        await verifier.verify_webhook(WebhookDelivery(forged, body, int(time.time())))
    with pytest.raises(WebhookRejected):
        await PACKAGE.webhook_verifier(RazorpaySettings()).verify_webhook(
            WebhookDelivery({"X-Razorpay-Signature": sign_body("", body)}, body, int(time.time()))
        )


def test_public_configuration_is_the_key_id_only() -> None:
    settings = RazorpaySettings(key_id="rzp_test_public", key_secret="secret", webhook_secrets=["whsec"])
    assert PACKAGE.public_config(settings, public_base_url="https://pay.example.test") == {"keyId": "rzp_test_public"}
