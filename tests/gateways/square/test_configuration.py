"""Enabling Square is configuration only: settings name what is missing, and the registry builds the adapter from
`PAYQL_SQUARE_*` (or Square's own `SQUARE_ACCESS_TOKEN`), verifying notifications signed for PayQL's public URL."""

from __future__ import annotations

import time

import pytest

from gateways.errors import WebhookRejected
from gateways.types import WebhookDelivery
from payql.settings import SettingsError, load_settings
from payql.wiring import build_gateways
from tests.square_emulator.webhooks import signed


def test_square_without_credentials_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYQL_GATEWAYS", "sandbox,square")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    for variable in ("PAYQL_SQUARE_ACCESS_TOKEN", "PAYQL_SQUARE_LOCATION_ID", "PAYQL_SQUARE_WEBHOOK_SIGNATURE_KEYS"):
        assert f"  {variable}:" in str(refused.value)


async def test_square_is_built_from_its_variables_and_checks_its_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYQL_GATEWAYS", "square")
    monkeypatch.setenv("SQUARE_ACCESS_TOKEN", "EAAA-configuration")
    monkeypatch.setenv("PAYQL_SQUARE_LOCATION_ID", "L-configuration")
    monkeypatch.setenv("PAYQL_SQUARE_WEBHOOK_SIGNATURE_KEYS", "key-new,key-old")
    monkeypatch.setenv("PAYQL_PUBLIC_BASE_URL", "https://pay.example.com")
    settings = load_settings()
    registry = await build_gateways(settings)
    try:
        square = registry.get("square")
        event = {"type": "payment.updated", "event_id": "e-1", "created_at": "2026-12-05T10:00:00Z", "data": {}}
        for key in ("key-new", "key-old"):
            delivery = signed(event, key=key, notification_url="https://pay.example.com/webhooks/square")
            verified = await square.verify_webhook(WebhookDelivery(delivery.headers, delivery.body, int(time.time())))
            assert verified.event_id == "e-1"
        elsewhere = signed(event, key="key-new", notification_url="https://pay.example.com/webhooks/stripe")
        with pytest.raises(WebhookRejected):
            await square.verify_webhook(WebhookDelivery(elsewhere.headers, elsewhere.body, int(time.time())))
    finally:
        await registry.aclose()
