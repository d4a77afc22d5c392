"""Braintree disputes through the adapter: read with the disputed transaction's order id (our payment), answered
with text evidence then finalized, refused once no longer open, and every status mapped (unknown → open)."""

from __future__ import annotations

import pytest
from braintree.test.nonces import Nonces

from domain.money import Money
from domain.statuses import CaptureMethod, DisputeStatus
from gateways.braintree.adapter import BraintreeGateway
from gateways.braintree.transformers import dispute_status
from gateways.errors import InvalidGatewayRequest
from gateways.types import ChargeRequest, DisputeEvidence
from tests.braintree_emulator import BraintreeEmulator


async def disputed(gateway: BraintreeGateway, emulator: BraintreeEmulator) -> tuple[str, str]:
    charge = ChargeRequest(
        Money(1500, "JPY"), Nonces.Transactable, CaptureMethod.AUTOMATIC, "k", metadata={"payql_payment_id": "pay_d"}
    )
    paid = await gateway.charge(charge)
    return paid.reference, emulator.ledger.open_dispute(emulator.ledger.transactions[paid.reference])["id"]


async def test_a_dispute_names_its_payment(gateway: BraintreeGateway, emulator: BraintreeEmulator) -> None:
    reference, dispute_id = await disputed(gateway, emulator)
    dispute = await gateway.retrieve_dispute(dispute_id)
    assert (dispute.payment_reference, dispute.payql_payment_id) == (reference, "pay_d")
    assert (dispute.status, dispute.amount, dispute.reason) == (
        DisputeStatus.NEEDS_RESPONSE,
        Money(1500, "JPY"),
        "fraud",
    )
    assert dispute.evidence_due_by is not None


async def test_evidence_is_added_as_text_and_finalized(gateway: BraintreeGateway, emulator: BraintreeEmulator) -> None:
    _, dispute_id = await disputed(gateway, emulator)
    evidence = DisputeEvidence(product_description="A lamp", shipping_tracking_number="1Z999")
    answered = await gateway.submit_dispute_evidence(dispute_id, evidence)
    assert answered.status is DisputeStatus.UNDER_REVIEW
    comments = [e["comment"] for e in emulator.ledger.disputes[dispute_id]["evidence"]]
    assert comments == ["product description: A lamp", "shipping tracking number: 1Z999"]
    with pytest.raises(InvalidGatewayRequest):
        await gateway.submit_dispute_evidence(dispute_id, evidence)  # no longer open: 95701


async def test_empty_evidence_is_refused_before_any_call(
    gateway: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    _, dispute_id = await disputed(gateway, emulator)
    calls = len(emulator.calls)
    with pytest.raises(InvalidGatewayRequest):
        await gateway.submit_dispute_evidence(dispute_id, DisputeEvidence(uncategorized_text="  "))
    assert len(emulator.calls) == calls


async def test_an_unknown_dispute_is_an_invalid_request(gateway: BraintreeGateway) -> None:
    with pytest.raises(InvalidGatewayRequest):
        await gateway.retrieve_dispute("dp_nobody")


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("open", DisputeStatus.NEEDS_RESPONSE),
        ("disputed", DisputeStatus.UNDER_REVIEW),
        ("under_review", DisputeStatus.UNDER_REVIEW),
        ("won", DisputeStatus.WON),
        ("lost", DisputeStatus.LOST),
        ("accepted", DisputeStatus.LOST),
        ("auto_accepted", DisputeStatus.LOST),
        ("expired", DisputeStatus.LOST),
        ("something_new", DisputeStatus.NEEDS_RESPONSE),
    ],
)
def test_dispute_statuses(status: str, ours: DisputeStatus) -> None:
    assert dispute_status(status) is ours
