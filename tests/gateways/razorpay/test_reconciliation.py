"""Reconciliation (`jobs.reconcile`) with Razorpay, webhooks off so only reconciliation can tell PayQL: a payment
the shopper made in Checkout whose SPA never came back is settled, and a checkout whose order-creation answer
was lost is found again by its receipt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.models import Payment
from gateways.razorpay.adapter import RazorpayGateway
from jobs.reconcile import reconcile
from payql.wiring import Services
from tests.gateways.razorpay.conftest import pay_in_checkout
from tests.gateways.razorpay.test_checkout_flow import AMOUNT, start_checkout
from tests.razorpay_emulator import RazorpayEmulator
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price


async def run_reconciliation(services: Services) -> None:
    await reconcile(
        services.jobs.gateways,
        since=datetime.now(UTC) - timedelta(hours=1),
        orphan_age=timedelta(0),
        order_expiry=timedelta(days=1),
    )


async def test_a_payment_whose_shopper_never_came_back_is_settled(
    razorpay_in_payql: RazorpayGateway, emulator: RazorpayEmulator, shopper: Shopper, services: Services
) -> None:
    emulator.webhook_url = None
    payment_id, order_id = await start_checkout(shopper)
    await pay_in_checkout(emulator, order_id)  # the tab closes: nothing comes back
    assert (await Payment.get(id=payment_id)).status == "REQUIRES_ACTION"
    await run_reconciliation(services)
    payment = await Payment.get(id=payment_id)
    assert (payment.status, payment.amount_captured) == ("PAID", AMOUNT)


async def test_a_lost_order_answer_is_found_by_its_receipt(
    razorpay_in_payql: RazorpayGateway, emulator: RazorpayEmulator, shopper: Shopper, services: Services
) -> None:
    emulator.webhook_url = None
    emulator.fail_next(500, after_effect=True, path="/v1/orders", method="POST")
    price = await make_price(AMOUNT, "INR")
    values = checkout_input(price, "razorpay") | {"gateway": "razorpay"}
    started = (await shopper.data(CHECKOUT, {"input": values}))["checkout"]
    assert [e["code"] for e in started["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    payment = await Payment.get(id=started["payment"]["id"])
    assert payment.gateway_reference is None
    [order] = emulator.ledger.orders.values()
    assert order["receipt"] == str(payment.id)
    await run_reconciliation(services)
    found = await Payment.get(id=payment.id)
    assert (found.gateway_reference, found.status) == (order["id"], "REQUIRES_ACTION")
