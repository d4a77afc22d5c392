"""PayPal disputes through PayQL end to end: a dispute the buyer opens at PayPal on a PayQL checkout arrives as a
signed CUSTOMER.DISPUTE.CREATED webhook and becomes our Dispute with the order DISPUTED and the money withdrawn in
the ledger; staff submit evidence over GraphQL and it reaches PayPal; PayPal's decision (CUSTOMER.DISPUTE.RESOLVED)
closes it won or lost with the ledger balanced.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from db.ledger import ledger_mismatches, ledger_net_captured
from db.models import Dispute, Order, Payment, PaymentEvent
from gateways.paypal import PayPalGateway
from payql.wiring import Services
from tests.features.subscriptions.kit import recurring_price
from tests.gateways.paypal.conftest import approve
from tests.gateways.paypal.test_checkout_flow import reference_of, start_paypal_checkout
from tests.gateways.paypal.test_subscription_flow import approved_and_active
from tests.paypal_emulator import PayPalEmulator
from tests.resolvers.test_disputes import DISPUTE, SUBMIT
from tests.testkit import COMPLETE, Shopper, eventually, new_key, settle


async def paid_paypal_payment(emulator: PayPalEmulator, shopper: Shopper, services: Services) -> Payment:
    started = await start_paypal_checkout(shopper)
    payment_id = started["payment"]["id"]
    await approve(emulator, await reference_of(payment_id))
    done = (await shopper.data(COMPLETE, {"input": {"paymentId": payment_id}}))["completePayment"]
    assert done["order"]["status"] == "PAID"
    await settle(services)
    return await Payment.get(id=payment_id)


async def at_emulator(emulator: PayPalEmulator, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emulator.base_url}{path}", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def disputed(
    emulator: PayPalEmulator, services: Services, payment: Payment, *, transaction_id: str | None = None
) -> Dispute:
    """The buyer opens a dispute at PayPal on the payment's capture (or a sale); PayQL hears of it by webhook."""
    if transaction_id is None:
        (transaction_id,) = [c.id for c in emulator.ledger.captures.values() if c.order_id == payment.gateway_reference]
    body = {"capture_id": transaction_id, "reason": "UNAUTHORISED"}
    opened = await at_emulator(emulator, "/emulator/disputes", body)

    async def arrived() -> bool:
        await emulator.drain()
        await settle(services)
        return await Dispute.exists(gateway="paypal", gateway_reference=opened["dispute_id"])

    await eventually(arrived)
    return await Dispute.get(gateway="paypal", gateway_reference=opened["dispute_id"])


async def resolved(emulator: PayPalEmulator, services: Services, dispute: Dispute, outcome: str) -> Dispute:
    await at_emulator(emulator, f"/emulator/disputes/{dispute.gateway_reference}/resolve", {"outcome": outcome})

    async def closed() -> bool:
        await emulator.drain()
        await settle(services)
        return (await Dispute.get(id=dispute.id)).closed_at is not None

    await eventually(closed)
    return await Dispute.get(id=dispute.id)


async def test_a_paypal_dispute_is_mirrored_answered_with_evidence_and_won(
    paypal_in_payql: PayPalGateway,
    emulator: PayPalEmulator,
    shopper: Shopper,
    admin: Shopper,
    services: Services,
) -> None:
    payment = await paid_paypal_payment(emulator, shopper, services)
    dispute = await disputed(emulator, services, payment)

    assert (dispute.payment_id, dispute.status, dispute.reason, dispute.amount) == (
        payment.id,
        "NEEDS_RESPONSE",
        "UNAUTHORISED",
        4_250,
    )
    assert dispute.evidence_due_by is not None
    assert (await Order.get(id=payment.order_id)).status == "DISPUTED"
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_WITHDRAWN").count() == 1
    assert await ledger_net_captured(payment.id) == 0
    assert [m for m in await ledger_mismatches() if m.payment_id == payment.id] == []

    submit = {"input": {"disputeId": str(dispute.id), "idempotencyKey": new_key(), "extraText": "Signed for."}}
    submitted = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]
    assert submitted["userErrors"] == []
    assert submitted["dispute"]["status"] == "UNDER_REVIEW" and submitted["dispute"]["evidenceSubmittedAt"]
    at_paypal = emulator.disputes.disputes[dispute.gateway_reference]
    assert at_paypal.status == "UNDER_REVIEW" and at_paypal.evidence_content_types == ["multipart/form-data"]
    notes = " ".join(str(e.get("notes", "")) for e in at_paypal.evidences)
    assert "Signed for." in notes

    won = await resolved(emulator, services, dispute, "RESOLVED_SELLER_FAVOUR")
    assert won.status == "WON"
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_REINSTATED").count() == 1
    assert await ledger_net_captured(payment.id) == 4_250
    assert [m for m in await ledger_mismatches() if m.payment_id == payment.id] == []
    seen = (await admin.data(DISPUTE, {"id": str(dispute.id)}))["dispute"]
    assert seen["status"] == "WON" and seen["closedAt"]


@pytest.mark.parametrize("outcome", ["RESOLVED_BUYER_FAVOUR", "ACCEPTED"])
async def test_a_paypal_dispute_lost_keeps_the_money_withdrawn(
    outcome: str,
    paypal_in_payql: PayPalGateway,
    emulator: PayPalEmulator,
    shopper: Shopper,
    services: Services,
) -> None:
    payment = await paid_paypal_payment(emulator, shopper, services)
    dispute = await disputed(emulator, services, payment)
    lost = await resolved(emulator, services, dispute, outcome)
    assert lost.status == "LOST"
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_WITHDRAWN").count() == 1
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_REINSTATED").count() == 0
    assert await ledger_net_captured(payment.id) == 0
    assert [m for m in await ledger_mismatches() if m.payment_id == payment.id] == []


async def test_a_dispute_on_a_subscription_sale_reaches_its_payment(
    paypal_in_payql: PayPalGateway, emulator: PayPalEmulator, shopper: Shopper, services: Services
) -> None:
    """A sale's `custom` names our subscription, not a payment: the dispute is matched through the sale."""
    price = await recurring_price(1_100)
    await approved_and_active(emulator, services, shopper, price)
    (sale,) = emulator.billing.sales.values()
    payment = await Payment.get(gateway="paypal", gateway_reference=f"paypal_sale:{sale.id}")
    dispute = await disputed(emulator, services, payment, transaction_id=sale.id)
    assert (dispute.payment_id, dispute.status, dispute.amount) == (payment.id, "NEEDS_RESPONSE", 1_100)
    assert (await Order.get(id=payment.order_id)).status == "DISPUTED"
    lost = await resolved(emulator, services, dispute, "RESOLVED_BUYER_FAVOUR")
    assert lost.status == "LOST"
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_WITHDRAWN").count() == 1
    assert await ledger_net_captured(payment.id) == 0
    assert [m for m in await ledger_mismatches() if m.payment_id == payment.id] == []
