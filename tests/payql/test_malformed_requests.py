"""Malformed GraphQL requests get a 400 (or an INVALID_INPUT error) that names the problem, never a 500,
and change nothing: bodies that are not JSON objects, invalid UTF-8, absurd nesting and NUL bytes."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from db.models import Order
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, new_key
from tests.wsclient import graphql_ws


async def post_raw(shopper: Shopper, body: bytes) -> tuple[int, str]:
    response = await shopper.http.post(
        "/graphql",
        content=body,
        headers={"authorization": f"Bearer {shopper.token}", "content-type": "application/json"},
    )
    return response.status_code, response.text


@pytest.mark.parametrize("body", [b'"hello"', b"123", b"null", b"true"])
async def test_a_body_that_is_not_a_json_object_is_a_400(shopper: Shopper, body: bytes) -> None:
    status, text = await post_raw(shopper, body)
    assert status == 400, text
    assert "JSON object" in text


async def test_invalid_utf8_is_a_400(shopper: Shopper) -> None:
    status, text = await post_raw(shopper, b'{"query": "{ products { id } }", "variables": {"a": "\xff\xfe"}}')
    assert status == 400, text
    assert "UTF-8" in text


async def test_variables_nested_ten_thousand_deep_are_a_400(shopper: Shopper) -> None:
    depth = 10_000
    body = b'{"query": "{ products { id } }", "variables": {"a": ' + b"[" * depth + b"]" * depth + b"}}"
    status, text = await post_raw(shopper, body)
    assert status == 400, text
    assert "nested" in text


async def test_moderately_nested_variables_are_still_accepted(shopper: Shopper) -> None:
    body = json.dumps({"query": "{ products { id } }", "variables": {"a": [[[[{"b": [1]}]]]]}}).encode()
    status, text = await post_raw(shopper, body)
    assert status == 200, text


async def test_brackets_inside_strings_do_not_count_as_nesting(shopper: Shopper) -> None:
    body = json.dumps({"query": "{ products { id } }", "variables": {"a": "[{" * 5_000 + '\\"'}}).encode()
    status, text = await post_raw(shopper, body)
    assert status == 200, text


async def test_a_nul_byte_in_a_variable_is_refused_and_nothing_is_created(shopper: Shopper) -> None:
    price = await make_price(1500)
    key = new_key() + "\x00tail"
    body = await shopper.gql(CHECKOUT, {"input": checkout_input(price, key=key)})
    assert body.get("data") is None, body
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert "NUL" in body["errors"][0]["message"]
    assert await Order.filter(customer__external_id=shopper.subject).count() == 0


async def test_a_nul_byte_in_a_document_literal_is_refused(shopper: Shopper) -> None:
    price = await make_price(1500)
    literal_input = (
        f'{{items: [{{priceId: "{price.id}"}}], paymentMethod: "pm_card_visa", idempotencyKey: "k\\u0000ey"}}'
    )
    query = f"mutation {{ checkout(input: {literal_input}) {{ order {{ id }} }} }}"
    body = await shopper.gql(query)
    assert body.get("data") is None, body
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert await Order.filter(customer__external_id=shopper.subject).count() == 0


async def test_a_nul_byte_in_a_variable_name_key_is_refused(shopper: Shopper) -> None:
    body = await shopper.gql("{ products { id } }", {"a\x00b": 1})
    assert body.get("data") is None, body
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_a_websocket_message_nested_ten_thousand_deep_closes_the_socket_with_4400(
    server: str, shopper: Shopper
) -> None:
    async with graphql_ws(server, shopper.token) as ws:
        await ws.connection.send('{"type": "ping", "payload": ' + "[" * 10_000 + "]" * 10_000 + "}")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.connection.recv(), 10)
    # Strawberry's own close for a message that is not JSON it accepts (the reason is its wording).
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
