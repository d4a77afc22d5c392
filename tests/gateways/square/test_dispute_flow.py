"""Square disputes through PayQL end to end: a dispute the cardholder opens on a PayQL checkout arrives as a signed
dispute.created notification and becomes our Dispute (order DISPUTED); staff submit evidence over GraphQL and it
reaches Square as evidence texts; the bank's decision (dispute.state.updated) closes it won or lost."""

from __future__ import annotations

import pytest

from db.models import Dispute, Order, Payment
from gateways.square.adapter import SquareGateway
from payql.wiring import Services
from tests.gateways.square.conftest import NONCE_OK, checkout
from tests.resolvers.test_disputes import SUBMIT
from tests.square_emulator import SquareEmulator
from tests.testkit import Shopper, eventually, new_key, settle


async def arrived(emulator: SquareEmulator, services: Services, reference: str) -> Dispute:
    async def mirrored() -> bool:
        await emulator.drain()
        await settle(services)
        return await Dispute.exists(gateway="square", gateway_reference=reference)

    await eventually(mirrored)
    return await Dispute.get(gateway="square", gateway_reference=reference)


@pytest.mark.parametrize(("decision", "status"), [("WON", "WON"), ("LOST", "LOST")])
async def test_a_square_dispute_is_mirrored_answered_and_decided(
    square_in_payql: SquareGateway,
    emulator: SquareEmulator,
    shopper: Shopper,
    admin: Shopper,
    services: Services,
    decision: str,
    status: str,
) -> None:
    paid = await checkout(shopper, NONCE_OK)
    payment = await Payment.get(id=paid["payment"]["id"])
    opened = emulator.ledger.open_dispute(payment.gateway_reference or "")
    dispute = await arrived(emulator, services, opened.id)
    assert (dispute.payment_id, dispute.status, dispute.amount) == (payment.id, "NEEDS_RESPONSE", 4_250)
    assert (await Order.get(id=payment.order_id)).status == "DISPUTED"

    submit = {"input": {"disputeId": str(dispute.id), "idempotencyKey": new_key(), "extraText": "Signed for."}}
    submitted = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]
    assert submitted["userErrors"] == [] and submitted["dispute"]["status"] == "UNDER_REVIEW"
    at_square = emulator.ledger.disputes[opened.id]
    assert at_square.state == "PROCESSING" and any("Signed for." in e.evidence_text for e in at_square.evidence)

    emulator.ledger.resolve_dispute(opened.id, decision)

    async def closed() -> bool:
        await emulator.drain()
        await settle(services)
        return (await Dispute.get(id=dispute.id)).closed_at is not None

    await eventually(closed)
    assert (await Dispute.get(id=dispute.id)).status == status
