"""Square checkout through PayQL end to end: the running PayQL server gets a Square gateway pointed at the
emulator, whose signed notifications reach PayQL's `/webhooks/square`. A Web Payments SDK token pays the order at
once (one Square payment, however often the checkout is sent), a declined token is told to the shopper, a manual
payment is captured and a refund starts PENDING until Square's refund.updated completes it."""

from __future__ import annotations

import httpx

from db.models import Order, Payment, Refund, WebhookEvent, WebhookStatus
from domain.statuses import RefundStatus
from gateways.square.adapter import SquareGateway
from payql.wiring import Services
from tests.gateways.square.conftest import NONCE_DECLINED, NONCE_OK, checkout
from tests.square_emulator import SquareEmulator
from tests.testkit import CAPTURE, CHECKOUT, Shopper, checkout_input, eventually, make_price, new_key, settle

REFUND = """mutation($input: RefundPaymentInput!) { refundPayment(input: $input) {
  refund { id status } payment { amountRefunded { amount } } userErrors { code message } } }"""


async def test_a_card_token_pays_the_order_once(
    square_in_payql: SquareGateway, emulator: SquareEmulator, shopper: Shopper
) -> None:
    price = await make_price(4_250)
    variables = {"input": checkout_input(price, NONCE_OK) | {"gateway": "square"}}
    first = (await shopper.data(CHECKOUT, variables))["checkout"]
    again = (await shopper.data(CHECKOUT, variables))["checkout"]
    assert first["userErrors"] == [] and first["order"]["status"] == "PAID"
    assert again["payment"]["id"] == first["payment"]["id"]
    payment = await Payment.get(id=first["payment"]["id"])
    assert payment.status == "PAID" and payment.amount_captured == 4_250
    [square_payment] = emulator.ledger.payments.values()
    assert square_payment.id == payment.gateway_reference
    assert square_payment.reference_id == str(payment.id)  # our payment id, for find_payment after a lost answer


async def test_a_declined_token_is_told_to_the_shopper(square_in_payql: SquareGateway, shopper: Shopper) -> None:
    result = await checkout(shopper, NONCE_DECLINED)
    assert [error["code"] for error in result["userErrors"]] == ["CARD_DECLINED"]
    assert (await Order.get(id=result["order"]["id"])).status != "PAID"


async def test_a_manual_payment_is_captured(
    square_in_payql: SquareGateway, emulator: SquareEmulator, shopper: Shopper, admin: Shopper
) -> None:
    started = await checkout(shopper, NONCE_OK, manual=True)
    assert started["order"]["status"] == "AUTHORIZED"
    variables = {"input": {"paymentId": started["payment"]["id"], "idempotencyKey": new_key()}}
    captured = (await admin.data(CAPTURE, variables))["capturePayment"]
    assert captured["userErrors"] == [] and captured["payment"]["status"] == "PAID"
    assert next(iter(emulator.ledger.payments.values())).status == "COMPLETED"


async def test_a_refund_is_pending_until_square_completes_it(
    square_in_payql: SquareGateway, emulator: SquareEmulator, shopper: Shopper, admin: Shopper, services: Services
) -> None:
    paid = await checkout(shopper, NONCE_OK)
    payment_id = paid["payment"]["id"]
    await emulator.drain()
    await settle(services)
    emulator.ledger.hold_refunds = True
    variables = {"input": {"paymentId": payment_id, "amount": 1_000, "reason": "damaged", "idempotencyKey": new_key()}}
    refunded = (await admin.data(REFUND, variables))["refundPayment"]
    assert refunded["userErrors"] == [] and refunded["refund"]["status"] == "PENDING"
    [square_refund] = emulator.ledger.refunds.values()
    emulator.ledger.settle_refund(square_refund.id)  # Square's refund.updated reaches PayQL, signed

    async def completed() -> bool:
        refund = await Refund.get(id=refunded["refund"]["id"])
        return refund.status is RefundStatus.SUCCEEDED and (await Payment.get(id=payment_id)).amount_refunded == 1_000

    await eventually(completed)
    await emulator.drain()
    await settle(services)
    updated = await WebhookEvent.filter(gateway="square", event_type="refund.updated").order_by("-id").first()
    assert updated is not None and updated.status is WebhookStatus.PROCESSED


async def test_a_delivery_signed_for_another_url_or_key_is_refused(
    square_in_payql: SquareGateway, emulator: SquareEmulator, shopper: Shopper, http: httpx.AsyncClient, server: str
) -> None:
    await checkout(shopper, NONCE_OK)
    await emulator.drain()
    event = emulator.events[-1]
    for forged in (
        emulator.sign(event, notification_url="https://elsewhere.example/webhooks/square"),
        emulator.sign(event, key="not-the-subscription-key"),
    ):
        response = await http.post(f"{server}/webhooks/square", content=forged.body, headers=forged.headers)
        assert response.status_code == 400
    genuine = emulator.sign(event)
    response = await http.post(f"{server}/webhooks/square", content=genuine.body, headers=genuine.headers)
    assert response.status_code == 200 and response.json()["duplicate"] is True  # delivered already, stored once
