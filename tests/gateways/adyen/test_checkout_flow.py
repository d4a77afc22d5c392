"""Adyen checkout through the running PayQL server end to end, on the emulator.

What Adyen answers synchronously (an authorisation) applies at once; what it only accepts (`received`: a
capture, a refund) stays pending in PayQL until the signed notification, delivered to PayQL's webhook endpoint
over HTTP, says how it ended. A refused CAPTURE notification leaves the payment authorized (nothing was shown as
captured), and a new capture then goes through. 3-D Secure: the SPA sends back Drop-in's `redirectResult`, which
PayQL submits to /payments/details; a forged one changes nothing. A card stored at checkout (our customer is its
`shopperReference`) pays that customer's next order, and nobody else's.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from db.models import Order, Payment, Refund, WebhookEvent, WebhookStatus
from gateways.adyen import AdyenGateway
from payql.wiring import Services
from tests.adyen_emulator import AdyenEmulator
from tests.adyen_emulator.app import THREE_DS_CARD, THREE_DS_REFUSED_CARD
from tests.gateways.adyen.conftest import drop_in
from tests.testkit import CANCEL, CAPTURE, CHECKOUT, COMPLETE, Shopper, checkout_input, make_price, new_key, settle

REFUND = """mutation($input: RefundPaymentInput!) { refundPayment(input: $input) {
  refund { id status } payment { amountRefunded { amount } } userErrors { code message } } }"""


async def checkout(shopper: Shopper, payment_method: str, capture_method: str = "AUTOMATIC") -> dict[str, Any]:
    price = await make_price(4_250, "EUR")
    values = checkout_input(price, payment_method, capture_method=capture_method) | {"gateway": "adyen"}
    result: dict[str, Any] = (await shopper.data(CHECKOUT, {"input": values}))["checkout"]
    assert result["userErrors"] == []
    return result


async def deliver(emulator: AdyenEmulator, server: str, services: Services) -> None:
    """Adyen POSTs its queued notifications to PayQL; PayQL processes them."""
    response = await emulator.deliver(f"{server}/webhooks/adyen")
    assert response.status_code == 200, response.text
    await settle(services)


async def test_checkout_then_a_refund_pending_until_its_notification(
    adyen_in_payql: AdyenGateway,
    emulator: AdyenEmulator,
    shopper: Shopper,
    admin: Shopper,
    server: str,
    services: Services,
) -> None:
    started = await checkout(shopper, drop_in())
    payment_id = started["payment"]["id"]
    assert started["order"]["status"] == "PAID" and started["payment"]["amountCaptured"]["amount"] == 4_250
    await deliver(emulator, server, services)  # the AUTHORISATION notification agrees: nothing changes
    assert (await Payment.get(id=payment_id)).status == "PAID"

    variables = {"input": {"paymentId": payment_id, "amount": 1_000, "reason": "damaged", "idempotencyKey": new_key()}}
    refunded = (await admin.data(REFUND, variables))["refundPayment"]
    assert refunded["userErrors"] == []
    assert refunded["refund"]["status"] == "PENDING"  # Adyen only said "received"
    assert (await Payment.get(id=payment_id)).amount_refunded == 0

    await deliver(emulator, server, services)  # REFUND success=true
    refund = await Refund.get(id=refunded["refund"]["id"])
    assert refund.status == "SUCCEEDED"
    payment = await Payment.get(id=payment_id)
    assert payment.amount_refunded == 1_000
    assert (await Order.get(id=payment.order_id)).status == "PARTIALLY_REFUNDED"
    event = await WebhookEvent.filter(gateway="adyen", event_type="REFUND").order_by("-id").first()
    assert event is not None and event.status is WebhookStatus.PROCESSED


async def test_a_capture_stays_pending_until_the_capture_notification(
    adyen_in_payql: AdyenGateway,
    emulator: AdyenEmulator,
    shopper: Shopper,
    admin: Shopper,
    server: str,
    services: Services,
) -> None:
    started = await checkout(shopper, drop_in(), capture_method="MANUAL")
    payment_id = started["payment"]["id"]
    assert started["payment"]["status"] == "AUTHORIZED"
    await deliver(emulator, server, services)

    captured = await admin.data(CAPTURE, {"input": {"paymentId": payment_id, "idempotencyKey": new_key()}})
    assert captured["capturePayment"]["userErrors"] == []
    assert captured["capturePayment"]["payment"]["status"] == "AUTHORIZED"  # requested, not confirmed
    assert (await Payment.get(id=payment_id)).amount_captured == 0

    await deliver(emulator, server, services)  # CAPTURE success=true
    payment = await Payment.get(id=payment_id)
    assert (payment.status, payment.amount_captured) == ("PAID", 4_250)
    assert (await Order.get(id=payment.order_id)).status == "PAID"


async def test_a_refused_capture_notification_leaves_the_payment_authorized(
    adyen_in_payql: AdyenGateway,
    emulator: AdyenEmulator,
    shopper: Shopper,
    admin: Shopper,
    server: str,
    services: Services,
) -> None:
    started = await checkout(shopper, drop_in(), capture_method="MANUAL")
    payment_id = started["payment"]["id"]
    await deliver(emulator, server, services)

    emulator.fail_next("CAPTURE")
    await admin.data(CAPTURE, {"input": {"paymentId": payment_id, "idempotencyKey": new_key()}})
    await deliver(emulator, server, services)  # CAPTURE success=false
    payment = await Payment.get(id=payment_id)
    assert (payment.status, payment.amount_captured) == ("AUTHORIZED", 0)
    assert (await Order.get(id=payment.order_id)).status == "AUTHORIZED"

    again = await admin.data(CAPTURE, {"input": {"paymentId": payment_id, "idempotencyKey": new_key()}})
    assert again["capturePayment"]["userErrors"] == []
    await deliver(emulator, server, services)
    assert (await Payment.get(id=payment_id)).status == "PAID"


async def test_three_d_secure_finishes_with_the_returned_redirect_result(
    adyen_in_payql: AdyenGateway, emulator: AdyenEmulator, shopper: Shopper
) -> None:
    started = await checkout(shopper, drop_in(THREE_DS_CARD))
    payment_id = started["payment"]["id"]
    assert started["payment"]["status"] == "REQUIRES_ACTION"
    assert started["nextAction"]["type"] == "REDIRECT"
    redirect_result = started["nextAction"]["redirectUrl"].rsplit("redirectResult=", 1)[1]

    def returned(value: str) -> dict[str, Any]:
        return {"input": {"paymentId": payment_id, "returned": [{"name": "redirectResult", "value": value}]}}

    forged = (await shopper.data(COMPLETE, returned("forged-" + redirect_result)))["completePayment"]
    assert [e["code"] for e in forged["userErrors"]] == ["INVALID_INPUT"]
    assert (await Payment.get(id=payment_id)).status == "REQUIRES_ACTION"

    done = (await shopper.data(COMPLETE, returned(redirect_result)))["completePayment"]
    assert done["userErrors"] == [] and done["order"]["status"] == "PAID"
    details = [key for path, key in emulator.requests if path == "/v72/payments/details"]
    assert len(details) == 2 and all(details)  # the forged and the real one, each with an Idempotency-Key


async def test_a_forged_notification_is_rejected(
    adyen_in_payql: AdyenGateway, emulator: AdyenEmulator, shopper: Shopper, server: str, services: Services
) -> None:
    started = await checkout(shopper, drop_in(), capture_method="MANUAL")
    items = emulator.take()
    item = items[0]["NotificationRequestItem"]
    item["eventCode"], item["originalReference"] = "CAPTURE", item["pspReference"]  # signature no longer matches
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server}/webhooks/adyen", content=emulator.body(items), headers={"Authorization": emulator.basic_auth()}
        )
    assert response.status_code == 400
    await settle(services)
    assert (await Payment.get(id=started["payment"]["id"])).status == "AUTHORIZED"


async def test_a_card_stored_at_checkout_pays_the_same_customers_next_order(
    adyen_in_payql: AdyenGateway, emulator: AdyenEmulator, shopper: Shopper, other_shopper: Shopper
) -> None:
    storing = json.dumps({"paymentMethod": json.loads(drop_in()), "storePaymentMethod": True})
    await checkout(shopper, storing)
    (item,) = [i["NotificationRequestItem"] for i in emulator.take()]
    token = item["additionalData"]["tokenization.storedPaymentMethodId"]
    stored_card = json.dumps({"type": "scheme", "storedPaymentMethodId": token})

    again = await checkout(shopper, stored_card)
    assert again["order"]["status"] == "PAID"

    price = await make_price(4_250, "EUR")
    values = checkout_input(price, stored_card) | {"gateway": "adyen"}
    theirs = (await other_shopper.data(CHECKOUT, {"input": values}))["checkout"]
    assert theirs["userErrors"] and theirs["order"]["status"] != "PAID"  # Adyen: not this shopper's card


async def test_a_cancel_stays_pending_until_the_cancellation_notification(
    adyen_in_payql: AdyenGateway,
    emulator: AdyenEmulator,
    shopper: Shopper,
    admin: Shopper,
    server: str,
    services: Services,
) -> None:
    started = await checkout(shopper, drop_in(), capture_method="MANUAL")
    payment_id = started["payment"]["id"]
    await deliver(emulator, server, services)
    canceled = await admin.data(CANCEL, {"input": {"paymentId": payment_id, "idempotencyKey": new_key()}})
    assert canceled["cancelPayment"]["userErrors"] == []
    assert (await Payment.get(id=payment_id)).status == "AUTHORIZED"  # requested, not confirmed
    await deliver(emulator, server, services)  # CANCELLATION success=true
    payment = await Payment.get(id=payment_id)
    assert payment.status == "CANCELED"
    assert (await Order.get(id=payment.order_id)).status == "PENDING"  # the order may be paid another way


async def test_a_failed_three_d_secure_challenge_fails_the_payment(
    adyen_in_payql: AdyenGateway, emulator: AdyenEmulator, shopper: Shopper
) -> None:
    started = await checkout(shopper, drop_in(THREE_DS_REFUSED_CARD))
    redirect_result = started["nextAction"]["redirectUrl"].rsplit("redirectResult=", 1)[1]
    returned = [{"name": "redirectResult", "value": redirect_result}]
    done = await shopper.data(COMPLETE, {"input": {"paymentId": started["payment"]["id"], "returned": returned}})
    assert done["completePayment"]["payment"]["status"] == "FAILED"
    payment = await Payment.get(id=started["payment"]["id"])
    assert (payment.status, payment.failure_message) == ("FAILED", "3D Not Authenticated")
