"""Signed deliveries from localstripe (a separate process) reach a receiver in this test, verify with the
adapter and interpret to `PaymentObserved`. localstripe signs `t=<event created>,v1=<HMAC>` with the secret
registered through its `POST /_config/webhooks/{id}` and delivers about a second after the change."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from domain.statuses import PaymentStatus
from gateways.errors import PaymentDeclined, WebhookRejected
from gateways.stripe.adapter import StripeGateway
from gateways.stripe.client import StripeApi
from gateways.types import PaymentObserved, WebhookDelivery
from tests.gateways.stripe.conftest import (
    CARD_DECLINED_AT_CHARGE,
    CARD_OK,
    OLD_WEBHOOK_SECRET,
    SECRET_KEY,
    card_payment_method,
    charge_request,
)
from tests.gateways.stripe.servers import WebhookReceiver, serve


async def _deliveries_about(receiver: WebhookReceiver, object_id: str, count: int = 1) -> list[WebhookDelivery]:
    for _ in range(100):
        found = receiver.events_about(object_id)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no webhook about {object_id} within 10 s; got {len(receiver.deliveries)} others")


async def test_localstripe_deliveries_verify_and_interpret(
    localstripe: str, gateway: StripeGateway, stripe_api: StripeApi
) -> None:
    receiver = WebhookReceiver()
    # The endpoint is registered with the *previous* secret: the gateway accepts it while secrets rotate.
    endpoint = f"payql-{uuid.uuid4().hex[:8]}"
    async with serve(receiver) as receiver_url, httpx.AsyncClient(base_url=localstripe) as config:
        registered = await config.post(
            f"/_config/webhooks/{endpoint}",
            json={
                "url": f"{receiver_url}/webhooks/stripe",
                "secret": OLD_WEBHOOK_SECRET,
                "events": ["payment_intent.succeeded", "payment_intent.payment_failed"],
            },
        )
        assert registered.status_code == 200
        paid = await gateway.charge(charge_request(await card_payment_method(stripe_api, CARD_OK), 2100))
        declined_request = charge_request(await card_payment_method(stripe_api, CARD_DECLINED_AT_CHARGE), 2200)
        with pytest.raises(PaymentDeclined):
            await gateway.charge(declined_request)
        declined = await gateway.find_payment(declined_request.metadata["payql_payment_id"])
        assert declined is not None

        [paid_delivery] = await _deliveries_about(receiver, paid.reference)
        [failed_delivery] = await _deliveries_about(receiver, declined.reference)
        # Unregistered deliveries would otherwise go to a closed port for the rest of the session.
        await config.post(
            f"/_config/webhooks/{endpoint}", json={"url": "http://127.0.0.1:9/", "secret": "x", "events": []}
        )

    assert paid_delivery.headers["stripe-signature"].startswith("t=")
    paid_event = await gateway.verify_webhook(paid_delivery)
    assert paid_event.event_type == "payment_intent.succeeded"
    assert paid_event.event_id.startswith("evt_")
    [paid_effect] = gateway.interpret_event(paid_event)
    assert isinstance(paid_effect, PaymentObserved)
    assert paid_effect.result.reference == paid.reference
    assert paid_effect.result.status is PaymentStatus.PAID
    assert paid_effect.result.amount_captured == 2100
    assert paid_effect.result.payql_payment_id == paid.payql_payment_id

    failed_event = await gateway.verify_webhook(failed_delivery)
    assert failed_event.event_type == "payment_intent.payment_failed"
    [failed_effect] = gateway.interpret_event(failed_event)
    assert isinstance(failed_effect, PaymentObserved)
    assert failed_effect.result.reference == declined.reference
    assert failed_effect.result.status is PaymentStatus.FAILED
    assert failed_effect.result.decline_code == "card_declined"

    # A gateway that does not know localstripe's secret refuses the very same deliveries.
    stranger = StripeGateway(SECRET_KEY, webhook_secrets=["whsec_someone_else"], base_url=localstripe)
    try:
        with pytest.raises(WebhookRejected):
            await stranger.verify_webhook(paid_delivery)
    finally:
        await stranger.aclose()
