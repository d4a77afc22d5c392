"""The Braintree adapter's payments beyond the contract: 3-D Secure, the sandbox's declining and failing nonces,
at-most-once after a lost answer (the order_id search), refusals made before any call, and transport failures."""

from __future__ import annotations

import uuid

import pytest
from braintree.test.nonces import Nonces

from domain.money import Money
from domain.statuses import CaptureMethod, PaymentStatus
from gateways.braintree.adapter import BraintreeGateway
from gateways.braintree.client import BraintreeClient
from gateways.errors import (
    GatewayConfigurationError,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
    NotSupported,
    PaymentDeclined,
)
from gateways.types import CaptureRequest, ChargeRequest, RefundRequest, VoidRequest
from tests.braintree_emulator import BraintreeEmulator
from tests.gateways.braintree.conftest import make_gateway, settle

TEN_DOLLARS = Money(1000, "USD")


def request(nonce: str, *, amount: Money = TEN_DOLLARS, manual: bool = False) -> ChargeRequest:
    payment_id = f"pay_{uuid.uuid4().hex}"
    return ChargeRequest(
        amount=amount,
        payment_method=nonce,
        capture_method=CaptureMethod.MANUAL if manual else CaptureMethod.AUTOMATIC,
        idempotency_key=f"charge-{payment_id}",
        metadata={"payql_payment_id": payment_id},
    )


def sales(emulator: BraintreeEmulator) -> list[dict[str, object]]:
    return [t for t in emulator.ledger.transactions.values() if t["type"] == "sale"]


async def test_the_payment_id_travels_as_the_order_id(gateway: BraintreeGateway, emulator: BraintreeEmulator) -> None:
    charge = request(Nonces.Transactable)
    paid = await gateway.charge(charge)
    assert paid.payql_payment_id == charge.metadata["payql_payment_id"]
    assert emulator.ledger.transactions[paid.reference]["order_id"] == charge.metadata["payql_payment_id"]
    assert await gateway.find_payment(charge.metadata["payql_payment_id"]) == paid
    assert await gateway.find_payment(f"pay_{uuid.uuid4().hex}") is None


