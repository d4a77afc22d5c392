"""The sandbox gateway through PayQL's `PaymentGateway` protocol, against a real sandbox processor."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, NextActionType, PaymentStatus, RefundStatus
from gateways.base import PaymentGateway
from gateways.errors import (
    GatewayIdempotencyConflict,
    GatewayUnavailable,
    InvalidGatewayRequest,
    NotSupported,
    PaymentDeclined,
)
from gateways.sandbox import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor
from gateways.sandbox.processor.test_methods import decline_message
from gateways.types import CaptureRequest, ChargeRequest, RefundRequest, VoidRequest

BASE_URL = "https://pay.example.test"
NEXT_YEAR = datetime.now(UTC).year + 1


@pytest.fixture
def processor() -> SandboxProcessor:
    return SandboxProcessor()


@pytest.fixture
def gateway(processor: SandboxProcessor) -> SandboxGateway:
    return SandboxGateway(processor, BASE_URL)


def charge_request(
    key: str,
    *,
    amount: int = 1000,
    currency: str = "USD",
    payment_method: str = "pm_card_visa",
    manual: bool = False,
    return_url: str | None = "https://shop.example.test/done",
) -> ChargeRequest:
    return ChargeRequest(
        amount=Money(amount, currency),
        payment_method=payment_method,
        capture_method=CaptureMethod.MANUAL if manual else CaptureMethod.AUTOMATIC,
        idempotency_key=key,
        return_url=return_url,
        metadata={"order": "ord_1"},
    )


def test_gateway_satisfies_the_protocol(gateway: SandboxGateway) -> None:
    assert isinstance(gateway, PaymentGateway)
    assert gateway.name == "sandbox"


@pytest.mark.parametrize("payment_method", ["pm_card_visa", "pm_card_mastercard"])
async def test_succeeding_test_methods_are_paid(gateway: SandboxGateway, payment_method: str) -> None:
    result = await gateway.charge(charge_request("k1", payment_method=payment_method))

    assert result.status is PaymentStatus.PAID
    assert result.reference.startswith("pi_sbx_")
    assert result.amount == Money(1000, "USD")
    assert (result.amount_authorized, result.amount_captured, result.amount_refunded) == (1000, 1000, 0)
    assert result.next_action is None
    assert result.gateway_status == "succeeded"
    assert result.decline_code is None


@pytest.mark.parametrize(
    ("payment_method", "decline_code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
        ("pm_card_chargeDeclinedProcessingError", "processing_error"),
    ],
)
async def test_declining_test_methods_raise_their_decline_code(
    gateway: SandboxGateway, payment_method: str, decline_code: str
) -> None:
    with pytest.raises(PaymentDeclined) as raised:
        await gateway.charge(charge_request("k1", payment_method=payment_method))

    declined = raised.value
    assert declined.decline_code == decline_code
    assert declined.message == decline_message(decline_code)
    assert decline_code not in declined.message  # shopper-readable text, not the code
    assert declined.reference is not None and declined.reference.startswith("pi_sbx_")
    # The declined charge still exists on the processor, failed.
    stored = await gateway.retrieve(declined.reference)
    assert stored.status is PaymentStatus.FAILED
    assert stored.decline_code == decline_code
    assert stored.amount_captured == 0


async def test_authentication_required_then_completed_is_paid(
    gateway: SandboxGateway, processor: SandboxProcessor
) -> None:
    result = await gateway.charge(charge_request("k1", payment_method="pm_card_authenticationRequired"))

    assert result.status is PaymentStatus.REQUIRES_ACTION
    assert result.next_action is not None
    assert result.next_action.type is NextActionType.REDIRECT
    assert result.next_action.redirect_url == f"{BASE_URL}/sandbox/authenticate/{result.reference}"
    assert result.next_action.client_secret is not None
    assert result.next_action.client_secret.startswith(f"{result.reference}_secret_")
    assert result.amount_captured == 0

    await processor.complete_authentication(result.reference, succeed=True)

    after = await gateway.retrieve(result.reference)
    assert after.status is PaymentStatus.PAID
    assert after.amount_captured == 1000
    assert after.next_action is None


async def test_authentication_failed_is_failed_with_authentication_required(
    gateway: SandboxGateway, processor: SandboxProcessor
) -> None:
    result = await gateway.charge(charge_request("k1", payment_method="pm_card_authenticationRequired"))

    await processor.complete_authentication(result.reference, succeed=False)

    after = await gateway.retrieve(result.reference)
    assert after.status is PaymentStatus.FAILED
    assert after.decline_code == "authentication_required"
    assert after.amount_authorized == 0


async def test_authentication_with_manual_capture_is_authorized(
    gateway: SandboxGateway, processor: SandboxProcessor
) -> None:
    result = await gateway.charge(charge_request("k1", payment_method="pm_card_authenticationRequired", manual=True))

    await processor.complete_authentication(result.reference, succeed=True)

    after = await gateway.retrieve(result.reference)
    assert after.status is PaymentStatus.AUTHORIZED
    assert (after.amount_authorized, after.amount_captured) == (1000, 0)


async def test_manual_capture_in_full(gateway: SandboxGateway) -> None:
    authorized = await gateway.charge(charge_request("k1", manual=True))
    assert authorized.status is PaymentStatus.AUTHORIZED
    assert (authorized.amount_authorized, authorized.amount_captured) == (1000, 0)

    captured = await gateway.capture(CaptureRequest(authorized.reference, Money(1000, "USD"), "cap-1"))

    assert captured.status is PaymentStatus.PAID
    assert (captured.amount_authorized, captured.amount_captured) == (1000, 1000)


async def test_partial_capture_releases_the_rest_and_refuses_a_second_capture(
    gateway: SandboxGateway,
) -> None:
    authorized = await gateway.charge(charge_request("k1", manual=True))

    captured = await gateway.capture(CaptureRequest(authorized.reference, Money(600, "USD"), "cap-1"))

    assert captured.status is PaymentStatus.PAID
    assert (captured.amount_authorized, captured.amount_captured) == (600, 600)
    with pytest.raises(InvalidGatewayRequest):
        await gateway.capture(CaptureRequest(authorized.reference, Money(400, "USD"), "cap-2"))
    assert (await gateway.retrieve(authorized.reference)).amount_captured == 600


async def test_over_capture_is_refused_and_changes_nothing(gateway: SandboxGateway) -> None:
    authorized = await gateway.charge(charge_request("k1", manual=True))

    with pytest.raises(InvalidGatewayRequest) as raised:
        await gateway.capture(CaptureRequest(authorized.reference, Money(1001, "USD"), "cap-1"))

    assert raised.value.reference == authorized.reference
    after = await gateway.retrieve(authorized.reference)
    assert after.status is PaymentStatus.AUTHORIZED
    assert after.amount_authorized == 1000


async def test_capture_in_another_currency_is_refused(gateway: SandboxGateway) -> None:
    authorized = await gateway.charge(charge_request("k1", manual=True))

    with pytest.raises(InvalidGatewayRequest):
        await gateway.capture(CaptureRequest(authorized.reference, Money(1000, "EUR"), "cap-1"))

    assert (await gateway.retrieve(authorized.reference)).status is PaymentStatus.AUTHORIZED


async def test_non_final_capture_is_not_supported(gateway: SandboxGateway) -> None:
    authorized = await gateway.charge(charge_request("k1", manual=True))

    with pytest.raises(NotSupported):
        await gateway.capture(CaptureRequest(authorized.reference, Money(100, "USD"), "cap-1", final=False))

    assert (await gateway.retrieve(authorized.reference)).amount_captured == 0


async def test_void_an_authorization(gateway: SandboxGateway) -> None:
    authorized = await gateway.charge(charge_request("k1", manual=True))

    voided = await gateway.void(VoidRequest(authorized.reference, "void-1"))

    assert voided.status is PaymentStatus.CANCELED
    assert (voided.amount_authorized, voided.amount_captured) == (0, 0)
    with pytest.raises(InvalidGatewayRequest):
        await gateway.capture(CaptureRequest(authorized.reference, Money(1000, "USD"), "cap-1"))


async def test_void_a_payment_waiting_for_authentication(gateway: SandboxGateway) -> None:
    pending = await gateway.charge(charge_request("k1", payment_method="pm_card_authenticationRequired"))

    voided = await gateway.void(VoidRequest(pending.reference, "void-1"))

    assert voided.status is PaymentStatus.CANCELED


async def test_void_after_capture_is_refused(gateway: SandboxGateway) -> None:
    paid = await gateway.charge(charge_request("k1"))

    with pytest.raises(InvalidGatewayRequest):
        await gateway.void(VoidRequest(paid.reference, "void-1"))

    assert (await gateway.retrieve(paid.reference)).status is PaymentStatus.PAID


async def test_refund_in_full(gateway: SandboxGateway) -> None:
    paid = await gateway.charge(charge_request("k1"))

    refund = await gateway.refund(RefundRequest(paid.reference, Money(1000, "USD"), "ref-1", reason="damaged"))

    assert refund.status is RefundStatus.SUCCEEDED
    assert refund.reference.startswith("re_sbx_")
    assert refund.payment_reference == paid.reference
    assert refund.amount == Money(1000, "USD")
    after = await gateway.retrieve(paid.reference)
    assert after.status is PaymentStatus.PAID  # refunds are tracked by amounts
    assert after.amount_refunded == 1000


async def test_partial_refunds_then_over_refund_is_refused(gateway: SandboxGateway) -> None:
    paid = await gateway.charge(charge_request("k1"))

    first = await gateway.refund(RefundRequest(paid.reference, Money(300, "USD"), "ref-1"))
    second = await gateway.refund(RefundRequest(paid.reference, Money(500, "USD"), "ref-2"))
    with pytest.raises(InvalidGatewayRequest):
        await gateway.refund(RefundRequest(paid.reference, Money(201, "USD"), "ref-3"))

    assert first.reference != second.reference
    assert (await gateway.retrieve(paid.reference)).amount_refunded == 800
    last = await gateway.refund(RefundRequest(paid.reference, Money(200, "USD"), "ref-4"))
    assert last.amount == Money(200, "USD")
    with pytest.raises(InvalidGatewayRequest):
        await gateway.refund(RefundRequest(paid.reference, Money(1, "USD"), "ref-5"))
    assert (await gateway.retrieve(paid.reference)).amount_refunded == 1000


async def test_refund_is_limited_to_the_captured_part(gateway: SandboxGateway) -> None:
    authorized = await gateway.charge(charge_request("k1", manual=True))
    with pytest.raises(InvalidGatewayRequest):
        await gateway.refund(RefundRequest(authorized.reference, Money(100, "USD"), "ref-0"))
    await gateway.capture(CaptureRequest(authorized.reference, Money(400, "USD"), "cap-1"))

    with pytest.raises(InvalidGatewayRequest):
        await gateway.refund(RefundRequest(authorized.reference, Money(401, "USD"), "ref-1"))

    refund = await gateway.refund(RefundRequest(authorized.reference, Money(400, "USD"), "ref-2"))
    assert refund.amount.amount == 400


async def test_unknown_payment_method_and_reference_are_invalid_requests(gateway: SandboxGateway) -> None:
    with pytest.raises(InvalidGatewayRequest):
        await gateway.charge(charge_request("k1", payment_method="pm_card_doesNotExist"))
    with pytest.raises(InvalidGatewayRequest):
        await gateway.retrieve("pi_sbx_000000000000000000000000")


async def test_same_key_same_request_replays_the_same_result(
    gateway: SandboxGateway, processor: SandboxProcessor
) -> None:
    first = await gateway.charge(charge_request("order-1-attempt-1"))
    second = await gateway.charge(charge_request("order-1-attempt-1"))

    assert second == first
    assert [intent.id for intent in await processor.list_payment_intents()] == [first.reference]


async def test_same_key_other_parameters_is_a_conflict(gateway: SandboxGateway, processor: SandboxProcessor) -> None:
    await gateway.charge(charge_request("order-1-attempt-1", amount=1000))

    with pytest.raises(GatewayIdempotencyConflict):
        await gateway.charge(charge_request("order-1-attempt-1", amount=1001))

    assert len(await processor.list_payment_intents()) == 1


async def test_a_replayed_decline_is_the_same_decline(gateway: SandboxGateway, processor: SandboxProcessor) -> None:
    request = charge_request("k1", payment_method="pm_card_chargeDeclinedInsufficientFunds")
    with pytest.raises(PaymentDeclined) as first:
        await gateway.charge(request)
    with pytest.raises(PaymentDeclined) as second:
        await gateway.charge(request)

    assert second.value.reference == first.value.reference
    assert second.value.decline_code == first.value.decline_code == "insufficient_funds"
    assert second.value.message == first.value.message
    assert len(await processor.list_payment_intents()) == 1


async def test_idempotent_capture_and_refund_act_once(gateway: SandboxGateway) -> None:
    authorized = await gateway.charge(charge_request("k1", manual=True))
    capture = CaptureRequest(authorized.reference, Money(1000, "USD"), "cap-1")
    assert await gateway.capture(capture) == await gateway.capture(capture)

    refund = RefundRequest(authorized.reference, Money(400, "USD"), "ref-1")
    first, second = await gateway.refund(refund), await gateway.refund(refund)

    assert first == second
    assert (await gateway.retrieve(authorized.reference)).amount_refunded == 400
    with pytest.raises(GatewayIdempotencyConflict):
        await gateway.refund(RefundRequest(authorized.reference, Money(300, "USD"), "ref-1"))


async def test_a_key_is_bound_to_one_operation(gateway: SandboxGateway) -> None:
    authorized = await gateway.charge(charge_request("shared-key", manual=True))

    with pytest.raises(GatewayIdempotencyConflict):
        await gateway.void(VoidRequest(authorized.reference, "shared-key"))


@pytest.mark.parametrize("durable", [False, True])
async def test_fifty_concurrent_charges_with_one_key_make_one_intent(tmp_path: Path, durable: bool) -> None:
    processor = SandboxProcessor(state_path=tmp_path / "sandbox.sqlite3" if durable else None)
    gateway = SandboxGateway(processor, BASE_URL)

    results = await asyncio.gather(*(gateway.charge(charge_request("same-key")) for _ in range(50)))

    assert {result.reference for result in results} == {results[0].reference}
    assert all(result.status is PaymentStatus.PAID for result in results)
    assert len(await processor.list_payment_intents()) == 1
    await gateway.aclose()


async def test_concurrent_charges_with_their_own_keys_are_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    gateway = SandboxGateway(SandboxProcessor(state_path=path), BASE_URL)

    results = await asyncio.gather(*(gateway.charge(charge_request(f"key-{n}", amount=100 + n)) for n in range(30)))
    await gateway.aclose()

    reopened = SandboxProcessor(state_path=path)
    stored = {intent.id: intent.amount for intent in await reopened.list_payment_intents()}
    assert stored == {result.reference: result.amount.amount for result in results}
    assert sorted(stored.values()) == list(range(100, 130))
    await reopened.aclose()


async def test_unavailable_fault_does_nothing(gateway: SandboxGateway, processor: SandboxProcessor) -> None:
    processor.arm_fault("unavailable", 2)

    for _ in range(2):
        with pytest.raises(GatewayUnavailable):
            await gateway.charge(charge_request("k1"))

    assert await processor.list_payment_intents() == []
    result = await gateway.charge(charge_request("k1"))
    assert result.status is PaymentStatus.PAID


async def test_timeout_fault_does_the_charge_but_loses_the_answer(
    gateway: SandboxGateway, processor: SandboxProcessor
) -> None:
    processor.arm_fault("timeout", 1)

    with pytest.raises(GatewayUnavailable):
        await gateway.charge(charge_request("k1"))

    intents = await processor.list_payment_intents()
    assert len(intents) == 1
    assert (await gateway.retrieve(intents[0].id)).status is PaymentStatus.PAID
    # The retry with the same key finds the charge that was made rather than making another.
    retried = await gateway.charge(charge_request("k1"))
    assert retried.reference == intents[0].id
    assert len(await processor.list_payment_intents()) == 1


async def test_timeout_fault_on_a_refund_still_refunds(gateway: SandboxGateway, processor: SandboxProcessor) -> None:
    paid = await gateway.charge(charge_request("k1"))
    processor.arm_fault("timeout", 1)

    with pytest.raises(GatewayUnavailable) as raised:
        await gateway.refund(RefundRequest(paid.reference, Money(250, "USD"), "ref-1"))

    assert raised.value.reference == paid.reference
    assert (await gateway.retrieve(paid.reference)).amount_refunded == 250


async def test_cleared_faults_no_longer_fire(gateway: SandboxGateway, processor: SandboxProcessor) -> None:
    processor.arm_fault("unavailable", 5)
    processor.clear_faults()

    result = await gateway.charge(charge_request("k1"))

    assert result.status is PaymentStatus.PAID


@pytest.mark.parametrize(("currency", "amount", "refunded"), [("JPY", 1999, 1), ("KWD", 12345, 5), ("USD", 1, 1)])
async def test_amounts_stay_exact_in_any_exponent(
    gateway: SandboxGateway, currency: str, amount: int, refunded: int
) -> None:
    paid = await gateway.charge(charge_request("k1", amount=amount, currency=currency))
    refund = await gateway.refund(RefundRequest(paid.reference, Money(refunded, currency), "ref-1"))

    after = await gateway.retrieve(paid.reference)
    assert after.amount == Money(amount, currency)
    assert type(after.amount_captured) is int and after.amount_captured == amount
    assert refund.amount == Money(refunded, currency)
    assert after.amount_refunded == refunded


async def test_kwd_partial_capture_keeps_the_fils(gateway: SandboxGateway) -> None:
    authorized = await gateway.charge(charge_request("k1", amount=10_005, currency="KWD", manual=True))

    captured = await gateway.capture(CaptureRequest(authorized.reference, Money(7_003, "KWD"), "cap-1"))

    assert captured.amount_captured == 7_003
    assert Money(captured.amount_captured, "KWD").decimal_string() == "7.003"


async def test_charging_a_tokenized_card_behaves_like_its_number(
    gateway: SandboxGateway, processor: SandboxProcessor
) -> None:
    good = await processor.tokenize_card("5555 5555 5555 4444", 12, NEXT_YEAR, "123")
    poor = await processor.tokenize_card("4000000000009995", 12, NEXT_YEAR, "123")

    assert (await gateway.charge(charge_request("k1", payment_method=good.id))).status is PaymentStatus.PAID
    with pytest.raises(PaymentDeclined) as raised:
        await gateway.charge(charge_request("k2", payment_method=poor.id))
    assert raised.value.decline_code == "insufficient_funds"


async def test_aclose_then_use_again_in_memory(gateway: SandboxGateway) -> None:
    paid = await gateway.charge(charge_request("k1"))

    await gateway.aclose()

    assert (await gateway.retrieve(paid.reference)).status is PaymentStatus.PAID
