"""The Adyen adapter over real HTTP against the emulator: Drop-in card data (encrypted only), actions and
/payments/details, the Idempotency-Key on every call, asynchronous modifications and Adyen's error bodies."""

from __future__ import annotations

import dataclasses
import json

import pytest

from domain.money import Money
from domain.statuses import NextActionType, PaymentStatus, RefundStatus
from gateways.adyen import AdyenGateway
from gateways.adyen.transformers import parse_payment_method, payment_request
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
from gateways.types import CaptureRequest, RefundRequest, VoidRequest
from tests.adyen_emulator import AdyenEmulator
from tests.adyen_emulator.app import AUTHORISED_CARD, NO_BALANCE_CARD, THREE_DS_CARD, THREE_DS_REFUSED_CARD
from tests.gateways.adyen.conftest import charge, charge_request, drop_in, make_gateway


async def test_every_call_carries_an_idempotency_key(gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
    authorized = await charge(gateway, manual=True)
    await gateway.capture(CaptureRequest(authorized.reference, Money(1000, "EUR"), idempotency_key="cap-a"))
    await gateway.refund(RefundRequest(authorized.reference, Money(100, "EUR"), idempotency_key="ref-a"))
    await gateway.void(VoidRequest(authorized.reference, idempotency_key="void-a"))
    assert [key for _, key in emulator.requests][1:] == ["cap-a", "ref-a", "void-a"]
    assert all(key for _, key in emulator.requests)


async def test_a_repeated_charge_is_one_payment(gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
    request = charge_request(key="charge-repeated")
    first, again = await gateway.charge(request), await gateway.charge(request)
    assert first.reference == again.reference and len(emulator.payments) == 1


async def test_a_long_key_is_hashed_to_adyens_limit(gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
    await gateway.charge(charge_request(key="k" * 100))
    ((_, sent),) = emulator.requests
    assert sent is not None and len(sent) == 64 and sent != "k" * 64


async def test_a_key_reused_with_another_body_is_a_conflict(gateway: AdyenGateway) -> None:
    await gateway.charge(charge_request(key="charge-conflict"))
    with pytest.raises(GatewayIdempotencyConflict):
        await gateway.charge(charge_request(key="charge-conflict", manual=True))


@pytest.mark.parametrize(
    "method",
    [
        {"type": "scheme", "number": "4111111111111111", "cvc": "737", "expiryMonth": "03", "expiryYear": "2030"},
        {"type": "scheme", "encryptedCardNumber": AUTHORISED_CARD, "cvc": "737"},
    ],
    ids=["clear-card", "clear-cvc"],
)
async def test_clear_card_data_is_refused_before_any_call(
    gateway: AdyenGateway, emulator: AdyenEmulator, method: dict[str, str]
) -> None:
    request = charge_request()
    with pytest.raises(InvalidGatewayRequest, match="encrypted"):
        await gateway.charge(dataclasses.replace(request, payment_method=json.dumps(method)))
    assert emulator.requests == []


@pytest.mark.parametrize("raw", ["pm_card_visa", "[]", '{"no": "type"}'])
async def test_what_is_not_drop_in_data_is_refused(gateway: AdyenGateway, emulator: AdyenEmulator, raw: str) -> None:
    with pytest.raises(InvalidGatewayRequest):
        await gateway.charge(dataclasses.replace(charge_request(), payment_method=raw))
    assert emulator.requests == []


async def test_automatic_capture_is_paid_and_manual_authorized(gateway: AdyenGateway) -> None:
    paid = await charge(gateway)
    assert (paid.status, paid.amount_captured, paid.payql_payment_id) == (PaymentStatus.PAID, 1000, "pay-test")
    authorized = await charge(gateway, manual=True)
    assert (authorized.status, authorized.amount_authorized, authorized.amount_captured) == (
        PaymentStatus.AUTHORIZED,
        1000,
        0,
    )


async def test_modifications_are_only_requested(gateway: AdyenGateway) -> None:
    """Adyen answers `received`: the capture leaves the payment AUTHORIZED, the refund is PENDING."""
    authorized = await charge(gateway, manual=True)
    captured = await gateway.capture(CaptureRequest(authorized.reference, Money(1000, "EUR"), idempotency_key="c"))
    assert (captured.status, captured.amount_captured, captured.gateway_status) == (
        PaymentStatus.AUTHORIZED,
        0,
        "capture:received",
    )
    refund = await gateway.refund(RefundRequest(authorized.reference, Money(300, "EUR"), idempotency_key="r"))
    assert (refund.status, refund.payment_reference, refund.amount) == (
        RefundStatus.PENDING,
        authorized.reference,
        Money(300, "EUR"),
    )
    voided = await gateway.void(VoidRequest(authorized.reference, idempotency_key="v"))
    assert voided.status is PaymentStatus.AUTHORIZED


async def test_declines_are_normalized(gateway: AdyenGateway) -> None:
    with pytest.raises(PaymentDeclined) as caught:
        await charge(gateway, NO_BALANCE_CARD)
    assert caught.value.decline_code == "insufficient_funds" and caught.value.reference


async def test_three_d_secure_is_an_action_finished_with_details(gateway: AdyenGateway) -> None:
    started = await charge(gateway, THREE_DS_CARD)
    assert started.status is PaymentStatus.REQUIRES_ACTION
    assert started.next_action is not None and started.next_action.type is NextActionType.REDIRECT
    redirect_result = (started.next_action.redirect_url or "").rsplit("redirectResult=", 1)[1]
    with pytest.raises(ShopperReturnRejected):
        await gateway.accept_shopper_return(
            started.reference, {"redirectResult": "forged"}, capture=True, idempotency_key="d-0"
        )
    with pytest.raises(ShopperReturnRejected):  # anything else than one of Adyen's values
        await gateway.accept_shopper_return(
            started.reference, {"redirectResult": redirect_result, "x": "y"}, capture=True, idempotency_key="d-1"
        )
    done = await gateway.accept_shopper_return(
        started.reference, {"redirectResult": redirect_result}, capture=True, idempotency_key="d-2"
    )
    assert (done.reference, done.status, done.amount_captured) == (started.reference, PaymentStatus.PAID, 1000)


async def test_another_payments_result_is_rejected(gateway: AdyenGateway) -> None:
    mine = await charge(gateway, THREE_DS_CARD)
    theirs = await charge(gateway, THREE_DS_CARD)
    assert theirs.next_action is not None
    their_result = (theirs.next_action.redirect_url or "").rsplit("redirectResult=", 1)[1]
    with pytest.raises(ShopperReturnRejected, match="another payment"):
        await gateway.accept_shopper_return(
            mine.reference, {"redirectResult": their_result}, capture=True, idempotency_key="d-3"
        )


async def test_adyen_cannot_be_read_so_the_adapter_says_so(gateway: AdyenGateway) -> None:
    """Never None from find_payment: that would tell reconciliation Adyen never saw the payment."""
    for call in (gateway.retrieve("X"), gateway.find_payment("pay"), gateway.list_payments(0)):
        with pytest.raises(NotSupported):
            await call


async def test_a_wrong_api_key_is_a_configuration_error(emulator: AdyenEmulator) -> None:
    wrong = make_gateway(emulator)
    wrong._calls.checkout.payments_api.client.xapikey = "AQE-wrong"
    with pytest.raises(GatewayConfigurationError) as caught:
        await charge(wrong)
    assert "errorCode=000" in caught.value.detail and "errorType=security" in caught.value.detail


async def test_an_unknown_payment_is_refused_with_adyens_error(gateway: AdyenGateway) -> None:
    with pytest.raises(InvalidGatewayRequest) as caught:
        await gateway.capture(CaptureRequest("0000000000000000", Money(1, "EUR"), idempotency_key="cap-unknown"))
    assert "errorCode=167" in caught.value.detail and caught.value.reference == "0000000000000000"


async def test_an_unreachable_adyen_was_not_attempted(emulator: AdyenEmulator) -> None:
    gateway = make_gateway(emulator, api_base="http://127.0.0.1:9")
    with pytest.raises(GatewayNotAttempted):
        await charge(gateway)


async def test_a_stored_card_is_charged_again_for_its_shopper_only(
    gateway: AdyenGateway, emulator: AdyenEmulator
) -> None:
    """Stored under our customer (`shopperReference`), reused as a shopper-present card-on-file payment."""
    shopper = await gateway.ensure_customer("cus-1", None)
    storing = dataclasses.replace(
        charge_request(),
        payment_method=json.dumps({"paymentMethod": json.loads(drop_in()), "storePaymentMethod": True}),
        customer_reference=shopper,
    )
    await gateway.charge(storing)
    (item,) = [i["NotificationRequestItem"] for i in emulator.take()]
    token = item["additionalData"]["tokenization.storedPaymentMethodId"]

    stored_card = json.dumps({"type": "scheme", "storedPaymentMethodId": token})
    again = await gateway.charge(
        dataclasses.replace(charge_request(), payment_method=stored_card, customer_reference=shopper)
    )
    assert again.status is PaymentStatus.PAID
    with pytest.raises(InvalidGatewayRequest) as caught:  # another shopper's token
        await gateway.charge(
            dataclasses.replace(charge_request(), payment_method=stored_card, customer_reference="x-2")
        )
    assert "errorCode=800" in caught.value.detail
    with pytest.raises(InvalidGatewayRequest, match="signed-in"):  # no shopper at all: refused before calling
        await gateway.charge(dataclasses.replace(charge_request(), payment_method=stored_card))


def test_storing_and_reusing_send_adyens_recurring_fields() -> None:
    storing = parse_payment_method(json.dumps({"paymentMethod": json.loads(drop_in()), "storePaymentMethod": True}))
    body = payment_request(dataclasses.replace(charge_request(), customer_reference="cus-1"), "M", storing)
    assert (body["storePaymentMethod"], body["recurringProcessingModel"], body["shopperInteraction"]) == (
        True,
        "CardOnFile",
        "Ecommerce",
    )
    reusing = parse_payment_method(json.dumps({"type": "scheme", "storedPaymentMethodId": "T"}))
    body = payment_request(dataclasses.replace(charge_request(), customer_reference="cus-1"), "M", reusing)
    assert (body["shopperReference"], body["recurringProcessingModel"], body["shopperInteraction"]) == (
        "cus-1",
        "CardOnFile",
        "ContAuth",
    )
    assert "storePaymentMethod" not in body


async def test_a_lost_answer_is_recovered_by_the_same_key(gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
    """A 500 after Adyen acted is an unknown outcome (never "not attempted"); the retry with the same
    Idempotency-Key gets Adyen's first answer, so the shopper is charged once."""
    request = charge_request()
    emulator.lose_next_answer()
    with pytest.raises(GatewayUnavailable) as caught:
        await gateway.charge(request)
    assert not isinstance(caught.value, GatewayNotAttempted)
    recovered = await gateway.charge(request)
    assert recovered.status is PaymentStatus.PAID and len(emulator.payments) == 1
    assert recovered.reference in emulator.payments


async def test_a_failed_challenge_is_the_payments_outcome(gateway: AdyenGateway) -> None:
    """After the shopper's action, Adyen's refusal is the payment's own answer: FAILED, not an error."""
    started = await charge(gateway, THREE_DS_REFUSED_CARD)
    assert started.next_action is not None
    redirect_result = (started.next_action.redirect_url or "").rsplit("redirectResult=", 1)[1]
    failed = await gateway.accept_shopper_return(
        started.reference, {"redirectResult": redirect_result}, capture=True, idempotency_key="d-failed"
    )
    assert (failed.status, failed.decline_code, failed.decline_message) == (
        PaymentStatus.FAILED,
        "generic_decline",
        "3D Not Authenticated",
    )
