"""Staff find orders by customer, email, gateway and date as well as status; a customer still sees
only their own orders, and cannot search by another customer's identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.testkit import CHECKOUT, Shopper, checkout_input, email_of, make_price

ORDERS = """query($customer: String, $email: String, $gateway: String, $after: DateTime, $before: DateTime) {
  orders(first: 100, customer: $customer, email: $email, gateway: $gateway,
         createdAfter: $after, createdBefore: $before) { edges { node { id } } } }"""


async def bought(shopper: Shopper) -> str:
    price = await make_price(1700)
    order_id: str = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]["order"]["id"]
    return order_id


async def found(searcher: Shopper, **variables: Any) -> set[str]:
    data = await searcher.data(ORDERS, variables)
    return {edge["node"]["id"] for edge in data["orders"]["edges"]}


async def test_staff_find_a_customers_orders_by_subject_and_by_email(
    shopper: Shopper, other_shopper: Shopper, admin: Shopper
) -> None:
    mine, theirs = await bought(shopper), await bought(other_shopper)
    assert await found(admin, customer=shopper.subject) == {mine}
    # The email is sealed at rest: it is found through its blind index, case and spaces aside.
    assert await found(admin, email=f"  {email_of(shopper.subject).upper()} ") == {mine}
    assert theirs not in await found(admin, email=email_of(shopper.subject))
    assert await found(admin, email="nobody@shoppers.example") == set()


async def test_staff_find_orders_by_gateway_and_date(shopper: Shopper, admin: Shopper) -> None:
    order = await bought(shopper)
    now = datetime.now(UTC)
    window = {"customer": shopper.subject}
    assert await found(admin, gateway="sandbox", **window) == {order}
    assert await found(admin, gateway="no-such-gateway", **window) == set()
    hour = timedelta(hours=1)
    assert await found(admin, after=(now - hour).isoformat(), before=(now + hour).isoformat(), **window) == {order}
    assert await found(admin, after=(now + hour).isoformat(), **window) == set()
    assert await found(admin, before=(now - hour).isoformat(), **window) == set()


async def test_a_customer_cannot_search_by_someone_elses_identity(shopper: Shopper, other_shopper: Shopper) -> None:
    await bought(other_shopper)
    for variables in (
        {"customer": other_shopper.subject},
        {"email": email_of(other_shopper.subject)},
        {"gateway": "sandbox"},
    ):
        body = await shopper.gql(ORDERS, variables)
        assert [error["extensions"]["code"] for error in body["errors"]] == ["FORBIDDEN"], body
    mine = await bought(shopper)
    assert await found(shopper, after=(datetime.now(UTC) - timedelta(hours=1)).isoformat()) >= {mine}
