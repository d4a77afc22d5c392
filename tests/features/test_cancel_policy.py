"""cancelOrder follows the merchant's cancel policy: a shipped order is not canceled (its refund is an
explicit refundPayment), and with captured money left to refundPayment only authorizations are voided."""

from __future__ import annotations

import dataclasses

from db.models import Fulfillment, Order, Payment, Refund
from domain.cancel_policy import CancelPolicy, CapturedOnCancel
from domain.statuses import OrderStatus, PaymentStatus
from payql.wiring import Services
from resolvers.context import Caller, Deps, Principal
from resolvers.refunds import cancel_order
from tests.features.test_refunds import CANCEL_ORDER, paid
from tests.testkit import Shopper, new_key

STAFF = Caller(Principal("support-1", is_admin=True), request_id="req-cancel", source_ip="203.0.113.9")


def _deps(services: Services, policy: CancelPolicy) -> Deps:
    return dataclasses.replace(services.deps, policy=dataclasses.replace(services.deps.policy, cancel=policy))


async def test_a_shipped_order_is_not_canceled(shopper: Shopper, admin: Shopper) -> None:
    order = await paid(shopper, 2_500)
    await Fulfillment.create(
        order_id=order["order"]["id"], carrier="UPS", tracking_number="1Z999", recorded_by="admin:support-1"
    )
    variables = {"input": {"orderId": order["order"]["id"], "reason": "changed mind", "idempotencyKey": new_key()}}
    result = (await admin.data(CANCEL_ORDER, variables))["cancelOrder"]
    assert [e["code"] for e in result["userErrors"]] == ["INVALID_STATE"]
    assert await Refund.filter(payment_id=order["payment"]["id"]).count() == 0
    assert (await Order.get(id=order["order"]["id"])).status is OrderStatus.PAID


async def test_a_shipped_order_may_be_canceled_when_the_policy_allows(shopper: Shopper, services: Services) -> None:
    order = await paid(shopper, 2_600)
    await Fulfillment.create(order_id=order["order"]["id"], carrier="DHL", tracking_number="JD01", recorded_by="x")
    policy = CancelPolicy(allow_after_fulfillment=True)
    outcome = await cancel_order(_deps(services, policy), STAFF, order["order"]["id"], "returned", new_key())
    assert outcome.errors == []
    assert (await Order.get(id=order["order"]["id"])).status is OrderStatus.REFUNDED


async def test_captured_money_can_be_left_to_refund_payment(shopper: Shopper, services: Services) -> None:
    deps = _deps(services, CancelPolicy(captured=CapturedOnCancel.REFUSE))
    captured = await paid(shopper, 3_000)
    refused = await cancel_order(deps, STAFF, captured["order"]["id"], "duplicate", new_key())
    assert [e.code for e in refused.errors] == ["INVALID_STATE"]
    assert await Refund.filter(payment_id=captured["payment"]["id"]).count() == 0

    authorized = await paid(shopper, 3_100, capture="MANUAL")
    voided = await cancel_order(deps, STAFF, authorized["order"]["id"], "duplicate", new_key())
    assert voided.errors == []
    assert (await Payment.get(id=authorized["payment"]["id"])).status is PaymentStatus.CANCELED
    assert (await Order.get(id=authorized["order"]["id"])).status is OrderStatus.CANCELED
