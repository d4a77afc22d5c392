"""Adyen notifications: Basic auth on the endpoint, every item's HMAC (Adyen's field order, hex key) under any
configured key, batches, and the mapping of each item onto effects. Deliveries are signed by the emulator the
way Adyen signs them."""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

import pytest

from domain.money import Money
from domain.statuses import DisputeStatus, PaymentStatus, RefundStatus
from gateways.adyen import AdyenGateway
from gateways.adyen.notifications import NotificationVerifier
from gateways.errors import PaymentDeclined, WebhookRejected
from gateways.types import (
    CaptureRequest,
    DisputeObserved,
    EventIgnored,
    PaymentObserved,
    RefundObserved,
    RefundRequest,
    VerifiedEvent,
    VoidRequest,
    WebhookDelivery,
)
from tests.adyen_emulator import AdyenEmulator
from tests.adyen_emulator.app import REFUSED_CARD
from tests.gateways.adyen.conftest import charge, make_gateway


def delivery(emulator: AdyenEmulator, items: list[dict[str, Any]], auth: str | None = None) -> WebhookDelivery:
    headers = {"authorization": emulator.basic_auth() if auth is None else auth}
    return WebhookDelivery(headers=headers, body=emulator.body(items), received_at=int(time.time()))


async def test_a_signed_delivery_verifies_and_names_its_items(gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
    paid = await charge(gateway)
    items = emulator.take()
    event = await gateway.verify_webhook(delivery(emulator, items))
    assert event.event_id == f"AUTHORISATION:{paid.reference}"
    assert event.event_type == "AUTHORISATION"


async def test_rotation_accepts_the_old_and_the_new_key(emulator: AdyenEmulator) -> None:
    old = make_gateway(emulator, hmac_keys=[secrets.token_hex(32), emulator.hmac_key])
    await charge(old)
    assert (await old.verify_webhook(delivery(emulator, emulator.take()))).event_type == "AUTHORISATION"


async def test_a_delivery_signed_with_another_key_is_rejected(emulator: AdyenEmulator) -> None:
    other = make_gateway(emulator, hmac_keys=[secrets.token_hex(32)])
    await charge(other)
    with pytest.raises(WebhookRejected, match="hmacSignature"):
        await other.verify_webhook(delivery(emulator, emulator.take()))


@pytest.mark.parametrize(
    "auth",
    ["", "Basic " + "d3Jvbmc6Y3JlZHM=", "Bearer token", "Basic not-base64!"],
    ids=["missing", "wrong", "other-scheme", "malformed"],
)
async def test_wrong_or_missing_basic_auth_is_rejected(
    gateway: AdyenGateway, emulator: AdyenEmulator, auth: str
) -> None:
    await charge(gateway)
    with pytest.raises(WebhookRejected, match="Basic auth"):
        await gateway.verify_webhook(delivery(emulator, emulator.take(), auth=auth))


async def test_unset_notification_credentials_accept_nobody(emulator: AdyenEmulator) -> None:
    verifier = NotificationVerifier([emulator.hmac_key], "", "")
    with pytest.raises(WebhookRejected):
        await verifier.verify_webhook(
            WebhookDelivery(headers={"authorization": "Basic Og=="}, body=b"{}", received_at=0)
        )


@pytest.mark.parametrize("field", ["eventCode", "success", "pspReference", "amount"])
async def test_a_tampered_item_is_rejected(gateway: AdyenGateway, emulator: AdyenEmulator, field: str) -> None:
    await charge(gateway, manual=True)
    items = emulator.take()
    item = items[0]["NotificationRequestItem"]
    item[field] = {"eventCode": "CAPTURE", "success": "false", "pspReference": "X" * 16}.get(
        field, {"value": 1, "currency": "EUR"}
    )
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(delivery(emulator, items))


async def test_one_bad_item_rejects_the_whole_batch(gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
    await charge(gateway)
    await charge(gateway)
    items = emulator.take()
    unsigned = copy.deepcopy(items[1])
    del unsigned["NotificationRequestItem"]["additionalData"]["hmacSignature"]
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(delivery(emulator, [items[0], unsigned]))


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"notificationItems": []}', b'{"notificationItems": [1]}'])
async def test_malformed_bodies_are_rejected(gateway: AdyenGateway, emulator: AdyenEmulator, body: bytes) -> None:
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(
            WebhookDelivery(headers={"authorization": emulator.basic_auth()}, body=body, received_at=0)
        )


async def test_a_batch_maps_item_by_item(gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
    """AUTHORISATION, CAPTURE, REFUND (one refused), CANCELLATION refused: one effect per item, in order."""
    authorized = await charge(gateway, manual=True)
    await gateway.capture(CaptureRequest(authorized.reference, Money(1000, "EUR"), idempotency_key="cap-1"))
    await gateway.refund(RefundRequest(authorized.reference, Money(400, "EUR"), idempotency_key="ref-1"))
    await gateway.refund(RefundRequest(authorized.reference, Money(700, "EUR"), idempotency_key="ref-2"))
    await gateway.void(VoidRequest(authorized.reference, idempotency_key="void-1"))
    event = await gateway.verify_webhook(delivery(emulator, emulator.take()))
    assert event.event_type == "AUTHORISATION,CANCELLATION,CAPTURE,REFUND"
    auth, capture, refund, refused, cancel = gateway.interpret_event(event)
    assert isinstance(auth, PaymentObserved) and not auth.stale_possible
    assert (auth.result.status, auth.result.amount_authorized) == (PaymentStatus.AUTHORIZED, 1000)
    assert auth.result.payql_payment_id == "pay-test"
    assert isinstance(capture, PaymentObserved)
    assert (capture.result.reference, capture.result.status, capture.result.amount_captured) == (
        authorized.reference,
        PaymentStatus.PAID,
        1000,
    )
    assert isinstance(refund, RefundObserved) and refund.result.status is RefundStatus.SUCCEEDED
    assert refund.result.payment_reference == authorized.reference
    assert isinstance(refused, RefundObserved) and refused.result.status is RefundStatus.FAILED
    assert refused.result.failure_reason
    assert isinstance(cancel, EventIgnored)  # refused after the capture: nothing to undo


async def test_a_refused_authorisation_fails_the_payment(gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
    with pytest.raises(PaymentDeclined):
        await charge(gateway, card=REFUSED_CARD)
    event = await gateway.verify_webhook(delivery(emulator, emulator.take()))
    (effect,) = gateway.interpret_event(event)
    assert isinstance(effect, PaymentObserved) and effect.result.status is PaymentStatus.FAILED


async def test_an_automatic_capture_authorisation_is_paid(gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
    await charge(gateway)
    (effect,) = gateway.interpret_event(await gateway.verify_webhook(delivery(emulator, emulator.take())))
    assert isinstance(effect, PaymentObserved)
    assert (effect.result.status, effect.result.amount_captured) == (PaymentStatus.PAID, 1000)


@pytest.mark.parametrize(
    ("event_code", "dispute_status", "expected"),
    [
        ("NOTIFICATION_OF_CHARGEBACK", "Undefended", DisputeStatus.NEEDS_RESPONSE),
        ("CHARGEBACK", "Undefended", DisputeStatus.NEEDS_RESPONSE),
        ("CHARGEBACK", "Pending", DisputeStatus.UNDER_REVIEW),
        ("CHARGEBACK", "Lost", DisputeStatus.LOST),
        ("CHARGEBACK_REVERSED", "Won", DisputeStatus.WON),
        ("SECOND_CHARGEBACK", "Lost", DisputeStatus.LOST),
    ],
)
async def test_chargebacks_are_disputes(
    gateway: AdyenGateway, emulator: AdyenEmulator, event_code: str, dispute_status: str, expected: DisputeStatus
) -> None:
    paid = await charge(gateway)
    emulator.take()
    dispute = emulator.chargeback(paid.reference, event_code, dispute_status=dispute_status)
    (effect,) = gateway.interpret_event(await gateway.verify_webhook(delivery(emulator, emulator.take())))
    assert isinstance(effect, DisputeObserved) and not effect.stale_possible
    assert (effect.result.reference, effect.result.payment_reference) == (dispute, paid.reference)
    assert effect.result.status is expected
    assert effect.result.amount == Money(1000, "EUR") and effect.result.reason == "10.4"
    assert effect.result.evidence_due_by is not None


def test_unknown_event_codes_are_ignored(gateway: AdyenGateway) -> None:
    item = {"eventCode": "REPORT_AVAILABLE", "success": "true", "pspReference": "r", "amount": {"value": 0}}
    event = VerifiedEvent("x", "REPORT_AVAILABLE", 0, {"notificationItems": [{"NotificationRequestItem": item}]})
    assert [type(e) for e in gateway.interpret_event(event)] == [EventIgnored]
