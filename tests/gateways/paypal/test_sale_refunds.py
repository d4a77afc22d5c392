"""`PayPalGateway.refund` and `retrieve` of a subscription cycle's payment, a v1 sale (`paypal_sale:<id>`): the
real SDK plumbing over HTTP against the emulator's `/v1/payments/sale/{id}` and `/refund`."""

from __future__ import annotations

import uuid

import httpx
import pytest

from domain.money import Money
from domain.statuses import PaymentStatus, RefundStatus
from gateways.errors import GatewayUnavailable, InvalidGatewayRequest
from gateways.paypal import PayPalGateway
from gateways.types import RefundRequest, SubscriptionRequest
from tests.gateways.paypal.test_subscriptions import MONTHLY
from tests.paypal_emulator import PayPalEmulator


async def _paid_sale(gateway: PayPalGateway, emulator: PayPalEmulator) -> str:
    """A subscription the buyer approved, whose first cycle made one completed sale: its payment reference."""
    request = SubscriptionRequest(
        payql_subscription_id="sub_ours_2",
        customer_id="cus_ours_2",
        customer_email="buyer@example.com",
        price=MONTHLY,
        payment_method="paypal",
        idempotency_key=str(uuid.uuid4()),
    )
    created = await gateway.create_subscription(request)
    async with httpx.AsyncClient() as client:
        approved = await client.post(f"{emulator.base_url}/emulator/subscriptions/{created.reference}/approve")
    assert approved.status_code == 200, approved.text
    (sale_id,) = emulator.billing.sales
    return f"paypal_sale:{sale_id}"


def _refund(reference: str, cents: int, key: str | None = None) -> RefundRequest:
    return RefundRequest(reference, Money(cents, "USD"), key or str(uuid.uuid4()), reason="canceled")


async def test_a_sale_reads_back_as_a_captured_payment(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    reference = await _paid_sale(gateway, emulator)
    payment = await gateway.retrieve(reference)
    assert payment.reference == reference and payment.status is PaymentStatus.PAID
    assert (payment.amount, payment.amount_captured, payment.amount_refunded) == (Money(990, "USD"), 990, 0)
    assert ("GET", f"/v1/payments/sale/{reference.removeprefix('paypal_sale:')}", None) in emulator.calls.requests


async def test_partial_refunds_up_to_the_sale_and_no_further(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    reference = await _paid_sale(gateway, emulator)
    sale_id = reference.removeprefix("paypal_sale:")
    first = await gateway.refund(_refund(reference, 400))
    assert (first.status, first.amount, first.payment_reference) == (
        RefundStatus.SUCCEEDED,
        Money(400, "USD"),
        reference,
    )
    assert first.reference in emulator.billing.sale_refunds
    assert emulator.billing.sales[sale_id].state == "partially_refunded"

    with pytest.raises(InvalidGatewayRequest, match="more than what is left") as refused:
        await gateway.refund(_refund(reference, 591))
    assert "REFUND_EXCEEDED_TRANSACTION_AMOUNT" in (refused.value.detail or "")

    rest = await gateway.refund(_refund(reference, 590))
    assert rest.amount == Money(590, "USD") and rest.status is RefundStatus.SUCCEEDED
    assert (await gateway.retrieve(reference)).amount_refunded == 990
    with pytest.raises(InvalidGatewayRequest, match="more than what is left"):
        await gateway.refund(_refund(reference, 1))
    assert len(emulator.billing.sale_refunds) == 2


async def test_a_lost_refund_answer_is_retried_into_the_same_refund(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    reference = await _paid_sale(gateway, emulator)
    emulator.fail_next(500, after_effect=True, path="/refund")
    with pytest.raises(GatewayUnavailable):
        await gateway.refund(_refund(reference, 990, key="refund-1"))
    again = await gateway.refund(_refund(reference, 990, key="refund-1"))
    (only,) = emulator.billing.sale_refunds
    assert again.reference == only and again.status is RefundStatus.SUCCEEDED
    request_ids = {rid for method, path, rid in emulator.calls.requests if path.endswith("/refund")}
    assert len(request_ids) == 1 and next(iter(request_ids), "").startswith("payql-refund-")


async def test_a_sale_refund_is_announced(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    reference = await _paid_sale(gateway, emulator)
    refund = await gateway.refund(_refund(reference, 990))
    (event,) = [e for e in emulator.events if e["event_type"] == "PAYMENT.SALE.REFUNDED"]
    assert event["resource"]["id"] == refund.reference
    assert event["resource"]["sale_id"] == reference.removeprefix("paypal_sale:")
