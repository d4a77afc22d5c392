"""Payment.ledgerEvents: the payment's append-only ledger, oldest first, for staff only; the shopper who
owns the order reads the order but gets FORBIDDEN on its ledger, and another customer not even the order."""

from __future__ import annotations

import uuid

from payql.wiring import Services
from tests.features.test_refunds import paid, refund
from tests.testkit import Shopper, settle

LEDGER = """query($id: ID!) { order(id: $id) { id payments { id ledgerEvents {
  type source paymentId refundId disputeId statusBefore statusAfter amount { amount currency } createdAt } } } }"""


async def test_staff_read_the_ledger_with_the_refund_each_event_belongs_to(
    admin: Shopper, shopper: Shopper, services: Services
) -> None:
    checkout = await paid(shopper, 10_000)
    payment_id = checkout["payment"]["id"]
    await settle(services)
    refunded = await refund(admin, payment_id, 2_500)
    assert refunded["userErrors"] == []
    await settle(services)
    [payment] = (await admin.data(LEDGER, {"id": checkout["order"]["id"]}))["order"]["payments"]
    events = payment["ledgerEvents"]
    assert {e["paymentId"] for e in events} == {payment_id}
    assert [e["createdAt"] for e in events] == sorted(e["createdAt"] for e in events)
    money = [(e["type"], e["amount"], e["refundId"]) for e in events if e["type"] in ("CAPTURED", "REFUNDED")]
    assert money == [
        ("CAPTURED", {"amount": 10_000, "currency": "USD"}, None),
        ("REFUNDED", {"amount": 2_500, "currency": "USD"}, refunded["refund"]["id"]),
    ]
    assert events[0]["type"] == "CREATED" and events[0]["statusBefore"] is None


async def test_the_owner_reads_the_order_but_not_its_ledger(shopper: Shopper, services: Services) -> None:
    checkout = await paid(shopper, 3_000)
    await settle(services)
    body = await shopper.gql(LEDGER, {"id": checkout["order"]["id"]})
    assert body["data"]["order"]["payments"] == [{"id": checkout["payment"]["id"], "ledgerEvents": None}]
    assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
        ("FORBIDDEN", ["order", "payments", 0, "ledgerEvents"])
    ]


async def test_another_customer_gets_not_found(shopper: Shopper, services: Services) -> None:
    checkout = await paid(shopper, 3_000)
    await settle(services)
    stranger = Shopper(shopper.http, f"stranger-{uuid.uuid4().hex[:10]}")
    body = await stranger.gql(LEDGER, {"id": checkout["order"]["id"]})
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
