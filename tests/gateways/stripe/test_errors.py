"""Stripe's error answers, sent over real HTTP by a scripted local server, through the real SDK, and what
the adapter raises for each. The server also records what the SDK sent, so the wire request is checked too
(idempotency keys, pinned API version, form fields). The SDK is never mocked."""

from __future__ import annotations

import uuid

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, PaymentStatus
from gateways.errors import (
    GatewayConfigurationError,
    GatewayError,
    GatewayIdempotencyConflict,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
    PaymentDeclined,
)
from gateways.stripe.adapter import StripeGateway
from gateways.stripe.client import API_VERSION, StripeApi
from gateways.types import CaptureRequest, ChargeRequest, RefundRequest, VoidRequest
from tests.gateways.stripe.conftest import SCRIPTED_SECRET_KEY as SECRET_KEY
from tests.gateways.stripe.conftest import recorded_object as _object
from tests.gateways.stripe.servers import Answer, ScriptedStripe
from tests.ports import free_port


def _error(status: int, **error: object) -> Answer:
    return Answer.json(status, {"error": error})


def _charge(key: str = "charge-key-1") -> ChargeRequest:
    return ChargeRequest(
        amount=Money(2000, "USD"),
        payment_method="pm_card_visa",
        capture_method=CaptureMethod.MANUAL,
        idempotency_key=key,
        metadata={"payql_payment_id": "pay_1", "payql_order_id": "ord_1"},
    )


async def test_charge_sends_one_confirmed_intent_with_key_version_and_metadata(
    scripted: tuple[ScriptedStripe, StripeGateway],
) -> None:
    stripe, gateway = scripted
    stripe.answers.append(Answer.json(200, _object("payment_intent.amount_capturable_updated")))

    result = await gateway.charge(_charge())

    assert result.status is PaymentStatus.AUTHORIZED
    [sent] = stripe.requests
    assert (sent.method, sent.path) == ("POST", "/v1/payment_intents")
    assert sent.headers["idempotency-key"] == "charge-key-1"
    assert sent.headers["stripe-version"] == API_VERSION
    assert sent.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert sent.form == {
        "amount": "2000",
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "confirm": "true",
        "capture_method": "manual",
        "metadata[payql_payment_id]": "pay_1",
        "metadata[payql_order_id]": "ord_1",
        "automatic_payment_methods[enabled]": "true",
        "automatic_payment_methods[allow_redirects]": "never",
        "expand[0]": "latest_charge",
    }


async def test_every_mutating_call_carries_its_idempotency_key(scripted: tuple[ScriptedStripe, StripeGateway]) -> None:
    stripe, gateway = scripted
    intent = _object("payment_intent.succeeded")
    refund = {**_object("refund.created"), "status": "succeeded"}
    stripe.answers += [Answer.json(200, intent), Answer.json(200, _object("payment_intent.canceled"))]
    stripe.answers.append(Answer.json(200, refund))

    await gateway.capture(CaptureRequest("pi_3RecordedIntent0001", Money(1500, "USD"), idempotency_key="cap-1"))
    await gateway.void(VoidRequest("pi_3RecordedIntent0001", idempotency_key="void-1"))
    refunded = await gateway.refund(
        RefundRequest("pi_3RecordedIntent0001", Money(500, "USD"), idempotency_key="ref-1", reason="damaged")
    )

    capture, void, refund_sent = stripe.requests
    assert (capture.path, capture.headers["idempotency-key"]) == (
        "/v1/payment_intents/pi_3RecordedIntent0001/capture",
        "cap-1",
    )
    assert capture.form["amount_to_capture"] == "1500"
    assert (void.path, void.headers["idempotency-key"]) == (
        "/v1/payment_intents/pi_3RecordedIntent0001/cancel",
        "void-1",
    )
    assert (refund_sent.path, refund_sent.headers["idempotency-key"]) == ("/v1/refunds", "ref-1")
    # "damaged" is not one of Stripe's refund reasons: it travels as metadata, not as `reason`.
    assert refund_sent.form == {
        "payment_intent": "pi_3RecordedIntent0001",
        "amount": "500",
        "metadata[payql_reason]": "damaged",
    }
    assert refunded.amount == Money(500, "USD")


async def test_card_error_is_a_decline_with_the_normalized_code_and_the_intent(
    scripted: tuple[ScriptedStripe, StripeGateway],
) -> None:
    stripe, gateway = scripted
    failed = _object("payment_intent.payment_failed")
    stripe.answers.append(
        _error(
            402,
            type="card_error",
            code="card_declined",
            decline_code="insufficient_funds",
            message="Your card has insufficient funds.",
            payment_intent=failed,
        )
    )

    with pytest.raises(PaymentDeclined) as declined:
        await gateway.charge(_charge())

    assert declined.value.decline_code == "insufficient_funds"
    assert declined.value.reference == failed["id"]
    assert declined.value.message == "Your card has insufficient funds."
    assert "decline_code=insufficient_funds" in declined.value.detail


