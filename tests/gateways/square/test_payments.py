"""Square-specific payment behaviour of the adapter on the emulator, over real HTTP through the SDK: what goes on
the wire (our key, our payment id, the location), idempotent retries and conflicts, declines by Square's test
tokens, refunds that start PENDING, partial capture through UpdatePayment, reconciliation reads."""

from __future__ import annotations

import time
import uuid

import pytest
from square.core.api_error import ApiError

from domain.money import Money
from domain.statuses import CaptureMethod, PaymentStatus, RefundStatus
from gateways.errors import (
    GatewayConfigurationError,
    GatewayIdempotencyConflict,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
    NotSupported,
    PaymentDeclined,
)
from gateways.square.adapter import SquareGateway
from gateways.square.client import SQUARE_VERSION, square_key
from gateways.square.errors import gateway_error
from gateways.types import CaptureRequest, ChargeRequest, RefundRequest, VoidRequest
from tests.gateways.square.conftest import NONCE_OK, make_gateway
from tests.ports import free_port
from tests.square_emulator import SquareEmulator


def charge_request(
    amount: int = 1000, currency: str = "USD", *, source: str = NONCE_OK, manual: bool = False, key: str | None = None
) -> ChargeRequest:
    payment_id = str(uuid.uuid4())
    return ChargeRequest(
        amount=Money(amount, currency),
        payment_method=source,
        capture_method=CaptureMethod.MANUAL if manual else CaptureMethod.AUTOMATIC,
        # PayQL's own payment keys are this long: more than Square's 45 characters.
        idempotency_key=key or f"payql-payment-{payment_id}-1",
        description="Order 42",
        metadata={"payql_payment_id": payment_id},
    )


