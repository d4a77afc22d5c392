"""`PayPalGateway` with the real SDK over real HTTP against the emulator: orders, captures, voids, refunds."""

from __future__ import annotations

import uuid

import httpx
import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, NextActionType, PaymentStatus, RefundStatus
from gateways.base import PaymentGateway
from gateways.errors import (
    CustomerActionRequired,
    InvalidGatewayRequest,
    NotSupported,
    PaymentDeclined,
)
from gateways.paypal import APPROVED_ORDER_PREFIX, PayPalGateway
from gateways.types import CaptureRequest, ChargeRequest, PaymentResult, RefundRequest, VoidRequest
from tests.gateways.paypal.conftest import approve
from tests.paypal_emulator import PayPalEmulator


def _charge(amount: int = 1000, method: CaptureMethod = CaptureMethod.AUTOMATIC) -> ChargeRequest:
    return ChargeRequest(
        amount=Money(amount, "USD"),
        payment_method="paypal",
        capture_method=method,
        idempotency_key=str(uuid.uuid4()),
        description="Order #42",
        return_url="https://shop.example/return",
        metadata={"payql_payment_id": "pay_123"},
    )


async def _approved(gateway: PayPalGateway, emulator: PayPalEmulator, request: ChargeRequest) -> PaymentResult:
    created = await gateway.charge(request)
    await approve(emulator, created.reference)
    return created


async def test_the_gateway_implements_the_protocol(gateway: PayPalGateway) -> None:
    assert isinstance(gateway, PaymentGateway)
    assert gateway.name == "paypal"


