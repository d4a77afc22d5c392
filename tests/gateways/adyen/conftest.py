"""One Adyen emulator per test (uvicorn on a random local port) and an `AdyenGateway` pointed at it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod
from gateways.adyen import AdyenGateway
from gateways.types import ChargeRequest, PaymentResult
from payql.wiring import Services
from tests.adyen_emulator import AdyenEmulator, running_emulator
from tests.adyen_emulator.app import AUTHORISED_CARD, card
from tests.testkit import settle


@pytest.fixture
async def emulator() -> AsyncIterator[AdyenEmulator]:
    async with running_emulator() as running:
        yield running


def make_gateway(emulator: AdyenEmulator, **overrides: Any) -> AdyenGateway:
    options: dict[str, Any] = {
        "hmac_keys": [emulator.hmac_key],
        "notification_username": emulator.notification_user,
        "notification_password": emulator.notification_password,
        "api_base": emulator.base_url,
        "timeout": 5,
    }
    options.update(overrides)
    return AdyenGateway(emulator.api_key, emulator.merchant_account, **options)


@pytest.fixture
async def gateway(emulator: AdyenEmulator) -> AsyncIterator[AdyenGateway]:
    gw = make_gateway(emulator)
    yield gw
    await gw.aclose()


def drop_in(encrypted_card_number: str | None = None) -> str:
    """The `paymentMethod` the SPA sends: Drop-in's `state.data.paymentMethod` as JSON text."""
    extra = {"encryptedCardNumber": encrypted_card_number} if encrypted_card_number else {}
    return json.dumps(card(extra))


def charge_request(card: str = AUTHORISED_CARD, *, manual: bool = False, key: str = "") -> ChargeRequest:
    return ChargeRequest(
        amount=Money(1000, "EUR"),
        payment_method=drop_in(card),
        capture_method=CaptureMethod.MANUAL if manual else CaptureMethod.AUTOMATIC,
        idempotency_key=key or f"charge-{uuid.uuid4()}",
        return_url="https://shop.example.test/return",
        metadata={"payql_payment_id": "pay-test"},
    )


async def charge(gateway: AdyenGateway, card: str = AUTHORISED_CARD, *, manual: bool = False) -> PaymentResult:
    return await gateway.charge(charge_request(card, manual=manual))


@pytest.fixture
async def adyen_in_payql(
    emulator: AdyenEmulator, services: Services, server: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AdyenGateway]:
    """The running PayQL server with an Adyen gateway pointed at the emulator."""
    gateway = make_gateway(emulator)
    # The session's server was configured with the sandbox only; add Adyen for this test.
    monkeypatch.setitem(services.deps.gateways._gateways, "adyen", gateway)
    yield gateway
    await settle(services)
    await gateway.aclose()
