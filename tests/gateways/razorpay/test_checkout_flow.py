"""Razorpay checkout through PayQL end to end, on the running server: checkout creates a Razorpay Order →
the SPA opens Checkout with its id and the shopper pays on the emulator → completePayment with the three values
Checkout handed the SPA → PAID; then a refund. A forged signature changes nothing; a declined attempt leaves the
order payable; the webhooks Razorpay sends meanwhile (payment.captured, order.paid, refund.processed) reach the
same state without double counting.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from db.models import Order, Payment, PaymentEvent, Refund
from gateways.razorpay.adapter import RazorpayGateway
from payql.wiring import Services
from tests.gateways.razorpay.conftest import failure_values, pay_in_checkout
from tests.razorpay_emulator import RazorpayEmulator
from tests.testkit import CHECKOUT, COMPLETE, Shopper, checkout_input, eventually, make_price, new_key, settle

REFUND = """mutation($input: RefundPaymentInput!) { refundPayment(input: $input) {
  refund { id status } payment { amountRefunded { amount } } userErrors { code message } } }"""
AMOUNT = 42_500


async def start_checkout(shopper: Shopper, capture_method: str = "AUTOMATIC") -> tuple[str, str]:
    """Our payment id and the Razorpay order id the SPA opens Checkout with."""
    price = await make_price(AMOUNT, "INR")
    values = checkout_input(price, "razorpay", capture_method=capture_method) | {"gateway": "razorpay"}
    started: dict[str, Any] = (await shopper.data(CHECKOUT, {"input": values}))["checkout"]
    assert started["userErrors"] == []
    assert started["order"]["status"] == "REQUIRES_ACTION"
    assert started["nextAction"]["type"] == "CONFIRM_WITH_SDK"
    order_id = started["nextAction"]["clientSecret"]
    assert order_id == (await Payment.get(id=started["payment"]["id"])).gateway_reference
    return started["payment"]["id"], order_id


async def complete(shopper: Shopper, payment_id: str, returned: dict[str, str]) -> dict[str, Any]:
    values = [{"name": name, "value": value} for name, value in returned.items()]
    answer: dict[str, Any] = (await shopper.data(COMPLETE, {"input": {"paymentId": payment_id, "returned": values}}))[
        "completePayment"
    ]
    return answer


async def test_checkout_pay_in_checkout_complete_and_refund(
    razorpay_in_payql: RazorpayGateway, emulator: RazorpayEmulator, shopper: Shopper, admin: Shopper, services: Services
) -> None:
    payment_id, order_id = await start_checkout(shopper)
    handed = await pay_in_checkout(emulator, order_id)
    done = await complete(shopper, payment_id, handed)
    assert done["userErrors"] == [] and done["order"]["status"] == "PAID"
    assert done["payment"]["amountCaptured"]["amount"] == AMOUNT
    await emulator.drain()
    await settle(services)  # payment.captured and order.paid, re-read: nothing more to apply
    payment = await Payment.get(id=payment_id)
    assert payment.status == "PAID" and payment.amount_captured == AMOUNT
    assert (await Order.get(id=payment.order_id)).status == "PAID"
    assert await PaymentEvent.filter(payment_id=payment_id, type="CAPTURED").count() == 1

    variables = {"input": {"paymentId": payment_id, "amount": 10_000, "reason": "damaged", "idempotencyKey": new_key()}}
    refunded = (await admin.data(REFUND, variables))["refundPayment"]
    assert refunded["userErrors"] == [] and refunded["refund"]["status"] == "SUCCEEDED"
    assert refunded["payment"]["amountRefunded"]["amount"] == 10_000
    [wire] = emulator.ledger.refunds.values()
    assert wire["amount"] == 10_000 and wire["speed_requested"] == "normal"
    await emulator.drain()
    await settle(services)  # refund.created / refund.processed: the same refund, counted once
    assert (await Payment.get(id=payment_id)).amount_refunded == 10_000
    assert await Refund.filter(payment_id=payment_id).count() == 1


async def test_a_pending_refund_settles_by_webhook(
    razorpay_in_payql: RazorpayGateway, emulator: RazorpayEmulator, shopper: Shopper, admin: Shopper, services: Services
) -> None:
    payment_id, order_id = await start_checkout(shopper)
    assert (await complete(shopper, payment_id, await pay_in_checkout(emulator, order_id)))["userErrors"] == []
    emulator.ledger.refunds_pending = True
    variables = {"input": {"paymentId": payment_id, "amount": AMOUNT, "reason": "", "idempotencyKey": new_key()}}
    refunded = (await admin.data(REFUND, variables))["refundPayment"]
    assert refunded["userErrors"] == [] and refunded["refund"]["status"] == "PENDING"
    [wire] = emulator.ledger.refunds.values()
    emulator.ledger.settle_refund(wire["id"])

    async def succeeded() -> bool:
        return (await Refund.get(gateway_reference=wire["id"])).status == "SUCCEEDED"

    await eventually(succeeded)


async def test_a_forged_signature_changes_nothing_and_is_logged(
    razorpay_in_payql: RazorpayGateway,
    emulator: RazorpayEmulator,
    shopper: Shopper,
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    payment_id, order_id = await start_checkout(shopper, capture_method="MANUAL")
    handed = await pay_in_checkout(emulator, order_id)
    await emulator.drain()
    await settle(services)  # payment.authorized: the webhook path reads the truth, AUTHORIZED
    before = await Payment.get(id=payment_id)
    forged = {**handed, "razorpay_signature": "f" * 64}
    with caplog.at_level(logging.WARNING):
        answer = await complete(shopper, payment_id, forged)
    assert [error["code"] for error in answer["userErrors"]] == ["INVALID_INPUT"]
    assert any("rejected returned values" in record.getMessage() for record in caplog.records)
    after = await Payment.get(id=payment_id)
    assert (after.status, after.amount_captured, after.updated_at) == (before.status, 0, before.updated_at)
    # The genuine values then complete it (manual capture: authorized, not captured).
    genuine = await complete(shopper, payment_id, handed)
    assert genuine["userErrors"] == [] and genuine["payment"]["status"] == "AUTHORIZED"


async def test_a_declined_attempt_leaves_the_order_payable(
    razorpay_in_payql: RazorpayGateway, emulator: RazorpayEmulator, shopper: Shopper
) -> None:
    payment_id, order_id = await start_checkout(shopper)
    declined = await pay_in_checkout(emulator, order_id, decline_reason="insufficient_funds")
    answer = await complete(shopper, payment_id, failure_values(declined))
    assert answer["userErrors"] and answer["payment"]["status"] == "REQUIRES_ACTION"
    paid = await complete(shopper, payment_id, await pay_in_checkout(emulator, order_id))
    assert paid["userErrors"] == [] and paid["order"]["status"] == "PAID"


async def test_the_payment_webhook_alone_marks_it_paid(
    razorpay_in_payql: RazorpayGateway, emulator: RazorpayEmulator, shopper: Shopper
) -> None:
    """The SPA never comes back: payment.captured makes PayQL read the order from Razorpay."""
    payment_id, order_id = await start_checkout(shopper)
    await pay_in_checkout(emulator, order_id)

    async def paid() -> bool:
        return (await Payment.get(id=payment_id)).status == "PAID"

    await eventually(paid)


async def test_a_forged_webhook_is_refused_and_changes_nothing(
    razorpay_in_payql: RazorpayGateway,
    emulator: RazorpayEmulator,
    shopper: Shopper,
    server: str,
    http: httpx.AsyncClient,
) -> None:
    """A delivery claiming the order was paid, signed with a secret that is not ours, is refused with a 4xx."""
    payment_id, order_id = await start_checkout(shopper)
    claim = {
        "entity": "event",
        "event": "order.paid",
        "contains": ["payment", "order"],
        "payload": {
            "payment": {
                "entity": {
                    "id": "pay_forged0000001",
                    "order_id": order_id,
                    "amount": AMOUNT,
                    "currency": "INR",
                    "status": "captured",
                    "notes": {},
                }
            }
        },
        "created_at": 1,
    }
    forged = emulator.sign(claim, secret="not-the-webhook-secret")
    response = await http.post(f"{server}/webhooks/razorpay", content=forged.body, headers=forged.headers)
    assert 400 <= response.status_code < 500
    assert (await Payment.get(id=payment_id)).status == "REQUIRES_ACTION"
