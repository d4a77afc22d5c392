"""The Razorpay adapter on the emulator, over the SDK's real HTTP: orders, signed shopper returns, capture, void,
refunds, lookups after a lost answer, reconciliation and Razorpay's error bodies."""

from __future__ import annotations

import time
import uuid

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, NextActionType, PaymentStatus, RefundStatus
from gateways.errors import (
    GatewayConfigurationError,
    GatewayIdempotencyConflict,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
    NotSupported,
    PaymentDeclined,
    ShopperReturnRejected,
)
from gateways.razorpay.adapter import RazorpayGateway
from gateways.types import CaptureRequest, ChargeRequest, PaymentResult, RefundRequest, VoidRequest
from tests.gateways.razorpay.conftest import failure_values, make_gateway, pay_in_checkout
from tests.razorpay_emulator import RazorpayEmulator


def charge_request(
    amount: int = 50_000, currency: str = "INR", *, capture: CaptureMethod = CaptureMethod.AUTOMATIC, key: str = ""
) -> ChargeRequest:
    payment_id = str(uuid.uuid4())
    return ChargeRequest(
        Money(amount, currency),
        "razorpay",
        capture,
        key or f"payql-payment-{payment_id}-1",
        description="Test order",
        metadata={"payql_payment_id": payment_id, "payql_order_id": str(uuid.uuid4())},
    )


async def paid(gateway: RazorpayGateway, emulator: RazorpayEmulator, request: ChargeRequest) -> PaymentResult:
    created = await gateway.charge(request)
    handed = await pay_in_checkout(emulator, created.reference)
    return await gateway.accept_shopper_return(
        created.reference, handed, capture=request.capture_method is CaptureMethod.AUTOMATIC, idempotency_key="k"
    )