async def test_charge_creates_an_order_waiting_for_the_buyer(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    request = _charge()
    result = await gateway.charge(request)
    assert result.status is PaymentStatus.REQUIRES_ACTION
    assert result.gateway_status == "ORDER_CREATED"
    assert result.amount == Money(1000, "USD")
    assert result.payql_payment_id == "pay_123"
    assert result.next_action is not None and result.next_action.type is NextActionType.REDIRECT
    assert result.next_action.redirect_url == f"{emulator.base_url}/checkoutnow?token={result.reference}"
    async with httpx.AsyncClient() as client:
        page = await client.get(result.next_action.redirect_url)
    assert page.status_code == 200 and "Approve" in page.text
    # The same idempotency key → the same order (PayPal-Request-Id), not a second one.
    again = await gateway.charge(request)
    assert again.reference == result.reference
    assert len(emulator.ledger.orders) == 1


async def test_create_approve_complete_is_paid(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    created = await _approved(gateway, emulator, _charge())
    approved = await gateway.retrieve(created.reference)
    assert approved.status is PaymentStatus.REQUIRES_ACTION  # approved, but nothing captured yet
    assert approved.gateway_status == "ORDER_APPROVED" and approved.next_action is None
    paid = await gateway.complete(created.reference, capture=True)
    assert paid.status is PaymentStatus.PAID
    assert paid.amount_captured == 1000 and paid.amount_authorized == 1000
    assert paid.gateway_status == "CAPTURE_COMPLETED"
    # Completing again is idempotent: PayPal replays the answer, no second capture.
    assert (await gateway.complete(created.reference, capture=True)).status is PaymentStatus.PAID
    assert len(emulator.ledger.captures) == 1
    assert (await gateway.retrieve(created.reference)).status is PaymentStatus.PAID


async def test_charge_with_an_approved_order_reads_it(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    created = await _approved(gateway, emulator, _charge())
    request = _charge()
    again = await gateway.charge(
        ChargeRequest(
            amount=request.amount,
            payment_method=f"{APPROVED_ORDER_PREFIX}{created.reference}",
            capture_method=request.capture_method,
            idempotency_key=request.idempotency_key,
        )
    )
    assert again.reference == created.reference and again.gateway_status == "ORDER_APPROVED"
    with pytest.raises(InvalidGatewayRequest):
        await gateway.charge(
            ChargeRequest(
                Money(999, "USD"), f"{APPROVED_ORDER_PREFIX}{created.reference}", CaptureMethod.AUTOMATIC, "k"
            )
        )


async def test_completing_an_unapproved_order_is_refused(gateway: PayPalGateway) -> None:
    created = await gateway.charge(_charge())
    with pytest.raises(InvalidGatewayRequest) as caught:
        await gateway.complete(created.reference, capture=True)
    assert "ORDER_NOT_APPROVED" in caught.value.detail and "debug_id=" in caught.value.detail
    assert caught.value.reference == created.reference


async def test_a_declined_instrument_sends_the_buyer_back(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    created = await _approved(gateway, emulator, _charge())
    emulator.decline_next("INSTRUMENT_DECLINED")
    with pytest.raises(PaymentDeclined) as caught:
        await gateway.complete(created.reference, capture=True)
    assert caught.value.decline_code == "generic_decline"
    assert "INSTRUMENT_DECLINED" in caught.value.detail
    again = await gateway.retrieve(created.reference)
    assert again.status is PaymentStatus.REQUIRES_ACTION and again.next_action is not None


async def test_payer_action_required(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    created = await _approved(gateway, emulator, _charge())
    emulator.decline_next("PAYER_ACTION_REQUIRED")
    with pytest.raises(CustomerActionRequired):
        await gateway.complete(created.reference, capture=True)


async def test_authorize_then_partial_capture_then_the_rest(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    created = await _approved(gateway, emulator, _charge(1000, CaptureMethod.MANUAL))
    authorized = await gateway.complete(created.reference, capture=False)
    assert authorized.status is PaymentStatus.AUTHORIZED
    assert authorized.amount_authorized == 1000 and authorized.amount_captured == 0
    part = await gateway.capture(CaptureRequest(created.reference, Money(400, "USD"), "cap-1", final=False))
    assert part.status is PaymentStatus.PAID
    assert part.amount_captured == 400 and part.amount_authorized == 1000
    assert part.gateway_status == "CAPTURE_COMPLETED"
    rest = await gateway.capture(CaptureRequest(created.reference, Money(600, "USD"), "cap-2", final=True))
    assert rest.amount_captured == 1000
    (auth,) = emulator.ledger.authorizations.values()
    assert auth.status == "CAPTURED"
    with pytest.raises(InvalidGatewayRequest) as caught:
        await gateway.capture(CaptureRequest(created.reference, Money(1, "USD"), "cap-3"))
    assert "AUTHORIZATION_ALREADY_CAPTURED" in caught.value.detail


async def test_capture_more_than_authorized_is_refused(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    created = await _approved(gateway, emulator, _charge(1000, CaptureMethod.MANUAL))
    await gateway.complete(created.reference, capture=False)
    with pytest.raises(InvalidGatewayRequest) as caught:
        await gateway.capture(CaptureRequest(created.reference, Money(1001, "USD"), "cap-big"))
    assert "MAX_CAPTURE_AMOUNT_EXCEEDED" in caught.value.detail


async def test_void_an_authorization(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    created = await _approved(gateway, emulator, _charge(1000, CaptureMethod.MANUAL))
    await gateway.complete(created.reference, capture=False)
    voided = await gateway.void(VoidRequest(created.reference, "void-1"))
    assert voided.status is PaymentStatus.CANCELED
    assert voided.amount_authorized == 0
    # Retrying the void with the same key replays PayPal's answer instead of PREVIOUSLY_VOIDED.
    assert (await gateway.void(VoidRequest(created.reference, "void-1"))).status is PaymentStatus.CANCELED
    with pytest.raises(InvalidGatewayRequest) as caught:
        await gateway.void(VoidRequest(created.reference, "void-2"))
    assert "PREVIOUSLY_VOIDED" in caught.value.detail


async def test_an_order_without_authorization_cannot_be_voided(gateway: PayPalGateway) -> None:
    created = await gateway.charge(_charge())
    with pytest.raises(NotSupported):
        await gateway.void(VoidRequest(created.reference, "void-x"))


async def _paid(gateway: PayPalGateway, emulator: PayPalEmulator, amount: int = 1000) -> str:
    created = await _approved(gateway, emulator, _charge(amount))
    await gateway.complete(created.reference, capture=True)
    return created.reference


async def test_partial_then_full_refunds(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    reference = await _paid(gateway, emulator)
    first = await gateway.refund(RefundRequest(reference, Money(300, "USD"), "ref-1", reason="damaged"))
    assert first.status is RefundStatus.SUCCEEDED and first.amount == Money(300, "USD")
    assert first.payment_reference == reference
    again = await gateway.refund(RefundRequest(reference, Money(300, "USD"), "ref-1"))
    assert again.reference == first.reference  # same key → same refund
    second = await gateway.refund(RefundRequest(reference, Money(700, "USD"), "ref-2"))
    assert second.status is RefundStatus.SUCCEEDED
    result = await gateway.retrieve(reference)
    assert result.status is PaymentStatus.PAID and result.amount_refunded == 1000
    assert result.gateway_status == "CAPTURE_REFUNDED"
    with pytest.raises(InvalidGatewayRequest):
        await gateway.refund(RefundRequest(reference, Money(1, "USD"), "ref-3"))


async def test_refund_beyond_captured_is_refused(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    reference = await _paid(gateway, emulator)
    with pytest.raises(InvalidGatewayRequest) as caught:
        await gateway.refund(RefundRequest(reference, Money(1001, "USD"), "ref-big"))
    assert "REFUND_AMOUNT_EXCEEDED" in caught.value.detail
    assert (await gateway.retrieve(reference)).amount_refunded == 0


async def test_refund_of_an_uncaptured_order_is_refused(gateway: PayPalGateway) -> None:
    created = await gateway.charge(_charge())
    with pytest.raises(InvalidGatewayRequest):
        await gateway.refund(RefundRequest(created.reference, Money(1, "USD"), "ref-none"))


async def test_zero_decimal_currency(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    request = _charge()
    created = await gateway.charge(
        ChargeRequest(Money(1500, "JPY"), "paypal", CaptureMethod.AUTOMATIC, request.idempotency_key)
    )
    (order,) = emulator.ledger.orders.values()
    assert order.amount.wire() == {"currency_code": "JPY", "value": "1500"}
    assert created.amount == Money(1500, "JPY")


async def test_find_payment_and_list_payments(gateway: PayPalGateway) -> None:
    assert await gateway.find_payment("pay_123") is None
    with pytest.raises(NotSupported):
        await gateway.list_payments(0)
