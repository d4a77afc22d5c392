"""Buyer verification (SCA) on Square: the SPA sends `{"sourceId", "verificationToken"}` (the Web Payments SDK's
card token and what `verifyBuyer` gave for it) as `paymentMethod`, and the adapter forwards the token to
CreatePayment and CreateCard as `verification_token`. On the emulator, a card whose issuer requires verification is
declined without it (Square's CARD_DECLINED_VERIFICATION_REQUIRED, our AUTHENTICATION_REQUIRED), approved with it,
and a token verifyBuyer did not give for that card is refused."""

from __future__ import annotations

import json
import uuid

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, PaymentStatus, SubscriptionStatus
from gateways.errors import InvalidGatewayRequest, PaymentDeclined
from gateways.square.adapter import SquareGateway
from gateways.square.transformers import MAX_TOKEN_LENGTH, CardSource, parse_payment_method
from gateways.types import PAYQL_PAYMENT_ID, ChargeRequest
from tests.gateways.square.conftest import NONCE_OK, checkout
from tests.gateways.square.test_subscriptions import price, request
from tests.square_emulator import SquareEmulator
from tests.testkit import Shopper


def verified(source_id: str, token: str) -> str:
    return json.dumps({"sourceId": source_id, "verificationToken": token})


def charge(payment_method: str) -> ChargeRequest:
    return ChargeRequest(
        amount=Money(2_500, "USD"),
        payment_method=payment_method,
        capture_method=CaptureMethod.AUTOMATIC,
        idempotency_key=f"pay-{uuid.uuid4().hex}",
        metadata={PAYQL_PAYMENT_ID: str(uuid.uuid4())},
    )


def test_the_payment_method_is_a_token_or_a_bounded_token_pair() -> None:
    assert parse_payment_method(NONCE_OK) == CardSource(NONCE_OK)
    assert parse_payment_method(verified(NONCE_OK, "verf:1")) == CardSource(NONCE_OK, "verf:1")
    assert parse_payment_method(json.dumps({"sourceId": NONCE_OK})) == CardSource(NONCE_OK)
    for refused in (
        "",
        "x" * (MAX_TOKEN_LENGTH + 1),
        "{not json",
        json.dumps([NONCE_OK]),
        json.dumps({"verificationToken": "verf:1"}),
        json.dumps({"sourceId": NONCE_OK, "verificationToken": ""}),
        json.dumps({"sourceId": NONCE_OK, "verificationToken": "v" * (MAX_TOKEN_LENGTH + 1)}),
        json.dumps({"sourceId": NONCE_OK, "cardNumber": "4111111111111111"}),
    ):
        with pytest.raises(InvalidGatewayRequest):
            parse_payment_method(refused)


async def test_a_card_that_needs_verification_is_declined_without_it(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    nonce = emulator.sca_nonce()
    with pytest.raises(PaymentDeclined) as declined:
        await gateway.charge(charge(nonce))
    assert declined.value.decline_code == "authentication_required"
    [failed] = emulator.ledger.payments.values()
    assert declined.value.reference == failed.id
    assert [e["code"] for e in failed.errors] == ["CARD_DECLINED_VERIFICATION_REQUIRED"]


async def test_a_verified_buyer_is_charged_and_the_token_reaches_square(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    nonce = emulator.sca_nonce()
    token = emulator.verify_buyer(nonce)
    paid = await gateway.charge(charge(verified(nonce, token)))
    assert paid.status is PaymentStatus.PAID
    assert emulator.ledger.payments[paid.reference].verification_token == token


async def test_a_token_verifyBuyer_gave_for_another_card_is_refused(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    nonce = emulator.sca_nonce()
    other = emulator.verify_buyer(emulator.sca_nonce())
    with pytest.raises(InvalidGatewayRequest) as refused:
        await gateway.charge(charge(verified(nonce, other)))
    assert "verification_token" in refused.value.detail
    assert emulator.ledger.payments == {}


async def test_a_malformed_payment_method_reaches_no_one(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    with pytest.raises(InvalidGatewayRequest):
        await gateway.charge(charge(json.dumps({"sourceId": NONCE_OK, "verification": "verf:1"})))
    assert emulator.calls.requests == []


async def test_a_subscription_card_is_stored_with_the_verification(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    nonce = emulator.sca_nonce()
    with pytest.raises(PaymentDeclined) as declined:
        await gateway.create_subscription(request(price(), token=nonce))
    assert declined.value.decline_code == "authentication_required"
    assert emulator.billing.subscriptions == {} and emulator.billing.cards == {}

    token = emulator.verify_buyer(nonce)
    created = await gateway.create_subscription(request(price(), token=verified(nonce, token)))
    assert created.status is SubscriptionStatus.ACTIVE
    [card] = emulator.billing.cards.values()
    assert (card.id, card.verification_token) == (created.default_payment_method, token)


async def test_checkout_tells_the_shopper_to_verify_and_takes_the_verified_card(
    square_in_payql: SquareGateway, emulator: SquareEmulator, shopper: Shopper
) -> None:
    nonce = emulator.sca_nonce()
    refused = await checkout(shopper, nonce)
    assert [error["code"] for error in refused["userErrors"]] == ["AUTHENTICATION_REQUIRED"]
    paid = await checkout(shopper, verified(nonce, emulator.verify_buyer(nonce)))
    assert paid["userErrors"] == [] and paid["order"]["status"] == "PAID"
    square_payment = next(p for p in emulator.ledger.payments.values() if p.status == "COMPLETED")
    assert square_payment.verification_token is not None
