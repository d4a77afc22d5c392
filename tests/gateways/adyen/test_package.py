"""The Adyen package: its settings name what is missing, and the verifier built from settings alone accepts a
delivery signed the way Adyen signs it (the same check the adapter makes)."""

from __future__ import annotations

import time

import pytest

from gateways.adyen.package import PACKAGE
from gateways.adyen.settings import AdyenSettings
from gateways.errors import WebhookRejected
from gateways.package import GatewayConfigurationError
from gateways.types import WebhookDelivery
from tests.adyen_emulator import AdyenEmulator
from tests.gateways.adyen.conftest import charge, make_gateway


def test_missing_settings_are_named() -> None:
    problems = AdyenSettings(live=True).problems_when_enabled()
    assert [p.split(":")[0] for p in problems] == [
        "PAYQL_ADYEN_API_KEY/PAYQL_ADYEN_MERCHANT_ACCOUNT",
        "PAYQL_ADYEN_HMAC_KEYS",
        "PAYQL_ADYEN_NOTIFICATION_USERNAME/PAYQL_ADYEN_NOTIFICATION_PASSWORD",
        "PAYQL_ADYEN_LIVE_ENDPOINT_PREFIX",
    ]
    with pytest.raises(GatewayConfigurationError, match="PAYQL_ADYEN_API_KEY"):
        PACKAGE.prepare(AdyenSettings(), public_base_url="https://pay.example.test", background=False)


def test_hmac_keys_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYQL_ADYEN_HMAC_KEYS", "AA11, BB22")
    assert AdyenSettings().hmac_keys == ["AA11", "BB22"]


async def test_the_packages_verifier_checks_auth_and_signature(emulator: AdyenEmulator) -> None:
    settings = AdyenSettings(
        hmac_keys=[emulator.hmac_key],
        notification_username=emulator.notification_user,
        notification_password=emulator.notification_password,
    )
    verifier = PACKAGE.webhook_verifier(settings)
    gateway = make_gateway(emulator)
    await charge(gateway)
    body = emulator.body(emulator.take())
    event = await verifier.verify_webhook(
        WebhookDelivery(headers={"authorization": emulator.basic_auth()}, body=body, received_at=int(time.time()))
    )
    assert event.event_type == "AUTHORISATION"
    with pytest.raises(WebhookRejected):
        await verifier.verify_webhook(WebhookDelivery(headers={}, body=body, received_at=int(time.time())))
