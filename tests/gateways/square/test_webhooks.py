"""Square's event notifications as the emulator signs them (HMAC-SHA256 over the notification URL and the raw
body, base64, in `x-square-hmacsha256-signature`): verification with rotating keys, refusals, and the mapping of
payment, refund and dispute events."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, DisputeStatus, PaymentStatus, RefundStatus
from gateways import catalog
from gateways.errors import WebhookRejected
from gateways.square.adapter import SquareGateway
from gateways.square.package import notification_url_of
from gateways.square.settings import SquareSettings
from gateways.types import (
    ChargeRequest,
    DisputeObserved,
    EventIgnored,
    PaymentObserved,
    RefundObserved,
    RefundRequest,
    VerifiedEvent,
    WebhookDelivery,
)
from tests.gateways.square.conftest import NONCE_OK, make_gateway
from tests.square_emulator import SquareEmulator
from tests.square_emulator.webhooks import SIGNATURE_HEADER, Delivery

URL = "https://pay.example.test/webhooks/square"


def delivery(signed: Delivery, **headers: str) -> WebhookDelivery:
    return WebhookDelivery({**signed.headers, **headers}, signed.body, int(time.time()))


async def some_events(gateway: SquareGateway, emulator: SquareEmulator) -> dict[str, dict[str, Any]]:
    paid = await gateway.charge(
        ChargeRequest(
            Money(1999, "USD"),
            NONCE_OK,
            CaptureMethod.AUTOMATIC,
            str(uuid.uuid4()),
            metadata={"payql_payment_id": "p-9"},
        )
    )
    await gateway.refund(RefundRequest(paid.reference, Money(500, "USD"), str(uuid.uuid4())))
    dispute = emulator.ledger.open_dispute(paid.reference)
    emulator.ledger.resolve_dispute(dispute.id, "WON")
    return {event["type"]: event for event in emulator.events}


async def test_a_signed_delivery_verifies(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    events = await some_events(gateway, emulator)
    signed = emulator.sign(events["payment.created"], notification_url=URL)
    verified = await gateway.verify_webhook(delivery(signed))
    assert (verified.event_id, verified.event_type) == (events["payment.created"]["event_id"], "payment.created")
    assert verified.created > 0


async def test_every_configured_key_verifies_while_rotating(emulator: SquareEmulator) -> None:
    old_key = emulator.signature_key
    new_key = emulator.rotate_signature_key()
    gateway = make_gateway(emulator, webhook_signature_keys=[new_key, old_key], notification_url=URL)
    try:
        event = (await some_events(gateway, emulator))["payment.created"]
        for key in (old_key, new_key):
            assert (
                await gateway.verify_webhook(delivery(emulator.sign(event, key=key, notification_url=URL)))
            ).event_id
        with pytest.raises(WebhookRejected):
            await gateway.verify_webhook(delivery(emulator.sign(event, key="someone-else", notification_url=URL)))
    finally:
        await gateway.aclose()


@pytest.mark.parametrize("tamper", ["body", "url", "header", "missing"])
async def test_a_forged_or_misaddressed_delivery_is_refused(
    gateway: SquareGateway, emulator: SquareEmulator, tamper: str
) -> None:
    event = (await some_events(gateway, emulator))["payment.created"]
    signed = emulator.sign(event, notification_url=URL)
    if tamper == "body":
        forged = WebhookDelivery(signed.headers, signed.body.replace(b"1999", b"1"), int(time.time()))
    elif tamper == "url":  # signed for another endpoint
        forged = delivery(emulator.sign(event, notification_url="https://elsewhere.example/webhooks/square"))
    elif tamper == "header":
        forged = delivery(signed, **{SIGNATURE_HEADER: "bm90IGEgc2lnbmF0dXJl"})
    else:
        forged = WebhookDelivery({"content-type": "application/json"}, signed.body, int(time.time()))
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(forged)


async def test_a_signed_body_that_is_not_an_event_is_refused(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    signed = emulator.sign({"hello": "world"}, notification_url=URL)
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(delivery(signed))


async def test_payment_refund_and_dispute_events_are_mapped(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    events = await some_events(gateway, emulator)

    def effects(kind: str) -> list[Any]:
        event = events[kind]
        return gateway.interpret_event(VerifiedEvent(event["event_id"], kind, 0, event))

    [created] = effects("payment.created")
    assert isinstance(created, PaymentObserved) and created.stale_possible
    assert (created.result.status, created.result.payql_payment_id) == (PaymentStatus.PAID, "p-9")
    [updated] = effects("payment.updated")
    assert isinstance(updated, PaymentObserved) and updated.result.amount_refunded == 500
    [refund_created] = effects("refund.created")
    assert isinstance(refund_created, RefundObserved) and refund_created.result.status is RefundStatus.PENDING
    [refund_updated] = effects("refund.updated")
    assert isinstance(refund_updated, RefundObserved) and refund_updated.result.status is RefundStatus.SUCCEEDED
    assert refund_updated.result.payment_reference == created.result.reference
    [opened] = effects("dispute.created")
    assert isinstance(opened, DisputeObserved) and opened.result.status is DisputeStatus.NEEDS_RESPONSE
    assert opened.result.payment_reference == created.result.reference
    [decided] = effects("dispute.state.updated")
    assert isinstance(decided, DisputeObserved) and decided.result.status is DisputeStatus.WON


async def test_a_failed_refund_event_says_failed(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    emulator.ledger.hold_refunds = True
    events = await some_events(gateway, emulator)
    refund_id = events["refund.created"]["data"]["id"]
    emulator.ledger.settle_refund(refund_id, "FAILED")
    event = emulator.events[-1]
    [effect] = gateway.interpret_event(VerifiedEvent(event["event_id"], event["type"], 0, event))
    assert isinstance(effect, RefundObserved) and effect.result.status is RefundStatus.FAILED


def test_other_and_unreadable_events_are_ignored_with_a_reason(gateway: SquareGateway) -> None:
    other = {"type": "customer.created", "event_id": "e1", "data": {}}
    [ignored] = gateway.interpret_event(VerifiedEvent("e1", "customer.created", 0, other))
    assert isinstance(ignored, EventIgnored) and "customer.created" in ignored.reason
    broken = {"type": "payment.updated", "event_id": "e2", "data": {"object": {"payment": {"id": "x"}}}}
    [unreadable] = gateway.interpret_event(VerifiedEvent("e2", "payment.updated", 0, broken))
    assert isinstance(unreadable, EventIgnored) and "unreadable" in unreadable.reason


async def test_the_package_verifier_signs_for_the_configured_notification_url(emulator: SquareEmulator) -> None:
    package = catalog.package("square")
    event = {"type": "payment.updated", "event_id": "e3", "created_at": "2026-12-05T10:00:00Z", "data": {}}
    configured = SquareSettings(webhook_signature_keys=[emulator.signature_key], notification_url=URL)
    assert (
        await package.webhook_verifier(configured).verify_webhook(delivery(emulator.sign(event, notification_url=URL)))
    ).event_id == "e3"
    unset = SquareSettings(webhook_signature_keys=[emulator.signature_key])
    with pytest.raises(WebhookRejected):
        await package.webhook_verifier(unset).verify_webhook(delivery(emulator.sign(event, notification_url=URL)))


def test_the_notification_url_defaults_to_payqls_public_webhook_endpoint() -> None:
    assert (
        notification_url_of(SquareSettings(), "https://pay.example.com/") == "https://pay.example.com/webhooks/square"
    )
    behind_proxy = SquareSettings(notification_url="https://edge.example.com/hooks/square")
    assert notification_url_of(behind_proxy, "https://pay.example.com") == "https://edge.example.com/hooks/square"
