"""Webhook deliveries signed by the emulator: offline SHA256withRSA verification, refusals, and event mapping."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.money import Money
from domain.statuses import CaptureMethod, PaymentStatus, RefundStatus
from gateways.errors import WebhookRejected
from gateways.paypal import PayPalGateway
from gateways.types import (
    ChargeRequest,
    EventIgnored,
    PaymentObserved,
    RefundObserved,
    RefundRequest,
    VerifiedEvent,
    WebhookDelivery,
)
from tests.asgi_server import serving
from tests.gateways.paypal.conftest import approve, make_gateway
from tests.paypal_emulator import PayPalEmulator
from tests.paypal_emulator.webhooks import CertKind, Delivery, signed_message


def _delivery(signed: Delivery, **header_overrides: str) -> WebhookDelivery:
    headers = {**signed.headers, **header_overrides}
    return WebhookDelivery(headers=headers, body=signed.body, received_at=int(time.time()))


async def _captured_events(gateway: PayPalGateway, emulator: PayPalEmulator) -> dict[str, dict[str, Any]]:
    created = await gateway.charge(
        ChargeRequest(
            Money(1999, "USD"),
            "paypal",
            CaptureMethod.AUTOMATIC,
            str(uuid.uuid4()),
            metadata={"payql_payment_id": "pay_9"},
        )
    )
    await approve(emulator, created.reference)
    await gateway.complete(created.reference, capture=True)
    return {event["event_type"]: event for event in emulator.events}


async def test_a_signed_delivery_verifies_and_maps(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    events = await _captured_events(gateway, emulator)
    event = events["PAYMENT.CAPTURE.COMPLETED"]
    verified = await gateway.verify_webhook(_delivery(emulator.sign(event)))
    assert verified.event_id == event["id"] and verified.event_type == "PAYMENT.CAPTURE.COMPLETED"
    (effect,) = gateway.interpret_event(verified)
    assert isinstance(effect, PaymentObserved) and effect.stale_possible
    order_id = next(iter(emulator.ledger.orders))
    assert effect.result.reference == order_id
    assert effect.result.status is PaymentStatus.PAID and effect.result.amount_captured == 1999
    assert effect.result.payql_payment_id == "pay_9"


async def test_the_certificate_is_fetched_once(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    events = await _captured_events(gateway, emulator)
    for event in events.values():
        await gateway.verify_webhook(_delivery(emulator.sign(event)))
    assert len(events) == 3
    assert emulator.calls.cert_fetches == 1


async def test_a_tampered_body_is_refused(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    events = await _captured_events(gateway, emulator)
    signed = emulator.sign(events["PAYMENT.CAPTURE.COMPLETED"])
    tampered = Delivery(signed.headers, signed.body.replace(b"1999", b"9999").replace(b"19.99", b"99.99"))
    with pytest.raises(WebhookRejected, match="signature"):
        await gateway.verify_webhook(_delivery(tampered))


async def test_a_bad_signature_is_refused(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    events = await _captured_events(gateway, emulator)
    signed = emulator.sign(events["CHECKOUT.ORDER.COMPLETED"])
    other = emulator.sign(events["CHECKOUT.ORDER.APPROVED"])
    with pytest.raises(WebhookRejected, match="signature"):
        await gateway.verify_webhook(
            _delivery(signed, **{"paypal-transmission-sig": other.headers["paypal-transmission-sig"]})
        )
    with pytest.raises(WebhookRejected, match="base64"):
        await gateway.verify_webhook(_delivery(signed, **{"paypal-transmission-sig": "%%%"}))


async def test_another_webhook_id_is_refused(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    events = await _captured_events(gateway, emulator)
    signed = emulator.sign(events["CHECKOUT.ORDER.COMPLETED"], webhook_id="WH-SOMEONE-ELSE")
    with pytest.raises(WebhookRejected, match="webhook id"):
        await gateway.verify_webhook(_delivery(signed))


async def test_rotated_webhook_ids_are_all_tried(emulator: PayPalEmulator) -> None:
    gateway = make_gateway(emulator, webhook_id=("WH-OLD", emulator.webhook_id))
    try:
        signed = emulator.sign({"id": "WH-1", "event_type": "X", "create_time": "2026-01-01T00:00:00Z"})
        assert (await gateway.verify_webhook(_delivery(signed))).event_id == "WH-1"
    finally:
        await gateway.aclose()


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://evil.example.com/v1/notifications/certs/CERT-1",
        "https://api.paypal.com.evil.example.com/certs/CERT-1",
        "https://api.paypal.com@evil.example.com/certs/CERT-1",
        "file:///etc/passwd",
    ],
)
async def test_a_cert_url_off_paypal_hosts_is_refused(
    gateway: PayPalGateway, emulator: PayPalEmulator, cert_url: str
) -> None:
    signed = emulator.sign({"id": "WH-2", "event_type": "X", "create_time": "2026-01-01T00:00:00Z"})
    with pytest.raises(WebhookRejected, match="certificate URL"):
        await gateway.verify_webhook(_delivery(signed, **{"paypal-cert-url": cert_url}))


async def test_the_default_allowlist_refuses_a_local_cert_url(emulator: PayPalEmulator) -> None:
    gateway = PayPalGateway("id", "secret", webhook_id=emulator.webhook_id, base_url=emulator.base_url)
    try:
        signed = emulator.sign({"id": "WH-3", "event_type": "X", "create_time": "2026-01-01T00:00:00Z"})
        with pytest.raises(WebhookRejected, match="certificate URL"):
            await gateway.verify_webhook(_delivery(signed))
    finally:
        await gateway.aclose()


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("self-signed", "chain to a trusted root"),
        ("other-ca", "chain to a trusted root"),
        ("expired", "validity period"),
        ("other-name", "not a PayPal name"),  # issued by the trusted CA, but not to PayPal
    ],
)
async def test_a_certificate_off_the_trusted_chain_is_refused(
    gateway: PayPalGateway, emulator: PayPalEmulator, kind: CertKind, reason: str
) -> None:
    """Same signing key, same allow-listed URL: only the certificate served there is wrong."""
    emulator.signer.reissue(kind)
    signed = emulator.sign({"id": "WH-6", "event_type": "X", "create_time": "2026-01-01T00:00:00Z"})
    with pytest.raises(WebhookRejected, match=reason):
        await gateway.verify_webhook(_delivery(signed))


async def test_without_the_test_root_the_system_roots_refuse_the_emulator(emulator: PayPalEmulator) -> None:
    """Production trusts the system roots, which never issued the emulator's test CA."""
    gateway = make_gateway(emulator, webhook_trusted_roots=None)
    try:
        signed = emulator.sign({"id": "WH-7", "event_type": "X", "create_time": "2026-01-01T00:00:00Z"})
        with pytest.raises(WebhookRejected, match="trusted root"):
            await gateway.verify_webhook(_delivery(signed))
    finally:
        await gateway.aclose()


