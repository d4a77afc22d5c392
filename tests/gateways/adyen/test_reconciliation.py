"""Reconciliation with Adyen, which cannot be read: an Adyen payment in flight is left alone (never failed as
"never reached the gateway"), and only its signed notification settles it; a notification Adyen sends twice is
stored once, by its event code and PSP reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from db.models import Payment, WebhookEvent
from gateways.adyen import AdyenGateway
from jobs.reconcile import reconcile
from payql.wiring import Services
from tests.adyen_emulator import AdyenEmulator
from tests.adyen_emulator.app import THREE_DS_CARD
from tests.gateways.adyen.conftest import drop_in
from tests.gateways.adyen.test_checkout_flow import checkout, deliver
from tests.testkit import Shopper, settle


async def test_an_adyen_payment_in_flight_waits_for_its_notification(
    adyen_in_payql: AdyenGateway, emulator: AdyenEmulator, shopper: Shopper, server: str, services: Services
) -> None:
    started = await checkout(shopper, drop_in(THREE_DS_CARD))
    payment_id = started["payment"]["id"]
    report = await reconcile(
        services.jobs.gateways,
        since=datetime.now(UTC) - timedelta(minutes=5),
        orphan_age=timedelta(0),
        order_expiry=timedelta(days=1),
    )
    assert (await Payment.get(id=payment_id)).status == "REQUIRES_ACTION"  # not FAILED: Adyen was not asked
    # Adyen has no API to list payments: that is no outage (no alert, no failed run), only nothing to compare.
    assert "adyen" in report.unlisted_gateways and "adyen" not in report.unreachable_gateways

    # The shopper finished 3-D Secure elsewhere; the AUTHORISATION notification is what settles it.
    redirect_result = started["nextAction"]["redirectUrl"].rsplit("redirectResult=", 1)[1]
    await adyen_in_payql.accept_shopper_return(
        (await Payment.get(id=payment_id)).gateway_reference or "",
        {"redirectResult": redirect_result},
        capture=True,
        idempotency_key="reconcile-test",
    )
    await deliver(emulator, server, services)
    assert (await Payment.get(id=payment_id)).status == "PAID"


async def test_a_notification_sent_twice_is_stored_once(
    adyen_in_payql: AdyenGateway, emulator: AdyenEmulator, shopper: Shopper, server: str, services: Services
) -> None:
    started = await checkout(shopper, drop_in(), capture_method="MANUAL")
    reference = (await Payment.get(id=started["payment"]["id"])).gateway_reference
    body = emulator.body(emulator.take())
    answers = []
    async with httpx.AsyncClient() as client:
        for _ in range(2):
            response = await client.post(
                f"{server}/webhooks/adyen", content=body, headers={"Authorization": emulator.basic_auth()}
            )
            answers.append(response.json())
    assert [a["duplicate"] for a in answers] == [False, True]
    await settle(services)
    assert await WebhookEvent.filter(gateway="adyen", event_id=f"AUTHORISATION:{reference}").count() == 1
