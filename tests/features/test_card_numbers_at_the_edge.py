"""A card number anywhere in a GraphQL request is refused before any resolver runs, and never kept."""

from __future__ import annotations

import logging

import pytest
from tortoise import connections

from db.models import Order
from tests.testkit import CHECKOUT, ORDER_FIELDS, Shopper, checkout_input, make_price

PAN = "4242424242424242"
SPACED_PAN = "4000 0566 5566 5556"


async def all_database_text(is_postgres: bool) -> str:
    connection = connections.get("default")
    if is_postgres:
        tables = [
            r["tablename"]
            for r in await connection.execute_query_dict("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        ]
    else:
        tables = [
            r["name"] for r in await connection.execute_query_dict("SELECT name FROM sqlite_master WHERE type='table'")
        ]
    dumps = []
    for table in tables:
        dumps.append(str(await connection.execute_query_dict(f'SELECT * FROM "{table}"')))
    return "\n".join(dumps)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: v | {"paymentMethod": PAN},
        lambda v: v | {"paymentMethod": SPACED_PAN},
        lambda v: v | {"idempotencyKey": f"key-{PAN}"},
        lambda v: v | {"returnUrl": f"https://shop.example/return?card={SPACED_PAN.replace(' ', '-')}"},
    ],
    ids=["payment-method", "spaced", "idempotency-key", "return-url"],
)
async def test_card_number_in_variables_is_refused_and_not_kept(
    shopper: Shopper,
    caplog: pytest.LogCaptureFixture,
    mutate,
    backend,  # type: ignore[no-untyped-def]
) -> None:
    caplog.set_level(logging.DEBUG)
    price = await make_price(1000)
    orders_before = await Order.all().count()
    body = await shopper.gql(CHECKOUT, {"input": mutate(checkout_input(price))})
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"]
    digits = PAN if PAN in str(mutate({})) else SPACED_PAN
    assert digits not in str(body) and digits.replace(" ", "") not in str(body)
    assert await Order.all().count() == orders_before
    everything = await all_database_text(backend.is_postgres)
    for form in (PAN, SPACED_PAN, SPACED_PAN.replace(" ", ""), SPACED_PAN.replace(" ", "-")):
        assert form not in everything
        assert form not in caplog.text


async def test_card_number_as_a_literal_in_the_document_is_refused(shopper: Shopper) -> None:
    price = await make_price(1000)
    query = (
        f'mutation {{ checkout(input: {{items: [{{priceId: "{price.id}"}}], paymentMethod: "{PAN}", '
        'idempotencyKey: "k"}) { order { id } } }'
    )
    body = await shopper.gql(query)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert PAN not in str(body)


async def test_tracking_numbers_and_ids_are_not_mistaken_for_cards(shopper: Shopper) -> None:
    price = await make_price(1000)
    variables = {"input": checkout_input(price, key="1Z999AA10123456784-9400111899223856928499")}
    result = (await shopper.data(CHECKOUT, variables))["checkout"]
    assert result["userErrors"] == []
    order = f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
    assert (await shopper.data(order, {"id": result["order"]["id"]}))["order"]["status"] == "PAID"