async def test_a_refund_event_finds_its_payment_through_the_capture(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    """PayPal's refund resource names only its capture: the effect carries our payment id (the refund's custom_id,
    which the adapter sets) and a capture reference that the re-read resolves to the order."""
    await _captured_events(gateway, emulator)
    (order_id,) = emulator.ledger.orders
    refund = await gateway.refund(RefundRequest(order_id, Money(500, "USD"), str(uuid.uuid4())))
    event = next(e for e in emulator.events if e["event_type"] == "PAYMENT.CAPTURE.REFUNDED")
    assert "supplementary_data" not in event["resource"]
    verified = await gateway.verify_webhook(_delivery(emulator.sign(event)))
    refunded, payment = gateway.interpret_event(verified)
    assert isinstance(refunded, RefundObserved) and refunded.result.reference == refund.reference
    assert isinstance(payment, PaymentObserved) and payment.result.payql_payment_id == "pay_9"
    (capture_id,) = emulator.ledger.orders[order_id].capture_ids
    assert payment.result.reference == f"paypal_capture:{capture_id}"
    reread = await gateway.retrieve(payment.result.reference)
    assert (reread.reference, reread.amount_refunded, reread.status) == (order_id, 500, PaymentStatus.PAID)


@pytest.mark.parametrize("minutes", [-6, 6])
async def test_an_old_or_future_transmission_is_refused(
    gateway: PayPalGateway, emulator: PayPalEmulator, minutes: int
) -> None:
    when = datetime.now(UTC) + timedelta(minutes=minutes)
    signed = emulator.sign(
        {"id": "WH-4", "event_type": "X", "create_time": "2026-01-01T00:00:00Z"}, transmission_time=when
    )
    with pytest.raises(WebhookRejected, match="window"):
        await gateway.verify_webhook(_delivery(signed))


async def test_missing_headers_and_wrong_algorithm_are_refused(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    signed = emulator.sign({"id": "WH-5", "event_type": "X", "create_time": "2026-01-01T00:00:00Z"})
    with pytest.raises(WebhookRejected, match="missing"):
        await gateway.verify_webhook(WebhookDelivery({}, signed.body, int(time.time())))
    with pytest.raises(WebhookRejected, match="ALGO"):
        await gateway.verify_webhook(_delivery(signed, **{"paypal-auth-algo": "SHA1withRSA"}))


async def test_the_emulator_delivers_signed_events(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    received: list[WebhookDelivery] = []

    async def hook(request: Request) -> Response:
        received.append(WebhookDelivery(dict(request.headers), await request.body(), int(time.time())))
        return Response(status_code=200)

    async with _serving(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        emulator.webhook_url = f"{url}/hook"
        await _captured_events(gateway, emulator)
        await emulator.drain()
    assert [d.body for d in received] == [d.body for d in emulator.deliveries]
    types = [(await gateway.verify_webhook(d)).event_type for d in received]
    assert sorted(types) == ["CHECKOUT.ORDER.APPROVED", "CHECKOUT.ORDER.COMPLETED", "PAYMENT.CAPTURE.COMPLETED"]


async def test_the_verify_webhook_signature_api(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    """The emulator's `POST /v1/notifications/verify-webhook-signature`, for clients that choose the API route."""
    events = await _captured_events(gateway, emulator)
    event = events["PAYMENT.CAPTURE.COMPLETED"]
    signed = emulator.sign(event)
    async with httpx.AsyncClient(base_url=emulator.base_url) as client:
        token = (
            await client.post(
                "/v1/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(emulator.client_id, emulator.client_secret),
            )
        ).json()["access_token"]
        body = {
            "auth_algo": signed.headers["paypal-auth-algo"],
            "cert_url": signed.headers["paypal-cert-url"],
            "transmission_id": signed.headers["paypal-transmission-id"],
            "transmission_sig": signed.headers["paypal-transmission-sig"],
            "transmission_time": signed.headers["paypal-transmission-time"],
            "webhook_id": emulator.webhook_id,
            "webhook_event": event,
        }
        headers = {"Authorization": f"Bearer {token}"}
        ok = await client.post("/v1/notifications/verify-webhook-signature", json=body, headers=headers)
        body["transmission_id"] = "someone-else"
        bad = await client.post("/v1/notifications/verify-webhook-signature", json=body, headers=headers)
    assert ok.json() == {"verification_status": "SUCCESS"}
    assert bad.json() == {"verification_status": "FAILURE"}


def _event(event_type: str, resource: dict[str, Any]) -> VerifiedEvent:
    payload = {"id": "WH-X", "event_type": event_type, "create_time": "2026-11-26T00:00:00Z", "resource": resource}
    return VerifiedEvent("WH-X", event_type, 1_795_000_000, payload)


def _resource(status: str, *, order_id: str | None = "ORDER1") -> dict[str, Any]:
    resource: dict[str, Any] = {"id": "R1", "status": status, "amount": {"currency_code": "USD", "value": "10.00"}}
    if order_id:
        resource["supplementary_data"] = {"related_ids": {"order_id": order_id}}
    return resource


def _order(status: str) -> dict[str, Any]:
    return {
        "id": "ORDER1",
        "status": status,
        "intent": "CAPTURE",
        "purchase_units": [{"amount": {"currency_code": "USD", "value": "10.00"}}],
        "links": [{"href": "https://www.paypal.com/checkoutnow?token=ORDER1", "rel": "approve", "method": "GET"}],
    }


@pytest.mark.parametrize(
    ("event_type", "resource", "status"),
    [
        ("PAYMENT.CAPTURE.COMPLETED", _resource("COMPLETED"), PaymentStatus.PAID),
        ("PAYMENT.CAPTURE.DENIED", _resource("DECLINED"), PaymentStatus.FAILED),
        ("PAYMENT.CAPTURE.PENDING", _resource("PENDING"), PaymentStatus.PROCESSING),
        ("PAYMENT.CAPTURE.REFUNDED", _resource("COMPLETED"), PaymentStatus.PAID),
        ("PAYMENT.CAPTURE.REVERSED", _resource("COMPLETED"), PaymentStatus.PAID),
        ("CHECKOUT.ORDER.APPROVED", _order("APPROVED"), PaymentStatus.REQUIRES_ACTION),
        ("CHECKOUT.ORDER.COMPLETED", _order("COMPLETED"), PaymentStatus.PENDING),
        ("PAYMENT.AUTHORIZATION.CREATED", _resource("CREATED"), PaymentStatus.AUTHORIZED),
        ("PAYMENT.AUTHORIZATION.VOIDED", _resource("VOIDED"), PaymentStatus.CANCELED),
        ("PAYMENT.AUTHORIZATION.DENIED", _resource("DENIED"), PaymentStatus.FAILED),
        ("PAYMENT.CAPTURE.COMPLETED", _resource("SOMETHING_NEW"), PaymentStatus.PENDING),
    ],
)
def test_interpret_event(
    gateway: PayPalGateway, event_type: str, resource: dict[str, Any], status: PaymentStatus
) -> None:
    effect = gateway.interpret_event(_event(event_type, resource))[-1]
    assert isinstance(effect, PaymentObserved) and effect.stale_possible
    assert effect.result.reference == "ORDER1" and effect.result.status is status
    assert effect.result.amount == Money(1000, "USD")


def test_refund_events_carry_the_refunded_amount(gateway: PayPalGateway) -> None:
    refund, payment = gateway.interpret_event(_event("PAYMENT.CAPTURE.REFUNDED", _resource("COMPLETED")))
    assert isinstance(refund, RefundObserved) and refund.result.reference == "R1"
    assert refund.result.status is RefundStatus.SUCCEEDED and refund.result.amount == Money(1000, "USD")
    assert isinstance(payment, PaymentObserved) and payment.result.amount_refunded == 1000


def test_a_refund_event_without_an_order_names_its_capture(gateway: PayPalGateway) -> None:
    """PayPal's refund objects name their capture only (the `up` link) and carry the custom_id we gave them."""
    resource = _resource("COMPLETED", order_id=None)
    resource["custom_id"] = "pay_7"
    resource["links"] = [{"href": "https://api-m.paypal.com/v2/payments/captures/CAP9", "rel": "up", "method": "GET"}]
    refund, payment = gateway.interpret_event(_event("PAYMENT.CAPTURE.REFUNDED", resource))
    assert isinstance(refund, RefundObserved) and isinstance(payment, PaymentObserved)
    assert payment.result.reference == "paypal_capture:CAP9" and payment.result.payql_payment_id == "pay_7"


def test_a_capture_event_without_an_order_names_the_capture(gateway: PayPalGateway) -> None:
    (effect,) = gateway.interpret_event(_event("PAYMENT.CAPTURE.COMPLETED", _resource("COMPLETED", order_id=None)))
    assert isinstance(effect, PaymentObserved) and effect.result.reference == "paypal_capture:R1"


@pytest.mark.parametrize(
    ("event_type", "resource"),
    [
        ("PAYMENT.AUTHORIZATION.CREATED", _resource("CREATED", order_id=None)),
        ("PAYMENT.SALE.COMPLETED", {"id": "S1", "state": "completed"}),
        ("CUSTOMER.DISPUTE.CREATED", {"status": "OPEN"}),
        ("MERCHANT.ONBOARDING.COMPLETED", {"id": "X"}),
        ("PAYMENT.CAPTURE.COMPLETED", {"id": "R1", "supplementary_data": {"related_ids": {"order_id": "O"}}}),
    ],
)
def test_other_events_are_ignored(gateway: PayPalGateway, event_type: str, resource: dict[str, Any]) -> None:
    (effect,) = gateway.interpret_event(_event(event_type, resource))
    assert isinstance(effect, EventIgnored)


async def test_malformed_bodies_are_refused(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    """Correctly signed, yet not a PayPal event: refused after the signature check."""
    for body in (b"not json", b"[]", b'{"id": "WH-1", "event_type": "X"}'):
        with pytest.raises(WebhookRejected, match=r"JSON|create_time"):
            await gateway.verify_webhook(_sign_raw(emulator, body))


def _sign_raw(emulator: PayPalEmulator, body: bytes) -> WebhookDelivery:
    """Sign exact bytes (the emulator's `sign` serializes a dict)."""
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sig = emulator.signer.key.sign(
        signed_message("t-1", when, emulator.webhook_id, body), padding.PKCS1v15(), hashes.SHA256()
    )
    headers = {
        "paypal-transmission-id": "t-1",
        "paypal-transmission-time": when,
        "paypal-transmission-sig": base64.b64encode(sig).decode(),
        "paypal-cert-url": emulator.cert_url,
        "paypal-auth-algo": "SHA256withRSA",
    }
    return WebhookDelivery(headers, body, int(time.time()))


@asynccontextmanager
async def _serving(app: Starlette) -> AsyncIterator[str]:
    async with serving(app) as base_url:
        yield base_url
