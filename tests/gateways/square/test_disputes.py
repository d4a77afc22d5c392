"""Square disputes through the adapter on the emulator: the dispute read with our payment id, evidence uploaded as
texts (one per field, 500 characters each) and submitted once, whatever the retries."""

from __future__ import annotations

import uuid

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, DisputeStatus
from gateways.errors import GatewayUnavailable, InvalidGatewayRequest
from gateways.square.adapter import SquareGateway
from gateways.types import ChargeRequest, DisputeEvidence, PaymentResult
from tests.gateways.square.conftest import NONCE_OK
from tests.square_emulator import SquareEmulator


async def paid(gateway: SquareGateway) -> PaymentResult:
    return await gateway.charge(
        ChargeRequest(
            Money(4_250, "USD"),
            NONCE_OK,
            CaptureMethod.AUTOMATIC,
            str(uuid.uuid4()),
            metadata={"payql_payment_id": "p-1"},
        )
    )


async def test_a_dispute_is_read_with_our_payment_id(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    payment = await paid(gateway)
    opened = emulator.ledger.open_dispute(payment.reference, amount=2_000)
    dispute = await gateway.retrieve_dispute(opened.id)
    assert (dispute.payment_reference, dispute.payql_payment_id) == (payment.reference, "p-1")
    assert (dispute.status, dispute.amount, dispute.reason) == (
        DisputeStatus.NEEDS_RESPONSE,
        Money(2_000, "USD"),
        "NOT_AS_DESCRIBED",
    )
    assert dispute.evidence_due_by is not None and dispute.created is not None


async def test_evidence_is_uploaded_as_texts_then_submitted(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    payment = await paid(gateway)
    opened = emulator.ledger.open_dispute(payment.reference)
    evidence = DisputeEvidence(shipping_tracking_number="1Z999", uncategorized_text="x" * 700)
    submitted = await gateway.submit_dispute_evidence(opened.id, evidence)
    assert submitted.status is DisputeStatus.UNDER_REVIEW
    texts = [(e.evidence_type, e.evidence_text) for e in emulator.ledger.disputes[opened.id].evidence]
    assert texts == [("TRACKING_NUMBER", "1Z999"), ("GENERIC_EVIDENCE", "x" * 500), ("GENERIC_EVIDENCE", "x" * 200)]


async def test_a_retried_submission_uploads_nothing_twice(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    payment = await paid(gateway)
    opened = emulator.ledger.open_dispute(payment.reference)
    evidence = DisputeEvidence(receipt="Receipt 42", refund_policy="30 days")
    emulator.fail_next(500, after_effect=True, path="/submit-evidence")  # submitted; the answer is lost
    with pytest.raises(GatewayUnavailable):
        await gateway.submit_dispute_evidence(opened.id, evidence)
    again = await gateway.submit_dispute_evidence(opened.id, evidence)
    assert again.status is DisputeStatus.UNDER_REVIEW
    assert len(emulator.ledger.disputes[opened.id].evidence) == 2


async def test_empty_evidence_is_refused_before_square(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    payment = await paid(gateway)
    opened = emulator.ledger.open_dispute(payment.reference)
    with pytest.raises(InvalidGatewayRequest):
        await gateway.submit_dispute_evidence(opened.id, DisputeEvidence())
    assert emulator.ledger.disputes[opened.id].state == "EVIDENCE_REQUIRED"


async def test_the_banks_decision_is_read_back(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    payment = await paid(gateway)
    opened = emulator.ledger.open_dispute(payment.reference)
    emulator.ledger.resolve_dispute(opened.id, "LOST")
    assert (await gateway.retrieve_dispute(opened.id)).status is DisputeStatus.LOST
