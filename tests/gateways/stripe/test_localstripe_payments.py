"""The Stripe adapter over real HTTP, with the real SDK, against localstripe (a separate process).

localstripe's own behaviour that these tests rely on: 4000000000000341 is declined when charged,
4000000000000002 when attached to a customer, 4000002500003155 asks for 3-D Secure (`use_stripe_sdk`);
it has no PaymentIntent search and no `created` filter on lists (the adapter's fallbacks are exercised);
a partial capture shows the released rest as a refund of the charge (old Stripe behaviour).
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, NextActionType, PaymentStatus, RefundStatus
from gateways.base import PaymentGateway
from gateways.errors import InvalidGatewayRequest, NotSupported, PaymentDeclined, client_code_for_decline
from gateways.stripe.adapter import StripeGateway
from gateways.stripe.client import StripeApi
from gateways.stripe.errors import translated
from gateways.types import CaptureRequest, RefundRequest, VoidRequest
from tests.gateways.stripe.conftest import (
    CARD_3DS,
    CARD_DECLINED_AT_ATTACH,
    CARD_DECLINED_AT_CHARGE,
    CARD_OK,
    SECRET_KEY,
    card_payment_method,
    charge_request,
)


def test_the_adapter_implements_the_gateway_protocol(gateway: StripeGateway) -> None:
    assert isinstance(gateway, PaymentGateway)
    assert gateway.name == "stripe"


async def test_automatic_capture_pays_and_reads_back(gateway: StripeGateway, stripe_api: StripeApi) -> None:
    request = charge_request(await card_payment_method(stripe_api, CARD_OK), 2500, currency="EUR")

    paid = await gateway.charge(request)

    assert paid.status is PaymentStatus.PAID
    assert paid.gateway_status == "succeeded"
    assert paid.reference.startswith("pi_")
    assert paid.amount == Money(2500, "EUR")
    assert (paid.amount_authorized, paid.amount_captured, paid.amount_refunded) == (2500, 2500, 0)
    assert paid.payql_payment_id == request.metadata["payql_payment_id"]
    assert paid.next_action is None and paid.decline_code is None
    assert paid.created is not None and abs(paid.created - time.time()) < 60
    assert await gateway.retrieve(paid.reference) == paid


async def test_a_decline_at_confirm_raises_payment_declined_and_leaves_a_failed_intent(
    gateway: StripeGateway, stripe_api: StripeApi
) -> None:
    request = charge_request(await card_payment_method(stripe_api, CARD_DECLINED_AT_CHARGE))

    with pytest.raises(PaymentDeclined) as declined:
        await gateway.charge(request)

    assert declined.value.decline_code == "card_declined"
    assert client_code_for_decline(declined.value.decline_code) == "CARD_DECLINED"
    assert declined.value.message == "Your card was declined."
    assert "http 402" in declined.value.detail
    # The answer names no intent; the intent exists, failed, and is found by our payment id.
    found = await gateway.find_payment(request.metadata["payql_payment_id"])
    assert found is not None
    assert found.status is PaymentStatus.FAILED
    assert found.gateway_status == "requires_payment_method"
    assert found.decline_code == "card_declined"
    assert found.amount_captured == 0


async def test_a_decline_when_attaching_a_card_maps_to_payment_declined(stripe_api: StripeApi) -> None:
    customer = await stripe_api.client.v1.customers.create_async({"email": "shopper@example.com"})
    method = await card_payment_method(stripe_api, CARD_DECLINED_AT_ATTACH)

    with pytest.raises(PaymentDeclined) as declined:
        await translated(stripe_api.client.v1.payment_methods.attach_async(method, {"customer": customer.id}))

    assert declined.value.decline_code == "card_declined"


async def test_manual_capture_authorizes_then_captures_in_full(gateway: StripeGateway, stripe_api: StripeApi) -> None:
    request = charge_request(await card_payment_method(stripe_api, CARD_OK), 4000, capture=CaptureMethod.MANUAL)

    authorized = await gateway.charge(request)
    assert authorized.status is PaymentStatus.AUTHORIZED
    assert authorized.gateway_status == "requires_capture"
    assert (authorized.amount_authorized, authorized.amount_captured) == (4000, 0)

    captured = await gateway.capture(
        CaptureRequest(authorized.reference, Money(4000, "EUR"), idempotency_key=f"cap-{uuid.uuid4().hex}")
    )
    assert captured.status is PaymentStatus.PAID
    assert (captured.amount_captured, captured.amount_refunded) == (4000, 0)


async def test_partial_capture_captures_only_the_asked_amount(gateway: StripeGateway, stripe_api: StripeApi) -> None:
    request = charge_request(await card_payment_method(stripe_api, CARD_OK), 2500, capture=CaptureMethod.MANUAL)
    authorized = await gateway.charge(request)

    captured = await gateway.capture(
        CaptureRequest(authorized.reference, Money(1500, "EUR"), idempotency_key=f"cap-{uuid.uuid4().hex}")
    )

    assert captured.status is PaymentStatus.PAID
    # localstripe releases the uncaptured 1000 as a refund of the charge; real Stripe reports
    # amount_received=1500 instead (covered with a recorded object in test_transformers.py).
    assert captured.amount_captured - captured.amount_refunded == 1500


async def test_capturing_in_several_parts_is_refused_explicitly(gateway: StripeGateway) -> None:
    with pytest.raises(NotSupported):
        await gateway.capture(CaptureRequest("pi_any", Money(100, "EUR"), idempotency_key="k", final=False))


async def test_void_cancels_an_authorization(gateway: StripeGateway, stripe_api: StripeApi) -> None:
    request = charge_request(await card_payment_method(stripe_api, CARD_OK), capture=CaptureMethod.MANUAL)
    authorized = await gateway.charge(request)

    voided = await gateway.void(VoidRequest(authorized.reference, idempotency_key=f"void-{uuid.uuid4().hex}"))

    assert voided.status is PaymentStatus.CANCELED
    assert voided.gateway_status == "canceled"
    assert (await gateway.retrieve(authorized.reference)).status is PaymentStatus.CANCELED


async def test_voiding_a_captured_payment_is_an_invalid_request(gateway: StripeGateway, stripe_api: StripeApi) -> None:
    paid = await gateway.charge(charge_request(await card_payment_method(stripe_api, CARD_OK)))

    with pytest.raises(InvalidGatewayRequest) as refused:
        await gateway.void(VoidRequest(paid.reference, idempotency_key=f"void-{uuid.uuid4().hex}"))

    assert refused.value.reference == paid.reference
    assert (await gateway.retrieve(paid.reference)).status is PaymentStatus.PAID


async def test_partial_then_full_refund(gateway: StripeGateway, stripe_api: StripeApi) -> None:
    paid = await gateway.charge(charge_request(await card_payment_method(stripe_api, CARD_OK), 3000))

    first = await gateway.refund(
        RefundRequest(paid.reference, Money(1000, "EUR"), idempotency_key=f"ref-{uuid.uuid4().hex}")
    )
    assert first.reference.startswith("re_")
    assert first.payment_reference == paid.reference
    assert first.status is RefundStatus.SUCCEEDED
    assert first.amount == Money(1000, "EUR")
    after_first = await gateway.retrieve(paid.reference)
    assert (after_first.status, after_first.amount_refunded) == (PaymentStatus.PAID, 1000)

    rest = await gateway.refund(
        RefundRequest(paid.reference, Money(2000, "EUR"), idempotency_key=f"ref-{uuid.uuid4().hex}")
    )
    assert rest.amount == Money(2000, "EUR")
    assert (await gateway.retrieve(paid.reference)).amount_refunded == 3000


async def test_three_d_secure_requires_action_then_succeeds(
    gateway: StripeGateway, stripe_api: StripeApi, localstripe: str
) -> None:
    request = charge_request(await card_payment_method(stripe_api, CARD_3DS), 1800)

    pending = await gateway.charge(request)

    assert pending.status is PaymentStatus.REQUIRES_ACTION
    assert pending.next_action is not None
    assert pending.next_action.type is NextActionType.CONFIRM_WITH_SDK
    assert pending.next_action.client_secret is not None
    assert pending.next_action.client_secret.startswith(f"{pending.reference}_secret_")
    assert pending.amount_captured == 0
    # What Stripe.js does in the shopper's browser, through localstripe's own authentication endpoint.
    async with httpx.AsyncClient(base_url=localstripe) as browser:
        answer = await browser.post(
            f"/v1/payment_intents/{pending.reference}/_authenticate",
            data={"client_secret": pending.next_action.client_secret, "success": "true", "key": "pk_test_x"},
        )
        assert answer.status_code == 200
    assert (await gateway.retrieve(pending.reference)).status is PaymentStatus.PAID


async def test_list_payments_returns_those_created_since(gateway: StripeGateway, stripe_api: StripeApi) -> None:
    since = int(time.time()) - 1
    first = await gateway.charge(charge_request(await card_payment_method(stripe_api, CARD_OK), 1100))
    second = await gateway.charge(
        charge_request(await card_payment_method(stripe_api, CARD_OK), 1200, capture=CaptureMethod.MANUAL)
    )

    listed = {result.reference: result for result in await gateway.list_payments(since)}

    assert listed[first.reference].status is PaymentStatus.PAID
    assert listed[second.reference].status is PaymentStatus.AUTHORIZED
    assert all(result.created is not None and result.created >= since for result in listed.values())
    assert await gateway.list_payments(int(time.time()) + 3600) == []


async def test_find_payment_by_our_payment_id(gateway: StripeGateway, stripe_api: StripeApi) -> None:
    request = charge_request(await card_payment_method(stripe_api, CARD_OK))
    paid = await gateway.charge(request)

    assert await gateway.find_payment(request.metadata["payql_payment_id"]) == paid
    assert await gateway.find_payment(f"pay_{uuid.uuid4().hex}") is None


async def test_retrieving_an_unknown_intent_is_an_invalid_request(gateway: StripeGateway) -> None:
    with pytest.raises(InvalidGatewayRequest) as missing:
        await gateway.retrieve("pi_doesnotexist")

    assert missing.value.reference == "pi_doesnotexist"
    assert "http 404" in missing.value.detail


async def test_the_secret_key_is_what_localstripe_checks(localstripe: str) -> None:
    # localstripe only accepts keys that look like secret keys; anything else is a 401 → configuration error.
    from gateways.errors import GatewayConfigurationError

    gateway = StripeGateway("pk_test_not_a_secret_key", webhook_secrets=["whsec_x"], base_url=localstripe)
    try:
        with pytest.raises(GatewayConfigurationError) as refused:
            await gateway.retrieve("pi_any")
    finally:
        await gateway.aclose()
    assert refused.value.message == "Payments are temporarily unavailable."
    assert SECRET_KEY not in refused.value.detail
