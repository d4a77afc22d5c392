"""PayPal checkout through PayQL end to end: order → buyer approval → capture, whoever comes first.

The running PayQL server gets a PayPal gateway pointed at the emulator. After the buyer approves,
the SPA's `completePayment` and the `CHECKOUT.ORDER.APPROVED` webhook both make PayQL read the
order and capture it with one PayPal-Request-Id derived from our payment: SPA first, webhook
first or both at once, there is one capture. The return URL itself never marks anything paid.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from db.models import Order, Payment, PaymentEvent, WebhookEvent, WebhookStatus
from gateways.paypal import PayPalGateway
from payql.wiring import Services
from tests.gateways.paypal.conftest import approve, make_gateway
from tests.paypal_emulator import PayPalEmulator
from tests.testkit import CHECKOUT, COMPLETE, Shopper, checkout_input, eventually, make_price, new_key, settle

REFUND = """mutation($input: RefundPaymentInput!) { refundPayment(input: $input) {
  refund { id status } payment { amountRefunded { amount } } userErrors { code message } } }"""


@pytest.fixture
async def paypal(
    emulator: PayPalEmulator, services: Services, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[PayPalGateway]:
    gateway = make_gateway(emulator)
    # The session's server was configured with the sandbox only; add PayPal for this test.
    monkeypatch.setitem(services.deps.gateways._gateways, "paypal", gateway)
    yield gateway
    await gateway.aclose()


async def start_paypal_checkout(shopper: Shopper) -> dict:  # type: ignore[type-arg]
    price = await make_price(4_250)
    variables = {"input": checkout_input(price, "paypal") | {"gateway": "paypal"}}
    result: dict = (await shopper.data(CHECKOUT, variables))["checkout"]  # type: ignore[type-arg]
    assert result["userErrors"] == []
    assert result["order"]["status"] == "REQUIRES_ACTION"
    assert result["nextAction"]["type"] == "REDIRECT" and result["nextAction"]["redirectUrl"]
    return result


async def reference_of(payment_id: str) -> str:
    payment = await Payment.get(id=payment_id)
    assert payment.gateway_reference
    return payment.gateway_reference


def captures_of(emulator: PayPalEmulator, order_id: str) -> int:
    return sum(1 for capture in emulator.ledger.captures.values() if capture.order_id == order_id)


async def assert_paid_once(emulator: PayPalEmulator, payment_id: str, order_id: str) -> None:
    payment = await Payment.get(id=payment_id)
    assert payment.status == "PAID" and payment.amount_captured == 4_250
    assert (await Order.get(id=payment.order_id)).status == "PAID"
    assert await PaymentEvent.filter(payment_id=payment_id, type="CAPTURED").count() == 1
    assert captures_of(emulator, order_id) == 1


async def test_the_spa_completes_first(paypal: PayPalGateway, emulator: PayPalEmulator, shopper: Shopper) -> None:
    started = await start_paypal_checkout(shopper)
    order_id = await reference_of(started["payment"]["id"])
    complete = {"input": {"paymentId": started["payment"]["id"]}}
    before = (await shopper.data(COMPLETE, complete))["completePayment"]
    assert before["payment"]["status"] == "REQUIRES_ACTION"  # not approved yet: nothing to capture
    await approve(emulator, order_id)
    done = (await shopper.data(COMPLETE, complete))["completePayment"]
    assert done["userErrors"] == [] and done["order"]["status"] == "PAID"
    again = (await shopper.data(COMPLETE, complete))["completePayment"]
    assert again["order"]["status"] == "PAID"
    await assert_paid_once(emulator, started["payment"]["id"], order_id)


async def test_the_approval_webhook_completes_first(
    paypal: PayPalGateway, emulator: PayPalEmulator, shopper: Shopper, server: str, services: Services
) -> None:
    emulator.webhook_url = f"{server}/webhooks/paypal"
    started = await start_paypal_checkout(shopper)
    payment_id = started["payment"]["id"]
    order_id = await reference_of(payment_id)
    await approve(emulator, order_id)

    async def paid() -> bool:
        return (await Payment.get(id=payment_id)).status == "PAID"

    await eventually(paid)
    await settle(services)
    late = (await shopper.data(COMPLETE, {"input": {"paymentId": payment_id}}))["completePayment"]
    assert late["order"]["status"] == "PAID"
    await assert_paid_once(emulator, payment_id, order_id)


async def test_spa_and_webhook_at_once_capture_once(
    paypal: PayPalGateway, emulator: PayPalEmulator, shopper: Shopper, server: str, services: Services
) -> None:
    emulator.webhook_url = f"{server}/webhooks/paypal"
    started = await start_paypal_checkout(shopper)
    payment_id = started["payment"]["id"]
    order_id = await reference_of(payment_id)
    await approve(emulator, order_id)
    complete = {"input": {"paymentId": payment_id}}
    results = await asyncio.gather(*(shopper.data(COMPLETE, complete) for _ in range(3)))
    assert all(r["completePayment"]["userErrors"] == [] for r in results)
    await settle(services)
    await assert_paid_once(emulator, payment_id, order_id)


async def test_a_refund_webhook_finds_its_payment_through_the_capture(
    paypal: PayPalGateway,
    emulator: PayPalEmulator,
    shopper: Shopper,
    admin: Shopper,
    server: str,
    services: Services,
) -> None:
    """PayPal's refund events name only the capture. When the refund's answer is lost, the
    PAYMENT.CAPTURE.REFUNDED event alone tells PayQL: the payment is found by the custom_id the
    adapter gave the refund, and the re-read goes from the capture to its order."""
    started = await start_paypal_checkout(shopper)
    payment_id = started["payment"]["id"]
    order_id = await reference_of(payment_id)
    await approve(emulator, order_id)
    assert (await shopper.data(COMPLETE, {"input": {"paymentId": payment_id}}))["completePayment"]["userErrors"] == []
    await settle(services)

    # Other tests (the webhook fuzzer) store events of this type too: only those after this point count.
    seen = await WebhookEvent.filter(gateway="paypal").order_by("-id").first()
    emulator.webhook_url = f"{server}/webhooks/paypal"
    emulator.fail_next(500, after_effect=True, path="/refund", times=5)  # PayPal refunds; every answer is lost
    variables = {"input": {"paymentId": payment_id, "amount": 1_000, "reason": "damaged", "idempotencyKey": new_key()}}
    await admin.data(REFUND, variables)
    assert len(emulator.ledger.refunds) == 1

    async def refunded() -> bool:
        return (await Payment.get(id=payment_id)).amount_refunded == 1_000

    await eventually(refunded)
    await settle(services)
    event = await WebhookEvent.get(
        gateway="paypal", event_type="PAYMENT.CAPTURE.REFUNDED", id__gt=seen.id if seen is not None else 0
    )
    assert event.status is WebhookStatus.PROCESSED
