"""Disputes on the emulator: read with the disputed payment resolved to our reference, evidence submitted as a
contest, and the outcome."""

from __future__ import annotations

import pytest

from domain.statuses import DisputeStatus
from gateways.errors import InvalidGatewayRequest
from gateways.razorpay.adapter import RazorpayGateway
from gateways.types import DisputeEvidence
from tests.gateways.razorpay.test_payments import charge_request, paid
from tests.razorpay_emulator import RazorpayEmulator


async def test_a_dispute_is_read_evidenced_and_resolved(gateway: RazorpayGateway, emulator: RazorpayEmulator) -> None:
    request = charge_request()
    result = await paid(gateway, emulator, request)
    [payment] = emulator.ledger.payments_of(result.reference)
    opened = emulator.ledger.open_dispute(payment["id"], "goods_or_services_not_received")

    dispute = await gateway.retrieve_dispute(opened["id"])
    assert dispute.status is DisputeStatus.NEEDS_RESPONSE
    assert (dispute.payment_reference, dispute.payql_payment_id) == (
        result.reference,
        request.metadata["payql_payment_id"],
    )
    assert dispute.amount == result.amount and dispute.evidence_due_by == opened["respond_by"]
    assert dispute.reason == "goods_or_services_not_received"

    with pytest.raises(InvalidGatewayRequest):
        await gateway.submit_dispute_evidence(opened["id"], DisputeEvidence())
    submitted = await gateway.submit_dispute_evidence(
        opened["id"], DisputeEvidence(shipping_carrier="DHL", shipping_tracking_number="TRACK-1")
    )
    assert submitted.status is DisputeStatus.UNDER_REVIEW
    evidence = emulator.ledger.disputes[opened["id"]]["evidence"]
    assert evidence["summary"] == "Carrier: DHL\nTracking number: TRACK-1" and evidence["submitted_at"]

    emulator.ledger.resolve(opened["id"], won=False)
    assert (await gateway.retrieve_dispute(opened["id"])).status is DisputeStatus.LOST
