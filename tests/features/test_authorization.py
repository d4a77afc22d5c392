"""Who may see what: customers see only their own orders, staff see all; tokens are verified."""

from __future__ import annotations

import jwt

from db.models import Payment
from tests.testkit import (
    CHECKOUT,
    COMPLETE,
    ORDER_FIELDS,
    PAY_ORDER,
    Shopper,
    checkout_input,
    make_price,
    new_key,
)

ORDER = f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
ORDERS = """query($first: Int!, $after: String, $status: OrderStatus) {
  orders(first: $first, after: $after, status: $status) {
    edges { cursor node { id status } } pageInfo { hasNextPage endCursor } } }"""


async def paid_order(shopper: Shopper, amount: int = 1000, payment_method: str = "pm_card_visa") -> str:
    price = await make_price(amount)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, payment_method)}))["checkout"]
    order_id: str = result["order"]["id"]
    return order_id


async def test_a_customer_cannot_read_another_customers_order(shopper: Shopper, other_shopper: Shopper) -> None:
    order_id = await paid_order(shopper)
    mine = await shopper.data(ORDER, {"id": order_id})
    assert mine["order"]["id"] == order_id
    theirs = await other_shopper.gql(ORDER, {"id": order_id})
    assert theirs["data"] is None
    assert theirs["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_customer_cannot_pay_another_customers_order(shopper: Shopper, other_shopper: Shopper) -> None:
    order_id = await paid_order(shopper, payment_method="pm_card_chargeDeclined")
    result = (
        await other_shopper.data(
            PAY_ORDER, {"input": {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}}
        )
    )["payOrder"]
    assert [e["code"] for e in result["userErrors"]] == ["NOT_FOUND"]


async def test_a_customer_cannot_complete_another_customers_payment(shopper: Shopper, other_shopper: Shopper) -> None:
    price = await make_price(1200)
    started = await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_authenticationRequired")})
    payment_id = started["checkout"]["payment"]["id"]
    assert started["checkout"]["payment"]["status"] == "REQUIRES_ACTION"

    theirs = (await other_shopper.data(COMPLETE, {"input": {"paymentId": payment_id}}))["completePayment"]

    assert [e["code"] for e in theirs["userErrors"]] == ["NOT_FOUND"]
    assert theirs["payment"] is None and theirs["order"] is None
    assert (await Payment.get(id=payment_id)).status == "REQUIRES_ACTION"
    mine = (await shopper.data(COMPLETE, {"input": {"paymentId": payment_id}}))["completePayment"]
    assert mine["userErrors"] == [] and mine["payment"]["id"] == payment_id


async def test_orders_are_paginated_newest_first_and_scoped_to_the_customer(
    shopper: Shopper, other_shopper: Shopper
) -> None:
    mine = [await paid_order(shopper, 100 + i) for i in range(5)]
    await paid_order(other_shopper)
    seen: list[str] = []
    after = None
    while True:
        page = (await shopper.data(ORDERS, {"first": 2, "after": after}))["orders"]
        seen.extend(edge["node"]["id"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(mine))


async def test_staff_see_every_customers_orders_filtered_by_status(
    shopper: Shopper, other_shopper: Shopper, admin: Shopper
) -> None:
    paid = await paid_order(shopper)
    pending = await paid_order(other_shopper, payment_method="pm_card_chargeDeclined")
    found: dict[str, str] = {}
    for status in ("PAID", "PENDING"):
        page = (await admin.data(ORDERS, {"first": 100, "status": status}))["orders"]
        assert all(edge["node"]["status"] == status for edge in page["edges"])
        found.update({edge["node"]["id"]: status for edge in page["edges"]})
    assert found[paid] == "PAID" and found[pending] == "PENDING"


async def test_page_size_is_capped(shopper: Shopper) -> None:
    body = await shopper.gql(ORDERS, {"first": 101})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_forged_or_expired_tokens_are_anonymous(shopper: Shopper) -> None:
    forged = jwt.encode(
        {"sub": shopper.subject, "exp": 9999999999}, "not-the-secret-not-the-secret-123", algorithm="HS256"
    )
    expired = jwt.encode(
        {"sub": shopper.subject, "exp": 1}, "payql-test-secret-0123456789abcdef0123456789", algorithm="HS256"
    )
    for token in (forged, expired, "garbage"):
        response = await shopper.http.post(
            "/graphql", json={"query": ORDERS, "variables": {"first": 1}}, headers={"authorization": f"Bearer {token}"}
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
