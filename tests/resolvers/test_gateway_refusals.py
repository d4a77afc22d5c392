"""When the gateway refuses a capture, void or refund, staff see our own words; the gateway's text
reaches the operators' log only (not the userError, not the stored refund)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from db.models import Dispute, Payment, Refund
from gateways.errors import (
    GatewayError,
    GatewayIdempotencyConflict,
    GatewayUnavailable,
    InvalidGatewayRequest,
    NotSupported,
    PaymentDeclined,
)
from gateways.sandbox.processor import SandboxProcessor
from payql.wiring import Services
from tests.testkit import CANCEL, CAPTURE, CHECKOUT, Shopper, checkout_input, make_price, new_key, settle

GATEWAY_TEXT = "No such payment_intent: 'pi_internal_4711' on account acct_secret_99"

REFUND = """mutation($input: RefundPaymentInput!) { refundPayment(input: $input) {
  refund { id status failureReason } userErrors { code field message } } }"""


async def authorized_payment(shopper: Shopper, services: Services, capture: str) -> str:
    price = await make_price(2500)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, capture_method=capture)}))["checkout"]
    await settle(services)
    payment_id: str = result["payment"]["id"]
    return payment_id


@pytest.mark.parametrize(
    "raised",
    [
        InvalidGatewayRequest(GATEWAY_TEXT, detail="sandbox resource_missing"),
        PaymentDeclined(GATEWAY_TEXT, decline_code="generic_decline"),
        GatewayUnavailable(GATEWAY_TEXT),
    ],
    ids=["invalid", "declined", "unavailable"],
)
@pytest.mark.parametrize("operation", ["capture", "void", "refund"])
async def test_staff_see_our_words_and_the_log_keeps_the_gateways(
    services: Services,
    shopper: Shopper,
    admin: Shopper,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    operation: str,
    raised: GatewayError,
) -> None:
    payment_id = await authorized_payment(shopper, services, "AUTOMATIC" if operation == "refund" else "MANUAL")

    async def refuse(*_: Any) -> None:
        raise raised

    monkeypatch.setattr(services.deps.gateways.get("sandbox"), operation, refuse)
    with caplog.at_level(logging.WARNING, logger="resolvers.gateway_refusals"):
        if operation == "refund":
            variables = {"input": {"paymentId": payment_id, "reason": "test", "idempotencyKey": new_key()}}
            payload = (await admin.data(REFUND, variables))["refundPayment"]
        else:
            mutation, field = (CAPTURE, "capturePayment") if operation == "capture" else (CANCEL, "cancelPayment")
            payload = (await admin.data(mutation, {"input": {"paymentId": payment_id, "idempotencyKey": new_key()}}))[
                field
            ]

    [error] = payload["userErrors"]
    assert error["code"] == ("GATEWAY_UNAVAILABLE" if isinstance(raised, GatewayUnavailable) else "INVALID_STATE")
    assert operation in error["message"]
    assert "pi_internal" not in str(payload) and "acct_secret" not in str(payload)
    if operation == "refund" and not isinstance(raised, GatewayUnavailable):
        stored = await Refund.get(id=payload["refund"]["id"])
        assert stored.failure_reason is not None and "pi_internal" not in stored.failure_reason
    assert any(GATEWAY_TEXT in record.getMessage() for record in caplog.records)


SUBMIT_EVIDENCE = """mutation($input: SubmitDisputeEvidenceInput!) { submitDisputeEvidence(input: $input) {
  dispute { id status } userErrors { code field message } } }"""


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (InvalidGatewayRequest(GATEWAY_TEXT, detail="sandbox resource_missing"), "INVALID_STATE"),
        (GatewayUnavailable(GATEWAY_TEXT), "GATEWAY_UNAVAILABLE"),
        (NotSupported(GATEWAY_TEXT), "NOT_SUPPORTED"),
    ],
    ids=["invalid", "unavailable", "unsupported"],
)
async def test_a_refused_evidence_submission_is_told_in_our_words(
    services: Services,
    sandbox: SandboxProcessor,
    shopper: Shopper,
    admin: Shopper,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    raised: GatewayError,
    code: str,
) -> None:
    price = await make_price(4000)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    await settle(services)
    payment = await Payment.get(id=result["payment"]["id"])
    opened = await sandbox.create_dispute(payment.gateway_reference or "", "fraudulent")
    await settle(services)
    dispute = await Dispute.get(gateway="sandbox", gateway_reference=opened.id)

    async def refuse(*_: Any) -> None:
        raise raised

    monkeypatch.setattr(services.deps.gateways.get("sandbox"), "submit_dispute_evidence", refuse)
    with caplog.at_level(logging.WARNING, logger="resolvers.gateway_refusals"):
        variables = {"input": {"disputeId": str(dispute.id), "idempotencyKey": new_key(), "extraText": "Sent."}}
        payload = (await admin.data(SUBMIT_EVIDENCE, variables))["submitDisputeEvidence"]

    [error] = payload["userErrors"]
    assert error["code"] == code and "evidence submission" in error["message"]
    assert "pi_internal" not in str(payload) and "acct_secret" not in str(payload)
    assert any(GATEWAY_TEXT in record.getMessage() for record in caplog.records)


CHECKOUT_ERRORS = """mutation($input: CheckoutInput!) { checkout(input: $input) {
  payment { id status } userErrors { code field message } } }"""


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (InvalidGatewayRequest(GATEWAY_TEXT, detail="sandbox resource_missing"), "INVALID_INPUT"),
        (GatewayIdempotencyConflict(GATEWAY_TEXT), "IDEMPOTENCY_CONFLICT"),
    ],
    ids=["invalid", "conflict"],
)
async def test_a_refused_charge_is_told_to_the_shopper_in_our_words(
    services: Services,
    shopper: Shopper,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    raised: GatewayError,
    code: str,
) -> None:
    async def refuse(*_: Any) -> None:
        raise raised

    monkeypatch.setattr(services.deps.gateways.get("sandbox"), "charge", refuse)
    price = await make_price(2100)
    with caplog.at_level(logging.WARNING, logger="resolvers.gateway_refusals"):
        payload = (await shopper.data(CHECKOUT_ERRORS, {"input": checkout_input(price)}))["checkout"]

    [error] = payload["userErrors"]
    assert error["code"] == code and error["field"] == "paymentMethod"
    assert "pi_internal" not in str(payload) and "acct_secret" not in str(payload)
    stored = await Payment.get(id=payload["payment"]["id"])
    assert stored.status == "FAILED" and stored.failure_message == error["message"]
    assert any(GATEWAY_TEXT in record.getMessage() for record in caplog.records)