async def test_a_lost_answer_is_recovered_without_a_second_sale(
    gateway: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    """Braintree made the sale but its answer was lost: the retry finds it by order_id instead of charging again."""
    charge = request(Nonces.Transactable)
    emulator.fail_next(500, path="/transactions", after_effect=True)
    with pytest.raises(GatewayUnavailable):
        await gateway.charge(charge)
    assert len(sales(emulator)) == 1
    again = await gateway.charge(charge)
    assert again.status is PaymentStatus.PAID
    assert [again.reference] == [t["id"] for t in sales(emulator)]


async def test_a_declined_sale_found_again_is_declined_again(
    gateway: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    charge = request(Nonces.ProcessorDeclinedMasterCard)
    with pytest.raises(PaymentDeclined) as first:
        await gateway.charge(charge)
    with pytest.raises(PaymentDeclined) as again:
        await gateway.charge(charge)
    assert first.value.reference == again.value.reference
    assert len(sales(emulator)) == 1


@pytest.mark.parametrize(
    ("nonce", "code"),
    [
        (Nonces.ProcessorDeclinedVisa, "generic_decline"),
        (Nonces.ProcessorFailureJCB, "processing_error"),
        (Nonces.GatewayRejectedFraud, "card_declined"),
        (Nonces.GatewayRejectedRiskThreshold, "card_declined"),
    ],
)
async def test_declines_and_failures_are_normalized(gateway: BraintreeGateway, nonce: str, code: str) -> None:
    with pytest.raises(PaymentDeclined) as caught:
        await gateway.charge(request(nonce))
    assert (caught.value.decline_code, caught.value.reference is not None) == (code, True)


@pytest.mark.parametrize("nonce", [Nonces.Consumed, Nonces.LuhnInvalid, "not-a-nonce"])
async def test_an_unusable_nonce_is_a_decline_without_a_transaction(
    gateway: BraintreeGateway, emulator: BraintreeEmulator, nonce: str
) -> None:
    with pytest.raises(PaymentDeclined) as caught:
        await gateway.charge(request(nonce))
    assert (caught.value.decline_code, caught.value.reference) == ("card_declined", None)
    assert sales(emulator) == []


async def test_three_d_secure_required_refuses_a_nonce_without_liability_shift(emulator: BraintreeEmulator) -> None:
    gateway = make_gateway(emulator, three_d_secure_required=True)
    try:
        with pytest.raises(PaymentDeclined) as caught:
            await gateway.charge(request(Nonces.Transactable))
        assert caught.value.decline_code == "authentication_required"
        assert "3-D Secure" in caught.value.message
        with pytest.raises(PaymentDeclined):
            await gateway.charge(request(Nonces.ThreeDSecureVisaFailedAuthentication))
        verified = await gateway.charge(request(Nonces.ThreeDSecureVisaFullAuthentication))
        assert verified.status is PaymentStatus.PAID
    finally:
        await gateway.aclose()


async def test_a_currency_without_a_merchant_account_is_refused_before_any_call(
    gateway: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    with pytest.raises(InvalidGatewayRequest):
        await gateway.charge(request(Nonces.Transactable, amount=Money(1000, "EUR")))
    assert emulator.calls == []


async def test_a_capture_in_several_parts_is_not_supported(gateway: BraintreeGateway) -> None:
    authorized = await gateway.charge(request(Nonces.Transactable, manual=True))
    with pytest.raises(NotSupported):
        await gateway.capture(CaptureRequest(authorized.reference, Money(400, "USD"), "cap", final=False))


async def test_a_repeated_capture_changes_nothing(gateway: BraintreeGateway) -> None:
    authorized = await gateway.charge(request(Nonces.Transactable, manual=True))
    first = await gateway.capture(CaptureRequest(authorized.reference, Money(400, "USD"), "cap"))
    again = await gateway.capture(CaptureRequest(authorized.reference, Money(400, "USD"), "cap"))
    assert (first.amount_captured, again.amount_captured, again.status) == (400, 400, PaymentStatus.PAID)


async def test_an_unsettled_payment_is_not_refunded(gateway: BraintreeGateway, emulator: BraintreeEmulator) -> None:
    paid = await gateway.charge(request(Nonces.Transactable))
    with pytest.raises(InvalidGatewayRequest) as caught:
        await gateway.refund(RefundRequest(paid.reference, Money(100, "USD"), "ref"))
    assert "settle" in caught.value.message
    assert not any(t["type"] == "credit" for t in emulator.ledger.transactions.values())


async def test_wrong_credentials_are_a_configuration_error(emulator: BraintreeEmulator) -> None:
    client = BraintreeClient(emulator.merchant_id, emulator.public_key, "wrong", api_base=emulator.base_url)
    gateway = BraintreeGateway(client, merchant_accounts={"USD": "payql_usd"}, webhook_keys=[])
    with pytest.raises(GatewayConfigurationError):
        await gateway.charge(request(Nonces.Transactable))
    await gateway.aclose()


async def test_an_unreachable_gateway_was_not_attempted(emulator: BraintreeEmulator) -> None:
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    client = BraintreeClient(emulator.merchant_id, emulator.public_key, emulator.private_key, api_base=closed)
    gateway = BraintreeGateway(client, merchant_accounts={"USD": "payql_usd"}, webhook_keys=[])
    with pytest.raises(GatewayNotAttempted):
        await gateway.retrieve("anything")
    await gateway.aclose()


@pytest.mark.parametrize("status", [429, 503])
async def test_a_refusal_before_processing_was_not_attempted(
    gateway: BraintreeGateway, emulator: BraintreeEmulator, status: int
) -> None:
    emulator.fail_next(status, path="/transactions/advanced_search_ids")
    with pytest.raises(GatewayNotAttempted):
        await gateway.charge(request(Nonces.Transactable))
    assert sales(emulator) == []


async def test_list_payments_reads_the_sales_since(gateway: BraintreeGateway) -> None:
    paid = await gateway.charge(request(Nonces.Transactable))
    authorized = await gateway.charge(request(Nonces.Transactable, manual=True))
    listed = {p.reference: p.status for p in await gateway.list_payments(0)}
    assert listed == {paid.reference: PaymentStatus.PAID, authorized.reference: PaymentStatus.AUTHORIZED}
    assert await gateway.list_payments(int(paid.created or 0) + 3600) == []


async def test_complete_is_not_supported(gateway: BraintreeGateway) -> None:
    with pytest.raises(NotSupported):
        await gateway.complete("x", capture=True, idempotency_key="k")


async def test_a_sale_submitted_for_settlement_is_not_voided(
    gateway: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    """Braintree would void it (not settled yet), but for PayQL it is captured: a refund is the way back."""
    paid = await gateway.charge(request(Nonces.Transactable))
    with pytest.raises(InvalidGatewayRequest) as caught:
        await gateway.void(VoidRequest(paid.reference, "void"))
    assert caught.value.reference == paid.reference
    assert emulator.ledger.transactions[paid.reference]["status"] == "submitted_for_settlement"


async def test_a_refund_whose_answer_was_lost_is_not_made_twice(
    gateway: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    paid = await gateway.charge(request(Nonces.Transactable))
    await settle(emulator, paid.reference)
    refund = RefundRequest(paid.reference, Money(300, "USD"), "refund-key-1")
    emulator.fail_next(500, path="/refund", after_effect=True)
    with pytest.raises(GatewayUnavailable):
        await gateway.refund(refund)
    again = await gateway.refund(refund)
    credits = [t for t in emulator.ledger.transactions.values() if t["type"] == "credit"]
    assert [c["id"] for c in credits] == [again.reference]
    other = await gateway.refund(RefundRequest(paid.reference, Money(200, "USD"), "refund-key-2"))
    assert other.reference != again.reference
    assert (await gateway.retrieve(paid.reference)).amount_refunded == 500