async def test_expired_card_error_code_maps_to_expired_card(scripted: tuple[ScriptedStripe, StripeGateway]) -> None:
    stripe, gateway = scripted
    stripe.answers.append(_error(402, type="card_error", code="expired_card", message="Your card has expired."))

    with pytest.raises(PaymentDeclined) as declined:
        await gateway.charge(_charge())

    assert declined.value.decline_code == "expired_card"
    assert declined.value.reference is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            _error(429, type="invalid_request_error", code="rate_limit", message="Too many requests"),
            GatewayNotAttempted,
        ),
        (_error(500, type="api_error", message="Something went wrong on Stripe's end."), GatewayUnavailable),
        (_error(503, type="api_error", message="Service unavailable"), GatewayUnavailable),
        (_error(409, type="invalid_request_error", code="lock_timeout", message="locked"), GatewayUnavailable),
        (Answer(200, b"<html>not json</html>", content_type=b"text/html"), GatewayUnavailable),
        (
            _error(401, type="invalid_request_error", message="Invalid API Key provided: sk_test_***cted"),
            GatewayConfigurationError,
        ),
        (
            _error(403, type="invalid_request_error", message="The provided key does not have access"),
            GatewayConfigurationError,
        ),
        (
            _error(
                400,
                type="idempotency_error",
                message="Keys for idempotent requests can only be used with the same parameters",
            ),
            GatewayIdempotencyConflict,
        ),
        (
            _error(400, type="invalid_request_error", param="amount", message="Amount must be positive"),
            InvalidGatewayRequest,
        ),
        (
            _error(404, type="invalid_request_error", code="resource_missing", message="No such payment_intent"),
            InvalidGatewayRequest,
        ),
    ],
)
async def test_error_answers_map_onto_our_taxonomy(
    scripted: tuple[ScriptedStripe, StripeGateway], answer: Answer, expected: type[GatewayError]
) -> None:
    stripe, gateway = scripted
    stripe.answers.append(answer)

    with pytest.raises(expected) as raised:
        await gateway.capture(CaptureRequest("pi_1", Money(100, "USD"), idempotency_key="same-key"))

    assert type(raised.value) is expected
    # Exactly one request: the SDK never retries on its own; our caller retries with the same key.
    [sent] = stripe.requests
    assert sent.headers["idempotency-key"] == "same-key"
    assert raised.value.reference == "pi_1"
    assert f"http {answer.status}" in raised.value.detail


async def test_configuration_errors_keep_stripe_detail_for_operators_only(
    scripted: tuple[ScriptedStripe, StripeGateway],
) -> None:
    stripe, gateway = scripted
    stripe.answers.append(
        _error(401, type="invalid_request_error", message="Invalid API Key provided: sk_test_***cted")
    )

    with pytest.raises(GatewayConfigurationError) as raised:
        await gateway.retrieve("pi_1")

    assert raised.value.message == "Payments are temporarily unavailable."
    assert "Invalid API Key" in raised.value.detail


async def test_a_timeout_is_an_unknown_outcome(scripted: tuple[ScriptedStripe, StripeGateway]) -> None:
    stripe, gateway = scripted
    stripe.answers.append(Answer.json(200, _object("payment_intent.succeeded"), delay=1.5))

    with pytest.raises(GatewayUnavailable) as raised:
        await gateway.charge(_charge())

    assert "outcome unknown" in raised.value.detail
    assert len(stripe.requests) == 1


async def test_a_refused_connection_was_not_attempted() -> None:
    gateway = StripeGateway(SECRET_KEY, webhook_secrets=["whsec_x"], base_url=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(GatewayNotAttempted):
            await gateway.refund(RefundRequest("pi_1", Money(100, "USD"), idempotency_key=uuid.uuid4().hex))
    finally:
        await gateway.aclose()


async def test_an_answer_we_cannot_read_is_an_unknown_outcome_not_a_crash(
    scripted: tuple[ScriptedStripe, StripeGateway],
) -> None:
    stripe, gateway = scripted
    stripe.answers.append(Answer.json(200, {"id": "pi_1", "object": "payment_intent", "amount": 100}))

    with pytest.raises(GatewayUnavailable) as raised:
        await gateway.retrieve("pi_1")

    assert raised.value.reference == "pi_1"
    assert "unreadable" in raised.value.detail


async def test_blocking_sdk_calls_are_impossible() -> None:
    api = StripeApi(SECRET_KEY, base_url="http://127.0.0.1:9")
    try:
        # The transport has no synchronous client: a non-`_async` call fails before any I/O.
        with pytest.raises(RuntimeError, match="allow_sync_methods=False"):
            api.client.v1.payment_intents.retrieve("pi_1")
    finally:
        await api.aclose()