async def test_charge_creates_an_order_the_spa_opens_checkout_with(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    request = charge_request(capture=CaptureMethod.MANUAL)
    created = await gateway.charge(request)
    order = emulator.ledger.orders[created.reference]
    assert created.status is PaymentStatus.REQUIRES_ACTION
    assert created.next_action is not None and created.next_action.type is NextActionType.CONFIRM_WITH_SDK
    assert created.next_action.client_secret == created.reference == order["id"]
    assert (order["amount"], order["currency"]) == (50_000, "INR")
    assert order["receipt"] == request.metadata["payql_payment_id"] == created.payql_payment_id
    assert order["notes"]["payql_idempotency_key"] == request.idempotency_key
    assert emulator.ledger._auto_capture[order["id"]] is False


async def test_a_signed_return_is_verified_then_read_from_razorpay(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    result = await paid(gateway, emulator, charge_request())
    assert result.status is PaymentStatus.PAID
    assert (result.amount_captured, result.amount_refunded) == (50_000, 0)
    assert result.next_action is None


async def test_a_forged_signature_is_rejected_and_changes_nothing(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    created = await gateway.charge(charge_request(capture=CaptureMethod.MANUAL))
    handed = await pay_in_checkout(emulator, created.reference)
    forged = {**handed, "razorpay_signature": "0" * 64}
    with pytest.raises(ShopperReturnRejected):
        await gateway.accept_shopper_return(created.reference, forged, capture=True, idempotency_key="k")
    # Not even the capture the real values would have made.
    [payment] = emulator.ledger.payments_of(created.reference)
    assert payment["status"] == "authorized"
    non_ascii = {**handed, "razorpay_signature": "é" * 64}
    with pytest.raises(ShopperReturnRejected):
        await gateway.accept_shopper_return(created.reference, non_ascii, capture=True, idempotency_key="k")


async def test_values_signed_for_another_order_are_rejected(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    """A shopper who paid a cheap order sends its genuine signed values for an expensive one."""
    cheap = await gateway.charge(charge_request(100))
    dear = await gateway.charge(charge_request(900_000))
    handed = await pay_in_checkout(emulator, cheap.reference)
    with pytest.raises(ShopperReturnRejected):
        await gateway.accept_shopper_return(dear.reference, handed, capture=True, idempotency_key="k")
    swapped = {**handed, "razorpay_order_id": dear.reference}
    with pytest.raises(ShopperReturnRejected):
        await gateway.accept_shopper_return(dear.reference, swapped, capture=True, idempotency_key="k")
    assert (await gateway.retrieve(dear.reference)).status is PaymentStatus.REQUIRES_ACTION


async def test_another_secret_signs_nothing_we_accept(emulator: RazorpayEmulator) -> None:
    other = make_gateway(emulator)
    other._key_secret = "someone-elses-secret"
    try:
        created = await other.charge(charge_request())
        handed = await pay_in_checkout(emulator, created.reference)
        with pytest.raises(ShopperReturnRejected):
            await other.accept_shopper_return(created.reference, handed, capture=True, idempotency_key="k")
    finally:
        await other.aclose()


async def test_a_declined_attempt_reads_as_a_decline_and_the_order_stays_payable(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    created = await gateway.charge(charge_request())
    handed = await pay_in_checkout(emulator, created.reference, decline_reason="insufficient_funds")
    with pytest.raises(PaymentDeclined) as declined:
        await gateway.accept_shopper_return(
            created.reference, failure_values(handed), capture=True, idempotency_key="k"
        )
    assert declined.value.decline_code == "insufficient_funds"
    after = await gateway.retrieve(created.reference)
    assert after.status is PaymentStatus.REQUIRES_ACTION and after.decline_code == "insufficient_funds"
    # The shopper tries again in Checkout and pays.
    handed = await pay_in_checkout(emulator, created.reference)
    result = await gateway.accept_shopper_return(created.reference, handed, capture=True, idempotency_key="k")
    assert result.status is PaymentStatus.PAID


async def test_unsigned_ids_of_a_successful_payment_are_rejected(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    created = await gateway.charge(charge_request(capture=CaptureMethod.MANUAL))
    handed = await pay_in_checkout(emulator, created.reference)
    unsigned = {k: v for k, v in handed.items() if k != "razorpay_signature"}
    with pytest.raises(ShopperReturnRejected):
        await gateway.accept_shopper_return(created.reference, unsigned, capture=True, idempotency_key="k")
    assert emulator.ledger.payments_of(created.reference)[0]["status"] == "authorized"


async def test_a_charge_repeated_after_a_lost_answer_answers_the_same_order(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    request = charge_request()
    emulator.fail_next(500, after_effect=True, path="/v1/orders", method="POST")
    with pytest.raises(GatewayUnavailable):
        await gateway.charge(request)
    assert len(emulator.ledger.orders) == 1
    again = await gateway.charge(request)
    assert again.reference in emulator.ledger.orders and len(emulator.ledger.orders) == 1
    with pytest.raises(GatewayIdempotencyConflict):
        await gateway.charge(
            ChargeRequest(
                Money(1, "INR"), "razorpay", request.capture_method, request.idempotency_key, metadata=request.metadata
            )
        )


async def test_a_new_attempt_for_the_same_payment_gets_its_own_order(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    first = charge_request()
    second = ChargeRequest(
        first.amount, "razorpay", first.capture_method, first.idempotency_key[:-1] + "2", metadata=first.metadata
    )
    assert (await gateway.charge(first)).reference != (await gateway.charge(second)).reference


async def test_find_payment_by_our_payment_id(gateway: RazorpayGateway, emulator: RazorpayEmulator) -> None:
    request = charge_request()
    created = await gateway.charge(request)
    found = await gateway.find_payment(request.metadata["payql_payment_id"])
    assert found is not None and found.reference == created.reference
    assert await gateway.find_payment(str(uuid.uuid4())) is None


async def test_capture_is_whole_and_a_retry_finds_it_captured(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    authorized = await paid(gateway, emulator, charge_request(capture=CaptureMethod.MANUAL))
    assert authorized.status is PaymentStatus.AUTHORIZED and authorized.amount_authorized == 50_000
    with pytest.raises(NotSupported):
        await gateway.capture(CaptureRequest(authorized.reference, Money(20_000, "INR"), "cap-1"))
    emulator.fail_next(500, after_effect=True, path="/capture")
    with pytest.raises(GatewayUnavailable):
        await gateway.capture(CaptureRequest(authorized.reference, Money(50_000, "INR"), "cap-2"))
    captured = await gateway.capture(CaptureRequest(authorized.reference, Money(50_000, "INR"), "cap-2"))
    assert captured.status is PaymentStatus.PAID and captured.amount_captured == 50_000


async def test_void_is_not_supported_and_explains_why(gateway: RazorpayGateway, emulator: RazorpayEmulator) -> None:
    authorized = await paid(gateway, emulator, charge_request(capture=CaptureMethod.MANUAL))
    with pytest.raises(NotSupported) as refused:
        await gateway.void(VoidRequest(authorized.reference, "void-1"))
    assert "refunded to the shopper automatically" in refused.value.detail
    assert (await gateway.retrieve(authorized.reference)).status is PaymentStatus.AUTHORIZED


async def test_a_refund_has_its_own_status_and_a_retry_finds_it(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    result = await paid(gateway, emulator, charge_request())
    emulator.ledger.refunds_pending = True
    emulator.fail_next(502, after_effect=True, path="/refund", method="POST")
    with pytest.raises(GatewayUnavailable):
        await gateway.refund(RefundRequest(result.reference, Money(10_000, "INR"), "refund-1", reason="damaged"))
    refund = await gateway.refund(RefundRequest(result.reference, Money(10_000, "INR"), "refund-1"))
    assert len(emulator.ledger.refunds) == 1
    assert refund.status is RefundStatus.PENDING and refund.payment_reference == result.reference
    wire = emulator.ledger.refunds[refund.reference]
    assert wire["speed_requested"] == "normal" and wire["notes"]["payql_payment_id"] == result.payql_payment_id
    emulator.ledger.settle_refund(refund.reference)
    again = await gateway.refund(RefundRequest(result.reference, Money(10_000, "INR"), "refund-1"))
    assert again.status is RefundStatus.SUCCEEDED and again.reference == refund.reference
    with pytest.raises(InvalidGatewayRequest) as beyond:
        await gateway.refund(RefundRequest(result.reference, Money(40_001, "INR"), "refund-2"))
    assert beyond.value.message == "The refund is more than what is left to refund."
    assert "BAD_REQUEST_ERROR" in beyond.value.detail and "field=amount" in beyond.value.detail


async def test_list_payments_lists_the_orders_of_the_window_with_their_payments(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    since = int(time.time())
    first = await paid(gateway, emulator, charge_request())
    second = await paid(gateway, emulator, charge_request(capture=CaptureMethod.MANUAL))
    unpaid = await gateway.charge(charge_request())  # no payment at Razorpay yet, still ours to compare
    before = len(emulator.calls.requests)
    listed = {result.reference: result.status for result in await gateway.list_payments(since)}
    assert emulator.calls.requests[before:] == [("GET", "/v1/orders")]  # one listing, no read per order
    assert listed == {
        first.reference: PaymentStatus.PAID,
        second.reference: PaymentStatus.AUTHORIZED,
        unpaid.reference: PaymentStatus.REQUIRES_ACTION,
    }
    assert await gateway.list_payments(int(time.time()) + 3600) == []


async def test_razorpay_errors_map_onto_the_taxonomy(gateway: RazorpayGateway, emulator: RazorpayEmulator) -> None:
    with pytest.raises(InvalidGatewayRequest) as unknown:
        await gateway.retrieve("order_doesnotexist00")
    assert unknown.value.message == "The payment provider does not know this payment."
    emulator.fail_next(503, path="/v1/orders/")
    with pytest.raises(GatewayUnavailable):
        await gateway.retrieve("order_doesnotexist00")
    bad_keys = make_gateway(emulator)
    bad_keys._client.sdk.auth = (emulator.key_id, "wrong")
    try:
        with pytest.raises(GatewayConfigurationError):
            await bad_keys.retrieve("order_doesnotexist00")
    finally:
        await bad_keys.aclose()


async def test_an_unreachable_api_was_not_attempted(emulator: RazorpayEmulator) -> None:
    nowhere = make_gateway(emulator, base_url="http://127.0.0.1:9")
    try:
        with pytest.raises(GatewayNotAttempted):
            await nowhere.charge(charge_request())
    finally:
        await nowhere.aclose()
