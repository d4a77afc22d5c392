"""Payment.refunds: a payment's refunds, oldest first, for whoever may read the order."""

from __future__ import annotations

from payql.wiring import Services
from tests.features.test_refunds import paid, refund
from tests.testkit import Shopper, settle

REFUNDS = """query($id: ID!) { order(id: $id) { payments { id refunds {
  paymentId status amount { amount currency } reason } } } }"""


async def test_a_payment_lists_its_refunds_oldest_first(admin: Shopper, shopper: Shopper, services: Services) -> None:
    checkout = await paid(shopper, 10_000)
    payment_id = checkout["payment"]["id"]
    await settle(services)
    for amount in (1_000, 2_500):
        assert (await refund(admin, payment_id, amount))["userErrors"] == []
    await settle(services)
    for reader in (admin, shopper):
        [payment] = (await reader.data(REFUNDS, {"id": checkout["order"]["id"]}))["order"]["payments"]
        assert [(r["paymentId"], r["status"], r["amount"], r["reason"]) for r in payment["refunds"]] == [
            (payment_id, "SUCCEEDED", {"amount": amount, "currency": "USD"}, "customer request")
            for amount in (1_000, 2_500)
        ]
