"""Razorpay disputes through PayQL end to end: a chargeback on a PayQL checkout arrives as a signed
payment.dispute.created webhook and becomes our Dispute with the order DISPUTED and the money withdrawn in the
ledger; staff submit evidence over GraphQL and it reaches Razorpay as a contest; Razorpay's decision
(payment.dispute.won / payment.dispute.lost) closes it with the ledger balanced.
"""

from __future__ import annotations

import pytest

from db.ledger import ledger_mismatches, ledger_net_captured
from db.models import Dispute, Order, Payment, PaymentEvent
from gateways.razorpay.adapter import RazorpayGateway
from payql.wiring import Services
from tests.gateways.razorpay.conftest import pay_in_checkout
from tests.gateways.razorpay.test_checkout_flow import AMOUNT, complete, start_checkout
from tests.razorpay_emulator import RazorpayEmulator
from tests.resolvers.test_disputes import DISPUTE, SUBMIT
from tests.testkit import Shopper, eventually, new_key, settle


async def paid_payment(emulator: RazorpayEmulator, shopper: Shopper, services: Services) -> Payment:
    payment_id, order_id = await start_checkout(shopper)
    assert (await complete(shopper, payment_id, await pay_in_checkout(emulator, order_id)))["userErrors"] == []
    await emulator.drain()
    await settle(services)
    return await Payment.get(id=payment_id)


async def disputed(emulator: RazorpayEmulator, services: Services, payment: Payment) -> Dispute:
    """The cardholder disputes the payment; PayQL hears of it by webhook."""
    [paid] = [p for p in emulator.ledger.payments_of(str(payment.gateway_reference)) if p["captured"]]
    opened = emulator.ledger.open_dispute(paid["id"], "fraudulent")

    async def arrived() -> bool:
        await emulator.drain()
        await settle(services)
        return await Dispute.exists(gateway="razorpay", gateway_reference=opened["id"])

    await eventually(arrived)
    return await Dispute.get(gateway="razorpay", gateway_reference=opened["id"])


async def resolved(emulator: RazorpayEmulator, services: Services, dispute: Dispute, *, won: bool) -> Dispute:
    emulator.ledger.resolve(str(dispute.gateway_reference), won=won)

    async def closed() -> bool:
        await emulator.drain()
        await settle(services)
        return (await Dispute.get(id=dispute.id)).closed_at is not None

    await eventually(closed)
    return await Dispute.get(id=dispute.id)


async def test_a_razorpay_dispute_is_mirrored_contested_and_won(
    razorpay_in_payql: RazorpayGateway, emulator: RazorpayEmulator, shopper: Shopper, admin: Shopper, services: Services
) -> None:
    payment = await paid_payment(emulator, shopper, services)
    dispute = await disputed(emulator, services, payment)
    assert (dispute.payment_id, dispute.status, dispute.reason, dispute.amount) == (
        payment.id,
        "NEEDS_RESPONSE",
        "fraudulent",
        AMOUNT,
    )
    assert dispute.evidence_due_by is not None
    assert (await Order.get(id=payment.order_id)).status == "DISPUTED"
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_WITHDRAWN").count() == 1
    assert await ledger_net_captured(payment.id) == 0

    submit = {"input": {"disputeId": str(dispute.id), "idempotencyKey": new_key(), "extraText": "Signed for."}}
    submitted = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]
    assert submitted["userErrors"] == []
    assert submitted["dispute"]["status"] == "UNDER_REVIEW" and submitted["dispute"]["evidenceSubmittedAt"]
    at_razorpay = emulator.ledger.disputes[str(dispute.gateway_reference)]
    assert at_razorpay["status"] == "under_review" and "Signed for." in at_razorpay["evidence"]["summary"]

    won = await resolved(emulator, services, dispute, won=True)
    assert won.status == "WON"
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_REINSTATED").count() == 1
    assert await ledger_net_captured(payment.id) == AMOUNT
    assert [m for m in await ledger_mismatches() if m.payment_id == payment.id] == []
    seen = (await admin.data(DISPUTE, {"id": str(dispute.id)}))["dispute"]
    assert seen["status"] == "WON" and seen["closedAt"]


@pytest.mark.parametrize("accepted", [False, True], ids=["lost", "accepted"])
async def test_a_razorpay_dispute_lost_keeps_the_money_withdrawn(
    accepted: bool,
    razorpay_in_payql: RazorpayGateway,
    emulator: RazorpayEmulator,
    shopper: Shopper,
    services: Services,
) -> None:
    payment = await paid_payment(emulator, shopper, services)
    dispute = await disputed(emulator, services, payment)
    if accepted:
        emulator.ledger.accept(str(dispute.gateway_reference))

        async def closed() -> bool:
            await emulator.drain()
            await settle(services)
            return (await Dispute.get(id=dispute.id)).closed_at is not None

        await eventually(closed)
        lost = await Dispute.get(id=dispute.id)
    else:
        lost = await resolved(emulator, services, dispute, won=False)
    assert lost.status == "LOST"
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_REINSTATED").count() == 0
    assert await ledger_net_captured(payment.id) == 0
    assert [m for m in await ledger_mismatches() if m.payment_id == payment.id] == []
