"""Webhook deliveries signed the way Razorpay signs them (hex HMAC-SHA256 of the raw body, `X-Razorpay-Signature`):
verification with rotating secrets, refusals, and what each event means."""

from __future__ import annotations

import time
from typing import Any

import pytest

from domain.money import Money
from domain.statuses import DisputeStatus, PaymentStatus, RefundStatus
from gateways.errors import WebhookRejected
from gateways.razorpay.adapter import RazorpayGateway
from gateways.types import (
    DisputeObserved,
    EventIgnored,
    PaymentObserved,
    RefundObserved,
    RefundRequest,
    VerifiedEvent,
    WebhookDelivery,
)
from tests.gateways.razorpay.conftest import make_gateway
from tests.gateways.razorpay.test_payments import charge_request, paid
from tests.razorpay_emulator import RazorpayEmulator
from tests.razorpay_emulator.app import Delivery, sign_body


def delivery(signed: Delivery, **headers: str) -> WebhookDelivery:
    return WebhookDelivery({**signed.headers, **headers}, signed.body, int(time.time()))


def events_of(emulator: RazorpayEmulator, event_type: str) -> list[dict[str, Any]]:
    return [event for event in emulator.events if event["event"] == event_type]


async def verified(gateway: RazorpayGateway, emulator: RazorpayEmulator, event: dict[str, Any]) -> VerifiedEvent:
    return await gateway.verify_webhook(delivery(emulator.sign(event, event_id="evt_test0000001")))


async def test_a_signed_delivery_verifies_under_its_event_id(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    await paid(gateway, emulator, charge_request())
    [event] = events_of(emulator, "payment.captured")
    result = await verified(gateway, emulator, event)
    assert (result.event_id, result.event_type, result.created) == (
        "evt_test0000001",
        "payment.captured",
        event["created_at"],
    )


async def test_every_configured_secret_verifies_while_rotating(emulator: RazorpayEmulator) -> None:
    rotating = make_gateway(emulator, webhook_secrets=["old-secret", emulator.webhook_secret])
    try:
        event = {"entity": "event", "event": "payment.captured", "payload": {}, "created_at": 1}
        for secret in ("old-secret", emulator.webhook_secret):
            assert (await rotating.verify_webhook(delivery(emulator.sign(event, secret=secret)))).event_type
        with pytest.raises(WebhookRejected):
            await rotating.verify_webhook(delivery(emulator.sign(event, secret="retired-secret")))
    finally:
        await rotating.aclose()


async def test_unsigned_tampered_or_malformed_deliveries_are_rejected(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    event = {"entity": "event", "event": "payment.captured", "payload": {}, "created_at": 1}
    signed = emulator.sign(event)
    unsigned = {k: v for k, v in signed.headers.items() if k != "X-Razorpay-Signature"}
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(WebhookDelivery(unsigned, signed.body, int(time.time())))
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(WebhookDelivery(signed.headers, signed.body + b" ", int(time.time())))
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(delivery(signed, **{"X-Razorpay-Signature": "é"}))
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(delivery(Delivery(emulator.sign({"event": 1}).headers, b"[]")))
    not_json = b"not json"
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(
            WebhookDelivery({"X-Razorpay-Signature": sign_body(emulator.webhook_secret, not_json)}, not_json, 0)
        )


async def test_payment_events_name_our_payment_and_are_re_read(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    request = charge_request()
    result = await paid(gateway, emulator, request)
    for event_type in ("payment.authorized", "payment.captured", "order.paid"):
        [event] = events_of(emulator, event_type)
        [effect] = gateway.interpret_event(await verified(gateway, emulator, event))
        assert isinstance(effect, PaymentObserved) and effect.stale_possible
        assert effect.result.reference == result.reference
        assert effect.result.payql_payment_id == request.metadata["payql_payment_id"]


async def test_a_failed_payment_event_never_reads_as_a_final_failure(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    """The order stays payable after a failed attempt: the re-read decides, and it is REQUIRES_ACTION."""
    created = await gateway.charge(charge_request())
    emulator.checkout(created.reference, decline_reason="payment_failed")
    [event] = events_of(emulator, "payment.failed")
    [effect] = gateway.interpret_event(await verified(gateway, emulator, event))
    assert isinstance(effect, PaymentObserved) and effect.result.reference == created.reference
    assert effect.result.status is PaymentStatus.REQUIRES_ACTION
    assert (await gateway.retrieve(created.reference)).decline_code == "generic_decline"


async def test_refund_events_carry_the_refund_and_its_payment(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    result = await paid(gateway, emulator, charge_request())
    emulator.ledger.refunds_pending = True
    refund = await gateway.refund(RefundRequest(result.reference, Money(5_000, "INR"), "r-1"))
    emulator.ledger.settle_refund(refund.reference, succeed=False)
    [failed] = events_of(emulator, "refund.failed")
    refund_effect, payment_effect = gateway.interpret_event(await verified(gateway, emulator, failed))
    assert isinstance(refund_effect, RefundObserved) and isinstance(payment_effect, PaymentObserved)
    assert refund_effect.result.reference == refund.reference
    assert refund_effect.result.payment_reference == result.reference
    assert refund_effect.result.status is RefundStatus.FAILED
    assert (await gateway.retrieve(result.reference)).amount_refunded == 0


async def test_dispute_events_map_to_the_dispute_and_its_outcome(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    request = charge_request()
    result = await paid(gateway, emulator, request)
    [payment] = emulator.ledger.payments_of(result.reference)
    dispute = emulator.ledger.open_dispute(payment["id"])
    emulator.ledger.resolve(dispute["id"], won=True)
    expected = {"payment.dispute.created": DisputeStatus.NEEDS_RESPONSE, "payment.dispute.won": DisputeStatus.WON}
    for event_type, status in expected.items():
        [event] = events_of(emulator, event_type)
        [effect] = gateway.interpret_event(await verified(gateway, emulator, event))
        assert isinstance(effect, DisputeObserved)
        assert (effect.result.reference, effect.result.status) == (dispute["id"], status)
        assert effect.result.payment_reference == result.reference
        assert effect.result.payql_payment_id == request.metadata["payql_payment_id"]


async def test_other_events_are_ignored(gateway: RazorpayGateway, emulator: RazorpayEmulator) -> None:
    event = {"entity": "event", "event": "settlement.processed", "payload": {}, "created_at": 1}
    [effect] = gateway.interpret_event(await verified(gateway, emulator, event))
    assert isinstance(effect, EventIgnored)
