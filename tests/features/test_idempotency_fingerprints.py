"""Every field of every idempotency fingerprint: the same key sent again with one field changed is
an IDEMPOTENCY_CONFLICT, never a replay of the first answer.

Each case makes one request that completes (its answer is stored under the key), then resends it
with one field changed. The fingerprint is compared before anything is looked up, so a changed id
can name nothing at all: a fresh UUID stands for "another order", "another payment" and so on.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from db.models import Payment, Price
from gateways.sandbox.processor import SandboxProcessor
from payql.wiring import Services
from tests.features.subscriptions.kit import CANCEL as CANCEL_SUBSCRIPTION
from tests.features.subscriptions.kit import CHANGE, CREATE, USAGE, recurring_price, subscribe
from tests.features.test_refunds import CANCEL_ORDER, REFUND
from tests.resolvers.test_disputes import SUBMIT, open_dispute, paid_payment
from tests.testkit import CANCEL, CAPTURE, CHECKOUT, PAY_ORDER, Shopper, checkout_input, make_price, new_key

RECORD_FULFILLMENT = """mutation($input: RecordFulfillmentInput!) { recordFulfillment(input: $input) {
  userErrors { code field } } }"""
RETURN_URL = "https://shop.example/orders/done"


@dataclass(frozen=True)
class World:
    shopper: Shopper
    admin: Shopper
    services: Services
    sandbox: SandboxProcessor


@dataclass(frozen=True)
class Case:
    mutation: str
    field: str
    staff: bool
    first: Callable[[World], Awaitable[dict[str, Any]]]  # the completed request's input, key included
    changed: object


def another_id() -> str:
    return str(uuid.uuid4())


async def checkout(world: World) -> dict[str, Any]:
    return checkout_input(await make_price(1100)) | {"returnUrl": RETURN_URL}


async def pay_order(world: World) -> dict[str, Any]:
    declined = checkout_input(await make_price(1200), "pm_card_chargeDeclined")
    order_id = (await world.shopper.data(CHECKOUT, {"input": declined}))["checkout"]["order"]["id"]
    return {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}


async def authorized(world: World) -> str:
    manual = checkout_input(await make_price(1300), capture_method="MANUAL")
    payment_id: str = (await world.shopper.data(CHECKOUT, {"input": manual}))["checkout"]["payment"]["id"]
    return payment_id


async def capture(world: World) -> dict[str, Any]:
    return {"paymentId": await authorized(world), "amount": 500, "idempotencyKey": new_key()}


async def cancel_payment(world: World) -> dict[str, Any]:
    return {"paymentId": await authorized(world), "idempotencyKey": new_key()}


async def paid(world: World) -> dict[str, Any]:
    result: dict[str, Any] = await world.shopper.data(CHECKOUT, {"input": checkout_input(await make_price(1400))})
    return result["checkout"]


async def refund(world: World) -> dict[str, Any]:
    payment_id = (await paid(world))["payment"]["id"]
    return {"paymentId": payment_id, "amount": 300, "reason": "damaged", "idempotencyKey": new_key()}


async def cancel_order(world: World) -> dict[str, Any]:
    return {"orderId": (await paid(world))["order"]["id"], "reason": "changed mind", "idempotencyKey": new_key()}


async def record_fulfillment(world: World) -> dict[str, Any]:
    order_id = (await paid(world))["order"]["id"]
    return {
        "orderId": order_id,
        "carrier": "DHL",
        "trackingNumber": "1Z999AA10123456784",
        "shippedAt": "2026-11-20T10:00:00Z",
        "idempotencyKey": new_key(),
    }


async def submit_evidence(world: World) -> dict[str, Any]:
    payment: Payment = await paid_payment(world.shopper, world.services)
    dispute = await open_dispute(world.sandbox, world.services, payment)
    return {"disputeId": str(dispute.id), "extraText": "Delivered to the door.", "idempotencyKey": new_key()}


async def create_subscription(world: World) -> dict[str, Any]:
    price = await recurring_price(900)
    return {
        "priceId": str(price.id),
        "gateway": "sandbox",
        "paymentMethod": "pm_card_visa",
        "trialDays": 0,
        "returnUrl": RETURN_URL,
        "idempotencyKey": new_key(),
    }


async def a_subscription(world: World, *, metered: bool = False) -> tuple[str, Price]:
    price = await recurring_price(800, metered=metered)
    subscription_id: str = (await subscribe(world.shopper, price))["subscription"]["id"]
    return subscription_id, price


async def cancel_subscription(world: World) -> dict[str, Any]:
    subscription_id, _ = await a_subscription(world)
    return {"subscriptionId": subscription_id, "atPeriodEnd": True, "refund": "NONE", "idempotencyKey": new_key()}


async def change_plan(world: World) -> dict[str, Any]:
    subscription_id, basic = await a_subscription(world)
    pro = await recurring_price(2000, product=await basic.product)
    return {"subscriptionId": subscription_id, "priceId": str(pro.id), "proration": "NONE", "idempotencyKey": new_key()}


async def report_usage(world: World) -> dict[str, Any]:
    subscription_id, price = await a_subscription(world, metered=True)
    return {"subscriptionId": subscription_id, "priceId": str(price.id), "quantity": 3, "idempotencyKey": new_key()}


CASES = {
    "checkout.items": Case(CHECKOUT, "items", False, checkout, [{"priceId": another_id(), "quantity": 1}]),
    "checkout.gateway": Case(CHECKOUT, "gateway", False, checkout, "paypal"),
    "checkout.paymentMethod": Case(CHECKOUT, "paymentMethod", False, checkout, "pm_card_mastercard"),
    "checkout.captureMethod": Case(CHECKOUT, "captureMethod", False, checkout, "MANUAL"),
    "checkout.returnUrl": Case(CHECKOUT, "returnUrl", False, checkout, "https://shop.example/elsewhere"),
    "checkout.hostedCheckout": Case(CHECKOUT, "hostedCheckout", False, checkout, True),
    "payOrder.orderId": Case(PAY_ORDER, "orderId", False, pay_order, another_id()),
    "payOrder.gateway": Case(PAY_ORDER, "gateway", False, pay_order, "paypal"),
    "payOrder.paymentMethod": Case(PAY_ORDER, "paymentMethod", False, pay_order, "pm_card_mastercard"),
    "payOrder.captureMethod": Case(PAY_ORDER, "captureMethod", False, pay_order, "MANUAL"),
    "payOrder.hostedCheckout": Case(PAY_ORDER, "hostedCheckout", False, pay_order, True),
    "capturePayment.paymentId": Case(CAPTURE, "paymentId", True, capture, another_id()),
    "capturePayment.amount": Case(CAPTURE, "amount", True, capture, 600),
    "cancelPayment.paymentId": Case(CANCEL, "paymentId", True, cancel_payment, another_id()),
    "refundPayment.paymentId": Case(REFUND, "paymentId", True, refund, another_id()),
    "refundPayment.amount": Case(REFUND, "amount", True, refund, 400),
    "refundPayment.reason": Case(REFUND, "reason", True, refund, "wrong size"),
    "cancelOrder.orderId": Case(CANCEL_ORDER, "orderId", True, cancel_order, another_id()),
    "cancelOrder.reason": Case(CANCEL_ORDER, "reason", True, cancel_order, "fraud"),
    "recordFulfillment.orderId": Case(RECORD_FULFILLMENT, "orderId", True, record_fulfillment, another_id()),
    "recordFulfillment.carrier": Case(RECORD_FULFILLMENT, "carrier", True, record_fulfillment, "UPS"),
    "recordFulfillment.trackingNumber": Case(RECORD_FULFILLMENT, "trackingNumber", True, record_fulfillment, "X-2"),
    "recordFulfillment.shippedAt": Case(
        RECORD_FULFILLMENT, "shippedAt", True, record_fulfillment, "2026-11-21T10:00:00Z"
    ),
    "submitDisputeEvidence.disputeId": Case(SUBMIT, "disputeId", True, submit_evidence, another_id()),
    "submitDisputeEvidence.extraText": Case(SUBMIT, "extraText", True, submit_evidence, "Signed for."),
    "createSubscription.priceId": Case(CREATE, "priceId", False, create_subscription, another_id()),
    "createSubscription.gateway": Case(CREATE, "gateway", False, create_subscription, "stripe"),
    "createSubscription.paymentMethod": Case(CREATE, "paymentMethod", False, create_subscription, "pm_card_mastercard"),
    "createSubscription.trialDays": Case(CREATE, "trialDays", False, create_subscription, 14),
    "createSubscription.returnUrl": Case(CREATE, "returnUrl", False, create_subscription, None),
    "cancelSubscription.subscriptionId": Case(
        CANCEL_SUBSCRIPTION, "subscriptionId", False, cancel_subscription, another_id()
    ),
    "cancelSubscription.atPeriodEnd": Case(CANCEL_SUBSCRIPTION, "atPeriodEnd", False, cancel_subscription, False),
    "cancelSubscription.refund": Case(CANCEL_SUBSCRIPTION, "refund", False, cancel_subscription, "FULL"),
    "changeSubscriptionPlan.subscriptionId": Case(CHANGE, "subscriptionId", False, change_plan, another_id()),
    "changeSubscriptionPlan.priceId": Case(CHANGE, "priceId", False, change_plan, another_id()),
    "changeSubscriptionPlan.proration": Case(CHANGE, "proration", False, change_plan, "IMMEDIATE"),
    "reportUsage.subscriptionId": Case(USAGE, "subscriptionId", False, report_usage, another_id()),
    "reportUsage.priceId": Case(USAGE, "priceId", False, report_usage, another_id()),
    "reportUsage.quantity": Case(USAGE, "quantity", False, report_usage, 4),
    "reportUsage.timestamp": Case(USAGE, "timestamp", False, report_usage, "2026-11-21T10:00:00Z"),
}


def user_errors(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    (payload,) = body.values()
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


@pytest.mark.parametrize("name", list(CASES))
async def test_the_same_key_with_one_field_changed_is_a_conflict(
    name: str, shopper: Shopper, admin: Shopper, services: Services, sandbox: SandboxProcessor
) -> None:
    case = CASES[name]
    world = World(shopper, admin, services, sandbox)
    caller = admin if case.staff else shopper
    first = await case.first(world)
    completed = await caller.data(case.mutation, {"input": first})
    assert ("IDEMPOTENCY_CONFLICT", "idempotencyKey") not in user_errors(completed)
    assert first.get(case.field) != case.changed

    changed = await caller.data(case.mutation, {"input": first | {case.field: case.changed}})

    assert user_errors(changed) == [("IDEMPOTENCY_CONFLICT", "idempotencyKey")]
