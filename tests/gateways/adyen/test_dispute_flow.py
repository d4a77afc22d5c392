"""Adyen chargebacks through the running PayQL server: the CHARGEBACK notification opens a dispute (the order is
DISPUTED), CHARGEBACK_REVERSED wins it back. And subscriptions, which Adyen cannot bill, are NOT_SUPPORTED."""

from __future__ import annotations

from db.models import Dispute, Order, Payment
from domain.statuses import DisputeStatus
from gateways.adyen import AdyenGateway
from payql.wiring import Services
from tests.adyen_emulator import AdyenEmulator
from tests.features.subscriptions.kit import CREATE, recurring_price
from tests.gateways.adyen.conftest import drop_in
from tests.gateways.adyen.test_checkout_flow import checkout, deliver
from tests.testkit import Shopper, new_key


async def test_a_chargeback_opens_a_dispute_and_its_reversal_wins_it(
    adyen_in_payql: AdyenGateway, emulator: AdyenEmulator, shopper: Shopper, server: str, services: Services
) -> None:
    started = await checkout(shopper, drop_in())
    payment = await Payment.get(id=started["payment"]["id"])
    await deliver(emulator, server, services)

    dispute_reference = emulator.chargeback(str(payment.gateway_reference), "CHARGEBACK")
    await deliver(emulator, server, services)
    dispute = await Dispute.get(gateway="adyen", gateway_reference=dispute_reference)
    assert (dispute.status, dispute.amount, dispute.payment_id) == (DisputeStatus.NEEDS_RESPONSE, 4_250, payment.id)
    assert dispute.evidence_due_by is not None
    assert (await Order.get(id=payment.order_id)).status == "DISPUTED"

    emulator.chargeback(str(payment.gateway_reference), "CHARGEBACK_REVERSED", dispute_status="Won")
    await deliver(emulator, server, services)
    assert (await Dispute.get(id=dispute.id)).status is DisputeStatus.WON
    assert (await Order.get(id=payment.order_id)).status == "PAID"


async def test_subscriptions_are_not_supported(adyen_in_payql: AdyenGateway, shopper: Shopper) -> None:
    price = await recurring_price(1_500, currency="EUR")
    variables = {
        "input": {"priceId": str(price.id), "gateway": "adyen", "paymentMethod": drop_in(), "idempotencyKey": new_key()}
    }
    created = (await shopper.data(CREATE, variables))["createSubscription"]
    assert [(e["code"], e["field"]) for e in created["userErrors"]] == [("NOT_SUPPORTED", "gateway")]
    assert "subscriptions" in created["userErrors"][0]["message"]