async def test_a_charge_carries_our_key_payment_id_and_location(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    request = charge_request()
    paid = await gateway.charge(request)
    assert paid.status is PaymentStatus.PAID and paid.payql_payment_id == request.metadata["payql_payment_id"]
    stored = emulator.ledger.payments[paid.reference]
    assert stored.reference_id == request.metadata["payql_payment_id"]
    assert stored.note == "Order 42" and stored.merchant is emulator.merchant("USD")
    [create] = [call for call in emulator.calls.requests if call[:2] == ("POST", "/v2/payments")]
    assert create[2] == square_key(request.idempotency_key) and len(create[2] or "") <= 45
    assert create[3] == SQUARE_VERSION


def test_square_keys_are_short_stable_and_distinct() -> None:
    long_a, long_b = f"payql-payment-{uuid.uuid4()}-1", f"payql-payment-{uuid.uuid4()}-1"
    assert square_key(long_a) == square_key(long_a) != square_key(long_b)
    assert len(square_key(long_a)) <= 45
    assert square_key("short-key") == "short-key"


async def test_a_retried_charge_is_answered_with_the_same_payment(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    request = charge_request()
    emulator.fail_next(500, after_effect=True, path="/v2/payments")  # Square charged; the answer is lost
    with pytest.raises(GatewayUnavailable):
        await gateway.charge(request)
    again = await gateway.charge(request)
    assert len(emulator.ledger.payments) == 1
    assert again.reference in emulator.ledger.payments and again.status is PaymentStatus.PAID


async def test_the_sdk_never_retries_on_its_own(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    emulator.fail_next(503, path="/v2/payments")
    with pytest.raises(GatewayUnavailable):
        await gateway.charge(charge_request())
    assert len([c for c in emulator.calls.requests if c[:2] == ("POST", "/v2/payments")]) == 1


async def test_a_rate_limit_was_not_attempted(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    emulator.fail_next(429, path="/v2/payments")
    with pytest.raises(GatewayNotAttempted):
        await gateway.charge(charge_request())
    assert emulator.ledger.payments == {}


async def test_an_unreachable_square_was_not_attempted() -> None:
    gateway = SquareGateway(
        "EAAA-nobody",
        location_id="L1",
        webhook_signature_keys=["k"],
        notification_url=None,
        base_url=f"http://127.0.0.1:{free_port()}",
        timeout=2,
    )
    try:
        with pytest.raises(GatewayNotAttempted):
            await gateway.charge(charge_request())
    finally:
        await gateway.aclose()


async def test_the_same_key_with_another_amount_is_a_conflict(gateway: SquareGateway) -> None:
    first = charge_request(1000)
    await gateway.charge(first)
    with pytest.raises(GatewayIdempotencyConflict):
        await gateway.charge(charge_request(2000, key=first.idempotency_key))


@pytest.mark.parametrize(
    ("source", "decline_code"),
    [
        ("cnon:card-nonce-declined", "generic_decline"),
        ("cnon:card-nonce-rejected-cvv", "generic_decline"),
        ("cnon:card-nonce-rejected-postalcode", "generic_decline"),
        ("cnon:card-nonce-rejected-expiration", "expired_card"),
    ],
)
async def test_square_test_tokens_decline(
    gateway: SquareGateway, emulator: SquareEmulator, source: str, decline_code: str
) -> None:
    with pytest.raises(PaymentDeclined) as caught:
        await gateway.charge(charge_request(source=source))
    assert caught.value.decline_code == decline_code
    failed = await gateway.retrieve(caught.value.reference or "")
    assert failed.status is PaymentStatus.FAILED and failed.decline_code == decline_code


async def test_insufficient_funds_is_told_apart(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    emulator.decline_next("INSUFFICIENT_FUNDS")
    with pytest.raises(PaymentDeclined) as caught:
        await gateway.charge(charge_request())
    assert caught.value.decline_code == "insufficient_funds"


async def test_a_used_token_is_refused_not_declined(gateway: SquareGateway) -> None:
    with pytest.raises(InvalidGatewayRequest) as caught:
        await gateway.charge(charge_request(source="cnon:card-nonce-already-used"))
    assert "CARD_TOKEN_USED" in caught.value.detail


async def test_a_charge_in_another_currency_than_the_location_is_refused(gateway: SquareGateway) -> None:
    with pytest.raises(InvalidGatewayRequest):
        await gateway.charge(charge_request(1500, "JPY"))


async def test_jpy_amounts_are_whole_yen(emulator: SquareEmulator) -> None:
    gateway = make_gateway(emulator, "JPY")
    try:
        paid = await gateway.charge(charge_request(1500, "JPY"))
        assert paid.amount == Money(1500, "JPY") and paid.amount_captured == 1500
        assert emulator.ledger.payments[paid.reference].amount == 1500
    finally:
        await gateway.aclose()


async def test_a_partial_capture_lowers_the_amount_then_completes(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    authorized = await gateway.charge(charge_request(1000, manual=True))
    captured = await gateway.capture(CaptureRequest(authorized.reference, Money(400, "USD"), "cap-1"))
    assert (captured.status, captured.amount.amount, captured.amount_captured) == (PaymentStatus.PAID, 1000, 400)
    paths = [call[1] for call in emulator.calls.requests if call[0] in ("PUT", "POST")]
    assert paths[-2:] == [f"/v2/payments/{authorized.reference}", f"/v2/payments/{authorized.reference}/complete"]
    again = await gateway.capture(CaptureRequest(authorized.reference, Money(400, "USD"), "cap-1"))
    assert again.amount_captured == 400  # a retry reads the captured payment; nothing is sent twice


async def test_a_capture_in_parts_is_not_supported(gateway: SquareGateway) -> None:
    authorized = await gateway.charge(charge_request(1000, manual=True))
    with pytest.raises(NotSupported):
        await gateway.capture(CaptureRequest(authorized.reference, Money(400, "USD"), "cap-1", final=False))
    assert (await gateway.retrieve(authorized.reference)).status is PaymentStatus.AUTHORIZED


async def test_a_void_retried_after_it_took_effect_is_answered_from_a_read(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    authorized = await gateway.charge(charge_request(1000, manual=True))
    emulator.fail_next(500, after_effect=True, path="/cancel")
    with pytest.raises(GatewayUnavailable):
        await gateway.void(VoidRequest(authorized.reference, "void-1"))
    voided = await gateway.void(VoidRequest(authorized.reference, "void-1"))
    assert voided.status is PaymentStatus.CANCELED


async def test_a_refund_is_pending_until_square_completes_it(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    emulator.ledger.hold_refunds = True
    paid = await gateway.charge(charge_request(1000))
    refund = await gateway.refund(RefundRequest(paid.reference, Money(300, "USD"), "ref-1", reason="damaged"))
    assert (refund.status, refund.payment_reference, refund.amount) == (
        RefundStatus.PENDING,
        paid.reference,
        Money(300, "USD"),
    )
    assert (await gateway.retrieve(paid.reference)).amount_refunded == 0
    with pytest.raises(InvalidGatewayRequest) as pending:
        await gateway.refund(RefundRequest(paid.reference, Money(100, "USD"), "ref-2"))
    assert "REFUND_ALREADY_PENDING" in pending.value.detail
    emulator.ledger.settle_refund(refund.reference)
    assert (await gateway.retrieve(paid.reference)).amount_refunded == 300
    same = await gateway.refund(RefundRequest(paid.reference, Money(300, "USD"), "ref-1", reason="damaged"))
    assert same.reference == refund.reference and len(emulator.ledger.refunds) == 1


async def test_a_refund_of_an_uncaptured_payment_is_refused(gateway: SquareGateway) -> None:
    authorized = await gateway.charge(charge_request(1000, manual=True))
    with pytest.raises(InvalidGatewayRequest):
        await gateway.refund(RefundRequest(authorized.reference, Money(100, "USD"), "ref-1"))


async def test_find_payment_by_our_payment_id(gateway: SquareGateway) -> None:
    request = charge_request()
    paid = await gateway.charge(request)
    await gateway.charge(charge_request())
    found = await gateway.find_payment(request.metadata["payql_payment_id"])
    assert found is not None and found.reference == paid.reference
    assert await gateway.find_payment(str(uuid.uuid4())) is None


async def test_list_payments_reads_every_page_of_the_window(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    emulator.page_size = 1  # one payment a page: every cursor is followed
    since = int(time.time()) - 1
    made = [await gateway.charge(charge_request(100 + n)) for n in range(3)]
    for payment in emulator.ledger.payments.values():
        if payment.id == made[0].reference:
            payment.created_at = payment.created_at.replace(year=2020)  # outside the window
    listed = await gateway.list_payments(since)
    assert sorted(p.reference for p in listed) == sorted(p.reference for p in made[1:])


async def test_a_wrong_access_token_is_a_configuration_error(emulator: SquareEmulator) -> None:
    wrong = SquareGateway(
        "EAAA-wrong", location_id="L", webhook_signature_keys=["k"], notification_url=None, base_url=emulator.base_url
    )
    try:
        with pytest.raises(GatewayConfigurationError):
            await wrong.retrieve("anything")
    finally:
        await wrong.aclose()


@pytest.mark.parametrize("status", [400, 402])
def test_a_payment_method_error_is_a_decline_whatever_the_status(status: int) -> None:
    """The adapter reads Square's error category, not the HTTP status, to tell a decline."""
    body = {
        "errors": [{"category": "PAYMENT_METHOD_ERROR", "code": "INSUFFICIENT_FUNDS", "detail": "Authorization error"}],
        "payment": {"id": "pay-1", "status": "FAILED"},
    }
    error = gateway_error(ApiError(status_code=status, body=body))
    assert isinstance(error, PaymentDeclined)
    assert (error.decline_code, error.reference) == ("insufficient_funds", "pay-1")


def test_a_garbled_answer_is_an_unknown_outcome() -> None:
    assert type(gateway_error(ApiError(status_code=502, body="<html>Bad gateway</html>"))) is GatewayUnavailable
